//! Reliability (calibration) curves, as `sklearn.calibration.calibration_curve`.

use serde::{Deserialize, Serialize};

use super::{check_pair, check_probabilities};
use crate::error::MlError;

/// Largest accepted number of bins.
pub const MAX_BINS: usize = 10_000;

/// How [`calibration_curve`] places its bin edges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationStrategy {
    /// `n_bins` bins of equal width on `[0, 1]` (scikit-learn's `"uniform"`, its default).
    #[default]
    Uniform,
    /// Edges at the `0, 1/n_bins, …, 1` quantiles of the probabilities (NumPy's default
    /// linear-interpolation percentiles), so bins hold about the same number of rows; tied
    /// probabilities can make some bins empty (scikit-learn's `"quantile"`).
    Quantile,
}

/// One non-empty bin of a [`CalibrationCurve`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Zero-based bin index among all `n_bins` bins (empty ones included).
    pub bin: usize,
    /// Lower edge of the bin (rows equal to it belong to the previous bin, except in bin 0).
    pub lower: f64,
    /// Upper edge of the bin (inclusive).
    pub upper: f64,
    /// Rows in the bin.
    pub count: usize,
    /// Fraction of positive rows in the bin (scikit-learn's `prob_true`).
    pub prob_true: f64,
    /// Mean predicted probability in the bin (scikit-learn's `prob_pred`).
    pub prob_pred: f64,
}

/// The result of [`calibration_curve`]: bin edges and the non-empty bins in ascending order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationCurve {
    /// The strategy that placed the edges.
    pub strategy: CalibrationStrategy,
    /// The `n_bins + 1` bin edges, ascending.
    pub edges: Vec<f64>,
    /// The non-empty bins, by ascending bin index.
    pub bins: Vec<CalibrationBin>,
    /// Total number of rows.
    pub n_rows: usize,
}

impl CalibrationCurve {
    /// scikit-learn's first return value: the fraction of positives per non-empty bin.
    pub fn prob_true(&self) -> Vec<f64> {
        self.bins.iter().map(|b| b.prob_true).collect()
    }

    /// scikit-learn's second return value: the mean probability per non-empty bin.
    pub fn prob_pred(&self) -> Vec<f64> {
        self.bins.iter().map(|b| b.prob_pred).collect()
    }

    /// Expected calibration error: `Σ (count / n_rows) · |prob_true − prob_pred|` over the
    /// bins (0 for a perfectly calibrated model at this binning).
    pub fn expected_calibration_error(&self) -> f64 {
        let n = self.n_rows as f64;
        self.bins
            .iter()
            .map(|b| b.count as f64 / n * (b.prob_true - b.prob_pred).abs())
            .sum()
    }
}

/// Bins the probabilities `p` and compares the mean prediction with the observed positive rate
/// in each bin, exactly as `sklearn.calibration.calibration_curve(y, p, n_bins=…,
/// strategy=…)`.
///
/// A row goes to bin `i` when `edges[i] < p <= edges[i + 1]` (bin 0 also takes `p ==
/// edges[0]`): NumPy's `searchsorted(edges[1:-1], p)`. Edges are computed with the same
/// floating-point steps as NumPy (`linspace`, and `percentile` with linear interpolation), so
/// probabilities lying exactly on an edge land in the same bin as in scikit-learn. Only
/// non-empty bins are returned.
///
/// Fails with [`MlError::InvalidParam`] unless `1 <= n_bins <= 10000`, [`MlError::Shape`]
/// for empty or mismatched inputs, and [`MlError::OutOfRange`] for a probability outside
/// `[0, 1]` or NaN. A single class is fine (scikit-learn accepts it too).
pub fn calibration_curve(
    y: &[bool],
    p: &[f64],
    n_bins: usize,
    strategy: CalibrationStrategy,
) -> Result<CalibrationCurve, MlError> {
    if !(1..=MAX_BINS).contains(&n_bins) {
        return Err(MlError::invalid_param("n_bins", n_bins, "in 1..=10000"));
    }
    check_pair(y, p, "probabilities")?;
    check_probabilities(p)?;
    let edges = match strategy {
        CalibrationStrategy::Uniform => uniform_edges(n_bins),
        CalibrationStrategy::Quantile => quantile_edges(p, n_bins),
    };
    let inner = &edges[1..n_bins];
    let mut sums = vec![0.0; n_bins];
    let mut positives = vec![0usize; n_bins];
    let mut counts = vec![0usize; n_bins];
    for (&yi, &pi) in y.iter().zip(p) {
        let b = inner.partition_point(|&e| e < pi);
        sums[b] += pi;
        counts[b] += 1;
        positives[b] += usize::from(yi);
    }
    let bins = (0..n_bins)
        .filter(|&b| counts[b] > 0)
        .map(|b| CalibrationBin {
            bin: b,
            lower: edges[b],
            upper: edges[b + 1],
            count: counts[b],
            prob_true: positives[b] as f64 / counts[b] as f64,
            prob_pred: sums[b] / counts[b] as f64,
        })
        .collect();
    Ok(CalibrationCurve {
        strategy,
        edges,
        bins,
        n_rows: y.len(),
    })
}

/// `np.linspace(0, 1, n_bins + 1)`: `i · (1 / n_bins)`, with the last edge exactly 1.
fn linspace01(n_bins: usize) -> impl Iterator<Item = f64> {
    let step = 1.0 / n_bins as f64;
    (0..=n_bins).map(move |i| if i == n_bins { 1.0 } else { i as f64 * step })
}

fn uniform_edges(n_bins: usize) -> Vec<f64> {
    linspace01(n_bins).collect()
}

/// `np.percentile(p, np.linspace(0, 1, n_bins + 1) * 100)` with NumPy's default `"linear"`
/// method, reproducing its floating-point steps (the `× 100 / 100` round trip, the virtual
/// index `(n − 1) · q` and NumPy's two-sided `lerp`).
fn quantile_edges(p: &[f64], n_bins: usize) -> Vec<f64> {
    let mut sorted = p.to_vec();
    sorted.sort_by(f64::total_cmp);
    let last = sorted.len() - 1;
    linspace01(n_bins)
        .map(|q| {
            let q = (q * 100.0) / 100.0;
            let virtual_index = last as f64 * q;
            if virtual_index >= last as f64 {
                return sorted[last];
            }
            let previous = virtual_index.floor();
            let gamma = virtual_index - previous;
            let i = previous as usize;
            lerp(sorted[i], sorted[i + 1], gamma)
        })
        .collect()
}

/// NumPy's `_lerp`: `a + (b − a)·t`, or `b − (b − a)·(1 − t)` when `t >= 0.5`.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn edges_follow_numpy_rounding() {
        // np.linspace(0, 1, 11)[3] is 0.30000000000000004, so p = 0.3 falls in bin 2.
        let e = uniform_edges(10);
        assert_eq!(e[3], 0.30000000000000004);
        assert_eq!(e[10], 1.0);
        let c = calibration_curve(&[true], &[0.3], 10, CalibrationStrategy::Uniform).unwrap();
        assert_eq!(c.bins[0].bin, 2);
        // An edge is the upper, inclusive end of its bin.
        let c = calibration_curve(&[true], &[0.5], 2, CalibrationStrategy::Uniform).unwrap();
        assert_eq!(c.bins[0].bin, 0);
        let c = calibration_curve(&[true], &[0.0], 2, CalibrationStrategy::Uniform).unwrap();
        assert_eq!(c.bins[0].bin, 0);
    }

    #[test]
    fn quantile_edges_interpolate() {
        // np.percentile([0, .1, .2, .9], [0, 50, 100]) = [0, .15, .9]
        let e = quantile_edges(&[0.9, 0.1, 0.0, 0.2], 2);
        assert_eq!(e[0], 0.0);
        assert!((e[1] - 0.15).abs() < 1e-15, "{e:?}");
        assert_eq!(e[2], 0.9);
    }

    #[test]
    fn hand_computed_curve() {
        let y = [false, true, false, true, true, true];
        let p = [0.1, 0.2, 0.6, 0.7, 0.8, 0.9];
        let c = calibration_curve(&y, &p, 2, CalibrationStrategy::Uniform).unwrap();
        assert_eq!(c.prob_true(), vec![0.5, 0.75]);
        assert!((c.prob_pred()[0] - 0.15).abs() < 1e-15);
        assert!((c.prob_pred()[1] - 0.75).abs() < 1e-15);
        assert_eq!(c.bins.iter().map(|b| b.count).sum::<usize>(), 6);
        // ECE = 2/6 · |0.5 − 0.15| + 4/6 · 0
        assert!((c.expected_calibration_error() - 0.35 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_input() {
        let u = CalibrationStrategy::Uniform;
        let err = calibration_curve(&[true], &[0.5], 0, u).unwrap_err();
        assert_eq!(err.to_string(), "n_bins = 0: must be in 1..=10000");
        assert!(matches!(
            calibration_curve(&[], &[], 5, u),
            Err(MlError::Shape(_))
        ));
        assert!(matches!(
            calibration_curve(&[true], &[0.5, 0.2], 5, u),
            Err(MlError::Shape(_))
        ));
        for bad in [1.5, -0.1, f64::NAN, f64::INFINITY] {
            let err = calibration_curve(&[true, false], &[0.5, bad], 5, u).unwrap_err();
            assert!(matches!(err, MlError::OutOfRange { row: 1, .. }), "{err}");
            assert!(err.to_string().contains("must be in [0, 1]"), "{err}");
        }
    }
}
