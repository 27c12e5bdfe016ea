//! K-means clustering for unsupervised audience clusters, with cluster profiles.
//!
//! ```
//! use spire_ml::{Clusterer, KMeansParams, Matrix};
//!
//! // Two groups of users: light (few sessions, little spend) and heavy.
//! let x = Matrix::from_rows(&[[1.0, 5.0], [2.0, 4.0], [1.5, 6.0], [40.0, 300.0], [42.0, 310.0]])?;
//! let names = ["sessions_30d".to_string(), "spend_30d".to_string()];
//! let model = KMeansParams::default().with_k(2).validate()?.fit(&x, &names)?;
//! let labels = model.predict(&x)?;
//! assert_eq!(labels[0], labels[1]);
//! assert_ne!(labels[0], labels[3]);
//! let heavy = &model.profiles().clusters[labels[3]];
//! assert_eq!(heavy.size, 2);
//! assert!(heavy.features[1].difference > 0.0); // spends more than average
//! # Ok::<(), spire_ml::MlError>(())
//! ```

mod lloyd;
mod params;
mod profile;

use std::collections::HashSet;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use params::{KMeansParams, ValidKMeansParams, MAX_CLUSTERS, MAX_ITER_LIMIT, MAX_N_INIT};
pub use profile::{ClusterProfile, ClusterProfiles, FeatureProfile};

use crate::artifact::{Artifact, Clusterer};
use crate::error::MlError;
use crate::matrix::Matrix;
use crate::preprocess::Standardizer;
use lloyd::{absolute_tolerance, kmeans_plus_plus, lloyd, nearest, sq_dist, Run, SplitMix64};

/// Rows per rayon task when predicting.
const SCORE_MIN_LEN: usize = 4096;

/// A fitted k-means model: `k` centers in model space (standardized features when fitted
/// with `standardize`, else the raw features), and the profiles of its training clusters.
///
/// Built by [`ValidKMeansParams::fit`] (or [`ValidKMeansParams::fit_from_centers`]) or loaded
/// from an [`Artifact`] of flavor `"kmeans"`; implements [`Clusterer`].
#[derive(Clone, Debug, PartialEq)]
pub struct KMeans {
    params: KMeansParams,
    feature_names: Vec<String>,
    standardizer: Option<Standardizer>,
    /// `k × n_features`, model space.
    centers: Matrix,
    inertia: f64,
    iterations: usize,
    converged: bool,
    n_train: usize,
    profiles: ClusterProfiles,
}

/// The artifact payload: everything but the feature names, which the [`Artifact`] carries.
#[derive(Serialize, Deserialize)]
struct Payload {
    params: KMeansParams,
    standardizer: Option<Standardizer>,
    centers: Vec<Vec<f64>>,
    inertia: f64,
    iterations: usize,
    converged: bool,
    n_train: usize,
    profiles: ClusterProfiles,
}

impl ValidKMeansParams {
    /// Fits `k` clusters on the rows of `x`: `n_init` runs from greedy k-means++ starts,
    /// keeping the lowest inertia (the earliest run on a tie).
    ///
    /// Fails with [`MlError::Shape`] when `x` has no rows or no columns, or `feature_names`
    /// does not match its columns (or repeats a name); [`MlError::NonFinite`] naming the first
    /// NaN/infinite cell; [`MlError::Degenerate`] when `x` has fewer than `k` distinct rows;
    /// and [`MlError::Numerical`] if values are so large that distances overflow. Not
    /// converging within `max_iter` is not an error: check [`KMeans::converged`].
    /// Deterministic for a given input, whatever the thread count.
    pub fn fit(&self, x: &Matrix, feature_names: &[String]) -> Result<KMeans, MlError> {
        let (xs, standardizer) = self.prepare(x, feature_names)?;
        let p = self.params();
        let tol = absolute_tolerance(&xs, p.tol);
        let mut seeds = SplitMix64::new(p.seed);
        let mut best: Option<Run> = None;
        for _ in 0..p.n_init {
            let mut rng = SplitMix64::new(seeds.next_u64());
            let init = kmeans_plus_plus(&xs, p.k, &mut rng)?;
            let run = lloyd(&xs, init, p.k, p.max_iter, tol);
            if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
                best = Some(run);
            }
        }
        let run = best.ok_or_else(|| MlError::Numerical("no k-means run".into()))?;
        self.finish(x, feature_names, standardizer, run)
    }

    /// One run of Lloyd iterations from given initial centers (`k × n_features`, in model
    /// space: standardized when `standardize` is set), ignoring `n_init` and `seed`. Use it to
    /// reproduce a reference (scikit-learn's `KMeans(init=centers, n_init=1,
    /// algorithm="lloyd")`) or to warm-start from a previous model's centers.
    ///
    /// Fails like [`ValidKMeansParams::fit`], and with [`MlError::Shape`] or
    /// [`MlError::NonFinite`] when `initial_centers` is not a finite `k × n_features` matrix.
    pub fn fit_from_centers(
        &self,
        x: &Matrix,
        feature_names: &[String],
        initial_centers: &Matrix,
    ) -> Result<KMeans, MlError> {
        let p = self.params();
        if (initial_centers.n_rows(), initial_centers.n_cols()) != (p.k, x.n_cols()) {
            return Err(MlError::Shape(format!(
                "initial centers are {} × {}, expected k × features = {} × {}",
                initial_centers.n_rows(),
                initial_centers.n_cols(),
                p.k,
                x.n_cols()
            )));
        }
        initial_centers.check_finite("initial centers")?;
        let (xs, standardizer) = self.prepare(x, feature_names)?;
        let tol = absolute_tolerance(&xs, p.tol);
        let run = lloyd(&xs, initial_centers.data().to_vec(), p.k, p.max_iter, tol);
        self.finish(x, feature_names, standardizer, run)
    }

    /// Checks the training data and returns it in model space, with the standardizer.
    fn prepare(
        &self,
        x: &Matrix,
        feature_names: &[String],
    ) -> Result<(Matrix, Option<Standardizer>), MlError> {
        let k = self.params().k;
        if x.n_rows() == 0 || x.n_cols() == 0 {
            return Err(MlError::Shape(format!(
                "k-means needs rows and feature columns, the training matrix is {} × {}",
                x.n_rows(),
                x.n_cols()
            )));
        }
        check_feature_names(x, feature_names)?;
        x.check_finite("training matrix")?;
        let (xs, standardizer) = if self.params().standardize {
            let s = Standardizer::fit(x)?;
            (s.transform(x)?, Some(s))
        } else {
            (x.clone(), None)
        };
        xs.check_finite("standardized training matrix")?;
        let distinct = count_distinct_rows(&xs, k);
        if distinct < k {
            return Err(MlError::Degenerate(format!(
                "k = {k} clusters need at least {k} distinct training rows, found {distinct} \
                 (of {} rows); lower k",
                x.n_rows()
            )));
        }
        Ok((xs, standardizer))
    }

    fn finish(
        &self,
        x: &Matrix,
        feature_names: &[String],
        standardizer: Option<Standardizer>,
        run: Run,
    ) -> Result<KMeans, MlError> {
        if !(run.inertia.is_finite() && run.centers.iter().all(|c| c.is_finite())) {
            return Err(MlError::Numerical(format!(
                "k-means distances overflowed (inertia {}); rescale the features or set \
                 standardize = true",
                run.inertia
            )));
        }
        let p = self.params();
        let profiles = ClusterProfiles::compute(x, &run.labels, p.k, feature_names)?;
        Ok(KMeans {
            params: p.clone(),
            feature_names: feature_names.to_vec(),
            standardizer,
            centers: Matrix::new(p.k, x.n_cols(), run.centers)?,
            inertia: run.inertia,
            iterations: run.iterations,
            converged: run.converged,
            n_train: x.n_rows(),
            profiles,
        })
    }
}

fn check_feature_names(x: &Matrix, feature_names: &[String]) -> Result<(), MlError> {
    if x.n_cols() != feature_names.len() {
        return Err(MlError::Shape(format!(
            "training matrix has {} columns but {} feature names",
            x.n_cols(),
            feature_names.len()
        )));
    }
    let mut seen = HashSet::new();
    if let Some(dup) = feature_names.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(MlError::Shape(format!(
            "feature name {dup:?} appears twice; profiles need unique names"
        )));
    }
    Ok(())
}

/// The number of distinct rows of `x`, counting no further than `limit`.
fn count_distinct_rows(x: &Matrix, limit: usize) -> usize {
    let mut seen: HashSet<Vec<u64>> = HashSet::new();
    for row in x.rows() {
        // `+ 0.0` maps -0.0 to 0.0, which is the same point.
        seen.insert(row.iter().map(|v| (v + 0.0).to_bits()).collect());
        if seen.len() >= limit {
            break;
        }
    }
    seen.len()
}

impl KMeans {
    /// The flavor name under which this model is stored in an [`Artifact`].
    pub const FLAVOR: &'static str = "kmeans";
    /// The newest artifact payload format this build writes and reads.
    pub const FORMAT_VERSION: u32 = 1;

    /// The centers in model space (`k × n_features`; standardized when fitted with
    /// `standardize`).
    pub fn centers(&self) -> &Matrix {
        &self.centers
    }

    /// The centers in the features' own units (`center × scale + mean` when standardized).
    pub fn centers_original(&self) -> Matrix {
        let Some(s) = &self.standardizer else {
            return self.centers.clone();
        };
        let mut c = self.centers.clone().into_data();
        for (j, v) in c.iter_mut().enumerate() {
            let f = j % s.n_cols();
            *v = *v * s.scales()[f] + s.means()[f];
        }
        Matrix::new(self.centers.n_rows(), self.centers.n_cols(), c)
            .unwrap_or_else(|_| self.centers.clone())
    }

    /// Sum of squared distances of the training rows to their nearest center (model space),
    /// scikit-learn's `inertia_`.
    pub fn inertia(&self) -> f64 {
        self.inertia
    }

    /// Lloyd iterations of the winning run (scikit-learn's `n_iter_`).
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// Whether the winning run converged within `max_iter`.
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// Number of training rows.
    pub fn n_train(&self) -> usize {
        self.n_train
    }

    /// The params the model was fitted with.
    pub fn params(&self) -> &KMeansParams {
        &self.params
    }

    /// The standardizer fitted on the training rows, if `standardize` was set.
    pub fn standardizer(&self) -> Option<&Standardizer> {
        self.standardizer.as_ref()
    }

    /// Profiles of the clusters over the training rows.
    pub fn profiles(&self) -> &ClusterProfiles {
        &self.profiles
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

    /// Row `i` of `x` in model space, written into `buf`.
    fn to_model_space<'a>(&self, row: &'a [f64], buf: &'a mut [f64]) -> &'a [f64] {
        match &self.standardizer {
            Some(s) => {
                s.transform_row_into(row, buf);
                buf
            }
            None => row,
        }
    }

    /// Rebuilds a model from an artifact of flavor [`KMeans::FLAVOR`], checking that the
    /// payload is complete, finite and consistent with the feature names.
    pub fn from_artifact(a: &Artifact) -> Result<KMeans, MlError> {
        let p: Payload = a.payload_as(Self::FLAVOR)?;
        p.params.validate()?;
        let d = a.feature_names.len();
        if d == 0 {
            return Err(MlError::Artifact("a k-means model needs features".into()));
        }
        if p.centers.len() != p.params.k || p.centers.iter().any(|c| c.len() != d) {
            return Err(MlError::Artifact(format!(
                "centers must be k × features = {} × {d}",
                p.params.k
            )));
        }
        if !p.centers.iter().flatten().all(|v| v.is_finite()) {
            return Err(MlError::Artifact("centers must be finite".into()));
        }
        if let Some(s) = &p.standardizer {
            if s.n_cols() != d {
                return Err(MlError::Artifact(format!(
                    "standardizer has {} columns for {d} feature names",
                    s.n_cols()
                )));
            }
        }
        if p.standardizer.is_some() != p.params.standardize {
            return Err(MlError::Artifact(
                "standardizer present iff params.standardize".into(),
            ));
        }
        if !(p.inertia.is_finite() && p.inertia >= 0.0) {
            return Err(MlError::Artifact(format!(
                "inertia {} is not finite and >= 0",
                p.inertia
            )));
        }
        p.profiles.check(p.params.k, &a.feature_names)?;
        let centers = Matrix::new(p.params.k, d, p.centers.concat())?;
        Ok(KMeans {
            params: p.params,
            feature_names: a.feature_names.clone(),
            standardizer: p.standardizer,
            centers,
            inertia: p.inertia,
            iterations: p.iterations,
            converged: p.converged,
            n_train: p.n_train,
            profiles: p.profiles,
        })
    }
}

impl Clusterer for KMeans {
    fn flavor(&self) -> &'static str {
        Self::FLAVOR
    }

    fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    fn n_clusters(&self) -> usize {
        self.params.k
    }

    /// The nearest center of each row (squared Euclidean distance in model space; the lowest
    /// index on ties).
    fn predict(&self, x: &Matrix) -> Result<Vec<usize>, MlError> {
        self.check_scoring_input(x)?;
        let d = self.feature_names.len();
        Ok((0..x.n_rows())
            .into_par_iter()
            .with_min_len(SCORE_MIN_LEN)
            .map_init(
                || vec![0.0; d],
                |buf, i| nearest(self.to_model_space(x.row(i), buf), self.centers.data(), d).0,
            )
            .collect())
    }

    /// Euclidean (not squared) distances to every center in model space, as scikit-learn's
    /// `KMeans.transform`.
    fn transform(&self, x: &Matrix) -> Result<Matrix, MlError> {
        self.check_scoring_input(x)?;
        let (k, d) = (self.params.k, self.feature_names.len());
        let mut out = vec![0.0; x.n_rows() * k];
        out.par_chunks_mut(k)
            .enumerate()
            .with_min_len(SCORE_MIN_LEN)
            .for_each_init(
                || vec![0.0; d],
                |buf, (i, o)| {
                    let z = self.to_model_space(x.row(i), buf);
                    for (v, c) in o.iter_mut().zip(self.centers.rows()) {
                        *v = sq_dist(z, c).sqrt();
                    }
                },
            );
        Matrix::new(x.n_rows(), k, out)
    }

    fn to_artifact(&self) -> Result<Artifact, MlError> {
        let payload = Payload {
            params: self.params.clone(),
            standardizer: self.standardizer.clone(),
            centers: self.centers.rows().map(<[f64]>::to_vec).collect(),
            inertia: self.inertia,
            iterations: self.iterations,
            converged: self.converged,
            n_train: self.n_train,
            profiles: self.profiles.clone(),
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
