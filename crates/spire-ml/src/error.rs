//! The one error type of the model library.

use spire_core::ErrorKind;

/// Everything that can go wrong while building matrices, fitting, scoring or loading models.
///
/// Messages say what was wrong and where (parameter, row, column, flavor) and, where it helps,
/// what to do about it.
#[derive(thiserror::Error, Debug)]
pub enum MlError {
    /// A hyper-parameter is outside its allowed range.
    #[error("{param} = {value}: must be {allowed}")]
    InvalidParam {
        /// The parameter's name, as spelled in the params struct.
        param: &'static str,
        /// The rejected value, formatted for display.
        value: String,
        /// The allowed range, e.g. `">= 0 and finite"`.
        allowed: &'static str,
    },
    /// Inputs whose sizes do not fit together (rows vs labels, columns vs feature names, ...).
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// The training labels contain one class only; the payload is that class.
    #[error(
        "training labels contain only one class (every label is {0}); \
         a classifier needs both positive and negative rows"
    )]
    SingleClass(bool),
    /// An input value is NaN or infinite.
    #[error(
        "non-finite value {value} at row {row}, column {col} ({what}); clean or impute it first"
    )]
    NonFinite {
        /// What was being read: `"training matrix"`, `"scoring matrix"`, ...
        what: &'static str,
        /// Zero-based row index.
        row: usize,
        /// Zero-based column index.
        col: usize,
        /// The offending value.
        value: f64,
    },
    /// An input value is outside its allowed range (e.g. a probability above 1).
    #[error("value {value} at row {row} ({what}) must be {allowed}")]
    OutOfRange {
        /// What was being read: `"probabilities"`, ...
        what: &'static str,
        /// Zero-based row index.
        row: usize,
        /// The offending value.
        value: f64,
        /// The allowed range, e.g. `"in [0, 1]"`.
        allowed: &'static str,
    },
    /// The data cannot support the requested evaluation or split: an empty side, a missing
    /// class, fewer rows than folds or clusters, ... The message says what to change.
    #[error("{0}")]
    Degenerate(String),
    /// The optimisation could not proceed (e.g. a singular Hessian without regularisation).
    #[error("numerical failure: {0}")]
    Numerical(String),
    /// An estimator name that is not registered.
    #[error("unknown algorithm {algorithm:?}; available: {}", known.join(", "))]
    UnknownAlgorithm {
        /// The name asked for.
        algorithm: String,
        /// The registered names.
        known: Vec<String>,
    },
    /// Params that do not parse for an algorithm (unknown key, wrong type).
    #[error("params of {algorithm}: {message}")]
    Params {
        /// The algorithm (or `-` when not known yet).
        algorithm: String,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A problem with one model of a family, named by the member (segment) it concerns.
    #[error("model {name:?}: {source}")]
    Member {
        /// The member's name, e.g. the segment.
        name: String,
        /// What is wrong with it.
        #[source]
        source: Box<MlError>,
    },
    /// A serialized model is malformed or inconsistent.
    #[error("invalid model artifact: {0}")]
    Artifact(String),
    /// A model file written by another library (a LightGBM text model, an ONNX graph) is
    /// malformed, truncated, or uses something this build cannot run (an objective, an
    /// operator). `location` says where when it is known (line and key, node, file path).
    #[error("{format} model{}: {message}", at(.location))]
    ModelFile {
        /// The file format: `"LightGBM"` or `"ONNX"`.
        format: &'static str,
        /// Where in the file, e.g. `"line 57, key threshold"`, or the path when the file
        /// cannot be read.
        location: Option<String>,
        /// What is wrong and, where it helps, what to do about it.
        message: String,
    },
    /// An artifact names a model flavor this build does not know.
    #[error("unknown model flavor {flavor:?}; this build knows: {}", known.join(", "))]
    UnknownFlavor {
        /// The flavor named in the artifact.
        flavor: String,
        /// The flavors this build can load.
        known: Vec<String>,
    },
    /// An artifact holds another kind of model than the caller asked for (e.g. a clusterer
    /// passed to [`crate::load_predictor`]).
    #[error("{flavor} artifact holds a {found}, not a {expected}; load it with load_{found}")]
    WrongModelKind {
        /// The artifact's flavor.
        flavor: String,
        /// The kind the caller asked for: `"predictor"` or `"clusterer"`.
        expected: &'static str,
        /// The kind the flavor is.
        found: &'static str,
    },
    /// An artifact was written by a newer (or unknown) format version of a known flavor.
    #[error(
        "{flavor} artifact has format_version {found}, but this build reads versions \
         1..={supported}; upgrade Spire to load it"
    )]
    UnsupportedFormatVersion {
        /// The artifact's flavor.
        flavor: String,
        /// The version found in the artifact.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
}

impl MlError {
    /// The coarse category of this error, for HTTP status codes and exit codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MlError::InvalidParam { .. }
            | MlError::Shape(_)
            | MlError::SingleClass(_)
            | MlError::NonFinite { .. }
            | MlError::OutOfRange { .. }
            | MlError::Degenerate(_)
            | MlError::Numerical(_)
            | MlError::Artifact(_)
            | MlError::ModelFile { .. }
            | MlError::Member { .. }
            | MlError::UnknownAlgorithm { .. }
            | MlError::Params { .. }
            | MlError::UnknownFlavor { .. }
            | MlError::WrongModelKind { .. }
            | MlError::UnsupportedFormatVersion { .. } => ErrorKind::InvalidInput,
        }
    }

    /// Shorthand for an [`MlError::ModelFile`].
    pub(crate) fn model_file(
        format: &'static str,
        location: Option<String>,
        message: impl Into<String>,
    ) -> MlError {
        MlError::ModelFile {
            format,
            location,
            message: message.into(),
        }
    }

    /// Shorthand for an [`MlError::InvalidParam`].
    pub(crate) fn invalid_param(
        param: &'static str,
        value: impl std::fmt::Display,
        allowed: &'static str,
    ) -> MlError {
        MlError::InvalidParam {
            param,
            value: value.to_string(),
            allowed,
        }
    }
}

/// ` (where)` for a known location, nothing otherwise.
fn at(location: &Option<String>) -> String {
    location
        .as_deref()
        .map(|l| format!(" ({l})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_param_message_names_param_and_range() {
        let e = MlError::invalid_param("l2", -1.0, ">= 0 and finite");
        assert_eq!(e.to_string(), "l2 = -1: must be >= 0 and finite");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn model_file_names_format_and_location() {
        let e = MlError::model_file("LightGBM", Some("line 7, key threshold".into()), "bad");
        assert_eq!(e.to_string(), "LightGBM model (line 7, key threshold): bad");
        let e = MlError::model_file("ONNX", None, "no float output");
        assert_eq!(e.to_string(), "ONNX model: no float output");
    }

    #[test]
    fn unknown_flavor_lists_known() {
        let e = MlError::UnknownFlavor {
            flavor: "gbdt".into(),
            known: vec!["logistic_regression".into()],
        };
        assert!(e.to_string().contains("\"gbdt\""));
        assert!(e.to_string().contains("logistic_regression"));
    }
}
