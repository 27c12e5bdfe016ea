//! Conformance: registered models, versions, aliases and the alias audit log.

use serde_json::json;
use spire_core::ErrorKind;
use spire_registry::{ModelRegistry, TrackingStore};

use crate::{new_run, TestDb};

crate::conformance!(
    versions_are_numbered_per_model,
    alias_moves_are_recorded,
    missing_models_versions_and_runs_are_not_found,
    models_can_be_registered_before_their_first_version,
);

pub async fn versions_are_numbered_per_model(t: TestDb) {
    let reg = t.reg;
    let run = reg.create_run(new_run("sports")).await.unwrap();
    let sig = json!({"inputs": [{"name": "f1", "type": "f32"}], "output": "score"});
    for expected in 1..=3 {
        let v = reg
            .create_model_version(
                "sports",
                &run,
                &format!("file:///m/{expected}"),
                sig.clone(),
            )
            .await
            .unwrap();
        assert_eq!(v.version, expected);
        assert_eq!(v.model, "sports");
        assert_eq!(v.run_id, run);
        assert!(v.aliases.is_empty());
    }
    let other = reg
        .create_model_version("news", &run, "file:///n/1", json!(null))
        .await
        .unwrap();
    assert_eq!(other.version, 1, "numbering is per model");

    let v2 = reg.get_model_version("sports", 2).await.unwrap();
    assert_eq!(v2.artifact_uri, "file:///m/2");
    assert_eq!(v2.signature, sig);

    let versions: Vec<i64> = reg
        .list_model_versions("sports")
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, vec![3, 2, 1], "newest first");

    let models = reg.list_models().await.unwrap();
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["news", "sports"], "by name");
    assert_eq!(models[1].latest_version, 3);
    assert_eq!(models[1].versions, 3);
    assert!(models[1].updated_at >= models[1].created_at);
}

pub async fn alias_moves_are_recorded(t: TestDb) {
    let reg = t.reg;
    let run = reg.create_run(new_run("sports")).await.unwrap();
    for _ in 0..3 {
        reg.create_model_version("sports", &run, "file:///m", json!({}))
            .await
            .unwrap();
    }
    assert_eq!(reg.get_alias("sports", "champion").await.unwrap(), None);

    reg.set_alias("sports", "champion", 1, "ana", "first model")
        .await
        .unwrap();
    reg.set_alias("sports", "challenger", 2, "ci", "new candidate")
        .await
        .unwrap();
    reg.set_alias("sports", "champion", 2, "ci", "won the A/B test")
        .await
        .unwrap();
    // Idempotent: no new event.
    reg.set_alias("sports", "champion", 2, "ci", "retry")
        .await
        .unwrap();

    let champion = reg.get_alias("sports", "champion").await.unwrap().unwrap();
    assert_eq!(champion.version, 2);
    assert_eq!(champion.aliases, vec!["challenger", "champion"]);
    assert!(reg
        .get_model_version("sports", 1)
        .await
        .unwrap()
        .aliases
        .is_empty());

    let models = reg.list_models().await.unwrap();
    assert_eq!(models[0].aliases.get("champion"), Some(&2));
    let listed = reg.list_model_versions("sports").await.unwrap();
    assert_eq!(listed[1].aliases, vec!["challenger", "champion"]);

    reg.delete_alias("sports", "challenger", "ana", "cleanup")
        .await
        .unwrap();
    assert_eq!(reg.get_alias("sports", "challenger").await.unwrap(), None);
    let err = reg
        .delete_alias("sports", "challenger", "ana", "again")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let history = reg.alias_history("sports").await.unwrap();
    type Move<'a> = (&'a str, Option<i64>, Option<i64>, &'a str, &'a str);
    let moves: Vec<Move> = history
        .iter()
        .map(|e| {
            (
                e.alias.as_str(),
                e.from_version,
                e.to_version,
                e.actor.as_str(),
                e.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        vec![
            ("champion", None, Some(1), "ana", "first model"),
            ("challenger", None, Some(2), "ci", "new candidate"),
            ("champion", Some(1), Some(2), "ci", "won the A/B test"),
            ("challenger", Some(2), None, "ana", "cleanup"),
        ]
    );
    assert!(history.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(history.iter().all(|e| e.model == "sports"));
}

pub async fn missing_models_versions_and_runs_are_not_found(t: TestDb) {
    let reg = t.reg;
    let run = reg.create_run(new_run("sports")).await.unwrap();
    reg.create_model_version("sports", &run, "file:///m", json!({}))
        .await
        .unwrap();

    let err = reg.get_model_version("sports", 7).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string().contains("version 7") && err.to_string().contains("sports"),
        "{err}"
    );
    let err = reg.get_model_version("ghost", 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("ghost"), "{err}");

    let err = reg
        .set_alias("sports", "champion", 9, "ana", "typo")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        reg.alias_history("sports").await.unwrap().is_empty(),
        "nothing recorded"
    );
    for err in [
        reg.set_alias("ghost", "champion", 1, "ana", "")
            .await
            .unwrap_err(),
        reg.get_alias("ghost", "champion").await.unwrap_err(),
        reg.alias_history("ghost").await.unwrap_err(),
        reg.list_model_versions("ghost").await.unwrap_err(),
        reg.delete_alias("ghost", "champion", "ana", "")
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("ghost"), "{err}");
    }

    let err = reg
        .create_model_version("sports", "0000", "file:///m", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("0000"), "{err}");
    assert_eq!(
        reg.list_model_versions("sports").await.unwrap().len(),
        1,
        "no gap consumed"
    );
    let next = reg
        .create_model_version("sports", &run, "file:///m", json!({}))
        .await
        .unwrap();
    assert_eq!(next.version, 2);

    let err = reg
        .set_alias("sports", "1st", 1, "ana", "")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = reg
        .create_model_version("", &run, "file:///m", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

pub async fn models_can_be_registered_before_their_first_version(t: TestDb) {
    let reg = t.reg;
    let model = reg.create_model("churn").await.unwrap();
    assert_eq!((model.latest_version, model.versions), (0, 0));
    assert!(model.aliases.is_empty());
    assert_eq!(reg.get_model("churn").await.unwrap(), model);
    assert!(reg.list_model_versions("churn").await.unwrap().is_empty());
    let err = reg.create_model("churn").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(err.to_string().contains("\"churn\""), "{err}");

    let run = reg.create_run(new_run("churn")).await.unwrap();
    let v1 = reg
        .create_model_version("churn", &run, "file:///c/1", json!({"inputs": []}))
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    reg.set_alias("churn", "champion", 1, "ci", "first")
        .await
        .unwrap();
    let model = reg.get_model("churn").await.unwrap();
    assert_eq!((model.latest_version, model.versions), (1, 1));
    assert_eq!(model.aliases.get("champion"), Some(&1));
    assert!(model.updated_at >= model.created_at);

    let err = reg.get_model("ghost").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("\"ghost\""), "{err}");
    assert_eq!(
        reg.create_model("").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}
