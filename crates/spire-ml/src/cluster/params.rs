//! Hyper-parameters of k-means, and their validation.

use serde::{Deserialize, Serialize};

use crate::error::MlError;

/// Largest accepted number of clusters: audience clusters are read by people, and k-means++
/// costs `O(k² · n)`, so more is a configuration mistake.
pub const MAX_CLUSTERS: usize = 1000;
/// Largest accepted `max_iter`.
pub const MAX_ITER_LIMIT: usize = 10_000;
/// Largest accepted `n_init`.
pub const MAX_N_INIT: usize = 100;

/// Hyper-parameters of k-means clustering, as written in a spec or config.
///
/// Each of the `n_init` runs starts from greedy k-means++ centers (the best of `2 + ⌊ln k⌋`
/// distance-weighted candidates per center, as scikit-learn) and runs Lloyd iterations until
/// convergence or `max_iter`; the run with the lowest inertia wins. A cluster left empty by
/// an assignment step takes the row farthest from its own center (among clusters that keep
/// at least one row), as scikit-learn relocates empty clusters. With
/// `standardize`, features are standardized with a [`crate::Standardizer`] fitted on the
/// training rows (stored in the model), so centers, distances and inertia live in
/// standardized space.
///
/// # Relation to scikit-learn
/// `k`, `max_iter`, `tol` and `n_init` mean what `KMeans(n_clusters, max_iter, tol, n_init,
/// algorithm="lloyd")` means: in particular `tol` is relative to the data, convergence is
/// declared when the labels stop changing or when the summed squared center movement of an
/// iteration is `<= tol × mean per-feature variance`. `seed` drives Spire's own generator,
/// so runs are reproducible across Spire builds but their k-means++ picks differ from
/// scikit-learn's `random_state`. scikit-learn does not standardize.
///
/// Unset fields take their defaults when deserializing; unknown fields are rejected so a typo
/// in a spec fails loudly. Call [`KMeansParams::validate`] before fitting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KMeansParams {
    /// Number of clusters, `1..=1000`. Default `8` (scikit-learn's).
    pub k: usize,
    /// Maximum Lloyd iterations per run, `1..=10000`. Default `300`.
    pub max_iter: usize,
    /// Relative convergence tolerance, `>= 0` and finite (0: stop only when labels stop
    /// changing). Default `1e-4`.
    pub tol: f64,
    /// Independent k-means++ starts, `1..=100`; the lowest inertia wins (the earliest on a
    /// tie). Default `3`: clusters are reviewed by people and a better optimum is cheap.
    pub n_init: usize,
    /// Seed of the k-means++ sampling; the same seed and data give the same model. Default `0`.
    pub seed: u64,
    /// Standardize features before clustering. Default `true` (features in different units
    /// would otherwise be weighted by their scale).
    pub standardize: bool,
}

impl Default for KMeansParams {
    fn default() -> Self {
        KMeansParams {
            k: 8,
            max_iter: 300,
            tol: 1e-4,
            n_init: 3,
            seed: 0,
            standardize: true,
        }
    }
}

impl KMeansParams {
    /// Returns these params with `k` replaced.
    pub fn with_k(mut self, k: usize) -> Self {
        self.k = k;
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

    /// Returns these params with `n_init` replaced.
    pub fn with_n_init(mut self, n_init: usize) -> Self {
        self.n_init = n_init;
        self
    }

    /// Returns these params with `seed` replaced.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Returns these params with `standardize` replaced.
    pub fn with_standardize(mut self, standardize: bool) -> Self {
        self.standardize = standardize;
        self
    }

    /// Checks every parameter and returns the checked params, or an
    /// [`MlError::InvalidParam`] naming the first invalid parameter (in field order) and its
    /// allowed range, e.g. `k = 0: must be in 1..=1000`.
    pub fn validate(&self) -> Result<ValidKMeansParams, MlError> {
        if !(1..=MAX_CLUSTERS).contains(&self.k) {
            return Err(MlError::invalid_param("k", self.k, "in 1..=1000"));
        }
        if !(1..=MAX_ITER_LIMIT).contains(&self.max_iter) {
            return Err(MlError::invalid_param(
                "max_iter",
                self.max_iter,
                "in 1..=10000",
            ));
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return Err(MlError::invalid_param("tol", self.tol, ">= 0 and finite"));
        }
        if !(1..=MAX_N_INIT).contains(&self.n_init) {
            return Err(MlError::invalid_param("n_init", self.n_init, "in 1..=100"));
        }
        Ok(ValidKMeansParams(self.clone()))
    }
}

/// K-means params that passed [`KMeansParams::validate`]; the only way to fit a
/// [`crate::KMeans`].
#[derive(Clone, Debug, PartialEq)]
pub struct ValidKMeansParams(KMeansParams);

impl ValidKMeansParams {
    /// The validated params.
    pub fn params(&self) -> &KMeansParams {
        &self.0
    }
}

impl TryFrom<KMeansParams> for ValidKMeansParams {
    type Error = MlError;

    fn try_from(p: KMeansParams) -> Result<Self, MlError> {
        p.validate()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn msg(p: KMeansParams) -> String {
        p.validate().unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_valid() {
        let v = KMeansParams::default().validate().unwrap();
        assert_eq!((v.params().k, v.params().n_init), (8, 3));
    }

    #[test]
    fn messages_name_param_and_range() {
        let d = KMeansParams::default;
        assert_eq!(msg(d().with_k(0)), "k = 0: must be in 1..=1000");
        assert_eq!(msg(d().with_k(1001)), "k = 1001: must be in 1..=1000");
        assert_eq!(
            msg(d().with_max_iter(0)),
            "max_iter = 0: must be in 1..=10000"
        );
        assert_eq!(msg(d().with_tol(-1.0)), "tol = -1: must be >= 0 and finite");
        assert_eq!(
            msg(d().with_tol(f64::NAN)),
            "tol = NaN: must be >= 0 and finite"
        );
        assert_eq!(msg(d().with_n_init(0)), "n_init = 0: must be in 1..=100");
        assert!(msg(d().with_k(0).with_n_init(0)).starts_with("k = "));
        assert!(d().with_k(1).with_tol(0.0).validate().is_ok());
    }

    #[test]
    fn serde_defaults_and_typos() {
        let p: KMeansParams = serde_json::from_str(r#"{"k": 5}"#).unwrap();
        assert_eq!(p, KMeansParams::default().with_k(5));
        let typo = serde_json::from_str::<KMeansParams>(r#"{"n_clusters": 5}"#);
        assert!(typo.unwrap_err().to_string().contains("n_clusters"));
    }
}
