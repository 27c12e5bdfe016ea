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
#[path = "sql/tasks.rs"]
mod tasks;
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

/// The database clock in integer milliseconds since the Unix epoch (`clock_timestamp()`, the
/// time of the call, not of the transaction's start).
pub(crate) const NOW_MS: &str =
    "SELECT CAST(FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT)";
/// Appended to a query of one row to lock it until the transaction ends. `NO KEY UPDATE`
/// does not block the key-share locks foreign keys take (enqueueing tasks of a pool).
pub(crate) const LOCK_ROW: &str = " FOR NO KEY UPDATE";
/// Appended to a query of tasks (alias `t`) to lock the rows it returns, skipping rows
/// another transaction holds, so concurrent claims never wait for each other's candidates.
pub(crate) const LOCK_SKIP: &str = " FOR NO KEY UPDATE OF t SKIP LOCKED";
/// True when the JSON payload of task `t` lists parameter `$5` in its `segments` array.
pub(crate) const PAYLOAD_LISTS_SEGMENT: &str =
    "(t.payload::jsonb -> 'segments') @> jsonb_build_array($5::text)";
/// Serialises the claims that count every running task (`ClaimLimits::max_running`): a
/// transaction-scoped advisory lock, taken before any pool row lock.
pub(crate) const SERIALIZE_CLAIMS: Option<&str> =
    Some("SELECT pg_advisory_xact_lock(6003378920983055437)"); // "SPIRECLM"
/// The session advisory lock key of the single active scheduler ("SPIRESCH").
const SCHEDULER_LOCK_KEY: i64 = 6_003_378_920_984_101_704;

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

    /// Takes the single-active-scheduler lock: a session advisory lock held by a connection
    /// detached from the pool, which lives (and holds it) as long as the returned guard.
    /// `None` if another session holds it.
    pub(crate) async fn try_lock_scheduler(
        &self,
    ) -> Result<Option<crate::tasks::SchedulerLock>, RegistryError> {
        let ctx = || "taking the scheduler lock".to_string();
        let mut conn = self.pool.acquire().await.db(ctx)?.detach();
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(SCHEDULER_LOCK_KEY)
            .fetch_one(&mut conn)
            .await
            .db(ctx)?;
        if taken {
            Ok(Some(crate::tasks::SchedulerLock::postgres(conn)))
        } else {
            if let Err(e) = sqlx::Connection::close(conn).await {
                tracing::debug!(error = %e, "closing an unused scheduler lock connection");
            }
            Ok(None)
        }
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
