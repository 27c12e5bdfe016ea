//! Kalos, Spire's model library: matrices, estimators, metrics (no lake I/O).
//!
//! The flow is parse → validate → fit → serialize:
//! [`LogisticRegressionParams`] are validated into [`ValidLogisticRegressionParams`], which
//! fit a [`LogisticRegression`] on a [`Matrix`]; every fitted model is a [`Predictor`] and
//! serializes to a self-describing [`Artifact`] that [`load_predictor`] turns back into a
//! `Box<dyn Predictor>` without knowing the concrete type. [`metrics`] scores predictions
//! with scikit-learn's semantics and [`split`] makes deterministic stratified splits.

pub mod algorithms;
pub mod artifact;
pub mod error;
pub mod frame;
pub mod fused;
mod linalg;
pub mod linear;
pub mod matrix;
pub mod metrics;
pub mod preprocess;
pub mod split;

pub use artifact::{known_flavors, load_predictor, Artifact, Fit, Predictor};
pub use error::MlError;
pub use frame::{Column, ColumnData, Frame};
pub use linear::{
    l2_from_sklearn_c, LogisticRegression, LogisticRegressionParams, ValidLogisticRegressionParams,
};
pub use matrix::Matrix;
pub use metrics::{average_precision, brier_score, log_loss, roc_auc};
pub use preprocess::{Impute, PreprocessParams, Preprocessor, Standardizer};
pub use split::{stratified_split, Split};
