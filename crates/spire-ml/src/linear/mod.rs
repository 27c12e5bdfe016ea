//! L2-penalised logistic regression fitted by Newton's method.
//!
//! ```
//! use spire_ml::{LogisticRegressionParams, Matrix, Predictor};
//!
//! let x = Matrix::from_rows(&[[0.0], [1.0], [2.0], [3.0]])?;
//! let y = [false, true, false, true];
//! let model = LogisticRegressionParams::default()
//!     .validate()?
//!     .fit(&x, &y, &["clicks".to_string()])?;
//! let p = model.predict_proba(&x)?;
//! assert!(p.iter().all(|p| (0.0..=1.0).contains(p)));
//! # Ok::<(), spire_ml::MlError>(())
//! ```

mod params;
pub(crate) mod solver;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use params::{
    l2_from_sklearn_c, LogisticRegressionParams, ValidLogisticRegressionParams, MAX_ITER_LIMIT,
};

use crate::artifact::{Artifact, Fit, Predictor};
use crate::error::MlError;
use crate::matrix::Matrix;
use crate::preprocess::Standardizer;
use solver::{sigmoid, Problem};

/// Rows per rayon task when scoring.
const SCORE_MIN_LEN: usize = 4096;

/// A fitted logistic regression: `P(y = 1 | x) = σ(b + w · z(x))`, where `z` is the stored
/// [`Standardizer`] (or the identity when the model was fitted without standardization).
///
/// Coefficients are reported in standardized space. Built by
/// [`ValidLogisticRegressionParams::fit`] or loaded from an [`Artifact`]; deserializing checks
/// the same invariants as [`LogisticRegression::from_artifact`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Unchecked")]
pub struct LogisticRegression {
    params: LogisticRegressionParams,
    feature_names: Vec<String>,
    standardizer: Option<Standardizer>,
    coefficients: Vec<f64>,
    intercept: f64,
    iterations: usize,
    converged: bool,
    objective: f64,
    n_train: usize,
}

/// The artifact payload: everything but the feature names, which the [`Artifact`] carries.
#[derive(Serialize, Deserialize)]
struct Payload {
    params: LogisticRegressionParams,
    standardizer: Option<Standardizer>,
    coefficients: Vec<f64>,
    intercept: f64,
    iterations: usize,
    converged: bool,
    objective: f64,
    n_train: usize,
}

/// A deserialized model before its invariants are checked.
#[derive(Deserialize)]
struct Unchecked {
    feature_names: Vec<String>,
    #[serde(flatten)]
    payload: Payload,
}

impl TryFrom<Unchecked> for LogisticRegression {
    type Error = MlError;

    fn try_from(u: Unchecked) -> Result<LogisticRegression, MlError> {
        let (names, p) = (u.feature_names, u.payload);
        p.params.validate()?;
        let d = names.len();
        if p.coefficients.len() != d {
            return Err(MlError::Artifact(format!(
                "{} coefficients for {d} feature names",
                p.coefficients.len()
            )));
        }
        if let Some(s) = &p.standardizer {
            if s.n_cols() != d {
                return Err(MlError::Artifact(format!(
                    "standardizer has {} columns for {d} feature names",
                    s.n_cols()
                )));
            }
        }
        if !(p.intercept.is_finite() && p.coefficients.iter().all(|c| c.is_finite())) {
            return Err(MlError::Artifact(
                "coefficients and intercept must be finite".into(),
            ));
        }
        Ok(LogisticRegression {
            params: p.params,
            feature_names: names,
            standardizer: p.standardizer,
            coefficients: p.coefficients,
            intercept: p.intercept,
            iterations: p.iterations,
            converged: p.converged,
            objective: p.objective,
            n_train: p.n_train,
        })
    }
}

impl ValidLogisticRegressionParams {
    /// Fits a model on `x` (rows × features) with labels `y` (`true` = positive class).
    ///
    /// Fails with [`MlError::Shape`] when `x` has no rows or its sizes disagree with `y` or
    /// `feature_names`, [`MlError::NonFinite`] naming the first NaN/infinite cell,
    /// [`MlError::SingleClass`] when all labels are equal, and [`MlError::Numerical`] if the
    /// Hessian cannot be factored even with damping. Not converging within `max_iter` is not an
    /// error: check [`LogisticRegression::converged`]. Deterministic for a given input.
    pub fn fit(
        &self,
        x: &Matrix,
        y: &[bool],
        feature_names: &[String],
    ) -> Result<LogisticRegression, MlError> {
        let params = self.params();
        check_training_data(x, y, feature_names)?;
        if params.l1 > 0.0 {
            return fit_proximal(params, x, y, feature_names);
        }
        let standardizer = if params.standardize {
            Some(Standardizer::fit(x)?)
        } else {
            None
        };
        let scaled;
        let xs = match &standardizer {
            Some(s) => {
                scaled = s.transform(x)?;
                &scaled
            }
            None => x,
        };
        let problem = Problem {
            x: xs,
            y,
            l2: params.l2,
            fit_intercept: params.fit_intercept,
        };
        let sol = problem.solve(params.max_iter, params.tol)?;
        let d = x.n_cols();
        Ok(LogisticRegression {
            params: params.clone(),
            feature_names: feature_names.to_vec(),
            standardizer,
            coefficients: sol.theta[..d].to_vec(),
            intercept: sol.theta.get(d).copied().unwrap_or(0.0),
            iterations: sol.iterations,
            converged: sol.converged,
            objective: sol.objective,
            n_train: x.n_rows(),
        })
    }
}

/// Fits an L1 / elastic-net model as a family of one (the fused proximal solver).
fn fit_proximal(
    params: &LogisticRegressionParams,
    x: &Matrix,
    y: &[bool],
    feature_names: &[String],
) -> Result<LogisticRegression, MlError> {
    let family_params = crate::fused::FamilyParams {
        max_iter: params.max_iter.max(1000),
        tol: params.tol.max(1e-7),
        fit_intercept: params.fit_intercept,
        standardize: params.standardize,
        ..crate::fused::FamilyParams::default()
    };
    let labels = crate::fused::LabelMatrix::from_columns(&[y])?;
    let member = crate::fused::Member::elastic_net("model", 0, params.l2, params.l1);
    let family = family_params
        .validate()?
        .fit(x, feature_names, &labels, &[member])?;
    let mut model = family
        .model(0)
        .ok_or_else(|| MlError::Numerical("the family fit returned no member".into()))?;
    model.params = params.clone();
    Ok(model)
}

impl Fit for ValidLogisticRegressionParams {
    type Model = LogisticRegression;

    fn fit(
        &self,
        x: &Matrix,
        y: &[bool],
        feature_names: &[String],
    ) -> Result<LogisticRegression, MlError> {
        ValidLogisticRegressionParams::fit(self, x, y, feature_names)
    }
}

fn check_training_data(x: &Matrix, y: &[bool], feature_names: &[String]) -> Result<(), MlError> {
    if x.n_rows() == 0 {
        return Err(MlError::Shape("training matrix has no rows".into()));
    }
    if x.n_rows() != y.len() {
        return Err(MlError::Shape(format!(
            "training matrix has {} rows but {} labels",
            x.n_rows(),
            y.len()
        )));
    }
    if x.n_cols() != feature_names.len() {
        return Err(MlError::Shape(format!(
            "training matrix has {} columns but {} feature names",
            x.n_cols(),
            feature_names.len()
        )));
    }
    x.check_finite("training matrix")?;
    let first = y[0];
    if y.iter().all(|&v| v == first) {
        return Err(MlError::SingleClass(first));
    }
    Ok(())
}

impl LogisticRegression {
    /// Assembles a fitted model from its parts (used by the fused family solver).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_fitted(
        params: LogisticRegressionParams,
        feature_names: Vec<String>,
        standardizer: Option<Standardizer>,
        coefficients: Vec<f64>,
        intercept: f64,
        iterations: usize,
        converged: bool,
        objective: f64,
        n_train: usize,
    ) -> LogisticRegression {
        LogisticRegression {
            params,
            feature_names,
            standardizer,
            coefficients,
            intercept,
            iterations,
            converged,
            objective,
            n_train,
        }
    }

    /// The flavor name under which this model is stored in an [`Artifact`].
    pub const FLAVOR: &'static str = "logistic_regression";
    /// The newest artifact payload format this build writes and reads.
    pub const FORMAT_VERSION: u32 = 1;

    /// Coefficients, one per feature, in standardized space when fitted with `standardize`.
    pub fn coefficients(&self) -> &[f64] {
        &self.coefficients
    }

    /// The intercept (0 when fitted without one).
    pub fn intercept(&self) -> f64 {
        self.intercept
    }

    /// Newton steps taken.
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// Whether the solver met its tolerance within `max_iter` steps.
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// The final value of the penalised objective (mean log loss + `l2/2 · ‖w‖²`).
    pub fn objective(&self) -> f64 {
        self.objective
    }

    /// The params the model was fitted with.
    pub fn params(&self) -> &LogisticRegressionParams {
        &self.params
    }

    /// The standardizer fitted on the training rows, if `standardize` was set.
    pub fn standardizer(&self) -> Option<&Standardizer> {
        self.standardizer.as_ref()
    }

    /// Number of training rows.
    pub fn n_train(&self) -> usize {
        self.n_train
    }

    /// Linear scores `b + w · z(x)` (log-odds), one per row; same checks as `predict_proba`.
    pub fn decision_function(&self, x: &Matrix) -> Result<Vec<f64>, MlError> {
        self.check_scoring_input(x)?;
        let n = x.n_rows();
        Ok((0..n)
            .into_par_iter()
            .with_min_len(SCORE_MIN_LEN)
            .map(|i| self.margin(x.row(i)))
            .collect())
    }

    fn check_scoring_input(&self, x: &Matrix) -> Result<(), MlError> {
        if x.n_cols() != self.feature_names.len() {
            return Err(MlError::Shape(format!(
                "model expects {} features ({}), got {} columns",
                self.feature_names.len(),
                self.feature_names.join(", "),
                x.n_cols()
            )));
        }
        x.check_finite("scoring matrix")
    }

    fn margin(&self, row: &[f64]) -> f64 {
        let dot: f64 = match &self.standardizer {
            Some(s) => row
                .iter()
                .zip(s.means().iter().zip(s.scales()))
                .zip(&self.coefficients)
                .map(|((v, (m, sc)), w)| w * ((v - m) / sc))
                .sum(),
            None => row.iter().zip(&self.coefficients).map(|(v, w)| w * v).sum(),
        };
        self.intercept + dot
    }

    /// Rebuilds a model from an artifact of flavor [`LogisticRegression::FLAVOR`], checking
    /// that the payload is complete, finite and consistent with the feature names.
    pub fn from_artifact(a: &Artifact) -> Result<LogisticRegression, MlError> {
        let payload: Payload = a.payload_as(Self::FLAVOR)?;
        LogisticRegression::try_from(Unchecked {
            feature_names: a.feature_names.clone(),
            payload,
        })
    }
}

impl Predictor for LogisticRegression {
    fn flavor(&self) -> &'static str {
        Self::FLAVOR
    }

    fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    fn predict_proba(&self, x: &Matrix) -> Result<Vec<f64>, MlError> {
        let mut scores = self.decision_function(x)?;
        scores.iter_mut().for_each(|z| *z = sigmoid(*z));
        Ok(scores)
    }

    fn to_artifact(&self) -> Result<Artifact, MlError> {
        let payload = Payload {
            params: self.params.clone(),
            standardizer: self.standardizer.clone(),
            coefficients: self.coefficients.clone(),
            intercept: self.intercept,
            iterations: self.iterations,
            converged: self.converged,
            objective: self.objective,
            n_train: self.n_train,
        };
        let payload = serde_json::to_value(payload)
            .map_err(|e| MlError::Artifact(format!("cannot serialize model: {e}")))?;
        Ok(Artifact {
            flavor: Self::FLAVOR.to_string(),
            format_version: Self::FORMAT_VERSION,
            feature_names: self.feature_names.clone(),
            payload,
        })
    }
}

#[cfg(test)]
mod tests;
