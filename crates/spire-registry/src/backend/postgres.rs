//! The PostgreSQL backend (for many workers on many machines): the pool, transaction
//! isolation, error codes. The queries themselves are the shared ones in `sql/`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::WriteTx;
use crate::error::{DbContext, RegistryError};

// The shared SQL, compiled again for this backend's types (see `backend/mod.rs`).
#[allow(clippy::duplicate_mod)]
#[path = "sql/logged_models.rs"]
mod logged_models;
#[allow(clippy::duplicate_mod)]
#[path = "sql/models.rs"]
mod models;
#[allow(clippy::duplicate_mod)]
#[path = "sql/runs_io.rs"]
mod runs_io;
#[allow(clippy::duplicate_mod)]
#[path = "sql/tokens.rs"]
mod tokens;
#[allow(clippy::duplicate_mod)]
#[path = "sql/tracking.rs"]
mod tracking;

/// The database this backend talks to.
pub(crate) type Db = sqlx::Postgres;
/// How search queries are spelled for this database.
pub(crate) const DIALECT: crate::search::Dialect = crate::search::Dialect::Postgres;
/// One connection (what a transaction dereferences to).
pub(crate) type Conn = sqlx::PgConnection;

/// The schema, one numbered file per version, applied by [`Store::open`].
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per handle.
const POOL_SIZE: u32 = 10;
/// How long a call waits for a free connection (or for the server to answer) before it
/// fails with `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A PostgreSQL registry: a pool on one database.
#[derive(Clone)]
pub(crate) struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects to `url` (`postgres://…` or `postgresql://…`), then applies pending
    /// migrations (sqlx serialises concurrent migrators with an advisory lock).
    /// `location` is the URL with its password hidden, for messages.
    pub(crate) async fn open(url: &str, location: &str) -> Result<Store, RegistryError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| {
                RegistryError::InvalidInput(format!(
                    "cannot parse PostgreSQL registry URL {location:?}: {e}; expected \
                     postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
                ))
            })?
            .application_name("spire");
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .db(|| {
                format!(
                    "connecting to the PostgreSQL registry at {location} (is the server \
                     running and does the database exist?)"
                )
            })?;
        crate::registry::migrate(&MIGRATOR, &pool).await?;
        Ok(Store { pool })
    }

    /// Closes the pool, waiting for in-flight work.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins a write transaction at READ COMMITTED: writers serialise on the row locks and
    /// unique keys the shared queries touch, and never fail with serialization errors.
    async fn begin_write(&self) -> Result<WriteTx<Db>, sqlx::Error> {
        Ok(WriteTx::new(self.pool.begin().await?, None))
    }

    /// Begins a read transaction that sees one snapshot across its queries.
    async fn begin_read(&self) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
    }
}

/// Whether a PostgreSQL error is transient (SQLSTATE classes 08 connection, 53 resources,
/// 57P admin shutdown, 40001/40P01 serialization and deadlock, 55P03 lock not available).
pub(crate) fn is_transient(e: &dyn DatabaseError) -> bool {
    e.code().is_some_and(|code| {
        code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57P")
            || matches!(code.as_ref(), "40001" | "40P01" | "55P03")
    })
}
