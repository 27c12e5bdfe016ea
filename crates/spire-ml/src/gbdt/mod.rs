//! Gradient-boosted trees (binary log loss) fitted in pure Rust with
//! [`forust-ml`](https://crates.io/crates/forust-ml).
//!
//! ```
//! use spire_ml::gbdt::GbdtParams;
//! use spire_ml::{Fit, Matrix, Predictor};
//!
//! let rows: Vec<[f64; 1]> = (0..40).map(|i| [f64::from(i)]).collect();
//! let x = Matrix::from_rows(&rows)?;
//! let y: Vec<bool> = (0..40).map(|i| i >= 20).collect();
//! let params = GbdtParams { n_estimators: 20, min_leaf_weight: 0.5, ..Default::default() };
//! let model = params.validate()?.fit(&x, &y, &["visits".to_string()])?;
//! let p = model.predict_proba(&Matrix::from_rows(&[[3.0], [35.0], [f64::NAN]])?)?;
//! assert!(p[0] < 0.5 && p[1] > 0.5);
//! # Ok::<(), spire_ml::MlError>(())
//! ```
//!
//! The params ([`GbdtParams`]) are declared in `spire_core::gbdt` so segment specs are
//! checked when a project loads; [`ValidGbdtParams`] fit a [`GbdtModel`], which
//! [handles missing values](Predictor::handles_missing) (NaN cells follow the side each split
//! learned for them) and serializes to an artifact of flavor [`GbdtModel::FLAVOR`] holding
//! forust's own JSON model.

#[cfg(test)]
mod tests;

use std::panic::{catch_unwind, AssertUnwindSafe};

use forust_ml::gradientbooster::{GradientBooster, GrowPolicy};
use forust_ml::objective::ObjectiveType;
use serde::{Deserialize, Serialize};

pub use spire_core::gbdt::{GbdtParams, Growth, ParamError, ValidGbdtParams, MAX_ESTIMATORS};

use crate::artifact::{check_feature_names, Artifact, Fit, Predictor};
use crate::error::MlError;
use crate::matrix::Matrix;

/// Rows below which scoring runs on the calling thread.
const PARALLEL_MIN_ROWS: usize = 2048;

/// The forust-ml release whose JSON model format the payload holds.
const FORUST_FORMAT: &str = "forust-ml 0.8.0";

/// A fitted gradient-boosted trees classifier: `P(y = 1 | x) = σ(base + Σ trees(x))`.
///
/// Built by fitting [`ValidGbdtParams`] or loaded from an [`Artifact`] of flavor
/// [`GbdtModel::FLAVOR`], whose payload keeps the params and forust's JSON model; a reloaded
/// model scores bit-identically.
pub struct GbdtModel {
    params: GbdtParams,
    feature_names: Vec<String>,
    booster: GradientBooster,
    n_train: usize,
}

/// The artifact payload: everything but the feature names, which the [`Artifact`] carries.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    params: GbdtParams,
    n_train: usize,
    /// Which library wrote `model` (informative).
    format: String,
    /// forust-ml's `GradientBooster::json_dump`.
    model: String,
}

impl std::fmt::Debug for GbdtModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GbdtModel")
            .field("params", &self.params)
            .field("feature_names", &self.feature_names)
            .field("n_trees", &self.n_trees())
            .field("n_train", &self.n_train)
            .finish()
    }
}

impl From<ParamError> for MlError {
    fn from(e: ParamError) -> MlError {
        MlError::InvalidParam {
            param: e.param,
            value: e.value,
            allowed: e.allowed,
        }
    }
}

/// Runs forust code, turning a panic inside it into [`MlError::Numerical`]: bad input is
/// rejected before, so a panic is a library bug, reported instead of aborting the caller.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, MlError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        let detail = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        MlError::Numerical(format!("gradient boosting failed while {what}: {detail}"))
    })
}

/// `x` in column-major order, as forust reads it.
fn column_major(x: &Matrix) -> Vec<f64> {
    let (n, d) = (x.n_rows(), x.n_cols());
    let mut out = vec![0.0; n * d];
    for (i, row) in x.rows().enumerate() {
        for (j, v) in row.iter().enumerate() {
            out[j * n + i] = *v;
        }
    }
    out
}

impl Fit for ValidGbdtParams {
    type Model = GbdtModel;

    /// Fits `n_estimators` trees on `x` (NaN = missing) and labels `y`.
    ///
    /// Fails with [`MlError::Shape`] when `x` has no rows or its sizes disagree with `y` or
    /// `feature_names` (or a name is empty or repeated), [`MlError::NonFinite`] naming the
    /// first infinite cell, and [`MlError::SingleClass`] when all labels are equal.
    /// Deterministic for given inputs and `seed`, whatever `nthreads`.
    fn fit(&self, x: &Matrix, y: &[bool], feature_names: &[String]) -> Result<GbdtModel, MlError> {
        let p = self.params();
        check_training_data(x, y, feature_names)?;
        let mut booster = booster(p);
        let data = column_major(x);
        let target: Vec<f64> = y.iter().map(|&v| f64::from(u8::from(v))).collect();
        let matrix = forust_ml::Matrix::new(&data, x.n_rows(), x.n_cols());
        guarded("fitting", || booster.fit_unweighted(&matrix, &target, None))?
            .map_err(|e| MlError::Numerical(format!("gradient boosting: {e}")))?;
        Ok(GbdtModel {
            params: p.clone(),
            feature_names: feature_names.to_vec(),
            booster,
            n_train: x.n_rows(),
        })
    }
}

/// A forust booster set up from validated params.
fn booster(p: &GbdtParams) -> GradientBooster {
    let parallel = p.nthreads != 1;
    let mut b = GradientBooster::default()
        .set_objective_type(ObjectiveType::LogLoss)
        .set_iterations(p.n_estimators)
        .set_learning_rate(p.learning_rate as f32)
        .set_max_depth(p.max_depth)
        .set_max_leaves(if p.max_leaves == 0 {
            usize::MAX
        } else {
            p.max_leaves
        })
        .set_l1(p.l1 as f32)
        .set_l2(p.l2 as f32)
        .set_gamma(p.gamma as f32)
        .set_min_leaf_weight(p.min_leaf_weight as f32)
        .set_subsample(p.subsample as f32)
        .set_colsample_bytree(p.colsample)
        // Validation bounds max_bins to 2..=4096.
        .set_nbins(u16::try_from(p.max_bins).unwrap_or(u16::MAX))
        .set_seed(p.seed)
        .set_parallel(parallel)
        .set_num_threads((p.nthreads > 1).then_some(p.nthreads))
        .set_initialize_base_score(true)
        .set_missing(f64::NAN)
        .set_create_missing_branch(false)
        .set_allow_missing_splits(true)
        .set_sample_method(if p.subsample < 1.0 {
            forust_ml::sampler::SampleMethod::Random
        } else {
            forust_ml::sampler::SampleMethod::None
        });
    b.grow_policy = match p.growth {
        Growth::LevelWise => GrowPolicy::DepthWise,
        Growth::LeafWise => GrowPolicy::LossGuide,
    };
    b
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
    if x.n_cols() == 0 {
        return Err(MlError::Shape(
            "training matrix has no feature columns".into(),
        ));
    }
    check_feature_names(feature_names, x.n_cols())?;
    x.check_not_infinite("training matrix")?;
    let first = y[0];
    if y.iter().all(|&v| v == first) {
        return Err(MlError::SingleClass(first));
    }
    Ok(())
}

impl GbdtModel {
    /// The flavor name under which this model is stored in an [`Artifact`].
    pub const FLAVOR: &'static str = "gbdt";
    /// The newest artifact payload format this build writes and reads.
    pub const FORMAT_VERSION: u32 = 1;

    /// The params the model was fitted with.
    pub fn params(&self) -> &GbdtParams {
        &self.params
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.booster.trees.len()
    }

    /// Total number of leaves over all trees.
    pub fn n_leaves(&self) -> usize {
        self.booster
            .trees
            .iter()
            .map(|t| t.nodes.iter().filter(|n| n.is_leaf).count())
            .sum()
    }

    /// Number of training rows.
    pub fn n_train(&self) -> usize {
        self.n_train
    }

    /// Raw scores (log-odds before the sigmoid), one per row; same checks as
    /// `predict_proba`.
    pub fn raw_score(&self, x: &Matrix) -> Result<Vec<f64>, MlError> {
        if x.n_cols() != self.feature_names.len() {
            return Err(MlError::Shape(format!(
                "model expects {} features ({}), got {} columns",
                self.feature_names.len(),
                self.feature_names.join(", "),
                x.n_cols()
            )));
        }
        x.check_not_infinite("scoring matrix")?;
        if x.n_rows() == 0 {
            return Ok(Vec::new());
        }
        let data = column_major(x);
        let matrix = forust_ml::Matrix::new(&data, x.n_rows(), x.n_cols());
        let parallel = self.params.nthreads != 1 && x.n_rows() >= PARALLEL_MIN_ROWS;
        guarded("scoring", || self.booster.predict(&matrix, parallel))
    }

    /// Rebuilds a model from an artifact of flavor [`GbdtModel::FLAVOR`], checking the
    /// params, that the model is a log-loss booster, and that every tree is well formed
    /// (children after their parent, split features within the artifact's feature names),
    /// so a tampered artifact is an [`MlError::Artifact`], never a crash when scoring.
    pub fn from_artifact(a: &Artifact) -> Result<GbdtModel, MlError> {
        let fail = |m: String| MlError::Artifact(format!("{} payload: {m}", Self::FLAVOR));
        let p: Payload = a.payload_as(Self::FLAVOR)?;
        p.params.validate().map_err(|e| fail(e.to_string()))?;
        check_feature_names(&a.feature_names, a.feature_names.len())
            .map_err(|e| fail(e.to_string()))?;
        let mut booster =
            GradientBooster::from_json(&p.model).map_err(|e| fail(format!("model: {e}")))?;
        if !matches!(booster.objective_type, ObjectiveType::LogLoss) {
            return Err(fail("model: the objective is not LogLoss".into()));
        }
        if !booster.missing.is_nan() {
            return Err(fail("model: missing values must be NaN".into()));
        }
        if !booster.base_score.is_finite() {
            return Err(fail("model: base_score is not finite".into()));
        }
        check_trees(&booster, a.feature_names.len()).map_err(fail)?;
        // Scoring threads follow the params; the stored value is the fitting machine's.
        booster.num_threads = (p.params.nthreads > 1).then_some(p.params.nthreads);
        Ok(GbdtModel {
            params: p.params,
            feature_names: a.feature_names.clone(),
            booster,
            n_train: p.n_train,
        })
    }
}

/// Checks that walking any tree terminates inside it and reads only known features.
fn check_trees(b: &GradientBooster, n_features: usize) -> Result<(), String> {
    if b.trees.is_empty() {
        return Err("model: no trees".into());
    }
    if b.prediction_iteration.is_some_and(|n| n > b.trees.len()) {
        return Err("model: prediction_iteration exceeds the number of trees".into());
    }
    for (t, tree) in b.trees.iter().enumerate() {
        if tree.nodes.is_empty() {
            return Err(format!("model: tree {t} has no nodes"));
        }
        for (i, node) in tree.nodes.iter().enumerate() {
            if node.is_leaf {
                if !node.weight_value.is_finite() {
                    return Err(format!("model: tree {t}, leaf {i} has a non-finite value"));
                }
                continue;
            }
            let children = [node.left_child, node.right_child, node.missing_node];
            if children.iter().any(|&c| c <= i || c >= tree.nodes.len()) {
                return Err(format!(
                    "model: tree {t}, node {i} points to a node outside the tree or before it"
                ));
            }
            if node.split_feature >= n_features {
                return Err(format!(
                    "model: tree {t}, node {i} splits on feature {} but there are {n_features} \
                     feature names",
                    node.split_feature
                ));
            }
            if node.split_value.is_nan() {
                return Err(format!("model: tree {t}, node {i} has a NaN threshold"));
            }
        }
    }
    Ok(())
}

impl Predictor for GbdtModel {
    fn flavor(&self) -> &'static str {
        Self::FLAVOR
    }

    fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    fn predict_proba(&self, x: &Matrix) -> Result<Vec<f64>, MlError> {
        let mut scores = self.raw_score(x)?;
        scores
            .iter_mut()
            .for_each(|r| *r = crate::linear::solver::sigmoid(*r));
        Ok(scores)
    }

    fn to_artifact(&self) -> Result<Artifact, MlError> {
        let model = self
            .booster
            .json_dump()
            .map_err(|e| MlError::Artifact(format!("cannot serialize model: {e}")))?;
        let payload = serde_json::to_value(Payload {
            params: self.params.clone(),
            n_train: self.n_train,
            format: FORUST_FORMAT.to_string(),
            model,
        })
        .map_err(|e| MlError::Artifact(format!("cannot serialize model: {e}")))?;
        Ok(Artifact {
            flavor: Self::FLAVOR.to_string(),
            format_version: Self::FORMAT_VERSION,
            feature_names: self.feature_names.clone(),
            payload,
        })
    }

    fn handles_missing(&self) -> bool {
        true
    }
}
