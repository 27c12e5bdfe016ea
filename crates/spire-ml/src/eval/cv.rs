//! Cross-validation folds keyed by entity, shared by every model of a family, and the
//! summary of per-fold metrics.
//!
//! ```
//! use spire_ml::eval::{cross_validate, KFold};
//! use spire_ml::roc_auc;
//!
//! let keys: Vec<String> = (0..100).map(|i| format!("user-{i}")).collect();
//! let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
//! let y: Vec<bool> = (0..100).map(|i| i % 4 == 0).collect();
//! let score: Vec<f64> = (0..100).map(|i| f64::from(i % 7)).collect();
//!
//! let folds = KFold::new(5, 42)?.stratified_folds(&keys, &y)?;
//! assert!(folds.positives(&y).iter().all(|&p| p == 5)); // 25 positives over 5 folds
//! let summary = cross_validate(&folds, |_fold, split| {
//!     let y_test: Vec<bool> = split.test.iter().map(|&i| y[i]).collect();
//!     let s_test: Vec<f64> = split.test.iter().map(|&i| score[i]).collect();
//!     Ok(vec![("auc".to_string(), roc_auc(&y_test, &s_test).unwrap_or(f64::NAN))])
//! })?;
//! let auc = summary.get("auc").unwrap();
//! assert_eq!(auc.values.len(), 5);
//! # Ok::<(), spire_ml::MlError>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::MlError;
use crate::split::{split_hash, Split};

/// Largest accepted number of folds.
pub const MAX_FOLDS: usize = 1000;

/// Mixed into the seed so that fold hashes are independent of [`crate::stratified_split`]'s
/// hashes for the same seed (else cross-validating the training side of a split made with
/// the same seed would see only part of the hash range). Fixed forever.
const FOLD_SEED_MIX: u64 = 0x9e37_79b9_7f4a_7c15;

/// Validated k-fold settings: the number of folds and the seed of the key hash.
///
/// Folds come from a hash of each row's key (e.g. `user_id`), never from row positions, so
/// every model trained on the same users gets the same folds whatever the row order, the
/// thread count or the machine:
/// - [`KFold::fold_of`] / [`KFold::folds`] depend on the key and seed only: a user is in the
///   same fold for *every* model of a family, whatever its label, and folds can be computed
///   anywhere (e.g. in SQL) from the documented hash. Fold sizes are balanced in
///   expectation only.
/// - [`KFold::stratified_folds`] also balances positives exactly (fold counts differ by at
///   most one per class). It depends on the labels too, so it is shared by every model
///   fitted on the same keys *and labels* (all candidate algorithms and hyper-parameters of
///   one segment), and a key keeps its fold when rows are reordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KFold {
    k: usize,
    seed: u64,
}

impl KFold {
    /// Checks `2 <= k <= 1000` ([`MlError::InvalidParam`] otherwise).
    pub fn new(k: usize, seed: u64) -> Result<KFold, MlError> {
        if !(2..=MAX_FOLDS).contains(&k) {
            return Err(MlError::invalid_param("k", k, "in 2..=1000"));
        }
        Ok(KFold { k, seed })
    }

    /// Number of folds.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Seed of the key hash.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The 64-bit hash ordering keys: [`split_hash`]`(seed ^ 0x9e3779b97f4a7c15, key)`.
    pub fn key_hash(&self, key: &str) -> u64 {
        split_hash(self.seed ^ FOLD_SEED_MIX, key)
    }

    /// The fold of `key`, in `0..k`: `(key_hash(key) · k) >> 64` (the hash scaled to `k`
    /// equal ranges). A pure function of key, `k` and seed.
    pub fn fold_of(&self, key: &str) -> usize {
        ((u128::from(self.key_hash(key)) * self.k as u128) >> 64) as usize
    }

    /// Label-free folds: row `i` goes to [`KFold::fold_of`]`(keys[i])`; rows sharing a key share
    /// a fold.
    ///
    /// Fails with [`MlError::Degenerate`] when a fold gets no row (too few distinct keys for
    /// `k`).
    pub fn folds(&self, keys: &[&str]) -> Result<Folds, MlError> {
        Folds::new(self.k, keys.iter().map(|key| self.fold_of(key)).collect())
    }

    /// Stratified folds: within each class, keys are ranked by [`KFold::key_hash`] (then by
    /// the key itself) and dealt to folds in turn, positives first, negatives continuing where
    /// the positives stopped. Each fold thus gets `⌊n_pos / k⌋` or `⌈n_pos / k⌉` positives,
    /// likewise negatives, and fold sizes differ by at most one.
    ///
    /// Fails with [`MlError::Shape`] when lengths differ or a key appears twice (one row per
    /// key, else a user could sit on both sides of a fold), and with [`MlError::Degenerate`]
    /// when a class has fewer than `k` rows (some fold would lack it, so AUC is undefined
    /// there).
    pub fn stratified_folds(&self, keys: &[&str], y: &[bool]) -> Result<Folds, MlError> {
        if keys.len() != y.len() {
            return Err(MlError::Shape(format!(
                "{} keys but {} labels",
                keys.len(),
                y.len()
            )));
        }
        let n_pos = y.iter().filter(|&&v| v).count();
        for (class, count) in [("positive", n_pos), ("negative", y.len() - n_pos)] {
            if count < self.k {
                return Err(MlError::Degenerate(format!(
                    "stratified {}-fold cross-validation needs at least {} {class} rows, \
                     found {count}; use fewer folds or more data",
                    self.k, self.k
                )));
            }
        }
        let mut ranked: Vec<(u64, &str, usize)> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| (self.key_hash(key), *key, i))
            .collect();
        ranked.sort_unstable();
        if let Some(w) = ranked.windows(2).find(|w| w[0].1 == w[1].1) {
            return Err(MlError::Shape(format!(
                "key {:?} appears in rows {} and {}; cross-validation needs one row per key",
                w[0].1,
                w[0].2.min(w[1].2),
                w[0].2.max(w[1].2)
            )));
        }
        let mut assignment = vec![0; y.len()];
        let mut next = 0;
        for class in [true, false] {
            for &(_, _, i) in ranked.iter().filter(|r| y[r.2] == class) {
                assignment[i] = next;
                next = (next + 1) % self.k;
            }
        }
        Folds::new(self.k, assignment)
    }
}

/// A fold number for every row; fold `f`'s [`Split`] tests on the rows of fold `f` and trains
/// on all others.
///
/// Deserializing checks the same invariants as [`Folds::new`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedFolds")]
pub struct Folds {
    k: usize,
    assignment: Vec<usize>,
}

/// The serialized form, checked into [`Folds`] on deserialization.
#[derive(Deserialize)]
struct UncheckedFolds {
    k: usize,
    assignment: Vec<usize>,
}

impl TryFrom<UncheckedFolds> for Folds {
    type Error = MlError;

    fn try_from(u: UncheckedFolds) -> Result<Folds, MlError> {
        Folds::new(u.k, u.assignment)
    }
}

impl Folds {
    /// Wraps a fold number per row (e.g. computed in SQL from [`KFold::key_hash`]).
    ///
    /// Fails with [`MlError::InvalidParam`] unless `2 <= k <= 1000`, [`MlError::Shape`] when a
    /// fold number is `>= k`, and [`MlError::Degenerate`] when a fold is empty.
    pub fn new(k: usize, assignment: Vec<usize>) -> Result<Folds, MlError> {
        KFold::new(k, 0)?;
        if let Some(row) = assignment.iter().position(|&f| f >= k) {
            return Err(MlError::Shape(format!(
                "row {row} is in fold {} but there are only {k} folds",
                assignment[row]
            )));
        }
        let folds = Folds { k, assignment };
        if let Some(f) = folds.sizes().iter().position(|&s| s == 0) {
            return Err(MlError::Degenerate(format!(
                "fold {f} of {k} has no rows ({} rows in all); use fewer folds or more data",
                folds.assignment.len()
            )));
        }
        Ok(folds)
    }

    /// Number of folds.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The fold of every row, in row order.
    pub fn assignment(&self) -> &[usize] {
        &self.assignment
    }

    /// Rows per fold.
    pub fn sizes(&self) -> Vec<usize> {
        let mut sizes = vec![0; self.k];
        for &f in &self.assignment {
            sizes[f] += 1;
        }
        sizes
    }

    /// Positive rows per fold, for labels `y` in the same row order (rows beyond `y`'s length
    /// are not counted).
    pub fn positives(&self, y: &[bool]) -> Vec<usize> {
        let mut counts = vec![0; self.k];
        for (&f, &label) in self.assignment.iter().zip(y) {
            counts[f] += usize::from(label);
        }
        counts
    }

    /// The split of fold `fold` (test = its rows, train = the rest, both ascending), or `None`
    /// when `fold >= k`.
    pub fn split(&self, fold: usize) -> Option<Split> {
        (fold < self.k).then(|| {
            let mut split = Split::default();
            for (i, &f) in self.assignment.iter().enumerate() {
                if f == fold {
                    split.test.push(i);
                } else {
                    split.train.push(i);
                }
            }
            split
        })
    }

    /// The splits of folds `0..k`, in order.
    pub fn splits(&self) -> impl Iterator<Item = Split> + '_ {
        (0..self.k).filter_map(|f| self.split(f))
    }
}

/// Runs `evaluate(fold, split)` on every fold in order and summarises the metrics it returns.
///
/// `evaluate` typically fits on `split.train` and scores `split.test`; it returns `(metric
/// name, value)` pairs, the same names in the same order for every fold. Its errors are
/// returned as they are; otherwise fails like [`CvSummary::from_folds`].
pub fn cross_validate<F>(folds: &Folds, mut evaluate: F) -> Result<CvSummary, MlError>
where
    F: FnMut(usize, &Split) -> Result<Vec<(String, f64)>, MlError>,
{
    let per_fold = folds
        .splits()
        .enumerate()
        .map(|(f, split)| evaluate(f, &split))
        .collect::<Result<Vec<_>, MlError>>()?;
    CvSummary::from_folds(&per_fold)
}

/// One metric across folds: its per-fold values, mean and standard deviation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// The metric's name, e.g. `"auc"`.
    pub name: String,
    /// The value in each fold, in fold order.
    pub values: Vec<f64>,
    /// Arithmetic mean of `values`.
    pub mean: f64,
    /// Population standard deviation of `values` (`ddof = 0`, NumPy's `np.std` default):
    /// `sqrt(Σ (v − mean)² / n)`. See [`MetricSummary::sample_std`] for `ddof = 1`.
    pub std: f64,
}

impl MetricSummary {
    fn new(name: String, values: Vec<f64>) -> MetricSummary {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
        MetricSummary {
            name,
            values,
            mean,
            std,
        }
    }

    /// Sample standard deviation (`ddof = 1`, pandas' default); `None` with a single fold.
    pub fn sample_std(&self) -> Option<f64> {
        let n = self.values.len();
        (n > 1).then(|| self.std * (n as f64 / (n - 1) as f64).sqrt())
    }
}

impl fmt::Display for MetricSummary {
    /// `auc = 0.7815 ± 0.0123 (5 folds)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = {:.4} ± {:.4} ({} folds)",
            self.name,
            self.mean,
            self.std,
            self.values.len()
        )
    }
}

/// Mean ± standard deviation of every metric over the folds of a cross-validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CvSummary {
    /// One summary per metric, in the order the folds reported them.
    pub metrics: Vec<MetricSummary>,
}

impl CvSummary {
    /// Summarises per-fold `(name, value)` lists.
    ///
    /// Fails with [`MlError::Degenerate`] when there is no fold, no metric, or a NaN or
    /// infinite value (e.g. an undefined AUC in a fold without positives), and with
    /// [`MlError::Shape`] when folds report different metric names (or one name twice).
    pub fn from_folds(per_fold: &[Vec<(String, f64)>]) -> Result<CvSummary, MlError> {
        let Some(first) = per_fold.first() else {
            return Err(MlError::Degenerate(
                "cross-validation summary needs at least one fold".into(),
            ));
        };
        if first.is_empty() {
            return Err(MlError::Degenerate("fold 0 reported no metric".into()));
        }
        let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
        if let Some(i) = (1..names.len()).find(|&i| names[..i].contains(&names[i])) {
            return Err(MlError::Shape(format!(
                "fold 0 reports metric {:?} twice",
                names[i]
            )));
        }
        for (f, fold) in per_fold.iter().enumerate() {
            let these: Vec<&str> = fold.iter().map(|(n, _)| n.as_str()).collect();
            if these != names {
                return Err(MlError::Shape(format!(
                    "fold {f} reports metrics {these:?}, fold 0 reported {names:?}"
                )));
            }
            if let Some((name, v)) = fold.iter().find(|(_, v)| !v.is_finite()) {
                return Err(MlError::Degenerate(format!(
                    "metric {name} is {v} in fold {f}; a fold without both classes cannot \
                     score ranking metrics: use stratified folds or fewer folds"
                )));
            }
        }
        let metrics = names
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let values = per_fold.iter().map(|fold| fold[j].1).collect();
                MetricSummary::new(name.to_string(), values)
            })
            .collect();
        Ok(CvSummary { metrics })
    }

    /// The summary of metric `name`, if reported.
    pub fn get(&self, name: &str) -> Option<&MetricSummary> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// Number of folds summarised.
    pub fn n_folds(&self) -> usize {
        self.metrics.first().map_or(0, |m| m.values.len())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
        pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    #[test]
    fn summary_matches_numpy_ddof0() {
        // np.mean([0.7, 0.8, 0.9, 0.6]) = 0.75, np.std(...) = sqrt(0.0125)
        let folds = [0.7, 0.8, 0.9, 0.6].map(|v| m(&[("auc", v), ("ll", 1.0 - v)]));
        let s = CvSummary::from_folds(&folds).unwrap();
        assert_eq!(s.n_folds(), 4);
        let auc = s.get("auc").unwrap();
        assert!((auc.mean - 0.75).abs() < 1e-15);
        assert!((auc.std - 0.0125f64.sqrt()).abs() < 1e-15);
        let sample = auc.sample_std().unwrap();
        assert!((sample - (0.05f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(auc.to_string(), "auc = 0.7500 ± 0.1118 (4 folds)");
        assert_eq!(s.metrics[1].name, "ll");
        assert!(s.get("lift").is_none());
    }

    #[test]
    fn summary_rejects_inconsistent_folds() {
        let err = CvSummary::from_folds(&[]).unwrap_err();
        assert!(matches!(err, MlError::Degenerate(_)));
        let err = CvSummary::from_folds(&[m(&[("auc", 0.7)]), m(&[("ap", 0.2)])]).unwrap_err();
        assert!(err.to_string().contains("fold 1 reports"), "{err}");
        let err = CvSummary::from_folds(&[m(&[("auc", 0.7), ("auc", 0.2)])]).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
        let err =
            CvSummary::from_folds(&[m(&[("auc", 0.7)]), m(&[("auc", f64::NAN)])]).unwrap_err();
        assert!(err.to_string().contains("auc is NaN in fold 1"), "{err}");
    }

    #[test]
    fn fold_of_is_pinned_and_in_range() {
        let kf = KFold::new(5, 42).unwrap();
        assert_eq!(
            kf.key_hash("user-1"),
            split_hash(42 ^ FOLD_SEED_MIX, "user-1")
        );
        for i in 0..1000 {
            assert!(kf.fold_of(&format!("u{i}")) < 5);
        }
        assert_eq!(
            KFold::new(1, 0).unwrap_err().to_string(),
            "k = 1: must be in 2..=1000"
        );
        assert!(KFold::new(1001, 0).is_err());
    }

    #[test]
    fn folds_new_checks_assignment() {
        assert!(matches!(Folds::new(2, vec![0, 2]), Err(MlError::Shape(_))));
        let err = Folds::new(3, vec![0, 1, 1]).unwrap_err();
        assert!(err.to_string().contains("fold 2 of 3 has no rows"), "{err}");
        let f = Folds::new(2, vec![1, 0, 1]).unwrap();
        assert_eq!(
            f.split(1).unwrap(),
            Split {
                train: vec![1],
                test: vec![0, 2]
            }
        );
        assert!(f.split(2).is_none());
        assert_eq!(f.positives(&[true, true, false]), vec![1, 1]);
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<Folds>(&json).unwrap(), f);
        let bad = serde_json::from_str::<Folds>(r#"{"k": 2, "assignment": [0, 5]}"#);
        assert!(bad.unwrap_err().to_string().contains("row 1 is in fold 5"));
    }
}
