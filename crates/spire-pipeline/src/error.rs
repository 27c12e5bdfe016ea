//! The pipeline's error type: every lower crate's error, plus the pipeline's own.

use spire_core::config::ConfigErrors;
use spire_core::ErrorKind;

/// Errors from pipeline stages.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The project configuration is invalid (every problem, with file and key).
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// Lake failure.
    #[error(transparent)]
    Lake(#[from] spire_lake::LakeError),
    /// Intake or cleaning failure.
    #[error(transparent)]
    Ingest(#[from] spire_ingest::IngestError),
    /// Feature, label or dataset failure.
    #[error(transparent)]
    Features(#[from] spire_features::FeatureError),
    /// Model failure.
    #[error("segment `{segment}`: {source}")]
    Model {
        /// Segment.
        segment: String,
        /// Cause.
        #[source]
        source: spire_ml::MlError,
    },
    /// Registry failure.
    #[error(transparent)]
    Registry(#[from] spire_registry::RegistryError),
    /// A request that cannot be served as asked.
    #[error("{0}")]
    InvalidInput(String),
    /// A named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl PipelineError {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PipelineError::Config(e) => e.kind(),
            PipelineError::Lake(e) => e.kind(),
            PipelineError::Ingest(e) => e.kind(),
            PipelineError::Features(e) => e.kind(),
            PipelineError::Model { source, .. } => source.kind(),
            PipelineError::Registry(e) => e.kind(),
            PipelineError::InvalidInput(_) => ErrorKind::InvalidInput,
            PipelineError::NotFound(_) => ErrorKind::NotFound,
            PipelineError::Io { .. } => ErrorKind::Unavailable,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> PipelineError {
        PipelineError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

/// Result alias.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
