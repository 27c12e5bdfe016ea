use std::collections::BTreeSet;

use serde_json::json;
use spire_registry::{Registry, RunFilter};

use crate::{db_url, new_run};

/// Eight tasks on two separate handles (two pools on one file) register versions of the same
/// model at once: every call succeeds and the versions are exactly 1..=8.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_version_creation_has_no_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(&dir);
    let first = Registry::open(&url).await.unwrap();
    let second = Registry::open(&url).await.unwrap();
    let run = first.create_run(new_run("sports")).await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..8 {
        let reg = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            // Interleave with other writes so the writers really contend.
            reg.log_metrics(&run, &[(format!("task{i}"), f64::from(i))], i64::from(i))
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
