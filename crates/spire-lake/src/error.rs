//! The lake's error type.

use spire_core::ErrorKind;

/// Errors from lake operations. Each names the table or query it concerns.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// A Delta operation on a table failed.
    #[error("Delta table `{table}`: {source}")]
    Delta {
        /// Table name.
        table: String,
        /// Cause.
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    /// A query failed (planning or execution).
    #[error("{context}: {source}")]
    Query {
        /// What was being done, e.g. the SQL text.
        context: String,
        /// Cause.
        #[source]
        source: Box<deltalake::datafusion::error::DataFusionError>,
    },
    /// Building Arrow data failed.
    #[error("{context}: {source}")]
    Arrow {
        /// What was being built.
        context: String,
        /// Cause.
        #[source]
        source: deltalake::arrow::error::ArrowError,
    },
    /// Local file-system access failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A table that must exist does not.
    #[error("table `{table}` does not exist yet: {hint}")]
    NotFound {
        /// Table name.
        table: String,
        /// What to run to create it.
        hint: String,
    },
    /// Bad input (URL, table name, SQL the user wrote).
    #[error("{0}")]
    InvalidInput(String),
}

impl LakeError {
    /// A query error with its context (the SQL text or what was being done).
    pub fn query(
        context: impl Into<String>,
        source: deltalake::datafusion::error::DataFusionError,
    ) -> LakeError {
        LakeError::Query {
            context: context.into(),
            source: Box::new(source),
        }
    }

    /// A Delta error on `table`.
    pub fn delta(table: impl Into<String>, source: deltalake::DeltaTableError) -> LakeError {
        LakeError::Delta {
            table: table.into(),
            source: Box::new(source),
        }
    }

    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LakeError::Delta { source, .. } => match source.as_ref() {
                deltalake::DeltaTableError::NotATable(_) => ErrorKind::NotFound,
                deltalake::DeltaTableError::VersionAlreadyExists(_) => ErrorKind::Conflict,
                deltalake::DeltaTableError::Transaction { .. } => ErrorKind::Conflict,
                deltalake::DeltaTableError::ObjectStore { .. } => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
            LakeError::Query { source, .. } => match source.find_root() {
                deltalake::datafusion::error::DataFusionError::SQL(..)
                | deltalake::datafusion::error::DataFusionError::Plan(_)
                | deltalake::datafusion::error::DataFusionError::SchemaError(..) => {
                    ErrorKind::InvalidInput
                }
                _ => ErrorKind::Internal,
            },
            LakeError::Arrow { .. } => ErrorKind::Internal,
            LakeError::Io { .. } => ErrorKind::Unavailable,
            LakeError::NotFound { .. } => ErrorKind::NotFound,
            LakeError::InvalidInput(_) => ErrorKind::InvalidInput,
        }
    }
}

/// Result alias for lake operations.
pub type Result<T, E = LakeError> = std::result::Result<T, E>;
