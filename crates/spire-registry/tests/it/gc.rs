//! Conformance: `spire gc` removes deleted runs and their artifacts from real S3-compatible
//! storage (the moto server `scripts/moto-server.sh` starts), keeping runs that are the
//! source of a model version.

use chrono::Utc;
use spire_core::ErrorKind;
use spire_registry::artifacts::run_prefix;
use spire_registry::{gc, ArtifactStore, ModelRegistry, TrackingStore};

use crate::{new_run, TestDb};

crate::conformance!(
    gc_removes_deleted_runs_and_their_s3_artifacts,
    purge_refuses_live_runs
);

/// A fresh bucket on the test S3 server and an artifact store on `s3://BUCKET/spire`.
pub async fn s3_store() -> ArtifactStore {
    let bucket = spire_testkit::S3Bucket::create("spire-test").await;
    ArtifactStore::open(&format!("s3://{}/spire", bucket.name), &bucket.options()).unwrap()
}

async fn files(store: &ArtifactStore, folder: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![folder.to_string()];
    while let Some(dir) = todo.pop() {
        for e in store.list_dir(&dir, "").await.unwrap() {
            if e.is_dir {
                todo.push(e.path);
            } else {
                out.push(e.path);
            }
        }
    }
    out.sort();
    out
}

pub async fn gc_removes_deleted_runs_and_their_s3_artifacts(t: TestDb) {
    let reg = t.reg;
    let store = s3_store().await;
    assert!(store.root_url().starts_with("s3://spire-test-"));
    let mut runs = Vec::new();
    for segment in ["gone", "model-source", "alive", "deleted-late"] {
        let id = reg.create_run(new_run(segment)).await.unwrap();
        let exp = reg.get_run(&id).await.unwrap().experiment_id;
        let prefix = run_prefix(&exp, &id);
        store
            .put(
                &format!("{prefix}/artifacts/model.json"),
                format!("{{\"run\":\"{id}\"}}"),
            )
            .await
            .unwrap();
        store
            .put(
                &format!("{prefix}/artifacts/plots/roc.png"),
                vec![1u8; 2048],
            )
            .await
            .unwrap();
        runs.push((id, exp, prefix));
    }
    let uri = store
        .url_of(&format!("{}/artifacts/model.json", runs[1].2))
        .unwrap();
    reg.create_model_version("model-source", &runs[1].0, &uri, serde_json::json!({}))
        .await
        .unwrap();
    reg.delete_run(&runs[0].0).await.unwrap();
    reg.delete_run(&runs[1].0).await.unwrap();
    let cutoff = Utc::now() + chrono::Duration::milliseconds(1);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    reg.delete_run(&runs[3].0).await.unwrap();

    let dry = gc::collect(&reg, &store, cutoff, true).await.unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.purged.len(), 1);
    assert_eq!(
        files(&store, &runs[0].2).await.len(),
        2,
        "a dry run deletes nothing"
    );
    reg.get_run(&runs[0].0).await.unwrap();

    let report = gc::collect(&reg, &store, cutoff, false).await.unwrap();
    assert_eq!(report.purged.len(), 1);
    assert_eq!(report.purged[0].run_id, runs[0].0);
    assert_eq!(report.purged[0].files_deleted, 2);
    assert!(report.purged[0].artifacts.starts_with("s3://"));
    assert_eq!(report.kept.len(), 1);
    assert_eq!(report.kept[0].run_id, runs[1].0);
    assert!(
        report.kept[0].reason.contains("model-source"),
        "{:?}",
        report.kept
    );

    // The S3 objects of the purged run are gone; everyone else's are untouched.
    assert!(files(&store, &runs[0].2).await.is_empty());
    for (_, _, prefix) in &runs[1..] {
        assert_eq!(files(&store, prefix).await.len(), 2, "{prefix}");
    }
    let err = reg.get_run(&runs[0].0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    for (id, _, _) in &runs[1..] {
        reg.get_run(id).await.unwrap();
    }
    // A later collection takes the run deleted after the first cut-off, and nothing twice.
    let later = gc::collect(
        &reg,
        &store,
        Utc::now() + chrono::Duration::seconds(1),
        false,
    )
    .await
    .unwrap();
    let purged: Vec<&str> = later.purged.iter().map(|p| p.run_id.as_str()).collect();
    assert_eq!(purged, vec![runs[3].0.as_str()]);
    assert!(files(&store, &runs[3].2).await.is_empty());
}

pub async fn purge_refuses_live_runs(t: TestDb) {
    let reg = t.reg;
    let id = reg.create_run(new_run("live")).await.unwrap();
    reg.log_metrics(&id, &[("auc".into(), 0.7)], 0)
        .await
        .unwrap();
    let err = reg.purge_run(&id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("delete it first"), "{err}");
    reg.get_run(&id).await.unwrap();
    let err = reg
        .purge_run("0123456789abcdef0123456789abcdef")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    reg.delete_run(&id).await.unwrap();
    reg.purge_run(&id).await.unwrap();
    assert_eq!(
        reg.get_run(&id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    for table in ["metrics", "params", "tags", "run_inputs", "runs"] {
        let left = crate::count_rows(
            &t.url,
            &format!("SELECT COUNT(*) FROM {table} WHERE run_id = '{id}'"),
        )
        .await;
        assert_eq!(left, 0, "{table} rows of the purged run");
    }
}
