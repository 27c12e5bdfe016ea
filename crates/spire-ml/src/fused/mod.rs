//! Fused training and scoring of a family of linear models over one feature matrix.
//!
//! A `for_each` segment family (hundreds or thousands of segments on the same feature set)
//! trains as one job: every iteration evaluates the loss and gradient of *every* member with
//! two `f32` matrix–matrix products per chunk of rows (`Z = X·W`, then `G = Xᵀ·R`), instead of
//! one pass over the data per model. Each member keeps its own optimiser state — L-BFGS with
//! a line search for L2 models, accelerated proximal gradient (FISTA) for L1 and elastic-net
//! models — and its own convergence test; converged members are frozen and drop out of the
//! products while the rest go on. Scoring a family is one product and a sigmoid.
//!
//! Members may share a label column (a regularization path, or tuning trials) and may each
//! leave rows out (not eligible, or a held-out fold): see [`LabelMatrix`].
//!
//! The objective of member `k` is the one of [`crate::LogisticRegression`]:
//! `mean log loss over its rows + l2/2 · ‖w‖² + l1 · ‖w‖₁` (intercept unpenalised), on
//! features standardized with statistics over all rows of the family. In scikit-learn terms,
//! `LogisticRegression(C=C)` on `n` rows is `l2 = 1 / (C · n)`, and
//! `penalty="elasticnet", l1_ratio=r` is `l2 = (1 − r) / (C · n)`, `l1 = r / (C · n)`.
//!
//! ```
//! use spire_ml::fused::{FamilyParams, LabelMatrix, Member};
//! use spire_ml::Matrix;
//!
//! let x = Matrix::from_rows(&[[0.0, 1.0], [1.0, 0.5], [2.0, 0.0], [3.0, 1.5]])?;
//! let labels = LabelMatrix::from_columns(&[[false, true, false, true], [true, true, false, false]])?;
//! let members = vec![Member::l2("a", 0, 1e-2), Member::l2("b", 1, 1e-2)];
//! let names = vec!["x0".to_string(), "x1".to_string()];
//! let family = FamilyParams::default().validate()?.fit(&x, &names, &labels, &members)?;
//! let scores = family.predict_proba(&x)?;
//! assert_eq!((scores.n_rows(), scores.n_models()), (4, 2));
//! # Ok::<(), spire_ml::MlError>(())
//! ```

mod design;
mod fast_math;
mod labels;
mod scorer;
mod solver;

use serde::{Deserialize, Serialize};

pub use labels::LabelMatrix;
pub use scorer::LinearScorer;
pub use solver::StopReason;

use crate::error::MlError;
use crate::linear::{LogisticRegression, LogisticRegressionParams};
use crate::matrix::Matrix;
use crate::preprocess::Standardizer;
use design::{Batch, Design};
use solver::{MemberProblem, MemberSolver};

/// Largest accepted `max_iter`.
pub const MAX_ITER_LIMIT: usize = 100_000;

/// Settings shared by every member of a family, as written in a spec or config.
///
/// Unset fields take their defaults when deserializing; unknown fields are rejected. Call
/// [`FamilyParams::validate`] before fitting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FamilyParams {
    /// Iterations per member, `1..=100000`. Default `1000` (L-BFGS members typically stop
    /// after tens; proximal members may need hundreds).
    pub max_iter: usize,
    /// A member has converged when the largest component of its gradient (of its gradient
    /// mapping, for L1 members) is at most `tol`; in `(0, 1)`. Default `1e-6`.
    pub tol: f64,
    /// An L-BFGS member has stalled when one step lowers its objective by less than `ftol`
    /// relative; in `[0, 1)`. Default `1e-12`.
    pub ftol: f64,
    /// L-BFGS curvature pairs kept per member, `1..=100`. Default `10`.
    pub history: usize,
    /// Fit an unpenalised intercept per member. Default `true`.
    pub fit_intercept: bool,
    /// Standardize features (statistics over all rows of the family). Default `true`.
    pub standardize: bool,
}

impl Default for FamilyParams {
    fn default() -> Self {
        FamilyParams {
            max_iter: 1000,
            tol: 1e-6,
            ftol: 1e-12,
            history: 10,
            fit_intercept: true,
            standardize: true,
        }
    }
}

impl FamilyParams {
    /// Checks every field, naming the first invalid one and its allowed range.
    pub fn validate(&self) -> Result<ValidFamilyParams, MlError> {
        if !(1..=MAX_ITER_LIMIT).contains(&self.max_iter) {
            return Err(MlError::invalid_param(
                "max_iter",
                self.max_iter,
                "in 1..=100000",
            ));
        }
        if !(self.tol > 0.0 && self.tol < 1.0) {
            return Err(MlError::invalid_param("tol", self.tol, "in (0, 1)"));
        }
        if !(self.ftol >= 0.0 && self.ftol < 1.0) {
            return Err(MlError::invalid_param("ftol", self.ftol, "in [0, 1)"));
        }
        if !(1..=100).contains(&self.history) {
            return Err(MlError::invalid_param(
                "history",
                self.history,
                "in 1..=100",
            ));
        }
        Ok(ValidFamilyParams(self.clone()))
    }
}

/// Family params that passed [`FamilyParams::validate`]; the only way to fit a family.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidFamilyParams(FamilyParams);

/// One model of a family: its name (the segment), its label column and its penalties.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Name used in errors and reports, e.g. the segment name.
    pub name: String,
    /// Column of the [`LabelMatrix`] this member learns.
    pub label: usize,
    /// L2 penalty strength, `>= 0` and finite.
    pub l2: f64,
    /// L1 penalty strength, `>= 0` and finite (`> 0` selects the proximal solver).
    pub l1: f64,
}

impl Member {
    /// An L2-only member.
    pub fn l2(name: impl Into<String>, label: usize, l2: f64) -> Member {
        Member {
            name: name.into(),
            label,
            l2,
            l1: 0.0,
        }
    }

    /// An elastic-net member (`l2 = 0` gives the lasso).
    pub fn elastic_net(name: impl Into<String>, label: usize, l2: f64, l1: f64) -> Member {
        Member {
            name: name.into(),
            label,
            l2,
            l1,
        }
    }
}

/// A fitted member: coefficients in standardized space and how the fit ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FittedMember {
    /// The member's spec.
    pub spec: Member,
    /// Coefficients, one per feature.
    pub coefficients: Vec<f64>,
    /// Intercept (0 without one).
    pub intercept: f64,
    /// Final penalised objective.
    pub objective: f64,
    /// Iterations taken.
    pub iterations: usize,
    /// Why the solver stopped.
    pub stop: StopReason,
    /// Rows in this member's training set.
    pub n_train: usize,
    /// Positive rows in it.
    pub n_positive: usize,
}

/// A fitted family: shared preprocessing and one linear model per member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearFamily {
    params: FamilyParams,
    feature_names: Vec<String>,
    standardizer: Option<Standardizer>,
    members: Vec<FittedMember>,
    passes: usize,
}

impl ValidFamilyParams {
    /// The validated params.
    pub fn params(&self) -> &FamilyParams {
        &self.0
    }

    /// Fits every member of `members` on the rows of `x` (`labels` has one row per row of
    /// `x`).
    ///
    /// Everything is checked before any work: shapes, finiteness (naming the first bad
    /// cell), and for each member its penalties, its label column, a non-empty training set
    /// and both classes, with errors naming the member ([`MlError::Member`]). Not converging
    /// within `max_iter` is not an error: see [`FittedMember::stop`]. Deterministic for the
    /// same input, whatever the thread count.
    pub fn fit(
        &self,
        x: &Matrix,
        feature_names: &[String],
        labels: &LabelMatrix,
        members: &[Member],
    ) -> Result<LinearFamily, MlError> {
        let params = &self.0;
        check_inputs(x, feature_names, labels, members)?;
        let counts: Vec<(usize, usize)> = members.iter().map(|m| labels.counts(m.label)).collect();
        let standardizer = if params.standardize {
            Some(Standardizer::fit(x)?)
        } else {
            None
        };
        let design = Design::new(x, standardizer.as_ref(), params.fit_intercept);
        let d = x.n_cols();
        let p = design.p;
        let curvature = if members.iter().any(|m| m.l1 > 0.0) {
            design.gram_max_eigenvalue()
        } else {
            0.0
        };
        let mut solvers: Vec<MemberSolver> = members
            .iter()
            .zip(&counts)
            .map(|(m, &(rows, pos))| {
                let problem = MemberProblem {
                    d,
                    p,
                    l2: m.l2,
                    l1: m.l1,
                    tol: params.tol,
                    ftol: params.ftol,
                    max_iter: params.max_iter,
                    history: params.history,
                    // Logistic curvature is at most 1/4; rows outside the member only
                    // lower XᵀX, so the all-rows Gram bounds every member.
                    lipschitz: 0.25 * curvature * (design.n as f64 / rows as f64) + m.l2,
                };
                let mut w0 = vec![0.0; p];
                if params.fit_intercept {
                    let rate = pos as f64 / rows as f64;
                    w0[d] = (rate / (1.0 - rate)).ln();
                }
                MemberSolver::new(problem, w0)
            })
            .collect();
        let mut passes = 0;
        loop {
            let asks: Vec<(usize, &[f64])> = solvers
                .iter()
                .enumerate()
                .filter_map(|(k, s)| s.ask().map(|pt| (k, pt)))
                .collect();
            if asks.is_empty() {
                break;
            }
            let out = run_pass(&design, labels, members, &counts, &asks);
            passes += 1;
            let idx: Vec<usize> = asks.iter().map(|(k, _)| *k).collect();
            for (j, k) in idx.into_iter().enumerate() {
                solvers[k].tell(out.loss[j], &out.grad[j * p..(j + 1) * p]);
            }
        }
        let finals: Vec<(usize, &[f64])> = solvers
            .iter()
            .enumerate()
            .filter_map(|(k, s)| s.needs_final_eval().map(|pt| (k, pt)))
            .collect();
        if !finals.is_empty() {
            let out = run_pass(&design, labels, members, &counts, &finals);
            passes += 1;
            let idx: Vec<usize> = finals.iter().map(|(k, _)| *k).collect();
            for (j, k) in idx.into_iter().enumerate() {
                solvers[k].set_final(out.loss[j], &out.grad[j * p..(j + 1) * p]);
            }
        }
        let fitted = solvers
            .iter()
            .zip(members)
            .zip(&counts)
            .map(|((s, m), &(rows, pos))| {
                let r = s.result();
                FittedMember {
                    spec: m.clone(),
                    coefficients: r.w[..d].to_vec(),
                    intercept: r.w.get(d).copied().unwrap_or(0.0),
                    objective: r.objective,
                    iterations: r.iterations,
                    stop: r.stop,
                    n_train: rows,
                    n_positive: pos,
                }
            })
            .collect();
        Ok(LinearFamily {
            params: params.clone(),
            feature_names: feature_names.to_vec(),
            standardizer,
            members: fitted,
            passes,
        })
    }
}

/// Gathers the asked points into one batch and evaluates it.
fn run_pass(
    design: &Design,
    labels: &LabelMatrix,
    members: &[Member],
    counts: &[(usize, usize)],
    asks: &[(usize, &[f64])],
) -> design::PassOutput {
    let (p, a) = (design.p, asks.len());
    let mut w = vec![0f32; p * a];
    for (j, (_, pt)) in asks.iter().enumerate() {
        for (k, v) in pt.iter().enumerate() {
            w[k * a + j] = *v as f32;
        }
    }
    let cols: Vec<usize> = asks.iter().map(|(k, _)| members[*k].label).collect();
    let inv_n: Vec<f32> = asks
        .iter()
        .map(|(k, _)| (1.0 / counts[*k].0 as f64) as f32)
        .collect();
    design::evaluate(
        design,
        labels,
        &Batch {
            cols: &cols,
            inv_n: &inv_n,
            w: &w,
        },
    )
}

fn check_inputs(
    x: &Matrix,
    feature_names: &[String],
    labels: &LabelMatrix,
    members: &[Member],
) -> Result<(), MlError> {
    if x.n_rows() == 0 {
        return Err(MlError::Shape("training matrix has no rows".into()));
    }
    if x.n_cols() != feature_names.len() {
        return Err(MlError::Shape(format!(
            "training matrix has {} columns but {} feature names",
            x.n_cols(),
            feature_names.len()
        )));
    }
    if labels.n_rows() != x.n_rows() {
        return Err(MlError::Shape(format!(
            "training matrix has {} rows but the label matrix has {}",
            x.n_rows(),
            labels.n_rows()
        )));
    }
    if members.is_empty() {
        return Err(MlError::Shape("a family needs at least one member".into()));
    }
    x.check_finite("training matrix")?;
    for m in members {
        check_member(m, labels).map_err(|e| MlError::Member {
            name: m.name.clone(),
            source: Box::new(e),
        })?;
    }
    Ok(())
}

fn check_member(m: &Member, labels: &LabelMatrix) -> Result<(), MlError> {
    if !(m.l2.is_finite() && m.l2 >= 0.0) {
        return Err(MlError::invalid_param("l2", m.l2, ">= 0 and finite"));
    }
    if !(m.l1.is_finite() && m.l1 >= 0.0) {
        return Err(MlError::invalid_param("l1", m.l1, ">= 0 and finite"));
    }
    if m.label >= labels.n_cols() {
        return Err(MlError::Shape(format!(
            "label column {} does not exist (the label matrix has {})",
            m.label,
            labels.n_cols()
        )));
    }
    let (rows, pos) = labels.counts(m.label);
    if rows == 0 {
        return Err(MlError::Shape(
            "empty training set: no row takes part in its label column".into(),
        ));
    }
    if pos == 0 || pos == rows {
        return Err(MlError::SingleClass(pos == rows));
    }
    Ok(())
}

impl LinearFamily {
    /// The members, in the order they were given.
    pub fn members(&self) -> &[FittedMember] {
        &self.members
    }

    /// The columns every member expects, in order.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// Fused passes over the data the fit took (each evaluates every active member).
    pub fn passes(&self) -> usize {
        self.passes
    }

    /// The shared standardizer, if the family standardizes.
    pub fn standardizer(&self) -> Option<&Standardizer> {
        self.standardizer.as_ref()
    }

    /// Member `k` as a standalone [`LogisticRegression`] (same coefficients and
    /// preprocessing), e.g. to register one segment's model; `None` if out of range.
    pub fn model(&self, k: usize) -> Option<LogisticRegression> {
        let m = self.members.get(k)?;
        let params = LogisticRegressionParams {
            l2: m.spec.l2,
            l1: m.spec.l1,
            max_iter: self.params.max_iter.min(crate::linear::MAX_ITER_LIMIT),
            tol: self.params.tol,
            fit_intercept: self.params.fit_intercept,
            standardize: self.params.standardize,
        };
        Some(LogisticRegression::from_fitted(
            params,
            self.feature_names.clone(),
            self.standardizer.clone(),
            m.coefficients.clone(),
            m.intercept,
            m.iterations,
            m.stop.is_converged(),
            m.objective,
            m.n_train,
        ))
    }

    /// Probabilities of every member for every row: one `f32` product per chunk of rows and
    /// a sigmoid. Fails like [`crate::Predictor::predict_proba`] on a wrong column count or a
    /// non-finite cell.
    pub fn predict_proba(&self, x: &Matrix) -> Result<FamilyScores, MlError> {
        self.score(x, true)
    }

    /// Log-odds of every member for every row (the product without the sigmoid).
    pub fn decision_function(&self, x: &Matrix) -> Result<FamilyScores, MlError> {
        self.score(x, false)
    }

    fn score(&self, x: &Matrix, probabilities: bool) -> Result<FamilyScores, MlError> {
        scorer::check_matrix(x, &self.feature_names, "the family expects")?;
        let intercept = self.params.fit_intercept;
        let d = x.n_cols();
        let p = d + usize::from(intercept);
        let m = self.members.len();
        let mut w = vec![0f32; p * m];
        for (j, mem) in self.members.iter().enumerate() {
            for (k, c) in mem.coefficients.iter().enumerate() {
                w[k * m + j] = *c as f32;
            }
            if intercept {
                w[d * m + j] = mem.intercept as f32;
            }
        }
        let values = scorer::product(
            x,
            self.standardizer.as_ref(),
            intercept,
            &w,
            m,
            probabilities,
        );
        Ok(FamilyScores {
            n_rows: x.n_rows(),
            n_models: m,
            values,
        })
    }
}

/// Scores of a family: one row per user, one column per member, row-major `f32`.
#[derive(Clone, Debug, PartialEq)]
pub struct FamilyScores {
    n_rows: usize,
    n_models: usize,
    values: Vec<f32>,
}

impl FamilyScores {
    /// Rows (users).
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Columns (members).
    pub fn n_models(&self) -> usize {
        self.n_models
    }

    /// The score of `row` for member `model`, or `None` when out of range.
    pub fn get(&self, row: usize, model: usize) -> Option<f32> {
        if row < self.n_rows && model < self.n_models {
            Some(self.values[row * self.n_models + model])
        } else {
            None
        }
    }

    /// Member `model`'s scores for every row, as `f64`.
    ///
    /// # Panics
    /// Panics if `model >= n_models`.
    pub fn column(&self, model: usize) -> Vec<f64> {
        assert!(model < self.n_models, "member {model} out of range");
        (0..self.n_rows)
            .map(|i| f64::from(self.values[i * self.n_models + model]))
            .collect()
    }

    /// All scores, row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }
}

#[cfg(test)]
mod tests;
