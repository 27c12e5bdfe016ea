//! Metric properties on a small fixed dataset with many ties.

use spire_ml::{average_precision, roc_auc};

/// Labels and one-decimal probabilities (so many ties) drawn once with NumPy
/// (`default_rng(11)`).
const Y: [bool; 30] = [
    true, false, false, true, true, false, true, true, false, false, true, false, false, true,
    true, false, false, false, false, false, false, true, false, false, true, false, true, false,
    false, true,
];
const P: [f64; 30] = [
    0.6, 0.2, 0.1, 0.9, 0.6, 0.1, 0.8, 0.4, 0.6, 0.2, 0.3, 0.1, 0.2, 0.6, 0.9, 0.5, 0.2, 0.05, 0.1,
    0.7, 0.3, 0.8, 0.05, 0.05, 0.9, 0.4, 0.5, 0.2, 0.1, 0.4,
];

fn close(got: f64, want: f64) {
    assert!((got - want).abs() < 1e-12, "got {got}, want {want}");
}

// Agreement with scikit-learn on this set and seven others is checked in eval.rs, from the
// fixtures of tests/fixtures/make_metric_fixtures.py.

#[test]
fn ranking_metrics_ignore_monotone_transforms() {
    let logit: Vec<f64> = P.iter().map(|p| (p / (1.0 - p)).ln()).collect();
    close(roc_auc(&Y, &logit).unwrap(), roc_auc(&Y, &P).unwrap());
    close(
        average_precision(&Y, &logit).unwrap(),
        average_precision(&Y, &P).unwrap(),
    );
}
