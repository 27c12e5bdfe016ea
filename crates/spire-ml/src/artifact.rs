//! Fitted models behind two traits, their self-describing serialized form, and the loaders.
//!
//! A model is either a [`Predictor`] (scores rows with probabilities: supervised models) or a
//! [`Clusterer`] (assigns rows to clusters: unsupervised models). Both serialize to the same
//! [`Artifact`]; [`load_model`] returns whichever the flavor is as a [`Model`], and
//! [`load_predictor`] / [`load_clusterer`] return the trait object directly, failing with
//! [`MlError::WrongModelKind`] on the other kind.
//!
//! Adding a model flavor means implementing one of the traits for it and adding one row to
//! the `FLAVORS` table; nothing else dispatches on flavor names.

use serde::{Deserialize, Serialize};

use crate::cluster::{ClusterProfiles, KMeans};
use crate::error::MlError;
use crate::lightgbm::LightGbmModel;
use crate::linear::LogisticRegression;
use crate::matrix::Matrix;

/// A fitted model that scores rows: calibrated probabilities of the positive class.
///
/// Contract:
/// - `predict_proba` returns one probability in `[0, 1]` per row of `x`, in row order. It is
///   pure and deterministic: the same model (including one reloaded from its artifact) and the
///   same rows give bit-identical results, whatever the thread count.
/// - `x` must have exactly `feature_names().len()` columns in `feature_names()` order, else
///   [`MlError::Shape`]. Infinite cells are rejected with [`MlError::NonFinite`]. NaN cells
///   are rejected the same way unless [`Predictor::handles_missing`] is `true` (a capability
///   of the flavor, e.g. `gbdt` and imported LightGBM models): then a NaN is a missing value,
///   routed the way the model learned to route missing values.
/// - `to_artifact` captures everything `predict_proba` needs; [`load_predictor`] on the
///   result gives a predictor with the same flavor, feature names and predictions.
/// - Implementations are immutable after fitting (or importing), so they are `Send + Sync`
///   and can score from many threads at once.
pub trait Predictor: Send + Sync {
    /// The flavor name stored in artifacts, e.g. `"logistic_regression"`.
    fn flavor(&self) -> &'static str;

    /// The columns the model expects, in order.
    fn feature_names(&self) -> &[String];

    /// Probability of the positive class for each row of `x`.
    fn predict_proba(&self, x: &Matrix) -> Result<Vec<f64>, MlError>;

    /// The model's serialized form.
    fn to_artifact(&self) -> Result<Artifact, MlError>;

    /// Whether `predict_proba` takes NaN cells as missing values (`true`) or rejects them
    /// with [`MlError::NonFinite`] (`false`, the default: impute before scoring).
    fn handles_missing(&self) -> bool {
        false
    }

    /// Like `predict_proba`, for a matrix whose columns are named by `columns` (e.g. a wide
    /// feature snapshot): the model's features are picked by name, in the model's order, and
    /// other columns are ignored. Fails with [`MlError::Shape`] when `columns` does not have
    /// one unique name per column of `x` or lacks one of the model's features (named in the
    /// message), then like `predict_proba`.
    fn predict_proba_by_name(&self, x: &Matrix, columns: &[String]) -> Result<Vec<f64>, MlError> {
        let idx = match_columns(self.feature_names(), x, columns)?;
        if idx.iter().enumerate().all(|(i, &j)| i == j) && idx.len() == x.n_cols() {
            return self.predict_proba(x);
        }
        self.predict_proba(&x.select_columns(&idx))
    }
}

/// Checks user-given feature names: `expected` of them, non-empty, unique.
pub(crate) fn check_feature_names(names: &[String], expected: usize) -> Result<(), MlError> {
    if names.len() != expected {
        return Err(MlError::Shape(format!(
            "{} feature names given, the model has {expected} features",
            names.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if n.is_empty() {
            return Err(MlError::Shape("a feature name is empty".into()));
        }
        if !seen.insert(n.as_str()) {
            return Err(MlError::Shape(format!("feature name {n:?} appears twice")));
        }
    }
    Ok(())
}

/// The column of `x` holding each feature, by name.
fn match_columns(
    features: &[String],
    x: &Matrix,
    columns: &[String],
) -> Result<Vec<usize>, MlError> {
    if columns.len() != x.n_cols() {
        return Err(MlError::Shape(format!(
            "{} column names for a matrix of {} columns",
            columns.len(),
            x.n_cols()
        )));
    }
    let mut by_name = std::collections::HashMap::with_capacity(columns.len());
    for (j, name) in columns.iter().enumerate() {
        if by_name.insert(name.as_str(), j).is_some() {
            return Err(MlError::Shape(format!("column {name:?} appears twice")));
        }
    }
    features
        .iter()
        .map(|f| {
            by_name.get(f.as_str()).copied().ok_or_else(|| {
                MlError::Shape(format!(
                    "the model's feature {f:?} is not among the {} columns given (the model \
                     expects: {})",
                    columns.len(),
                    features.join(", ")
                ))
            })
        })
        .collect()
}

/// A fitted model that assigns rows to clusters (e.g. [`KMeans`] audience clusters).
///
/// Contract:
/// - `predict` returns one cluster index in `0..n_clusters()` per row of `x`, in row order;
///   `transform` returns an `x.n_rows() × n_clusters()` matrix whose row `i`, column `c` is
///   the distance of row `i` to cluster `c` in the model's space, and `predict` picks the
///   column of the smallest distance (the lowest index on ties). Both are pure and
///   deterministic: the same model (including one reloaded from its artifact) and the same
///   rows give bit-identical results, whatever the thread count.
/// - `x` must have exactly `feature_names().len()` columns in `feature_names()` order, else
///   [`MlError::Shape`]; NaN or infinite cells are rejected with [`MlError::NonFinite`].
/// - `to_artifact` captures everything `predict` and `transform` need; [`load_clusterer`] on
///   the result gives a clusterer with the same flavor, feature names, assignments and
///   distances.
/// - Implementations are immutable after fitting, so they are `Send + Sync`.
pub trait Clusterer: Send + Sync {
    /// The flavor name stored in artifacts, e.g. `"kmeans"`.
    fn flavor(&self) -> &'static str;

    /// The columns the model expects, in order.
    fn feature_names(&self) -> &[String];

    /// Number of clusters.
    fn n_clusters(&self) -> usize;

    /// The cluster of each row of `x`.
    fn predict(&self, x: &Matrix) -> Result<Vec<usize>, MlError>;

    /// Distances from each row of `x` to each cluster (`x.n_rows() × n_clusters()`).
    fn transform(&self, x: &Matrix) -> Result<Matrix, MlError>;

    /// The model's serialized form.
    fn to_artifact(&self) -> Result<Artifact, MlError>;

    /// Profiles of the clusters over the rows of `x` (sizes, shares, per-feature means
    /// against the overall means), e.g. to describe this month's users with last month's
    /// clusters. Fails like `predict`.
    fn profile(&self, x: &Matrix) -> Result<ClusterProfiles, MlError> {
        let labels = self.predict(x)?;
        ClusterProfiles::compute(x, &labels, self.n_clusters(), self.feature_names())
    }
}

/// A model loaded from an artifact without knowing its concrete type, by kind.
pub enum Model {
    /// A supervised model that scores probabilities.
    Predictor(Box<dyn Predictor>),
    /// An unsupervised model that assigns clusters.
    Clusterer(Box<dyn Clusterer>),
    /// A model over raw table rows (encoder + predictor), scored on a [`crate::Frame`].
    Tabular(Box<crate::tabular::TabularModel>),
}

impl Model {
    /// `"predictor"`, `"clusterer"` or `"tabular"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Model::Predictor(_) => "predictor",
            Model::Clusterer(_) => "clusterer",
            Model::Tabular(_) => "tabular",
        }
    }

    /// The flavor name of the model inside.
    pub fn flavor(&self) -> &'static str {
        match self {
            Model::Predictor(p) => p.flavor(),
            Model::Clusterer(c) => c.flavor(),
            Model::Tabular(_) => crate::tabular::TabularModel::FLAVOR,
        }
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Model::{}({:?})", self.kind(), self.flavor())
    }
}

/// Validated hyper-parameters that fit a model (the linfa pattern: only checked params fit).
///
/// Contract: `fit` does not mutate `self`, is deterministic for the same inputs, and checks
/// its inputs (shapes, finiteness, classes) before any work, returning an [`MlError`] instead
/// of panicking on bad data. The returned model's `feature_names()` equals `feature_names`.
pub trait Fit {
    /// The fitted model type.
    type Model: Predictor;

    /// Fits a model on `x` (rows × features) and labels `y` (`true` = positive class).
    fn fit(&self, x: &Matrix, y: &[bool], feature_names: &[String])
        -> Result<Self::Model, MlError>;
}

/// A self-describing serialized model: flavor, payload format version, the expected feature
/// columns and the flavor-specific payload.
///
/// `format_version` is per flavor and is bumped whenever a payload change would be
/// misread by an older reader; readers reject versions newer than they know.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Artifact {
    /// The model flavor, e.g. `"logistic_regression"`.
    pub flavor: String,
    /// The payload format version of this flavor (starting at 1).
    pub format_version: u32,
    /// The columns the model expects, in order.
    pub feature_names: Vec<String>,
    /// Flavor-specific model state.
    pub payload: serde_json::Value,
}

impl Artifact {
    /// Serializes to pretty-printed JSON. Floats round-trip exactly through
    /// [`Artifact::from_bytes`] (shortest representation on write, correctly rounded parsing
    /// on read), so a reloaded model predicts bit-identically.
    pub fn to_bytes(&self) -> Result<Vec<u8>, MlError> {
        serde_json::to_vec_pretty(self)
            .map_err(|e| MlError::Artifact(format!("cannot serialize artifact: {e}")))
    }

    /// The payload of an artifact of `flavor`, decoded: a different flavor or a payload of
    /// the wrong shape is [`MlError::Artifact`] naming it. Every flavor's `from_artifact`
    /// starts here.
    pub fn payload_as<P: serde::de::DeserializeOwned>(&self, flavor: &str) -> Result<P, MlError> {
        if self.flavor != flavor {
            return Err(MlError::Artifact(format!(
                "expected flavor {flavor:?}, got {:?}",
                self.flavor
            )));
        }
        serde_json::from_value(self.payload.clone())
            .map_err(|e| MlError::Artifact(format!("{flavor} payload: {e}")))
    }

    /// Parses bytes written by [`Artifact::to_bytes`]; [`MlError::Artifact`] if they are not
    /// a JSON artifact. The payload is checked only when the artifact is loaded.
    pub fn from_bytes(b: &[u8]) -> Result<Artifact, MlError> {
        serde_json::from_slice(b)
            .map_err(|e| MlError::Artifact(format!("not a model artifact (JSON): {e}")))
    }
}

/// Builds a model from an artifact whose flavor and version were already checked.
type Loader = fn(&Artifact) -> Result<Model, MlError>;

/// The one registration point: `(flavor, newest format version, loader)` per known flavor.
const FLAVORS: &[(&str, u32, Loader)] = &[
    (
        LogisticRegression::FLAVOR,
        LogisticRegression::FORMAT_VERSION,
        |a| {
            Ok(Model::Predictor(Box::new(
                LogisticRegression::from_artifact(a)?,
            )))
        },
    ),
    (KMeans::FLAVOR, KMeans::FORMAT_VERSION, |a| {
        Ok(Model::Clusterer(Box::new(KMeans::from_artifact(a)?)))
    }),
    (
        crate::tabular::TabularModel::FLAVOR,
        crate::tabular::TabularModel::FORMAT_VERSION,
        |a| {
            Ok(Model::Tabular(Box::new(
                crate::tabular::TabularModel::from_artifact(a)?,
            )))
        },
    ),
    (
        crate::gbdt::GbdtModel::FLAVOR,
        crate::gbdt::GbdtModel::FORMAT_VERSION,
        |a| {
            Ok(Model::Predictor(Box::new(
                crate::gbdt::GbdtModel::from_artifact(a)?,
            )))
        },
    ),
    (LightGbmModel::FLAVOR, LightGbmModel::FORMAT_VERSION, |a| {
        Ok(Model::Predictor(Box::new(LightGbmModel::from_artifact(a)?)))
    }),
    #[cfg(feature = "onnx")]
    (
        crate::onnx::OnnxModel::FLAVOR,
        crate::onnx::OnnxModel::FORMAT_VERSION,
        |a| {
            Ok(Model::Predictor(Box::new(
                crate::onnx::OnnxModel::from_artifact(a)?,
            )))
        },
    ),
];

/// The flavors [`load_model`] understands, predictors and clusterers alike.
pub fn known_flavors() -> Vec<String> {
    FLAVORS.iter().map(|(f, _, _)| f.to_string()).collect()
}

/// Loads any known flavor without the caller knowing the concrete type.
///
/// Fails with [`MlError::UnknownFlavor`] (listing the known ones) for an unregistered flavor,
/// [`MlError::UnsupportedFormatVersion`] for a version newer than this build reads (or 0), and
/// [`MlError::Artifact`] when the payload is malformed or inconsistent.
pub fn load_model(a: &Artifact) -> Result<Model, MlError> {
    let Some((flavor, supported, load)) = FLAVORS.iter().find(|(f, _, _)| *f == a.flavor) else {
        return Err(MlError::UnknownFlavor {
            flavor: a.flavor.clone(),
            known: known_flavors(),
        });
    };
    if a.format_version == 0 || a.format_version > *supported {
        return Err(MlError::UnsupportedFormatVersion {
            flavor: flavor.to_string(),
            found: a.format_version,
            supported: *supported,
        });
    }
    load(a)
}

/// Loads a predictor flavor; fails like [`load_model`], and with
/// [`MlError::WrongModelKind`] when the artifact holds a clusterer.
pub fn load_predictor(a: &Artifact) -> Result<Box<dyn Predictor>, MlError> {
    match load_model(a)? {
        Model::Predictor(p) => Ok(p),
        other => Err(wrong_kind(a, "predictor", &other)),
    }
}

/// Loads a clusterer flavor; fails like [`load_model`], and with
/// [`MlError::WrongModelKind`] when the artifact holds a predictor.
pub fn load_clusterer(a: &Artifact) -> Result<Box<dyn Clusterer>, MlError> {
    match load_model(a)? {
        Model::Clusterer(c) => Ok(c),
        other => Err(wrong_kind(a, "clusterer", &other)),
    }
}

fn wrong_kind(a: &Artifact, expected: &'static str, found: &Model) -> MlError {
    MlError::WrongModelKind {
        flavor: a.flavor.clone(),
        expected,
        found: found.kind(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn floats_round_trip_exactly_through_json() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut values: Vec<f64> = (0..20_000)
            .map(|_| f64::from_bits(rng.random::<u64>()))
            .filter(|v| v.is_finite())
            .collect();
        values.extend((0..20_000).map(|_| rng.random::<f64>() * 2.0 - 1.0));
        values.extend([f64::MIN_POSITIVE, 5e-324, f64::MAX, -0.0, 0.1, 1.0 / 3.0]);
        let a = Artifact {
            flavor: "x".into(),
            format_version: 1,
            feature_names: vec![],
            payload: serde_json::json!(values),
        };
        let back = Artifact::from_bytes(&a.to_bytes().unwrap()).unwrap();
        let parsed: Vec<f64> = serde_json::from_value(back.payload).unwrap();
        for (v, p) in values.iter().zip(&parsed) {
            assert_eq!(v.to_bits(), p.to_bits(), "{v:e} came back as {p:e}");
        }
    }

    #[test]
    fn unknown_flavor_and_version() {
        let mut a = Artifact {
            flavor: "xgboost".into(),
            format_version: 1,
            feature_names: vec![],
            payload: serde_json::Value::Null,
        };
        let err = load_predictor(&a).err().unwrap();
        assert!(
            matches!(err, MlError::UnknownFlavor { ref known, .. } if known.len() == FLAVORS.len())
        );
        a.flavor = LogisticRegression::FLAVOR.into();
        a.format_version = 99;
        let err = load_predictor(&a).err().unwrap().to_string();
        assert!(
            err.contains("format_version 99") && err.contains("1..=1"),
            "{err}"
        );
        a.format_version = 1;
        let err = load_predictor(&a).err().unwrap();
        assert!(matches!(err, MlError::Artifact(_)), "{err}");
    }

    #[test]
    fn garbage_bytes_are_an_artifact_error() {
        assert!(matches!(
            Artifact::from_bytes(b"not json"),
            Err(MlError::Artifact(_))
        ));
    }
}
