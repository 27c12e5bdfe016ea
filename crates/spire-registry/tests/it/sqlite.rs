//! SQLite-only behaviour: files, WAL, in-memory databases, upgrading old databases.

use std::path::Path;

use spire_core::ErrorKind;
use spire_registry::{Backend, Lifecycle, Registry, TrackingStore, ViewType};
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::Connection;

use crate::new_run;

#[tokio::test]
async fn data_survives_reopening_and_memory_urls_work() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("data/spire.db").display());
    let id = {
        let reg = Registry::open(&url).await.unwrap();
        assert_eq!(reg.backend(), Backend::Sqlite);
        let id = reg.create_run(new_run("sports")).await.unwrap();
        let wal = dir.path().join("data/spire.db-wal");
        assert!(wal.exists(), "file databases use WAL journaling");
        reg.close().await;
        id
    };
    let reg = Registry::open(&url).await.unwrap();
    assert_eq!(reg.get_run(&id).await.unwrap().segment, "sports");

    let mem = Registry::open("sqlite::memory:").await.unwrap();
    let id = mem.create_run(new_run("x")).await.unwrap();
    assert_eq!(mem.clone().get_run(&id).await.unwrap().segment, "x");

    let err = Registry::open("mysql://localhost/spire").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("mysql://localhost/spire"), "{err}");
}

/// A database written by the first Spire release (schema version 1 only) is upgraded in
/// place on open: its runs stay readable and its experiments get ids and a lifecycle.
#[tokio::test]
async fn version_1_databases_upgrade_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("v1");
    std::fs::create_dir(&v1).unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        manifest.join("migrations/sqlite/0001_init.sql"),
        v1.join("0001_init.sql"),
    )
    .unwrap();
    let file = dir.path().join("old.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    {
        let pool = SqlitePoolOptions::new().connect(&url).await.unwrap();
        Migrator::new(v1.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        for sql in [
            "INSERT INTO experiments (name, created_at) VALUES ('daily', 1700000000000)",
            "INSERT INTO runs (run_id, experiment, segment, status, config_hash, spire_version, \
             started_at) VALUES ('00000000000000000000000000000001', 'daily', 'sports', \
             'finished', 'abc', '0.1.0', 1700000000000)",
            "INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES \
             ('00000000000000000000000000000001', 'auc', 0.75, 0, 1700000000001)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }

    let reg = Registry::open(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let old = reg
        .get_run("00000000000000000000000000000001")
        .await
        .unwrap();
    assert_eq!(old.metrics["auc"], 0.75);
    assert_eq!(old.git_commit, None);
    assert_eq!(
        old.lifecycle,
        Lifecycle::Active,
        "version 3 makes old runs active"
    );
    assert!(old.outputs.is_empty());
    assert_eq!(old.latest_metrics["auc"].step, 0);
    let daily = reg.get_experiment_by_name("daily").await.unwrap();
    assert_eq!(daily.experiment_id.len(), 32);
    assert_eq!(old.experiment_id, daily.experiment_id);
    assert_eq!(daily.lifecycle, Lifecycle::Active);
    assert_eq!(daily.updated_at, daily.created_at);
    let new = reg.create_run(new_run("news")).await.unwrap();
    assert_eq!(
        reg.get_run(&new).await.unwrap().experiment_id,
        daily.experiment_id
    );
    assert_eq!(reg.list_experiments(ViewType::All).await.unwrap().len(), 1);
}

/// A file database's scheduler lock is a file next to it; an in-memory database's is a flag
/// shared by the handle's clones (another in-memory handle is another database).
#[tokio::test]
async fn scheduler_lock_file_and_in_memory_flag() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("spire.db").display());
    let reg = Registry::open(&url).await.unwrap();
    let lock = reg.try_lock_scheduler().await.unwrap().unwrap();
    let file = dir.path().join("spire.db.scheduler.lock");
    let content = std::fs::read_to_string(&file).unwrap();
    assert_eq!(content.trim(), format!("pid {}", std::process::id()));
    assert!(format!("{lock:?}").contains("spire.db.scheduler.lock"));
    drop(lock);
    assert!(reg.try_lock_scheduler().await.unwrap().is_some());

    let mem = Registry::open("sqlite::memory:").await.unwrap();
    let held = mem.try_lock_scheduler().await.unwrap().unwrap();
    assert!(mem.clone().try_lock_scheduler().await.unwrap().is_none());
    let other = Registry::open("sqlite::memory:").await.unwrap();
    assert!(other.try_lock_scheduler().await.unwrap().is_some());
    drop(held);
    assert!(mem.try_lock_scheduler().await.unwrap().is_some());
}

/// Every migration is applied, in order.
#[tokio::test]
async fn migrations_are_applied_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("spire.db").display());
    Registry::open(&url).await.unwrap().close().await;
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(applied, vec![1, 2, 3, 4, 5, 6]);
    // Version 6 dropped the key-first metrics index; run-first lookups keep theirs.
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'metrics' \
         AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(indexes, vec!["metrics_by_run_key".to_string()]);
    conn.close().await.unwrap();
}
