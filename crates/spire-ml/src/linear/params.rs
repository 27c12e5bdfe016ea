//! Hyper-parameters of the logistic regression, and their validation.

use serde::{Deserialize, Serialize};

use crate::error::MlError;

/// Largest accepted `max_iter`: Newton's method converges in tens of iterations, so a larger
/// value is a configuration mistake, not a need.
pub const MAX_ITER_LIMIT: usize = 10_000;

/// Hyper-parameters of an L2-penalised logistic regression, as written in a spec or config.
///
/// The fitted objective is the mean log loss over the training rows plus `l2 / 2 · ‖w‖²`
/// `+ l1 · ‖w‖₁` (the intercept is not penalised), on standardized features when
/// `standardize` is set.
///
/// # Relation to scikit-learn
/// scikit-learn's `LogisticRegression(C=…)` minimises `C · Σ log loss + ½‖w‖²`, i.e. the same
/// objective scaled by `C · n_train`. The two agree when `l2 = 1 / (C · n_train)`; see
/// [`l2_from_sklearn_c`]. The default `l2 = 1e-4` is a weak penalty whose strength does not
/// change with the training size.
///
/// Unset fields take their defaults when deserializing; unknown fields are rejected so a typo
/// in a spec fails loudly. Call [`LogisticRegressionParams::validate`] before fitting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogisticRegressionParams {
    /// L2 penalty strength on the coefficients; `>= 0` and finite. Default `1e-4`.
    pub l2: f64,
    /// L1 penalty strength on the coefficients; `>= 0` and finite. Default `0`. Above 0 the
    /// model is fitted by accelerated proximal gradient (lasso, or elastic net with `l2`)
    /// instead of Newton's method.
    pub l1: f64,
    /// Maximum number of Newton iterations, `1..=10000`. Default `100`.
    pub max_iter: usize,
    /// Convergence tolerance in `(0, 1)`: stop when the largest absolute gradient component or
    /// the relative objective change falls below it. Default `1e-8`.
    pub tol: f64,
    /// Fit an (unpenalised) intercept. Default `true`.
    pub fit_intercept: bool,
    /// Standardize features with a [`crate::Standardizer`] fitted on the training rows and
    /// stored in the model. Default `true`.
    pub standardize: bool,
}

impl Default for LogisticRegressionParams {
    fn default() -> Self {
        LogisticRegressionParams {
            l2: 1e-4,
            l1: 0.0,
            max_iter: 100,
            tol: 1e-8,
            fit_intercept: true,
            standardize: true,
        }
    }
}

/// The `l2` equivalent to scikit-learn's inverse regularisation `C` for `n_train` rows:
/// `1 / (C · n_train)`.
///
/// Returns a non-finite or negative value when `c` is not a positive number or `n_train` is 0;
/// validation then rejects it with a message naming `l2`.
pub fn l2_from_sklearn_c(c: f64, n_train: usize) -> f64 {
    1.0 / (c * n_train as f64)
}

impl LogisticRegressionParams {
    /// Returns these params with `l2` replaced.
    pub fn with_l2(mut self, l2: f64) -> Self {
        self.l2 = l2;
        self
    }

    /// Returns these params with `l1` replaced.
    pub fn with_l1(mut self, l1: f64) -> Self {
        self.l1 = l1;
        self
    }

    /// Returns these params with `max_iter` replaced.
    pub fn with_max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }

    /// Returns these params with `tol` replaced.
    pub fn with_tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// Returns these params with `fit_intercept` replaced.
    pub fn with_fit_intercept(mut self, fit_intercept: bool) -> Self {
        self.fit_intercept = fit_intercept;
        self
    }

    /// Returns these params with `standardize` replaced.
    pub fn with_standardize(mut self, standardize: bool) -> Self {
        self.standardize = standardize;
        self
    }

    /// Checks every parameter and returns the checked params, or an
    /// [`MlError::InvalidParam`] naming the first invalid parameter (in field order) and its
    /// allowed range, e.g. `l2 = -1: must be >= 0 and finite`.
    pub fn validate(&self) -> Result<ValidLogisticRegressionParams, MlError> {
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return Err(MlError::invalid_param("l2", self.l2, ">= 0 and finite"));
        }
        if !(self.l1.is_finite() && self.l1 >= 0.0) {
            return Err(MlError::invalid_param("l1", self.l1, ">= 0 and finite"));
        }
        if !(1..=MAX_ITER_LIMIT).contains(&self.max_iter) {
            return Err(MlError::invalid_param(
                "max_iter",
                self.max_iter,
                "in 1..=10000",
            ));
        }
        if !(self.tol > 0.0 && self.tol < 1.0) {
            return Err(MlError::invalid_param("tol", self.tol, "in (0, 1)"));
        }
        Ok(ValidLogisticRegressionParams(self.clone()))
    }
}

/// Logistic regression params that passed [`LogisticRegressionParams::validate`]; the only way
/// to fit a [`crate::LogisticRegression`].
#[derive(Clone, Debug, PartialEq)]
pub struct ValidLogisticRegressionParams(LogisticRegressionParams);

impl ValidLogisticRegressionParams {
    /// The validated params.
    pub fn params(&self) -> &LogisticRegressionParams {
        &self.0
    }
}

impl TryFrom<LogisticRegressionParams> for ValidLogisticRegressionParams {
    type Error = MlError;

    fn try_from(p: LogisticRegressionParams) -> Result<Self, MlError> {
        p.validate()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn msg(p: LogisticRegressionParams) -> String {
        p.validate().unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_valid() {
        let v = LogisticRegressionParams::default().validate().unwrap();
        assert_eq!(v.params().l2, 1e-4);
        assert_eq!(v.params().max_iter, 100);
        assert!(v.params().fit_intercept && v.params().standardize);
    }

    #[test]
    fn messages_name_param_and_range() {
        let d = LogisticRegressionParams::default;
        assert_eq!(msg(d().with_l2(-1.0)), "l2 = -1: must be >= 0 and finite");
        assert_eq!(
            msg(d().with_l2(f64::NAN)),
            "l2 = NaN: must be >= 0 and finite"
        );
        assert_eq!(
            msg(d().with_l2(f64::INFINITY)),
            "l2 = inf: must be >= 0 and finite"
        );
        assert_eq!(
            msg(d().with_max_iter(0)),
            "max_iter = 0: must be in 1..=10000"
        );
        assert_eq!(
            msg(d().with_max_iter(10_001)),
            "max_iter = 10001: must be in 1..=10000"
        );
        assert_eq!(msg(d().with_tol(0.0)), "tol = 0: must be in (0, 1)");
        assert_eq!(msg(d().with_tol(1.0)), "tol = 1: must be in (0, 1)");
        assert_eq!(msg(d().with_tol(f64::NAN)), "tol = NaN: must be in (0, 1)");
        // The first invalid parameter is reported.
        assert!(msg(d().with_l2(-1.0).with_tol(0.0)).starts_with("l2 = "));
        assert!(d().with_l2(0.0).with_max_iter(10_000).validate().is_ok());
    }

    #[test]
    fn serde_defaults_and_typos() {
        let p: LogisticRegressionParams = serde_json::from_str(r#"{"l2": 0.5}"#).unwrap();
        assert_eq!(p, LogisticRegressionParams::default().with_l2(0.5));
        let typo = serde_json::from_str::<LogisticRegressionParams>(r#"{"l2_penalty": 0.5}"#);
        assert!(typo.unwrap_err().to_string().contains("l2_penalty"));
    }

    #[test]
    fn sklearn_c_mapping() {
        assert_eq!(l2_from_sklearn_c(1.0, 100), 0.01);
        let bad = LogisticRegressionParams::default().with_l2(l2_from_sklearn_c(1.0, 0));
        assert!(bad.validate().is_err());
    }
}
