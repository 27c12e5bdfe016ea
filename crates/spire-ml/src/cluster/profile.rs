//! Cluster profiles: who is in each cluster, described in the features' own units.

use serde::{Deserialize, Serialize};

use crate::error::MlError;
use crate::matrix::Matrix;

/// One feature of one cluster: its mean in the cluster against the overall mean.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureProfile {
    /// The feature's name.
    pub feature: String,
    /// Mean of the feature over the cluster's rows, in the feature's own units.
    pub mean: f64,
    /// `mean − overall mean`.
    pub difference: f64,
    /// `mean / overall mean`; `None` when that is not a finite number (overall mean 0).
    pub ratio: Option<f64>,
    /// `difference / overall standard deviation`: how unusual the cluster is on this
    /// feature, comparable across features (0 for a constant feature).
    pub std_difference: f64,
}

/// One cluster: its size and how its rows differ from all rows, feature by feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterProfile {
    /// The cluster index.
    pub cluster: usize,
    /// Rows in the cluster.
    pub size: usize,
    /// `size / n_rows`.
    pub share: f64,
    /// One entry per feature in feature order; empty for an empty cluster.
    pub features: Vec<FeatureProfile>,
}

impl ClusterProfile {
    /// The `n` features that most distinguish the cluster: largest `|std_difference|` first,
    /// the earlier feature first on ties.
    pub fn top_features(&self, n: usize) -> Vec<&FeatureProfile> {
        let mut all: Vec<&FeatureProfile> = self.features.iter().collect();
        all.sort_by(|a, b| b.std_difference.abs().total_cmp(&a.std_difference.abs()));
        all.truncate(n);
        all
    }
}

/// Profiles of all clusters over a set of rows, plus the overall statistics they compare
/// against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterProfiles {
    /// Rows profiled.
    pub n_rows: usize,
    /// Mean of each feature over all rows.
    pub overall_means: Vec<f64>,
    /// Population standard deviation (`ddof = 0`) of each feature over all rows.
    pub overall_stds: Vec<f64>,
    /// One profile per cluster, in cluster order.
    pub clusters: Vec<ClusterProfile>,
}

impl ClusterProfiles {
    /// Profiles the rows of `x` (in the features' own units) grouped by `labels`.
    ///
    /// Fails with [`MlError::Shape`] when `x` has no rows, `labels` or `feature_names` do not
    /// match its shape, or a label is `>= k`; with [`MlError::InvalidParam`] when `k` is 0;
    /// and with [`MlError::NonFinite`] for a NaN or infinite cell.
    pub fn compute(
        x: &Matrix,
        labels: &[usize],
        k: usize,
        feature_names: &[String],
    ) -> Result<ClusterProfiles, MlError> {
        let (n, d) = (x.n_rows(), x.n_cols());
        if k == 0 {
            return Err(MlError::invalid_param("k", k, "in 1..=1000"));
        }
        if n == 0 {
            return Err(MlError::Shape(
                "cannot profile clusters of zero rows".into(),
            ));
        }
        if labels.len() != n || feature_names.len() != d {
            return Err(MlError::Shape(format!(
                "profiling {n} rows × {d} columns with {} labels and {} feature names",
                labels.len(),
                feature_names.len()
            )));
        }
        if let Some(row) = labels.iter().position(|&l| l >= k) {
            return Err(MlError::Shape(format!(
                "row {row} has cluster {} but there are only {k} clusters",
                labels[row]
            )));
        }
        x.check_finite("profiled matrix")?;
        let mut sums = vec![0.0; k * d];
        let mut sizes = vec![0usize; k];
        let mut total = vec![0.0; d];
        for (row, &c) in x.rows().zip(labels) {
            sizes[c] += 1;
            let s = &mut sums[c * d..(c + 1) * d];
            for ((s, t), v) in s.iter_mut().zip(total.iter_mut()).zip(row) {
                *s += v;
                *t += v;
            }
        }
        let overall_means: Vec<f64> = total.iter().map(|t| t / n as f64).collect();
        let mut sq = vec![0.0; d];
        for row in x.rows() {
            for ((s, v), m) in sq.iter_mut().zip(row).zip(&overall_means) {
                *s += (v - m) * (v - m);
            }
        }
        let overall_stds: Vec<f64> = sq.iter().map(|s| (s / n as f64).sqrt()).collect();
        let clusters = (0..k)
            .map(|c| ClusterProfile {
                cluster: c,
                size: sizes[c],
                share: sizes[c] as f64 / n as f64,
                features: if sizes[c] == 0 {
                    Vec::new()
                } else {
                    (0..d)
                        .map(|j| {
                            let mean = sums[c * d + j] / sizes[c] as f64;
                            feature_profile(
                                &feature_names[j],
                                mean,
                                overall_means[j],
                                overall_stds[j],
                            )
                        })
                        .collect()
                },
            })
            .collect();
        Ok(ClusterProfiles {
            n_rows: n,
            overall_means,
            overall_stds,
            clusters,
        })
    }

    /// Checks that these profiles describe `k` clusters over `feature_names` (used when
    /// loading an artifact).
    pub(crate) fn check(&self, k: usize, feature_names: &[String]) -> Result<(), MlError> {
        let d = feature_names.len();
        let bad = |what: String| Err(MlError::Artifact(format!("cluster profiles: {what}")));
        if self.clusters.len() != k {
            return bad(format!("{} profiles for {k} clusters", self.clusters.len()));
        }
        if self.overall_means.len() != d || self.overall_stds.len() != d {
            return bad(format!("overall statistics do not have {d} features"));
        }
        let sizes: usize = self.clusters.iter().map(|c| c.size).sum();
        if sizes != self.n_rows {
            return bad(format!("sizes add up to {sizes}, not {}", self.n_rows));
        }
        for (i, c) in self.clusters.iter().enumerate() {
            let expected = if c.size == 0 { 0 } else { d };
            if c.cluster != i || c.features.len() != expected {
                return bad(format!("profile {i} is malformed"));
            }
            if c.features
                .iter()
                .zip(feature_names)
                .any(|(f, n)| f.feature != *n)
            {
                return bad(format!("profile {i} names other features"));
            }
        }
        Ok(())
    }
}

fn feature_profile(name: &str, mean: f64, overall: f64, std: f64) -> FeatureProfile {
    let difference = mean - overall;
    let ratio = mean / overall;
    // Rounding noise on a constant column is not a distinguishing feature.
    let varies = std > 10.0 * f64::EPSILON * overall.abs().max(1.0);
    FeatureProfile {
        feature: name.to_string(),
        mean,
        difference,
        ratio: ratio.is_finite().then_some(ratio),
        std_difference: if varies { difference / std } else { 0.0 },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["visits", "spend", "flag"].map(String::from).to_vec()
    }

    #[test]
    fn hand_computed_profiles() {
        let x = Matrix::from_rows(&[
            [1.0, 10.0, 0.1],
            [3.0, 30.0, 0.1],
            [10.0, 0.0, 0.1],
            [10.0, 0.0, 0.1],
        ])
        .unwrap();
        let p = ClusterProfiles::compute(&x, &[0, 0, 1, 1], 3, &names()).unwrap();
        assert_eq!(p.overall_means[..2], [6.0, 10.0]);
        let c0 = &p.clusters[0];
        assert_eq!((c0.size, c0.share), (2, 0.5));
        assert_eq!(c0.features[0].mean, 2.0);
        assert_eq!(c0.features[0].difference, -4.0);
        assert_eq!(c0.features[0].ratio, Some(2.0 / 6.0));
        // visits: std = sqrt(mean([25, 9, 16, 16])) = sqrt(16.5)
        assert!((c0.features[0].std_difference + 4.0 / 16.5f64.sqrt()).abs() < 1e-12);
        // spend: std = sqrt(mean([0, 400, 100, 100])) = 12.247…, cluster 0 differs by +10
        // (0.816 std) against −4 visits (−0.985 std): visits distinguishes it most.
        let top: Vec<&str> = c0
            .top_features(2)
            .iter()
            .map(|f| f.feature.as_str())
            .collect();
        assert_eq!(top, ["visits", "spend"]);
        // The constant column never distinguishes.
        assert_eq!(c0.features[2].std_difference, 0.0);
        assert_eq!(c0.top_features(5).len(), 3);
        // Cluster 1 spends nothing: ratio 0; cluster 2 is empty.
        assert_eq!(p.clusters[1].features[1].ratio, Some(0.0));
        assert_eq!(p.clusters[2].size, 0);
        assert!(p.clusters[2].features.is_empty());
        p.check(3, &names()).unwrap();
        assert!(p.check(2, &names()).is_err());
    }

    #[test]
    fn ratio_is_none_for_zero_overall_mean() {
        let x = Matrix::from_rows(&[[-1.0], [1.0]]).unwrap();
        let p = ClusterProfiles::compute(&x, &[0, 1], 2, &["x".to_string()]).unwrap();
        assert_eq!(p.clusters[0].features[0].ratio, None);
        assert_eq!(p.clusters[0].features[0].std_difference, -1.0);
    }

    #[test]
    fn rejects_bad_input() {
        let x = Matrix::from_rows(&[[1.0, 2.0, 3.0]]).unwrap();
        assert!(ClusterProfiles::compute(&x, &[0], 0, &names()).is_err());
        assert!(ClusterProfiles::compute(&x, &[0, 1], 2, &names()).is_err());
        assert!(ClusterProfiles::compute(&x, &[0], 1, &names()[..2]).is_err());
        assert!(ClusterProfiles::compute(&x, &[3], 2, &names()).is_err());
        let empty = Matrix::zeros(0, 3);
        assert!(ClusterProfiles::compute(&empty, &[], 1, &names()).is_err());
        let nan = Matrix::from_rows(&[[1.0, f64::NAN, 3.0]]).unwrap();
        assert!(matches!(
            ClusterProfiles::compute(&nan, &[0], 1, &names()),
            Err(MlError::NonFinite { .. })
        ));
    }
}
