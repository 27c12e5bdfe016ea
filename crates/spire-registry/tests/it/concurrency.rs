//! Conformance: concurrent writers on two handles (two pools on one database) get the
//! outcomes of some serial order, and never fail because they raced.

use std::collections::BTreeSet;

use serde_json::json;
use spire_core::ErrorKind;
use spire_registry::{ModelRegistry, Registry, RunFilter, RunStatus, TrackingStore, ViewType};

use crate::{new_run, TestDb};

crate::conformance!(
    concurrent_version_creation_has_no_gaps,
    concurrent_alias_moves_keep_the_audit_log_consistent,
    concurrent_param_logging_has_one_winner,
    concurrent_finishes_have_one_winner,
    concurrent_runs_share_one_new_experiment,
);

/// Two handles on the test database.
async fn two_handles(t: TestDb) -> [Registry; 2] {
    let second = Registry::open(&t.url).await.unwrap();
    [t.reg, second]
}

/// Eight tasks on two handles register versions of the same model at once: every call
/// succeeds and the versions are exactly 1..=8.
pub async fn concurrent_version_creation_has_no_gaps(t: TestDb) {
    let [first, second] = two_handles(t).await;
    let run = first.create_run(new_run("sports")).await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..8 {
        let reg = [&first, &second][i % 2].clone();
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            // Interleave with other writes so the writers really contend.
            reg.log_metrics(&run, &[(format!("task{i}"), i as f64)], i as i64)
                .await?;
            reg.create_model_version(
                "sports",
                &run,
                &format!("file:///m/{i}"),
                json!({"task": i}),
            )
            .await
        }));
    }
    let mut versions = BTreeSet::new();
    for task in tasks {
        let version = task.await.unwrap().unwrap();
        assert!(
            versions.insert(version.version),
            "duplicate version {}",
            version.version
        );
    }
    assert_eq!(versions, (1..=8).collect::<BTreeSet<i64>>());

    let listed: Vec<i64> = second
        .list_model_versions("sports")
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(listed, (1..=8).rev().collect::<Vec<i64>>());
    let models = first.list_models().await.unwrap();
    assert_eq!((models[0].latest_version, models[0].versions), (8, 8));
    let run = second
        .list_runs(&RunFilter::default())
        .await
        .unwrap()
        .remove(0);
    assert_eq!(run.metrics.len(), 8);
}

/// Eight tasks move `champion` around at once: every move succeeds and the audit log is a
/// chain (each event starts where the previous one ended, and the last one ends where the
/// alias points).
pub async fn concurrent_alias_moves_keep_the_audit_log_consistent(t: TestDb) {
    let [first, second] = two_handles(t).await;
    let run = first.create_run(new_run("sports")).await.unwrap();
    for _ in 0..4 {
        first
            .create_model_version("sports", &run, "file:///m", json!({}))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..8_i64 {
        let reg = [&first, &second][(i % 2) as usize].clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..6 {
                let version = (i + j) % 4 + 1;
                reg.set_alias("sports", "champion", version, &format!("task{i}"), "race")
                    .await?;
            }
            Ok::<(), spire_registry::RegistryError>(())
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let history = second.alias_history("sports").await.unwrap();
    assert!(!history.is_empty());
    assert_eq!(history[0].from_version, None);
    for pair in history.windows(2) {
        assert_eq!(
            pair[1].from_version, pair[0].to_version,
            "broken audit chain: {pair:?}"
        );
        assert_ne!(pair[1].from_version, pair[1].to_version, "no-op recorded");
    }
    let champion = first
        .get_alias("sports", "champion")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        history.last().and_then(|e| e.to_version),
        Some(champion.version)
    );
}

/// Eight tasks log one param key with eight different values: exactly one wins, the others
/// get `Conflict` (never a raw database error), and the stored value is the winner's.
pub async fn concurrent_param_logging_has_one_winner(t: TestDb) {
    let [first, second] = two_handles(t).await;
    let run = first.create_run(new_run("sports")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let reg = [&first, &second][i % 2].clone();
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            let value = format!("v{i}");
            (value.clone(), reg.log_param(&run, "seed", &value).await)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (value, outcome) = task.await.unwrap();
        match outcome {
            Ok(()) => winners.push(value),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "{e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        first.get_run(&run).await.unwrap().params["seed"],
        winners[0]
    );
}

/// Eight tasks end one run, half as finished and half as failed: the tasks asking for the
/// status that won succeed, the others get `Conflict`.
pub async fn concurrent_finishes_have_one_winner(t: TestDb) {
    let [first, second] = two_handles(t).await;
    let run = first.create_run(new_run("sports")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let reg = [&first, &second][i % 2].clone();
        let run = run.clone();
        let status = [RunStatus::Finished, RunStatus::Failed][(i / 2) % 2];
        tasks.push(tokio::spawn(async move {
            (status, reg.finish_run(&run, status, None).await)
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let ended = first.get_run(&run).await.unwrap().status;
    for (status, outcome) in outcomes {
        match outcome {
            Ok(()) => assert_eq!(status, ended),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Conflict, "{e:?}");
                assert_ne!(status, ended);
            }
        }
    }
}

/// Eight tasks start runs in the same new experiment: all succeed, one experiment exists.
pub async fn concurrent_runs_share_one_new_experiment(t: TestDb) {
    let [first, second] = two_handles(t).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let reg = [&first, &second][i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut run = new_run(&format!("s{i}"));
            run.experiment = "fresh".into();
            reg.create_run(run).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let experiments = first.list_experiments(ViewType::All).await.unwrap();
    assert_eq!(experiments.len(), 1);
    let filter = RunFilter {
        experiment: Some("fresh".into()),
        ..RunFilter::default()
    };
    assert_eq!(second.list_runs(&filter).await.unwrap().len(), 8);
}
