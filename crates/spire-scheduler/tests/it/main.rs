//! The scheduler and workers against a real SQLite file and a real PostgreSQL database,
//! with a test stage runner plugged in through `TaskRunner` (the real stages live in the
//! pipeline).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod run;

use std::future::Future;

/// Runs `test` with a registry URL on SQLite, then on a fresh PostgreSQL database.
pub async fn on_both<F, Fut>(test: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    test(format!(
        "sqlite://{}",
        dir.path().join("spire.db").display()
    ))
    .await;
    let db = spire_testkit::PgTestDb::create().await;
    test(db.url.clone()).await;
    db.drop().await;
}
