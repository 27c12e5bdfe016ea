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

/// The admin URL the PostgreSQL tests connect with.
pub fn postgres_admin_url() -> String {
    std::env::var("SPIRE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A throwaway PostgreSQL database.
pub struct PgTestDb {
    pub name: String,
    pub url: String,
    admin: String,
}

impl PgTestDb {
    /// Creates `spire_test_<uuid>`; panics with instructions if PostgreSQL is unreachable.
    pub async fn create() -> PgTestDb {
        let admin = postgres_admin_url();
        let name = format!("spire_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin_connection(&admin).await;
        // A linguistic default collation (as production servers often have), so tests see
        // whether text ordering is really backend-independent; plain if ICU is missing.
        let icu = format!(
            "CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
        );
        if sqlx::query(sqlx::AssertSqlSafe(icu))
            .execute(&mut conn)
            .await
            .is_err()
        {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("creating test database {name} via {admin}: {e}"));
        }
        conn.close().await.ok();
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&name);
        PgTestDb {
            name,
            url: url.to_string(),
            admin,
        }
    }

    /// Drops the database, disconnecting anything still connected to it.
    pub async fn drop(self) {
        let mut conn = admin_connection(&self.admin).await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("dropping test database {}: {e}", self.name));
        conn.close().await.ok();
    }
}

async fn admin_connection(admin: &str) -> sqlx::PgConnection {
    match sqlx::PgConnection::connect(admin).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "\n\nPostgreSQL is not reachable at {admin}: {e}\n\
             The registry conformance suite runs against a real PostgreSQL and is never \
             skipped. Start the server (e.g. `service postgresql start` or \
             `pg_ctlcluster 15 main start`; check with `pg_isready -h 127.0.0.1 -p 5432`), \
             or point SPIRE_TEST_POSTGRES_URL at a server where this user may create \
             databases.\n"
        ),
    }
}

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
