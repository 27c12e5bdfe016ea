//! Kalos, Spire's model library: matrices, estimators, metrics (no lake I/O).
//!
//! The flow is parse → validate → fit → serialize:
//! [`LogisticRegressionParams`] are validated into [`ValidLogisticRegressionParams`], which
//! fit a [`LogisticRegression`] on a [`Matrix`]; every fitted model is a [`Predictor`] and
//! serializes to a self-describing [`Artifact`] that [`load_predictor`] turns back into a
//! `Box<dyn Predictor>` without knowing the concrete type. [`metrics`] scores predictions
//! with scikit-learn's semantics and [`split`] makes deterministic stratified splits.
//! [`eval`] adds calibration curves, top-k lift, cross-validation folds shared by a model
//! family and time holdouts. [`cluster`] fits k-means audience clusters with profiles; a
//! fitted clusterer is a [`Clusterer`] and loads back through [`load_clusterer`] (or
//! [`load_model`] for any flavor). [`fused`] trains and scores whole families of linear
//! models with shared matrix products; [`algorithms`] builds estimators by name, and
//! [`Preprocessor`] encodes a [`Frame`] (imputation, `log1p`, one-hot) into a [`Matrix`].
//!
//! Models trained elsewhere are predictors too ("bring your own model"): [`LightGbmModel`]
//! reads LightGBM's text model file and scores it in pure Rust (missing values included:
//! see [`Predictor::handles_missing`]), and, with the default `onnx` feature,
//! `onnx::OnnxModel` runs a PyTorch, Keras or scikit-learn classifier exported to ONNX with
//! `tract`. Both serialize to artifacts that keep the original file, so they are registered,
//! evaluated and scored like native models.

pub mod algorithms;
pub mod artifact;
pub mod cluster;
pub mod error;
pub mod eval;
pub mod frame;
pub mod fused;
pub mod gbdt;
pub mod lightgbm;
mod linalg;
pub mod linear;
pub mod matrix;
pub mod metrics;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod preprocess;
pub mod split;
pub mod tabular;
pub mod tune;

pub use artifact::{
    known_flavors, load_clusterer, load_model, load_predictor, Artifact, Clusterer, Fit, Model,
    Predictor,
};
pub use cluster::{ClusterProfile, ClusterProfiles, KMeans, KMeansParams, ValidKMeansParams};
pub use error::MlError;
pub use eval::{
    calibration_curve, cross_validate, time_holdout, top_k, CalibrationStrategy, CvSummary, Folds,
    KFold,
};
pub use frame::{Column, ColumnData, Frame};
pub use gbdt::{GbdtModel, GbdtParams, ValidGbdtParams};
pub use lightgbm::LightGbmModel;
pub use linear::{
    l2_from_sklearn_c, LogisticRegression, LogisticRegressionParams, ValidLogisticRegressionParams,
};
pub use matrix::Matrix;
pub use metrics::{average_precision, brier_score, log_loss, roc_auc};
#[cfg(feature = "onnx")]
pub use onnx::{OnnxModel, OnnxOptions};
pub use preprocess::{Impute, PreprocessParams, Preprocessor, Standardizer};
pub use split::{stratified_split, Split};
pub use tabular::TabularModel;
