//! Conformance: run deletion and restoration, MLflow 3 logged models, run outputs.

use std::collections::BTreeMap;

use spire_core::ErrorKind;
use spire_registry::{
    Lifecycle, LoggedModelStatus, NewLoggedModel, RunOutput, RunSearch, TrackingStore, ViewType,
};

use crate::{new_run, TestDb};

crate::conformance!(
    deleted_runs_leave_active_searches_and_come_back,
    run_name_is_a_search_attribute,
    logged_models_round_trip,
    logged_model_params_are_immutable_and_tags_move,
    run_outputs_are_recorded_once_in_order,
    logged_model_errors_name_what_is_missing,
);

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn search_ids(t: &TestDb, filter: &str, view: ViewType) -> Vec<String> {
    let page = t
        .reg
        .search_runs(&RunSearch {
            filter: filter.into(),
            view,
            ..RunSearch::default()
        })
        .await
        .unwrap();
    page.runs.into_iter().map(|r| r.run_id).collect()
}

pub async fn deleted_runs_leave_active_searches_and_come_back(t: TestDb) {
    let kept = t.reg.create_run(new_run("a")).await.unwrap();
    let doomed = t.reg.create_run(new_run("b")).await.unwrap();
    t.reg.delete_run(&doomed).await.unwrap();
    t.reg.delete_run(&doomed).await.unwrap(); // idempotent
    assert_eq!(
        t.reg.get_run(&doomed).await.unwrap().lifecycle,
        Lifecycle::Deleted
    );
    assert_eq!(
        t.reg.get_run(&kept).await.unwrap().lifecycle,
        Lifecycle::Active
    );
    assert_eq!(
        search_ids(&t, "", ViewType::ActiveOnly).await,
        vec![kept.clone()]
    );
    assert_eq!(
        search_ids(&t, "", ViewType::DeletedOnly).await,
        vec![doomed.clone()]
    );
    assert_eq!(
        search_ids(&t, "", ViewType::All).await,
        vec![doomed.clone(), kept.clone()]
    );
    t.reg.restore_run(&doomed).await.unwrap();
    t.reg.restore_run(&doomed).await.unwrap(); // idempotent
    assert_eq!(
        t.reg.get_run(&doomed).await.unwrap().lifecycle,
        Lifecycle::Active
    );
    assert!(search_ids(&t, "", ViewType::DeletedOnly).await.is_empty());
    for err in [
        t.reg.delete_run("feedface").await.unwrap_err(),
        t.reg.restore_run("feedface").await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.to_string().contains("feedface"), "{err}");
    }
}

pub async fn run_name_is_a_search_attribute(t: TestDb) {
    let mut named = new_run("a");
    named
        .tags
        .insert("mlflow.runName".into(), "train-lr".into());
    let id = t.reg.create_run(named).await.unwrap();
    t.reg.create_run(new_run("a")).await.unwrap();
    assert_eq!(
        search_ids(&t, "attributes.run_name = 'train-lr'", ViewType::All).await,
        vec![id.clone()]
    );
    assert_eq!(
        search_ids(&t, "attributes.run_name ILIKE 'TRAIN-%'", ViewType::All).await,
        vec![id]
    );
}

pub async fn logged_models_round_trip(t: TestDb) {
    let run = t.reg.create_run(new_run("a")).await.unwrap();
    let experiment_id = t.reg.get_run(&run).await.unwrap().experiment_id;
    let created = t
        .reg
        .create_logged_model(NewLoggedModel {
            experiment_id: experiment_id.clone(),
            name: "model".into(),
            source_run_id: Some(run.clone()),
            model_type: String::new(),
            params: map(&[("C", "0.5")]),
            tags: map(&[("mlflow.user", "ci")]),
        })
        .await
        .unwrap();
    assert!(created.model_id.starts_with("m-") && created.model_id.len() == 34);
    assert_eq!(created.status, LoggedModelStatus::Pending);
    let read = t.reg.get_logged_model(&created.model_id).await.unwrap();
    assert_eq!(read, created);

    let ready = t
        .reg
        .finalize_logged_model(&created.model_id, LoggedModelStatus::Ready)
        .await
        .unwrap();
    assert_eq!(ready.status, LoggedModelStatus::Ready);
    assert!(ready.updated_at >= created.updated_at);
    let err = t
        .reg
        .finalize_logged_model(&created.model_id, LoggedModelStatus::Pending)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    let other_experiment = t
        .reg
        .create_experiment("other", &BTreeMap::new())
        .await
        .unwrap()
        .experiment_id;
    let second = t
        .reg
        .create_logged_model(NewLoggedModel {
            experiment_id: other_experiment.clone(),
            name: "second".into(),
            ..NewLoggedModel::default()
        })
        .await
        .unwrap();
    let all = t.reg.list_logged_models(&[]).await.unwrap();
    let names: Vec<_> = all.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["second", "model"], "newest first");
    let only = t.reg.list_logged_models(&[other_experiment]).await.unwrap();
    assert_eq!(only, vec![second]);
}

pub async fn logged_model_params_are_immutable_and_tags_move(t: TestDb) {
    let experiment_id = t
        .reg
        .create_experiment("e", &BTreeMap::new())
        .await
        .unwrap()
        .experiment_id;
    let id = t
        .reg
        .create_logged_model(NewLoggedModel {
            experiment_id,
            name: "m".into(),
            params: map(&[("depth", "3")]),
            ..NewLoggedModel::default()
        })
        .await
        .unwrap()
        .model_id;
    t.reg
        .log_logged_model_params(&id, &map(&[("depth", "3"), ("lr", "0.1")]))
        .await
        .unwrap();
    let err = t
        .reg
        .log_logged_model_params(&id, &map(&[("depth", "4"), ("new", "x")]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().contains("depth"), "{err}");
    let model = t.reg.get_logged_model(&id).await.unwrap();
    assert_eq!(
        model.params,
        map(&[("depth", "3"), ("lr", "0.1")]),
        "all or nothing"
    );

    t.reg
        .set_logged_model_tags(&id, &map(&[("a", "1"), ("b", "2")]))
        .await
        .unwrap();
    t.reg
        .set_logged_model_tags(&id, &map(&[("a", "9")]))
        .await
        .unwrap();
    t.reg.delete_logged_model_tag(&id, "b").await.unwrap();
    let err = t.reg.delete_logged_model_tag(&id, "b").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        t.reg.get_logged_model(&id).await.unwrap().tags,
        map(&[("a", "9")])
    );
}

pub async fn run_outputs_are_recorded_once_in_order(t: TestDb) {
    let run = t.reg.create_run(new_run("a")).await.unwrap();
    let experiment_id = t.reg.get_run(&run).await.unwrap().experiment_id;
    let mut ids = Vec::new();
    for name in ["first", "second"] {
        let model = t
            .reg
            .create_logged_model(NewLoggedModel {
                experiment_id: experiment_id.clone(),
                name: name.into(),
                source_run_id: Some(run.clone()),
                ..NewLoggedModel::default()
            })
            .await
            .unwrap();
        ids.push(model.model_id);
    }
    let outputs = vec![
        RunOutput {
            model_id: ids[1].clone(),
            step: 2,
        },
        RunOutput {
            model_id: ids[0].clone(),
            step: 0,
        },
    ];
    t.reg.log_run_outputs(&run, &outputs).await.unwrap();
    t.reg.log_run_outputs(&run, &outputs).await.unwrap(); // idempotent
    let got = t.reg.get_run(&run).await.unwrap().outputs;
    assert_eq!(
        got,
        vec![outputs[1].clone(), outputs[0].clone()],
        "in logging order"
    );
}

pub async fn logged_model_errors_name_what_is_missing(t: TestDb) {
    let err = t
        .reg
        .create_logged_model(NewLoggedModel {
            experiment_id: "nope".into(),
            name: "m".into(),
            ..NewLoggedModel::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("nope"), "{err}");
    let experiment = t
        .reg
        .create_experiment("e", &BTreeMap::new())
        .await
        .unwrap();
    let err = t
        .reg
        .create_logged_model(NewLoggedModel {
            experiment_id: experiment.experiment_id.clone(),
            name: "m".into(),
            source_run_id: Some("feedface".into()),
            ..NewLoggedModel::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("feedface"), "{err}");
    t.reg
        .delete_experiment(&experiment.experiment_id)
        .await
        .unwrap();
    let err = t
        .reg
        .create_logged_model(NewLoggedModel {
            experiment_id: experiment.experiment_id,
            name: "m".into(),
            ..NewLoggedModel::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let err = t.reg.get_logged_model("m-0").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let run = t.reg.create_run(new_run("a")).await.unwrap();
    let err = t
        .reg
        .log_run_outputs(
            &run,
            &[RunOutput {
                model_id: "m-0".into(),
                step: 0,
            }],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(t.reg.get_run(&run).await.unwrap().outputs.is_empty());
}
