//! Integration tests for spire-registry: one conformance suite run against a real SQLite
//! file and a real PostgreSQL database, plus backend-specific tests.
//!
//! PostgreSQL comes from `SPIRE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`): each test creates its own database
//! `spire_test_<uuid>` through that admin connection and drops it afterwards. If the server
//! is unreachable the PostgreSQL tests fail with instructions; they are never skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod concurrency;
mod experiments;
mod gc;
mod logged_models;
mod models;
mod postgres;
mod reliability;
mod runs;
mod search;
mod sqlite;
mod tasks;
mod tokens;

use std::collections::BTreeMap;
use std::future::Future;

use spire_registry::{NewRun, Registry, TableInput};
use sqlx::Connection;

/// What a conformance test gets: an opened registry and the URL to open more handles on
/// the same database.
pub struct TestDb {
    pub reg: Registry,
    pub url: String,
}

/// Declares conformance tests: for each listed `async fn name(TestDb)` of the current
/// module, a `sqlite::name` and a `postgres::name` test.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::with_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::with_postgres(super::$name).await;
                }
            )*
        }
    };
}

/// Runs `test` on a fresh SQLite file in a temporary folder (in a subfolder, to check it is
/// created).
pub async fn with_sqlite<F, Fut>(test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("data/spire.db").display());
    let reg = Registry::open(&url).await.unwrap();
    test(TestDb { reg, url }).await;
}

/// Runs `test` on a fresh PostgreSQL database, dropped afterwards even if the test panics.
pub async fn with_postgres<F, Fut>(test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = PgTestDb::create().await;
    let reg = Registry::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("opening the registry on {}: {e:?}", db.url));
    let outcome = tokio::spawn(test(TestDb {
        reg: reg.clone(),
        url: db.url.clone(),
    }))
    .await;
    reg.close().await;
    db.drop().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

pub use spire_testkit::{postgres_admin_url, PgTestDb};

/// A run of `segment` in experiment `daily` with one param, one tag, two inputs and a git
/// commit.
pub fn new_run(segment: &str) -> NewRun {
    NewRun {
        segment: segment.to_string(),
        experiment: "daily".to_string(),
        params: BTreeMap::from([("model".to_string(), "logistic".to_string())]),
        tags: BTreeMap::from([("trigger".to_string(), "schedule".to_string())]),
        inputs: vec![
            TableInput {
                table: "features".to_string(),
                version: 12,
            },
            TableInput {
                table: "events".to_string(),
                version: 3,
            },
        ],
        config_hash: "cafebabe".to_string(),
        spire_version: "0.1.0".to_string(),
        git_commit: Some("0123abc".to_string()),
    }
}

/// The single integer a counting query returns, on either backend.
pub async fn count_rows(url: &str, query: &str) -> i64 {
    let q = sqlx::AssertSqlSafe(query.to_string());
    if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar(q).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(q).fetch_one(&mut c).await.unwrap()
    }
}
