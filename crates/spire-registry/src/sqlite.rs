//! Everything SQLite-specific: connection options, the pool, write transactions, error codes
//! and value encodings SQLite lacks. The SQL in the other modules is portable (`$n`
//! placeholders, `ON CONFLICT`, `RETURNING`, window functions) and is shared with the
//! PostgreSQL backend to come.

use std::str::FromStr;
use std::time::Duration;

use sqlx::error::DatabaseError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::error::{DbContext, RegistryError};

/// The database the registry talks to.
pub(crate) type Db = sqlx::Sqlite;
/// One connection (what a transaction dereferences to).
pub(crate) type Conn = sqlx::SqliteConnection;
/// A transaction on a pooled connection.
pub(crate) type Tx = sqlx::Transaction<'static, Db>;
/// The connection pool.
pub(crate) type Pool = SqlitePool;

/// How long a writer waits for another writer's lock before failing with `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per file database: WAL lets readers run beside the one writer.
const FILE_POOL_SIZE: u32 = 4;

/// Opens a pool on `url` (`sqlite://PATH`, `sqlite:PATH` or `sqlite::memory:`), creating the
/// database file and its parent folder if missing.
pub(crate) async fn connect(url: &str) -> Result<Pool, RegistryError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| {
            RegistryError::InvalidInput(format!(
                "cannot parse SQLite registry URL {url:?}: {e}; expected sqlite://PATH or sqlite::memory:"
            ))
        })?
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);

    if is_in_memory(url) {
        // Every pooled connection would see its own empty database (or fight over a
        // shared-cache one without busy waiting), so an in-memory registry is one connection
        // that lives as long as the pool.
        return SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .db(|| "opening in-memory SQLite registry".to_string());
    }

    let path = options.get_filename().to_path_buf();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| RegistryError::Database {
                context: format!("creating folder {} for the registry", parent.display()),
                source: sqlx::Error::Io(e),
            })?;
    }
    SqlitePoolOptions::new()
        .max_connections(FILE_POOL_SIZE)
        .connect_with(options.journal_mode(SqliteJournalMode::Wal))
        .await
        .db(|| format!("opening SQLite registry at {}", path.display()))
}

fn is_in_memory(url: &str) -> bool {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    rest.starts_with(":memory:") || url.contains("mode=memory")
}

/// Begins a write transaction that takes the database's write lock up front (`BEGIN
/// IMMEDIATE`), so concurrent writers queue on the busy timeout instead of failing when a
/// deferred transaction tries to upgrade its read lock.
pub(crate) async fn begin_write(pool: &Pool) -> Result<Tx, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// Begins a read transaction: one consistent snapshot for multi-query reads.
pub(crate) async fn begin_read(pool: &Pool) -> Result<Tx, sqlx::Error> {
    pool.begin().await
}

/// Whether a database error is transient: busy or locked database, I/O error, full disk,
/// file that cannot be opened.
pub(crate) fn is_transient(e: &dyn DatabaseError) -> bool {
    const BUSY: i64 = 5;
    const LOCKED: i64 = 6;
    const IOERR: i64 = 10;
    const FULL: i64 = 13;
    const CANTOPEN: i64 = 14;
    e.code()
        .and_then(|code| code.parse::<i64>().ok())
        .is_some_and(|code| matches!(code & 0xff, BUSY | LOCKED | IOERR | FULL | CANTOPEN))
}

/// SQLite stores NaN as NULL, so NULL in `metrics.value` means NaN (±infinity store natively).
pub(crate) fn encode_metric(value: f64) -> Option<f64> {
    (!value.is_nan()).then_some(value)
}

/// The inverse of [`encode_metric`].
pub(crate) fn decode_metric(value: Option<f64>) -> f64 {
    value.unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_in_memory_urls() {
        assert!(is_in_memory("sqlite::memory:"));
        assert!(is_in_memory("sqlite://:memory:"));
        assert!(is_in_memory("sqlite://reg?mode=memory"));
        assert!(!is_in_memory("sqlite://spire-data/spire.db"));
        assert!(!is_in_memory("sqlite:spire.db"));
    }

    #[test]
    fn nan_is_encoded_as_null() {
        assert_eq!(encode_metric(f64::NAN), None);
        assert!(decode_metric(None).is_nan());
        assert_eq!(decode_metric(encode_metric(f64::INFINITY)), f64::INFINITY);
        assert_eq!(decode_metric(encode_metric(-0.5)), -0.5);
    }
}
