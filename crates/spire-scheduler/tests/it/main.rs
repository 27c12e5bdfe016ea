//! The scheduler and workers against a real SQLite file and a real PostgreSQL database,
//! with a test stage runner plugged in through `TaskRunner` (the real stages live in the
//! pipeline).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod run;

use std::future::Future;

use sqlx::Connection;

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
    let admin = std::env::var("SPIRE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let name = format!(
        "spire_sched_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
    );
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "\n\nPostgreSQL is not reachable at {admin}: {e}\nThe scheduler tests run against \
             a real PostgreSQL and are never skipped: start it, or point \
             SPIRE_TEST_POSTGRES_URL at a server where this user may create databases.\n"
            )
        });
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    test(url.to_string()).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}
