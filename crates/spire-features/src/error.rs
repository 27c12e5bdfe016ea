//! The features crate's error type.

use spire_core::ErrorKind;
use spire_lake::LakeError;

/// Errors from feature, label and dataset building.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    /// The lake failed (including SQL the user wrote, reported with the query).
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// A definition or request is invalid; the message says where and what to do.
    #[error("{0}")]
    InvalidInput(String),
    /// Something needed is missing (no events yet, no snapshot for a date).
    #[error("{0}")]
    NotFound(String),
    /// Local state could not be read or written.
    #[error("{path}: {message}")]
    State {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
}

impl FeatureError {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            FeatureError::Lake(e) => e.kind(),
            FeatureError::InvalidInput(_) => ErrorKind::InvalidInput,
            FeatureError::NotFound(_) => ErrorKind::NotFound,
            FeatureError::State { .. } => ErrorKind::Unavailable,
        }
    }
}

/// Result alias.
pub type Result<T, E = FeatureError> = std::result::Result<T, E>;
