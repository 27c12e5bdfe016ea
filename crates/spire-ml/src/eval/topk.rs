//! Precision, recall and lift at the top fraction of rows ranked by score.
//!
//! # Ties
//! Rows are ranked by descending score. When the cut falls inside a group of tied scores,
//! the metrics take the *expected value over a uniformly random order of the tied rows*: the
//! `m` rows needed from a tied group of `g` rows holding `g⁺` positives contribute
//! `m · g⁺ / g` true positives. The result is deterministic and does not depend on row order
//! (unlike "first rows win"), and when no tie straddles the cut it is exactly
//! scikit-learn's `precision_score(y, score >= threshold)` (and `recall_score`).
//!
//! # Relation to scikit-learn
//! scikit-learn has no top-k lift, but the values are computable from its ROC counts:
//! `fpr, tpr, _ = roc_curve(y, score, drop_intermediate=False)` gives, per distinct score in
//! descending order, the cumulative positives `tps = tpr · P` and negatives `fps = fpr · N`
//! above each threshold; the expected true positives at `n_top` rows are the linear
//! interpolation of `tps` against `tps + fps` at `n_top`. `tests/fixtures/
//! make_metric_fixtures.py` computes the reference values that way.

use serde::{Deserialize, Serialize};

use super::{check_finite, check_pair};
use crate::error::MlError;

/// Precision, recall and lift of the top `fraction` of rows (see the module docs for ties).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopK {
    /// The requested fraction of rows, in `(0, 1]`.
    pub fraction: f64,
    /// Rows selected: `round(fraction · n_rows)` (half away from zero), at least 1.
    pub n_top: usize,
    /// All rows.
    pub n_rows: usize,
    /// Positive rows among all rows.
    pub n_positive: usize,
    /// The lowest selected score: every row above it is selected, rows equal to it are
    /// selected in part when the cut falls inside their tie.
    pub threshold: f64,
    /// Rows whose score equals `threshold`.
    pub tied_at_cut: usize,
    /// How many of the `tied_at_cut` rows are in the top (all of them when no tie straddles
    /// the cut).
    pub taken_from_tie: usize,
    /// Expected positives among the selected rows.
    pub true_positives: f64,
    /// `true_positives / n_top`.
    pub precision: f64,
    /// `true_positives / n_positive`: the share of all positives captured by the top.
    pub recall: f64,
    /// `precision / (n_positive / n_rows)`: how many times the base rate the top achieves
    /// (1 for a random ranking).
    pub lift: f64,
}

/// Precision, recall and lift at the top `fraction` of rows by `score` (`true` = positive).
///
/// Fails with [`MlError::InvalidParam`] unless `0 < fraction <= 1`, [`MlError::Shape`] for
/// empty or mismatched inputs, [`MlError::NonFinite`] for a NaN or infinite score, and
/// [`MlError::Degenerate`] when no row is positive (recall and lift are then undefined).
///
/// ```
/// use spire_ml::eval::top_k;
///
/// let y = [true, false, true, false, false, false, false, false, false, false];
/// let s = [0.9, 0.8, 0.7, 0.4, 0.3, 0.3, 0.2, 0.1, 0.1, 0.0];
/// let t = top_k(&y, &s, 0.2)?; // the 2 best-scored rows
/// assert_eq!((t.n_top, t.precision, t.recall), (2, 0.5, 0.5));
/// assert!((t.lift - 2.5).abs() < 1e-12); // 0.5 against a base rate of 0.2
/// # Ok::<(), spire_ml::MlError>(())
/// ```
pub fn top_k(y: &[bool], score: &[f64], fraction: f64) -> Result<TopK, MlError> {
    let mut all = top_k_curve(y, score, &[fraction])?;
    all.pop()
        .ok_or_else(|| MlError::Numerical("top_k_curve returned no point".into()))
}

/// [`top_k`] at several fractions, sorting the rows once; results follow `fractions`' order.
///
/// Fails like [`top_k`], naming the first invalid fraction.
pub fn top_k_curve(y: &[bool], score: &[f64], fractions: &[f64]) -> Result<Vec<TopK>, MlError> {
    if let Some(&f) = fractions.iter().find(|&&f| !(f > 0.0 && f <= 1.0)) {
        return Err(MlError::invalid_param("fraction", f, "in (0, 1]"));
    }
    check_pair(y, score, "scores")?;
    check_finite(score, "scores")?;
    let n_rows = y.len();
    let n_positive = y.iter().filter(|&&v| v).count();
    if n_positive == 0 {
        return Err(MlError::Degenerate(
            "top-k recall and lift need at least one positive row; every label is false".into(),
        ));
    }
    let groups = descending_groups(y, score);
    Ok(fractions
        .iter()
        .map(|&fraction| {
            let n_top = ((fraction * n_rows as f64).round() as usize).clamp(1, n_rows);
            at(&groups, fraction, n_top, n_rows, n_positive)
        })
        .collect())
}

/// A run of equal scores: the score, rows and positives before it, and its own counts.
struct Group {
    score: f64,
    rows_before: usize,
    positives_before: usize,
    rows: usize,
    positives: usize,
}

/// Groups rows by distinct score, best score first, with cumulative counts.
fn descending_groups(y: &[bool], score: &[f64]) -> Vec<Group> {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let mut groups: Vec<Group> = Vec::new();
    let (mut rows_before, mut positives_before) = (0, 0);
    for &i in &idx {
        // `==` (not bit equality) so that -0.0 and 0.0 tie, as in NumPy.
        if groups.last().is_none_or(|g| g.score != score[i]) {
            groups.push(Group {
                score: score[i],
                rows_before,
                positives_before,
                rows: 0,
                positives: 0,
            });
        }
        if let Some(g) = groups.last_mut() {
            g.rows += 1;
            g.positives += usize::from(y[i]);
        }
        rows_before += 1;
        positives_before += usize::from(y[i]);
    }
    groups
}

fn at(groups: &[Group], fraction: f64, n_top: usize, n_rows: usize, n_positive: usize) -> TopK {
    // The group holding the n_top-th row; n_top <= n_rows, so it exists.
    let gi = groups
        .partition_point(|g| g.rows_before + g.rows < n_top)
        .min(groups.len() - 1);
    let g = &groups[gi];
    let taken = n_top - g.rows_before;
    let true_positives =
        g.positives_before as f64 + taken as f64 * g.positives as f64 / g.rows as f64;
    let precision = true_positives / n_top as f64;
    TopK {
        fraction,
        n_top,
        n_rows,
        n_positive,
        threshold: g.score,
        tied_at_cut: g.rows,
        taken_from_tie: taken,
        true_positives,
        precision,
        recall: true_positives / n_positive as f64,
        lift: precision / (n_positive as f64 / n_rows as f64),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tie_at_cut_counts_expected_positives() {
        // Scores: 0.9 (pos), then a tie of four at 0.5 holding one positive, then 0.1 (pos).
        let y = [true, false, true, false, false, true];
        let s = [0.9, 0.5, 0.5, 0.5, 0.5, 0.1];
        // Top 3 rows = 0.9 plus 2 of the 4 tied rows: 1 + 2 · 1/4 positives.
        let t = top_k(&y, &s, 0.5).unwrap();
        assert_eq!((t.n_top, t.tied_at_cut, t.taken_from_tie), (3, 4, 2));
        assert_eq!(t.threshold, 0.5);
        assert!((t.true_positives - 1.5).abs() < 1e-15);
        assert!((t.precision - 0.5).abs() < 1e-15);
        assert!((t.recall - 0.5).abs() < 1e-15);
        assert!((t.lift - 1.0).abs() < 1e-15);
        // Row order does not matter.
        let yr: Vec<bool> = y.iter().rev().copied().collect();
        let sr: Vec<f64> = s.iter().rev().copied().collect();
        assert_eq!(top_k(&yr, &sr, 0.5).unwrap(), t);
    }

    #[test]
    fn whole_population_has_lift_one() {
        let y = [true, false, false, true];
        let t = top_k(&y, &[0.3, 0.1, 0.7, 0.2], 1.0).unwrap();
        assert_eq!(t.n_top, 4);
        assert_eq!((t.precision, t.recall, t.lift), (0.5, 1.0, 1.0));
        // At least one row is selected however small the fraction.
        assert_eq!(top_k(&y, &[0.3, 0.1, 0.7, 0.2], 1e-9).unwrap().n_top, 1);
    }

    #[test]
    fn curve_keeps_fraction_order() {
        let y = [true, false, true, false];
        let s = [0.9, 0.8, 0.7, 0.6];
        let c = top_k_curve(&y, &s, &[0.5, 0.25, 1.0]).unwrap();
        let p: Vec<f64> = c.iter().map(|t| t.precision).collect();
        assert_eq!(p, vec![0.5, 1.0, 0.5]);
    }

    #[test]
    fn rejects_bad_input() {
        for f in [0.0, -0.5, 1.5, f64::NAN] {
            let err = top_k(&[true], &[0.5], f).unwrap_err();
            assert!(err.to_string().starts_with("fraction = "), "{err}");
        }
        assert!(matches!(top_k(&[], &[], 0.1), Err(MlError::Shape(_))));
        assert!(matches!(
            top_k(&[true], &[0.1, 0.2], 0.1),
            Err(MlError::Shape(_))
        ));
        let err = top_k(&[true, false], &[0.1, f64::NEG_INFINITY], 0.5).unwrap_err();
        assert!(matches!(err, MlError::NonFinite { row: 1, .. }), "{err}");
        let err = top_k(&[false, false], &[0.1, 0.2], 0.5).unwrap_err();
        assert!(matches!(err, MlError::Degenerate(_)), "{err}");
    }
}
