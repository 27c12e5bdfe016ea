//! The ingest crate's error type.

use spire_core::ErrorKind;
use spire_lake::LakeError;

/// Errors that stop intake or cleaning. (A bad record does not stop anything: it becomes a
/// dead letter.)
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A source could not be read.
    #[error("source `{source_name}`: {message}")]
    Source {
        /// Source name.
        source_name: String,
        /// What failed, naming the file or partition, and what to do.
        message: String,
    },
    /// The lake failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// Bad settings (a pattern that does not compile, a glob that is invalid).
    #[error("{0}")]
    InvalidInput(String),
}

impl IngestError {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IngestError::Source { .. } => ErrorKind::InvalidInput,
            IngestError::Lake(e) => e.kind(),
            IngestError::InvalidInput(_) => ErrorKind::InvalidInput,
        }
    }
}

/// Result alias.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;
