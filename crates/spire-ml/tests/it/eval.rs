//! Every metric against scikit-learn 1.9.1 on the committed fixtures of
//! `tests/fixtures/make_metric_fixtures.py` (ties, extreme probabilities, imbalance, small and
//! 5,000-row sets), to 1e-6.

use serde::Deserialize;
use spire_ml::eval::{calibration_curve, top_k_curve, CalibrationStrategy};
use spire_ml::{average_precision, brier_score, log_loss, roc_auc};

#[derive(Deserialize)]
struct Fixtures {
    sklearn: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    y: Vec<u8>,
    p: Vec<f64>,
    roc_auc: Option<f64>,
    average_precision: Option<f64>,
    log_loss: f64,
    brier: f64,
    calibration: Vec<Calibration>,
    top_k: Vec<TopK>,
}

#[derive(Deserialize)]
struct Calibration {
    strategy: CalibrationStrategy,
    n_bins: usize,
    prob_true: Vec<f64>,
    prob_pred: Vec<f64>,
}

#[derive(Deserialize)]
struct TopK {
    fraction: f64,
    n_top: usize,
    precision: f64,
    recall: f64,
    lift: f64,
}

const TOL: f64 = 1e-6;

fn load() -> Fixtures {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/metrics.json");
    let text = std::fs::read_to_string(path).unwrap();
    let f: Fixtures = serde_json::from_str(&text).unwrap();
    assert_eq!(f.sklearn, "1.9.1");
    assert!(f.cases.len() >= 8);
    f
}

fn labels(c: &Case) -> Vec<bool> {
    c.y.iter().map(|&v| v == 1).collect()
}

/// Relative to the reference, with an absolute floor of 1e-6 for values near 0.
fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= TOL * want.abs().max(1.0),
        "{what}: got {got}, sklearn {want}"
    );
}

#[test]
fn scalar_metrics_match_sklearn() {
    for c in load().cases {
        let y = labels(&c);
        let n = &c.name;
        assert_eq!(roc_auc(&y, &c.p).is_some(), c.roc_auc.is_some(), "{n}");
        if let (Some(got), Some(want)) = (roc_auc(&y, &c.p), c.roc_auc) {
            assert_close(got, want, &format!("{n} roc_auc"));
        }
        assert_eq!(
            average_precision(&y, &c.p).is_some(),
            c.average_precision.is_some(),
            "{n}"
        );
        if let (Some(got), Some(want)) = (average_precision(&y, &c.p), c.average_precision) {
            assert_close(got, want, &format!("{n} average_precision"));
        }
        assert_close(log_loss(&y, &c.p), c.log_loss, &format!("{n} log_loss"));
        assert_close(brier_score(&y, &c.p), c.brier, &format!("{n} brier"));
    }
}

#[test]
fn calibration_curves_match_sklearn() {
    let mut curves = [0; 2]; // uniform, quantile
    for c in load().cases {
        let y = labels(&c);
        for r in &c.calibration {
            let what = format!("{} {:?} n_bins={}", c.name, r.strategy, r.n_bins);
            let got = calibration_curve(&y, &c.p, r.n_bins, r.strategy).unwrap();
            let (pt, pp) = (got.prob_true(), got.prob_pred());
            assert_eq!(pt.len(), r.prob_true.len(), "{what}: non-empty bins");
            for (g, w) in pt.iter().zip(&r.prob_true) {
                assert_close(*g, *w, &format!("{what} prob_true"));
            }
            for (g, w) in pp.iter().zip(&r.prob_pred) {
                assert_close(*g, *w, &format!("{what} prob_pred"));
            }
            assert_eq!(got.bins.iter().map(|b| b.count).sum::<usize>(), y.len());
            curves[usize::from(r.strategy == CalibrationStrategy::Quantile)] += 1;
        }
    }
    assert!(curves.iter().all(|&n| n >= 32), "{curves:?}");
}

#[test]
fn top_k_matches_the_sklearn_roc_reference() {
    let mut points = 0;
    for c in load().cases.iter().filter(|c| !c.top_k.is_empty()) {
        let y = labels(c);
        let fractions: Vec<f64> = c.top_k.iter().map(|t| t.fraction).collect();
        let got = top_k_curve(&y, &c.p, &fractions).unwrap();
        for (g, w) in got.iter().zip(&c.top_k) {
            let what = format!("{} top {}", c.name, w.fraction);
            assert_eq!(g.n_top, w.n_top, "{what}");
            assert_close(g.precision, w.precision, &format!("{what} precision"));
            assert_close(g.recall, w.recall, &format!("{what} recall"));
            assert_close(g.lift, w.lift, &format!("{what} lift"));
            points += 1;
        }
    }
    assert!(points >= 50, "{points}");
}
