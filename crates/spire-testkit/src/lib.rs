//! Test support shared by Spire's integration tests (a dev-dependency only).
//!
//! Tests that need a service use the real one the test scripts start (`scripts/test`,
//! `.ci/run`) and are never skipped: when the service does not answer, these helpers panic
//! with what to start and which variable to set.
//!
//! - [`PgTestDb`]: a throwaway PostgreSQL database on `SPIRE_TEST_POSTGRES_URL`.
//! - [`S3Bucket`]: a fresh bucket on the S3-compatible server at `SPIRE_TEST_S3_ENDPOINT`.
//! - [`KafkaTopic`]: a fresh topic on the Kafka-protocol broker at `SPIRE_TEST_KAFKA_BROKERS`.
//! - [`KinesisStream`]: a fresh stream on the Kinesis-compatible server at
//!   `SPIRE_TEST_KINESIS_ENDPOINT`.
//!
//! This crate depends on no Spire crate, so any of them can use it without a dependency
//! cycle; callers turn the URLs and options into their own types.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kafka;
mod kinesis;
pub use kafka::{kafka_brokers, KafkaBroker, KafkaTopic};
pub use kinesis::{kinesis_endpoint, KinesisStream};

use std::collections::BTreeMap;

use sqlx::Connection;

/// The admin URL the PostgreSQL tests connect with: `SPIRE_TEST_POSTGRES_URL`, default
/// `postgres://postgres@127.0.0.1:5432/postgres`.
pub fn postgres_admin_url() -> String {
    std::env::var("SPIRE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A throwaway PostgreSQL database, created by [`PgTestDb::create`] and dropped by
/// [`PgTestDb::drop`] (a test that panics leaves it behind, named `spire_test_…`).
#[derive(Debug)]
pub struct PgTestDb {
    /// The database name.
    pub name: String,
    /// A URL connecting to it as the admin user.
    pub url: String,
    admin: String,
}

impl PgTestDb {
    /// Creates `spire_test_<uuid>` with a linguistic (ICU) default collation, as production
    /// servers often have, so tests see whether text ordering is backend-independent (plain
    /// when the server lacks ICU). Panics with instructions if PostgreSQL is unreachable.
    pub async fn create() -> PgTestDb {
        let admin = postgres_admin_url();
        let name = format!("spire_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin_connection(&admin).await;
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
        let mut url = url::Url::parse(&admin)
            .unwrap_or_else(|e| panic!("SPIRE_TEST_POSTGRES_URL {admin:?} is not a URL: {e}"));
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
             The PostgreSQL tests run against a real server and are never skipped. Start it \
             (e.g. `service postgresql start` or `pg_ctlcluster 15 main start`; check with \
             `pg_isready -h 127.0.0.1 -p 5432`), or point SPIRE_TEST_POSTGRES_URL at a server \
             where this user may create databases.\n"
        ),
    }
}

/// The S3-compatible server the tests use: `SPIRE_TEST_S3_ENDPOINT`, default
/// `http://127.0.0.1:5055`, where `scripts/moto-server.sh` starts moto.
pub fn s3_endpoint() -> String {
    std::env::var("SPIRE_TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:5055".into())
}

/// A fresh bucket on the test S3 server.
#[derive(Debug, Clone)]
pub struct S3Bucket {
    /// The server's URL.
    pub endpoint: String,
    /// The bucket's name: `PREFIX-<uuid>`.
    pub name: String,
}

impl S3Bucket {
    /// Creates a bucket named `prefix-<uuid>`; panics with instructions when the server does
    /// not answer.
    pub async fn create(prefix: &str) -> S3Bucket {
        let endpoint = s3_endpoint();
        let name = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
        let created = reqwest::Client::new()
            .put(format!("{endpoint}/{name}"))
            .send()
            .await;
        match created {
            Ok(r) if r.status().is_success() => {}
            other => panic!(
                "\n\nthe S3-compatible test server does not answer at {endpoint}: {other:?}\n\
                 The S3 tests run against real S3-compatible storage and are never skipped: \
                 start moto with `scripts/moto-server.sh` (scripts/test and .ci/run do), or \
                 point SPIRE_TEST_S3_ENDPOINT at another S3-compatible server.\n"
            ),
        }
        S3Bucket { endpoint, name }
    }

    /// The `[storage.artifact_options]` that reach this server (moto accepts any key).
    pub fn options(&self) -> BTreeMap<String, String> {
        [
            ("endpoint", self.endpoint.as_str()),
            ("allow_http", "true"),
            ("region", "us-east-1"),
            ("access_key_id", "test"),
            ("secret_access_key", "test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}
