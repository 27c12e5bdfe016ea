//! Model evaluation beyond single-number metrics: calibration curves, lift at the top of the
//! ranking, cross-validation folds shared by a model family, and time-based holdouts.
//!
//! The scalar metrics (AUC, average precision, log loss, Brier score) live in
//! [`crate::metrics`]. Unlike those, the functions here return an [`MlError`] for bad input
//! (mismatched lengths, empty input, NaN or infinite values, out-of-range probabilities) and
//! for data that cannot support the request (a missing class, fewer rows than folds).
//!
//! - [`calibration`]: [`calibration_curve`], as `sklearn.calibration.calibration_curve`.
//! - [`topk`]: [`top_k`] precision, recall and lift at the top fraction of rows by score.
//! - [`cv`]: [`KFold`] fold assignment by key hash, [`Folds`], [`cross_validate`] and
//!   [`CvSummary`].
//! - [`holdout`]: [`time_holdout`], train before a cutoff and test from it.
//! - [`threshold`]: [`precision_threshold`], the score cut reaching a precision.

pub mod calibration;
pub mod cv;
pub mod holdout;
pub mod threshold;
pub mod topk;

pub use calibration::{calibration_curve, CalibrationBin, CalibrationCurve, CalibrationStrategy};
pub use cv::{cross_validate, CvSummary, Folds, KFold, MetricSummary, MAX_FOLDS};
pub use holdout::time_holdout;
pub use threshold::{precision_threshold, PrecisionThreshold};
pub use topk::{top_k, top_k_curve, TopK};

use crate::error::MlError;

/// Fails with [`MlError::Shape`] unless `y` and `values` are non-empty and equally long.
pub(crate) fn check_pair(y: &[bool], values: &[f64], what: &'static str) -> Result<(), MlError> {
    if y.len() != values.len() {
        return Err(MlError::Shape(format!(
            "{} labels but {} {what}",
            y.len(),
            values.len()
        )));
    }
    if y.is_empty() {
        return Err(MlError::Shape(format!(
            "no rows: labels and {what} are empty"
        )));
    }
    Ok(())
}

/// Fails with [`MlError::NonFinite`] naming the first NaN or infinite value.
pub(crate) fn check_finite(values: &[f64], what: &'static str) -> Result<(), MlError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(row) => Err(MlError::NonFinite {
            what,
            row,
            col: 0,
            value: values[row],
        }),
        None => Ok(()),
    }
}

/// Fails with [`MlError::OutOfRange`] naming the first value outside `[0, 1]` (NaN included).
pub(crate) fn check_probabilities(p: &[f64]) -> Result<(), MlError> {
    match p.iter().position(|v| !(0.0..=1.0).contains(v)) {
        Some(row) => Err(MlError::OutOfRange {
            what: "probabilities",
            row,
            value: p[row],
            allowed: "in [0, 1]",
        }),
        None => Ok(()),
    }
}
