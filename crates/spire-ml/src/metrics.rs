//! Classification metrics with scikit-learn's semantics.
//!
//! Labels are `bool` (`true` = positive class). Ranking metrics return `None` where
//! scikit-learn would raise or warn (a missing class, mismatched lengths, NaN scores);
//! probability metrics return NaN for empty or mismatched inputs.

/// Clip bound for probabilities in [`log_loss`]: the machine epsilon of `f64` (`2.22e-16`),
/// as scikit-learn ≥ 1.5 (which clips to `np.finfo(dtype).eps`; older versions used `1e-15`).
pub const LOG_LOSS_EPS: f64 = f64::EPSILON;

/// Groups rows into runs of equal scores, in ascending score order.
///
/// Each group is the `(positives, negatives)` count of one distinct score.
fn tie_groups(y: &[bool], score: &[f64]) -> Vec<(u64, u64)> {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    let mut groups: Vec<(u64, u64)> = Vec::new();
    let mut last: Option<f64> = None;
    for &i in &idx {
        // `==` (not bit equality) so that -0.0 and 0.0 tie, as in NumPy.
        if last != Some(score[i]) {
            groups.push((0, 0));
            last = Some(score[i]);
        }
        if let Some(g) = groups.last_mut() {
            if y[i] {
                g.0 += 1;
            } else {
                g.1 += 1;
            }
        }
    }
    groups
}

fn usable(y: &[bool], score: &[f64]) -> bool {
    y.len() == score.len() && !score.iter().any(|s| s.is_nan())
}

/// Area under the ROC curve, as `sklearn.metrics.roc_auc_score`.
///
/// Equals the probability that a random positive scores above a random negative, ties
/// counting one half (the Mann–Whitney U statistic with average ranks), which is what
/// scikit-learn's trapezoidal curve gives. Computed exactly in integers, then divided.
/// `None` when only one class is present, lengths differ, or a score is NaN.
pub fn roc_auc(y: &[bool], score: &[f64]) -> Option<f64> {
    if !usable(y, score) {
        return None;
    }
    let (mut n_pos, mut n_neg) = (0u128, 0u128);
    // Twice the U statistic: each positive gets 2 per negative below it and 1 per tied one.
    let mut twice_u: u128 = 0;
    for (pos, neg) in tie_groups(y, score) {
        let (pos, neg) = (u128::from(pos), u128::from(neg));
        twice_u += pos * (2 * n_neg + neg);
        n_pos += pos;
        n_neg += neg;
    }
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    Some(twice_u as f64 / (2 * n_pos * n_neg) as f64)
}

/// Average precision, as `sklearn.metrics.average_precision_score`.
///
/// `AP = Σ_k (R_k − R_{k−1}) · P_k` over the distinct scores taken as thresholds in
/// descending order (a step function, no interpolation); tied scores form one threshold.
/// `None` when there is no positive row, lengths differ, or a score is NaN; 1 when every
/// row is positive.
pub fn average_precision(y: &[bool], score: &[f64]) -> Option<f64> {
    if !usable(y, score) {
        return None;
    }
    let groups = tie_groups(y, score);
    let n_pos: u64 = groups.iter().map(|g| g.0).sum();
    if n_pos == 0 {
        return None;
    }
    let (mut tp, mut fp) = (0u64, 0u64);
    let mut ap = 0.0;
    for &(pos, neg) in groups.iter().rev() {
        tp += pos;
        fp += neg;
        if pos > 0 {
            let recall_gain = pos as f64 / n_pos as f64;
            let precision = tp as f64 / (tp + fp) as f64;
            ap += recall_gain * precision;
        }
    }
    Some(ap)
}

/// Mean binary cross-entropy, as `sklearn.metrics.log_loss`: the probability given to the
/// observed class (`p` for a positive, `1 − p` for a negative) is clipped to
/// `[ε, 1 − ε]` with `ε =` [`LOG_LOSS_EPS`] before taking its log. NaN for empty or mismatched
/// inputs or a NaN probability. scikit-learn rejects probabilities outside `[0, 1]`; this
/// function clips them like any other.
pub fn log_loss(y: &[bool], p: &[f64]) -> f64 {
    if y.is_empty() || y.len() != p.len() {
        return f64::NAN;
    }
    let total: f64 = y
        .iter()
        .zip(p)
        .map(|(&yi, &pi)| {
            let q = if yi { pi } else { 1.0 - pi };
            -q.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS).ln()
        })
        .sum();
    total / y.len() as f64
}

/// Mean squared difference between probability and outcome, as
/// `sklearn.metrics.brier_score_loss`. NaN for empty or mismatched inputs.
pub fn brier_score(y: &[bool], p: &[f64]) -> f64 {
    if y.is_empty() || y.len() != p.len() {
        return f64::NAN;
    }
    let total: f64 = y
        .iter()
        .zip(p)
        .map(|(&yi, &pi)| {
            let d = pi - if yi { 1.0 } else { 0.0 };
            d * d
        })
        .sum();
    total / y.len() as f64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn auc_hand_computed() {
        // Perfect, reversed, and all tied.
        let y = [false, false, true, true];
        assert_eq!(roc_auc(&y, &[0.1, 0.2, 0.3, 0.4]), Some(1.0));
        assert_eq!(roc_auc(&y, &[0.4, 0.3, 0.2, 0.1]), Some(0.0));
        assert_eq!(roc_auc(&y, &[0.5; 4]), Some(0.5));
        // sklearn's classic example: roc_auc_score([0,0,1,1], [.1,.4,.35,.8]) = 0.75.
        assert_eq!(roc_auc(&y, &[0.1, 0.4, 0.35, 0.8]), Some(0.75));
        // One tie between a positive and a negative: pairs (n,p): 3 wins + 1 half of 4.
        assert_eq!(roc_auc(&y, &[0.1, 0.3, 0.3, 0.8]), Some(0.875));
    }

    #[test]
    fn auc_undefined_cases() {
        assert_eq!(roc_auc(&[true, true], &[0.1, 0.2]), None);
        assert_eq!(roc_auc(&[false, true], &[0.1]), None);
        assert_eq!(roc_auc(&[false, true], &[0.1, f64::NAN]), None);
        assert_eq!(roc_auc(&[], &[]), None);
    }

    #[test]
    fn ap_hand_computed() {
        // sklearn docs: average_precision_score([0,0,1,1], [.1,.4,.35,.8]) = 0.8333…
        let y = [false, false, true, true];
        assert!(close(
            average_precision(&y, &[0.1, 0.4, 0.35, 0.8]).unwrap(),
            5.0 / 6.0
        ));
        // All tied: one threshold, precision = base rate.
        assert!(close(average_precision(&y, &[0.5; 4]).unwrap(), 0.5));
        // Tie at the top between a positive and a negative: 0.5·0.5 + 0.5·(2/3).
        let ap = average_precision(&[true, false, true, false], &[0.9, 0.9, 0.5, 0.1]).unwrap();
        assert!(close(ap, 0.25 + 1.0 / 3.0), "{ap}");
        assert_eq!(average_precision(&[false, false], &[0.1, 0.2]), None);
        assert_eq!(average_precision(&[true, true], &[0.1, 0.2]), Some(1.0));
    }

    #[test]
    fn probability_metrics() {
        let y = [true, false];
        assert!(close(
            log_loss(&y, &[0.8, 0.3]),
            -(0.8f64.ln() + 0.7f64.ln()) / 2.0
        ));
        // Clipping keeps certain mistakes finite: -ln(2.22e-16) ≈ 36.04.
        assert!(close(log_loss(&[true], &[0.0]), -(f64::EPSILON).ln()));
        assert!(close(log_loss(&[false], &[1.0]), -(f64::EPSILON).ln()));
        assert!(log_loss(&[], &[]).is_nan());
        assert!(close(brier_score(&y, &[0.8, 0.3]), (0.04 + 0.09) / 2.0));
        assert!(brier_score(&y, &[0.8]).is_nan());
    }
}
