//! Conformance: experiments (ids, tags, lifecycle).

use std::collections::BTreeMap;

use spire_core::ErrorKind;
use spire_registry::{Lifecycle, TrackingStore, ViewType};

use crate::{new_run, TestDb};

crate::conformance!(
    experiments_round_trip,
    deleted_experiments_take_no_runs_until_restored,
    unknown_experiments_are_not_found,
    runs_create_their_experiment_once,
);

fn names(experiments: &[spire_registry::Experiment]) -> Vec<&str> {
    experiments.iter().map(|e| e.name.as_str()).collect()
}

pub async fn experiments_round_trip(t: TestDb) {
    let reg = t.reg;
    let tags = BTreeMap::from([("family".to_string(), "sports".to_string())]);
    let created = reg.create_experiment("sports", &tags).await.unwrap();
    assert_eq!(created.name, "sports");
    assert_eq!(created.lifecycle, Lifecycle::Active);
    assert_eq!(created.experiment_id.len(), 32);
    assert_eq!(created.tags, tags);

    let by_id = reg.get_experiment(&created.experiment_id).await.unwrap();
    assert_eq!(by_id, created);
    assert_eq!(reg.get_experiment_by_name("sports").await.unwrap(), created);

    let err = reg
        .create_experiment("sports", &BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(err.to_string().contains("\"sports\""), "{err}");

    reg.set_experiment_tag(&created.experiment_id, "owner", "ana")
        .await
        .unwrap();
    reg.set_experiment_tag(&created.experiment_id, "family", "sport")
        .await
        .unwrap();
    let tagged = reg.get_experiment(&created.experiment_id).await.unwrap();
    assert_eq!(tagged.tags["owner"], "ana");
    assert_eq!(tagged.tags["family"], "sport", "last write wins");
    assert!(tagged.updated_at >= tagged.created_at);

    reg.create_experiment("news", &BTreeMap::new())
        .await
        .unwrap();
    reg.create_experiment("arts", &BTreeMap::new())
        .await
        .unwrap();
    let all = reg.list_experiments(ViewType::ActiveOnly).await.unwrap();
    assert_eq!(names(&all), vec!["arts", "news", "sports"], "by name");
    assert_eq!(all[2].tags["owner"], "ana");

    for bad in ["", " padded", "new\nline"] {
        let err = reg
            .create_experiment(bad, &BTreeMap::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
    let err = reg
        .set_experiment_tag(&created.experiment_id, "", "v")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

pub async fn deleted_experiments_take_no_runs_until_restored(t: TestDb) {
    let reg = t.reg;
    let run = reg.create_run(new_run("sports")).await.unwrap();
    let daily = reg.get_experiment_by_name("daily").await.unwrap();
    reg.create_experiment("weekly", &BTreeMap::new())
        .await
        .unwrap();

    reg.delete_experiment(&daily.experiment_id).await.unwrap();
    reg.delete_experiment(&daily.experiment_id).await.unwrap(); // idempotent
    let deleted = reg.get_experiment(&daily.experiment_id).await.unwrap();
    assert_eq!(deleted.lifecycle, Lifecycle::Deleted);
    assert_eq!(
        names(&reg.list_experiments(ViewType::ActiveOnly).await.unwrap()),
        vec!["weekly"]
    );
    assert_eq!(
        names(&reg.list_experiments(ViewType::DeletedOnly).await.unwrap()),
        vec!["daily"]
    );
    assert_eq!(
        names(&reg.list_experiments(ViewType::All).await.unwrap()),
        vec!["daily", "weekly"]
    );

    // Its runs stay readable; no new run may start in it; the name stays taken.
    assert_eq!(reg.get_run(&run).await.unwrap().experiment, "daily");
    let err = reg.create_run(new_run("sports")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(
        err.to_string().contains("\"daily\"") && err.to_string().contains("restore"),
        "{err}"
    );
    let err = reg
        .create_experiment("daily", &BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);

    reg.restore_experiment(&daily.experiment_id).await.unwrap();
    reg.restore_experiment(&daily.experiment_id).await.unwrap(); // idempotent
    assert_eq!(
        reg.get_experiment(&daily.experiment_id)
            .await
            .unwrap()
            .lifecycle,
        Lifecycle::Active
    );
    reg.create_run(new_run("sports")).await.unwrap();
}

pub async fn unknown_experiments_are_not_found(t: TestDb) {
    let reg = t.reg;
    let missing = "feedfacefeedfacefeedfacefeedface";
    for err in [
        reg.get_experiment(missing).await.unwrap_err(),
        reg.delete_experiment(missing).await.unwrap_err(),
        reg.restore_experiment(missing).await.unwrap_err(),
        reg.set_experiment_tag(missing, "k", "v").await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains(missing), "{err}");
    }
    let err = reg.get_experiment_by_name("ghost").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("\"ghost\""), "{err}");
    assert!(reg
        .list_experiments(ViewType::All)
        .await
        .unwrap()
        .is_empty());
}

pub async fn runs_create_their_experiment_once(t: TestDb) {
    let reg = t.reg;
    let first = reg.create_run(new_run("a")).await.unwrap();
    let second = reg.create_run(new_run("b")).await.unwrap();
    let experiments = reg.list_experiments(ViewType::All).await.unwrap();
    assert_eq!(names(&experiments), vec!["daily"]);
    let daily = &experiments[0];
    assert_eq!(daily.lifecycle, Lifecycle::Active);
    assert!(daily.tags.is_empty());
    for id in [first, second] {
        assert_eq!(
            reg.get_run(&id).await.unwrap().experiment_id,
            daily.experiment_id
        );
    }
}
