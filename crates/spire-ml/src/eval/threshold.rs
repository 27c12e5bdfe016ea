//! Choosing a score threshold from a validation curve.

use serde::{Deserialize, Serialize};

use super::{check_finite, check_pair};
use crate::error::MlError;

/// A score threshold chosen on held-out rows, with what it achieved there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrecisionThreshold {
    /// Rows with `score >= threshold` are in the segment.
    pub threshold: f64,
    /// Precision of `score >= threshold` on the validation rows.
    pub precision: f64,
    /// Recall of `score >= threshold` on the validation rows.
    pub recall: f64,
    /// Validation rows at or above the threshold.
    pub selected: usize,
}

/// The lowest score threshold whose precision on `(y, score)` is at least `min_precision`,
/// i.e. the cut with the most recall among those precise enough; `None` when no cut
/// reaches it.
///
/// Candidate cuts are the distinct scores (all rows with equal scores are in or out
/// together), as `sklearn.metrics.precision_recall_curve`'s thresholds: the result is the
/// smallest threshold `t` of that curve with `precision[t] >= min_precision`.
///
/// Fails on mismatched or empty input, non-finite scores, `min_precision` outside `(0, 1]`,
/// and when `y` has no positive row.
pub fn precision_threshold(
    y: &[bool],
    score: &[f64],
    min_precision: f64,
) -> Result<Option<PrecisionThreshold>, MlError> {
    if !(min_precision > 0.0 && min_precision <= 1.0) {
        return Err(MlError::invalid_param(
            "min_precision",
            min_precision,
            "in (0, 1]",
        ));
    }
    check_pair(y, score, "scores")?;
    check_finite(score, "scores")?;
    let positives = y.iter().filter(|v| **v).count();
    if positives == 0 {
        return Err(MlError::Degenerate(
            "a precision threshold needs at least one positive validation row".into(),
        ));
    }
    let mut order: Vec<usize> = (0..y.len()).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let (mut tp, mut n) = (0usize, 0usize);
    let mut best = None;
    let mut i = 0;
    while i < order.len() {
        let s = score[order[i]];
        while i < order.len() && score[order[i]] == s {
            tp += usize::from(y[order[i]]);
            n += 1;
            i += 1;
        }
        let precision = tp as f64 / n as f64;
        if precision >= min_precision {
            best = Some(PrecisionThreshold {
                threshold: s,
                precision,
                recall: tp as f64 / positives as f64,
                selected: n,
            });
        }
    }
    Ok(best)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_lowest_precise_enough_cut() {
        // Scores descending: 0.9 (+), 0.8 (+), 0.7 (-), 0.6 (+), 0.5 (-), 0.4 (-).
        let y = [true, true, false, true, false, false];
        let s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        let t = precision_threshold(&y, &s, 0.75).unwrap().unwrap();
        // Cut at 0.6: 3 of 4 positive (0.75); at 0.5: 3 of 5 (0.6).
        assert_eq!(t.threshold, 0.6);
        assert_eq!((t.precision, t.recall, t.selected), (0.75, 1.0, 4));
        let t = precision_threshold(&y, &s, 1.0).unwrap().unwrap();
        assert_eq!((t.threshold, t.selected), (0.8, 2));
        assert_eq!(
            precision_threshold(&y, &s, 0.5).unwrap().unwrap().threshold,
            0.4,
            "everyone: 3 of 6"
        );
    }

    #[test]
    fn ties_move_together_and_unreachable_is_none() {
        let y = [true, false, true, false];
        let s = [0.5, 0.5, 0.2, 0.1];
        // The tie at 0.5 is half positive: precision 0.5, never 1.
        assert!(precision_threshold(&y, &s, 0.9).unwrap().is_none());
        assert!(precision_threshold(&y, &s, 0.0).is_err());
        assert!(precision_threshold(&[false, false], &[0.1, 0.2], 0.5).is_err());
        assert!(precision_threshold(&[true], &[f64::NAN], 0.5).is_err());
    }
}
