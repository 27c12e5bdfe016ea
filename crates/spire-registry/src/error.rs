//! The registry's error type and its mapping onto [`spire_core::ErrorKind`].

use spire_core::ErrorKind;

/// Everything that can go wrong in the tracking store and model registry.
#[derive(thiserror::Error, Debug)]
pub enum RegistryError {
    /// The database failed; `context` says what the registry was doing.
    ///
    /// Kind [`ErrorKind::Unavailable`] when the database is busy, locked, unreachable or out
    /// of connections (retrying later may succeed), [`ErrorKind::Internal`] otherwise.
    #[error("registry database error while {context}")]
    Database {
        /// What the registry was doing, e.g. "creating run for segment 'sports'".
        context: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A run, model, version or alias does not exist; `what` names it.
    #[error("{what} not found")]
    NotFound {
        /// The missing thing, e.g. "run 3f2a…" or "model version churn v4".
        what: String,
    },
    /// The thing being created exists already; `what` names it.
    #[error("{what} already exists")]
    AlreadyExists {
        /// The existing thing.
        what: String,
    },
    /// The request contradicts what is stored (e.g. re-logging a param with another value).
    #[error("conflict: {what}")]
    Conflict {
        /// What contradicts what, with both values.
        what: String,
    },
    /// The caller passed something invalid (bad URL, empty name, bad status…).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A search filter or order-by term does not parse or does not type-check.
    #[error("invalid {what} at position {position} near {token:?}: {problem}")]
    InvalidFilter {
        /// What was being parsed, with its text, e.g. `filter "metrics.auc >> 1"`.
        what: String,
        /// The 1-based character column where the problem starts.
        position: usize,
        /// The offending token as written, or `end of input`.
        token: String,
        /// What was expected or why the token is wrong.
        problem: String,
    },
    /// Applying the schema migrations failed (e.g. the database was written by a newer Spire).
    #[error("could not bring the registry schema up to date")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// Artifact storage (a local folder or an object store) failed; `what` says what was
    /// being done to which file.
    ///
    /// Kind [`ErrorKind::Unavailable`] when the store could not be reached or answered
    /// with an error (retrying later may succeed), [`ErrorKind::Internal`] otherwise.
    #[error("artifact storage failed while {what}")]
    Artifact {
        /// What was being done, e.g. `writing artifact "1/ab/artifacts/model.json" in s3://models`.
        what: String,
        /// The object store's error.
        #[source]
        source: object_store::Error,
    },
    /// A stored value could not be decoded (a corrupt or hand-edited database).
    #[error("corrupt registry data: {what}")]
    Corrupt {
        /// Which value, where, and why it is unreadable.
        what: String,
    },
}

impl RegistryError {
    /// The coarse category of this error, for HTTP status codes and exit codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RegistryError::Database { source, .. } => sqlx_kind(source),
            RegistryError::NotFound { .. } => ErrorKind::NotFound,
            RegistryError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            RegistryError::Conflict { .. } => ErrorKind::Conflict,
            RegistryError::InvalidInput(_) | RegistryError::InvalidFilter { .. } => {
                ErrorKind::InvalidInput
            }
            RegistryError::Migrate(e) => match e {
                sqlx::migrate::MigrateError::Execute(source)
                | sqlx::migrate::MigrateError::ExecuteMigration(source, _) => sqlx_kind(source),
                _ => ErrorKind::Internal,
            },
            RegistryError::Corrupt { .. } => ErrorKind::Internal,
            RegistryError::Artifact { source, .. } => match source {
                object_store::Error::Generic { .. } => ErrorKind::Unavailable,
                object_store::Error::NotFound { .. } => ErrorKind::NotFound,
                object_store::Error::InvalidPath { .. } => ErrorKind::InvalidInput,
                _ => ErrorKind::Internal,
            },
        }
    }

    /// Shorthand for [`RegistryError::NotFound`].
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        RegistryError::NotFound { what: what.into() }
    }

    /// Shorthand for [`RegistryError::Conflict`].
    pub(crate) fn conflict(what: impl Into<String>) -> Self {
        RegistryError::Conflict { what: what.into() }
    }

    /// Shorthand for [`RegistryError::Corrupt`].
    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        RegistryError::Corrupt { what: what.into() }
    }
}

/// Transient driver failures are `Unavailable`; everything else is a bug or a broken invariant.
fn sqlx_kind(e: &sqlx::Error) -> ErrorKind {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorKind::Unavailable,
        sqlx::Error::Database(db) if is_transient(db.as_ref()) => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    }
}

/// Asks the backend that raised a database error whether retrying later may succeed.
fn is_transient(db: &dyn sqlx::error::DatabaseError) -> bool {
    if db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        crate::backend::postgres::is_transient(db)
    } else {
        crate::backend::sqlite::is_transient(db)
    }
}

/// Attaches "while …" context to driver errors.
pub(crate) trait DbContext<T> {
    /// Wraps a driver error in [`RegistryError::Database`] with the given context.
    fn db(self, context: impl FnOnce() -> String) -> Result<T, RegistryError>;
}

impl<T> DbContext<T> for Result<T, sqlx::Error> {
    fn db(self, context: impl FnOnce() -> String) -> Result<T, RegistryError> {
        self.map_err(|source| RegistryError::Database {
            context: context(),
            source,
        })
    }
}
