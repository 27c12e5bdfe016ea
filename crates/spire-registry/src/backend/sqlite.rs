//! The SQLite backend (the embedded default): connection options, the pool, write
//! transactions, error codes. The queries themselves are the shared ones in `sql/`.

use std::fs::TryLockError;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use tokio::sync::Mutex;

use super::WriteTx;
use crate::error::{DbContext, RegistryError};
use crate::tasks::SchedulerLock;

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
pub(crate) type Db = sqlx::Sqlite;
/// How search queries are spelled for this database.
pub(crate) const DIALECT: crate::search::Dialect = crate::search::Dialect::Sqlite;
/// One connection (what a transaction dereferences to).
pub(crate) type Conn = sqlx::SqliteConnection;

/// The database clock in integer milliseconds since the Unix epoch (`julianday('now')`, to
/// the millisecond).
pub(crate) const NOW_MS: &str =
    "SELECT CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";
/// Row locks: none, since write transactions hold the database's write lock.
pub(crate) const LOCK_ROW: &str = "";
/// Row locks skipping locked rows: none, since write transactions hold the database's write
/// lock.
pub(crate) const LOCK_SKIP: &str = "";
/// True when the JSON payload of task `t` lists parameter `$5` in its `segments` array.
pub(crate) const PAYLOAD_LISTS_SEGMENT: &str =
    "EXISTS (SELECT 1 FROM json_each(t.payload, '$.segments') s WHERE s.value = $5)";
/// Claims are serialised by the write lock already.
pub(crate) const SERIALIZE_CLAIMS: Option<&str> = None;

/// The schema, one numbered file per version, applied by [`Store::open`].
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a writer waits for another process's write lock before failing with
/// `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per file database: WAL lets readers run beside the one writer.
const FILE_POOL_SIZE: u32 = 4;

/// A SQLite registry: a pool on one database file (or one in-memory database).
#[derive(Clone)]
pub(crate) struct Store {
    pool: SqlitePool,
    /// Writers of this store (and its clones) queue here rather than in SQLite's busy
    /// handler, which sleeps in growing steps and gives up after [`BUSY_TIMEOUT`].
    write_lock: Arc<Mutex<()>>,
    /// `<database file>.scheduler.lock`, or `None` for an in-memory database.
    scheduler_lock_file: Option<PathBuf>,
    /// The scheduler lock of an in-memory database (shared by this store's clones, which
    /// are the only handles on it).
    scheduler_flag: Arc<AtomicBool>,
}

impl Store {
    /// Opens a pool on `url` (`sqlite://PATH`, `sqlite:PATH` or `sqlite::memory:`), creating
    /// the database file and its parent folder if missing, then applies pending migrations.
    pub(crate) async fn open(url: &str) -> Result<Store, RegistryError> {
        let (pool, file) = connect(url).await?;
        crate::registry::migrate(&MIGRATOR, &pool).await?;
        Ok(Store {
            pool,
            write_lock: Arc::new(Mutex::new(())),
            scheduler_lock_file: file.map(|f| {
                let mut name = f.into_os_string();
                name.push(".scheduler.lock");
                PathBuf::from(name)
            }),
            scheduler_flag: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Takes the single-active-scheduler lock: an exclusive lock on
    /// `<database file>.scheduler.lock` (held while the returned guard keeps the file open;
    /// other handles and processes get `None`), or an in-process flag for an in-memory
    /// database.
    pub(crate) async fn try_lock_scheduler(&self) -> Result<Option<SchedulerLock>, RegistryError> {
        let Some(path) = &self.scheduler_lock_file else {
            let taken = self
                .scheduler_flag
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
            return Ok(taken.then(|| SchedulerLock::memory(Arc::clone(&self.scheduler_flag))));
        };
        let io = |e: std::io::Error| RegistryError::Database {
            context: format!("taking the scheduler lock {}", path.display()),
            source: sqlx::Error::Io(e),
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // Who holds it, for people looking at the file.
        file.set_len(0).map_err(io)?;
        writeln!(file, "pid {}", std::process::id()).map_err(io)?;
        Ok(Some(SchedulerLock::file(file, path.clone())))
    }

    /// Closes the pool, waiting for in-flight work.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins a write transaction that takes the database's write lock up front (`BEGIN
    /// IMMEDIATE`), so concurrent writers queue instead of failing when a deferred
    /// transaction tries to upgrade its read lock.
    async fn begin_write(&self) -> Result<WriteTx<Db>, sqlx::Error> {
        let guard = Arc::clone(&self.write_lock).lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx::new(tx, Some(guard)))
    }

    /// Begins a read transaction: one consistent WAL snapshot for multi-query reads.
    async fn begin_read(&self) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
        self.pool.begin().await
    }
}

/// Opens the pool; also returns the database file's path (`None` when in memory).
async fn connect(url: &str) -> Result<(SqlitePool, Option<PathBuf>), RegistryError> {
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
            .db(|| "opening in-memory SQLite registry".to_string())
            .map(|pool| (pool, None));
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
    let pool = SqlitePoolOptions::new()
        .max_connections(FILE_POOL_SIZE)
        .connect_with(options.journal_mode(SqliteJournalMode::Wal))
        .await
        .db(|| format!("opening SQLite registry at {}", path.display()))?;
    Ok((pool, Some(path)))
}

fn is_in_memory(url: &str) -> bool {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    rest.starts_with(":memory:") || url.contains("mode=memory")
}

/// Whether a SQLite error is transient: busy or locked database, I/O error, full disk, file
/// that cannot be opened.
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
}
