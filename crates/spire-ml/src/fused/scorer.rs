//! Scoring many fitted logistic regressions over one feature matrix with `f32` products.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::design::{self, CHUNK_ROWS};
use super::{fast_math, FamilyScores};
use crate::artifact::Predictor;
use crate::error::MlError;
use crate::linear::LogisticRegression;
use crate::matrix::Matrix;
use crate::preprocess::Standardizer;

/// Logistic regressions over the same features, scored together: one `f32` matrix product
/// per chunk of rows and a sigmoid for every group of models that share their preprocessing
/// (the members of one fused training run share their standardizer, so they form one group;
/// models trained at other times form groups of their own).
///
/// This is how the score stage serves a feature set's champions: `n` users × `m` models cost
/// one GEMM instead of `m` passes over the users. Scores are `f32` and agree with each
/// model's own [`crate::Predictor::predict_proba`] to about `1e-6`.
///
/// ```
/// use spire_ml::fused::LinearScorer;
/// use spire_ml::{LogisticRegression, LogisticRegressionParams, Matrix, Predictor};
///
/// let x = Matrix::from_rows(&[[0.0, 1.0], [1.0, 0.5], [2.0, 0.0], [3.0, 1.5]])?;
/// let names = vec!["x0".to_string(), "x1".to_string()];
/// let params = LogisticRegressionParams::default().validate()?;
/// let a = params.fit(&x, &[false, true, false, true], &names)?;
/// let b = params.fit(&x, &[true, true, false, false], &names)?;
/// let scores = LinearScorer::new(&[&a, &b])?.predict_proba(&x)?;
/// let own = b.predict_proba(&x)?;
/// assert!((scores.column(1)[2] - own[2]).abs() < 1e-5);
/// # Ok::<(), spire_ml::MlError>(())
/// ```
#[derive(Clone, Debug)]
pub struct LinearScorer {
    feature_names: Vec<String>,
    n_models: usize,
    groups: Vec<Group>,
}

/// Models sharing a standardizer and an intercept setting; `w` is `p × members`, row-major.
#[derive(Clone, Debug)]
struct Group {
    standardizer: Option<Standardizer>,
    intercept: bool,
    members: Vec<usize>,
    w: Vec<f32>,
}

impl LinearScorer {
    /// Gathers `models`, which must all expect the same feature names in the same order
    /// ([`MlError::Shape`] naming the first model that differs otherwise).
    pub fn new(models: &[&LogisticRegression]) -> Result<LinearScorer, MlError> {
        let feature_names = models
            .first()
            .map(|m| m.feature_names().to_vec())
            .unwrap_or_default();
        let mut groups: Vec<Group> = Vec::new();
        for (k, m) in models.iter().enumerate() {
            if m.feature_names() != feature_names.as_slice() {
                return Err(MlError::Shape(format!(
                    "model {k} expects features ({}), but model 0 expects ({}): score models \
                     of different feature sets separately",
                    m.feature_names().join(", "),
                    feature_names.join(", ")
                )));
            }
            let intercept = m.params().fit_intercept;
            let std = m.standardizer();
            match groups
                .iter_mut()
                .find(|g| g.intercept == intercept && g.standardizer.as_ref() == std)
            {
                Some(g) => g.members.push(k),
                None => groups.push(Group {
                    standardizer: std.cloned(),
                    intercept,
                    members: vec![k],
                    w: Vec::new(),
                }),
            }
        }
        let d = feature_names.len();
        for g in &mut groups {
            let p = d + usize::from(g.intercept);
            let mg = g.members.len();
            g.w = vec![0f32; p * mg];
            for (j, &k) in g.members.iter().enumerate() {
                let m = models[k];
                for (i, c) in m.coefficients().iter().enumerate() {
                    g.w[i * mg + j] = *c as f32;
                }
                if g.intercept {
                    g.w[d * mg + j] = m.intercept() as f32;
                }
            }
        }
        Ok(LinearScorer {
            feature_names,
            n_models: models.len(),
            groups,
        })
    }

    /// The columns every model expects, in order.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// Number of models.
    pub fn n_models(&self) -> usize {
        self.n_models
    }

    /// Number of products one scoring pass takes (groups of models with shared
    /// preprocessing).
    pub fn n_groups(&self) -> usize {
        self.groups.len()
    }

    /// Probabilities of every model (columns, in the order given to [`LinearScorer::new`])
    /// for every row of `x`. Fails on a wrong column count or a non-finite cell, like
    /// [`crate::Predictor::predict_proba`].
    pub fn predict_proba(&self, x: &Matrix) -> Result<FamilyScores, MlError> {
        check_matrix(x, &self.feature_names, "the models expect")?;
        let (n, m) = (x.n_rows(), self.n_models);
        if let [g] = self.groups.as_slice() {
            let values = product(x, g.standardizer.as_ref(), g.intercept, &g.w, m, true);
            return Ok(FamilyScores {
                n_rows: n,
                n_models: m,
                values,
            });
        }
        let mut values = vec![0f32; n * m];
        for g in &self.groups {
            let mg = g.members.len();
            let part = product(x, g.standardizer.as_ref(), g.intercept, &g.w, mg, true);
            values
                .par_chunks_mut(m.max(1))
                .zip(part.par_chunks(mg.max(1)))
                .for_each(|(row, src)| {
                    for (&k, v) in g.members.iter().zip(src) {
                        row[k] = *v;
                    }
                });
        }
        Ok(FamilyScores {
            n_rows: n,
            n_models: m,
            values,
        })
    }
}

/// Checks that `x` has one column per name and only finite cells.
pub(crate) fn check_matrix(x: &Matrix, names: &[String], what: &str) -> Result<(), MlError> {
    if x.n_cols() != names.len() {
        return Err(MlError::Shape(format!(
            "{what} {} features ({}), got {} columns",
            names.len(),
            names.join(", "),
            x.n_cols()
        )));
    }
    x.check_finite("scoring matrix")
}

/// `X·W` (with `X` standardized by `std` and an intercept column when `intercept`) for `m`
/// models whose `p × m` weights are `w`, row-major `n × m`; through the sigmoid when
/// `probabilities`. One `f32` product per chunk of [`CHUNK_ROWS`] rows, chunks in parallel.
pub(crate) fn product(
    x: &Matrix,
    std: Option<&Standardizer>,
    intercept: bool,
    w: &[f32],
    m: usize,
    probabilities: bool,
) -> Vec<f32> {
    let n = x.n_rows();
    let p = x.n_cols() + usize::from(intercept);
    let mut values = vec![0f32; n * m];
    if m == 0 {
        return values;
    }
    values
        .par_chunks_mut(CHUNK_ROWS * m)
        .enumerate()
        .for_each(|(ci, out)| {
            let r0 = ci * CHUNK_ROWS;
            let c = out.len() / m;
            let mut xc = vec![0f32; c * p];
            if p > 0 {
                for (k, dst) in xc.chunks_exact_mut(p).enumerate() {
                    design::write_row(x.row(r0 + k), std, intercept, dst);
                }
            }
            matmul(
                MatMut::from_row_major_slice_mut(out, c, m),
                Accum::Replace,
                MatRef::from_row_major_slice(&xc, c, p),
                MatRef::from_row_major_slice(w, p, m),
                1.0f32,
                Par::Seq,
            );
            if probabilities {
                pulp::Arch::new().dispatch(|| {
                    out.iter_mut().for_each(|z| *z = fast_math::sigmoid(*z));
                });
            }
        });
    values
}
