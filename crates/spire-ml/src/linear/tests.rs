//! Unit tests of the logistic regression (the solver has its own beside it).
#![allow(clippy::unwrap_used)]

use super::*;

/// 60 rows × 3 features drawn once with NumPy (`default_rng(3)`, rounded to 3 decimals) from
/// a logistic model; embedded so the test needs no files.
const ROWS: [([f64; 3], bool); 60] = [
    ([2.041, -5.667, -0.791], true),
    ([-0.568, 0.642, -1.108], false),
    ([-2.02, 1.304, -1.433], true),
    ([3.323, 2.677, -1.176], true),
    ([-0.281, -0.004, -1.528], false),
    ([-0.391, 3.446, -1.119], false),
    ([0.958, 1.401, -0.988], false),
    ([1.546, 3.635, -1.253], false),
    ([-0.183, 3.622, -0.032], false),
    ([-0.27, 1.269, -0.499], false),
    ([-0.886, 1.125, -0.559], false),
    ([0.58, 2.275, -0.665], false),
    ([-2.828, 5.064, -1.48], false),
    ([-1.669, 2.829, -0.65], false),
    ([-0.445, -1.229, -0.987], false),
    ([-0.053, 6.217, -0.626], false),
    ([0.194, 5.335, -1.103], false),
    ([-0.926, 3.752, -0.709], false),
    ([-0.215, -0.348, -0.885], true),
    ([-2.494, 4.07, -0.754], false),
    ([-1.639, 2.184, -1.482], false),
    ([0.757, -4.103, -1.457], false),
    ([0.71, 5.469, -2.079], false),
    ([-0.498, 2.984, -1.305], false),
    ([1.591, -1.574, -0.823], true),
    ([-1.048, 6.218, -1.011], false),
    ([-0.372, -3.155, -0.159], true),
    ([0.753, 4.261, -0.431], false),
    ([0.349, 0.082, -1.4], false),
    ([-0.8, 6.11, -1.73], false),
    ([-0.596, 1.036, -0.888], true),
    ([0.575, -1.747, -1.865], true),
    ([-0.004, 5.641, -0.621], false),
    ([0.216, 1.049, -0.853], false),
    ([-0.243, 4.452, -1.397], false),
    ([0.134, 1.668, -0.728], false),
    ([0.225, 9.65, -0.251], false),
    ([1.497, -4.119, -1.17], true),
    ([-0.609, 3.598, -2.14], false),
    ([1.174, 5.201, -1.651], false),
    ([-0.979, -0.404, -0.978], false),
    ([0.641, 8.144, -1.099], true),
    ([0.768, 2.466, -0.12], false),
    ([0.742, 6.106, -1.539], false),
    ([-0.192, -0.441, -0.248], true),
    ([0.658, 1.085, -1.226], false),
    ([0.485, -0.104, -1.465], false),
    ([0.481, 9.389, -1.123], false),
    ([-0.556, -1.513, -1.668], false),
    ([0.525, 4.552, -0.995], false),
    ([0.333, 2.348, -0.931], true),
    ([-1.526, 0.626, -0.944], false),
    ([-0.783, 0.571, -1.41], false),
    ([-0.333, 4.559, -1.203], false),
    ([-0.154, 4.441, -0.678], true),
    ([1.695, -4.271, -0.572], true),
    ([-0.482, 2.404, -0.581], false),
    ([1.083, 5.118, -0.922], true),
    ([1.61, 1.151, -1.07], true),
    ([0.799, 0.346, 0.08], true),
];

fn data() -> (Matrix, Vec<bool>, Vec<String>) {
    let x = Matrix::from_rows(&ROWS.map(|r| r.0)).unwrap();
    let y = ROWS.iter().map(|r| r.1).collect();
    let names = ["a", "b", "c"].map(String::from).to_vec();
    (x, y, names)
}

fn fit(params: LogisticRegressionParams) -> LogisticRegression {
    let (x, y, names) = data();
    params.validate().unwrap().fit(&x, &y, &names).unwrap()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < tol, "got {got:?}, want {want:?}");
    }
}

/// Reference values from scikit-learn 1.9.1:
/// `LogisticRegression(C=1/(l2*60), tol=1e-10, max_iter=1000, fit_intercept=…)` fitted on
/// `StandardScaler().fit_transform(X)` (when standardizing) or on `X`.
#[test]
fn agrees_with_sklearn() {
    let cases: [(f64, bool, bool, [f64; 3], f64); 3] = [
        (
            0.05,
            true,
            true,
            [0.6562315976995255, -0.6106319711157749, 0.34576219204769537],
            -1.1118728759375986,
        ),
        (
            0.01,
            false,
            true,
            [0.7858573462199775, -0.25465885310825415, 0.774650160296111],
            0.11268001427092268,
        ),
        (
            0.02,
            true,
            false,
            [0.6675244080688345, -0.6395768423299929, 0.32172458488809347],
            0.0,
        ),
    ];
    for (l2, standardize, fit_intercept, coef, intercept) in cases {
        let m = fit(LogisticRegressionParams {
            l2,
            standardize,
            fit_intercept,
            tol: 1e-10,
            ..Default::default()
        });
        assert!(m.converged(), "l2={l2}");
        assert!(
            m.iterations() < 20,
            "Newton converges fast: {}",
            m.iterations()
        );
        assert_close(m.coefficients(), &coef, 1e-4);
        assert!(
            (m.intercept() - intercept).abs() < 1e-4,
            "{}",
            m.intercept()
        );
        // The sklearn mapping documented on the params.
        assert_eq!(l2_from_sklearn_c(1.0 / (l2 * 60.0), 60), l2);
    }
}

#[test]
fn gradient_vanishes_at_solution() {
    let (x, y, names) = data();
    let params = LogisticRegressionParams::default().with_l2(0.03);
    let m = params.validate().unwrap().fit(&x, &y, &names).unwrap();
    let xs = m.standardizer().unwrap().transform(&x).unwrap();
    let pb = Problem {
        x: &xs,
        y: &y,
        l2: 0.03,
        fit_intercept: true,
    };
    let mut theta = m.coefficients().to_vec();
    theta.push(m.intercept());
    let ev = pb.evaluate(&theta, false);
    let gmax = ev.gradient.iter().fold(0.0_f64, |a, g| a.max(g.abs()));
    assert!(gmax < 1e-8, "max |gradient| = {gmax:e}");
    assert!((ev.objective - m.objective()).abs() < 1e-12);
    // Moving away from the optimum only increases the objective.
    for k in 0..theta.len() {
        let mut t = theta.clone();
        t[k] += 1e-3;
        assert!(pb.evaluate(&t, false).objective > ev.objective);
    }
}

#[test]
fn fitting_is_deterministic() {
    let a = fit(LogisticRegressionParams::default());
    let b = fit(LogisticRegressionParams::default());
    assert_eq!(a, b);
}

#[test]
fn rejects_bad_training_data() {
    let v = LogisticRegressionParams::default().validate().unwrap();
    let names = vec!["a".to_string(), "b".to_string()];
    let x = Matrix::from_rows(&[[1.0, 2.0], [3.0, f64::INFINITY], [0.0, 1.0]]).unwrap();
    let err = v.fit(&x, &[true, false, true], &names).unwrap_err();
    assert!(
        matches!(err, MlError::NonFinite { row: 1, col: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("row 1, column 1"), "{err}");

    let x = Matrix::from_rows(&[[1.0, 2.0], [3.0, 4.0]]).unwrap();
    let err = v.fit(&x, &[true], &names).unwrap_err();
    assert!(err.to_string().contains("2 rows but 1 labels"), "{err}");
    let err = v.fit(&x, &[true, false], &names[..1]).unwrap_err();
    assert!(matches!(err, MlError::Shape(_)), "{err}");
    let err = v.fit(&Matrix::zeros(0, 2), &[], &names).unwrap_err();
    assert!(err.to_string().contains("no rows"), "{err}");
    let err = v.fit(&x, &[true, true], &names).unwrap_err();
    assert!(matches!(err, MlError::SingleClass(true)), "{err}");
    assert_eq!(err.kind(), spire_core::ErrorKind::InvalidInput);
}

#[test]
fn predicts_with_shape_and_finiteness_checks() {
    let (x, y, _) = data();
    let m = fit(LogisticRegressionParams::default());
    let p = m.predict_proba(&x).unwrap();
    assert_eq!(p.len(), 60);
    assert!(p.iter().all(|p| (0.0..=1.0).contains(p)));
    assert!(crate::metrics::roc_auc(&y, &p).unwrap() > 0.7);
    let err = m.predict_proba(&Matrix::zeros(1, 2)).unwrap_err();
    assert!(
        err.to_string().contains("expects 3 features (a, b, c)"),
        "{err}"
    );
    let bad = Matrix::from_rows(&[[0.0, f64::NAN, 0.0]]).unwrap();
    assert!(matches!(
        m.predict_proba(&bad),
        Err(MlError::NonFinite { row: 0, col: 1, .. })
    ));
}

#[test]
fn artifact_round_trip_is_bit_identical() {
    let (x, _, _) = data();
    for standardize in [true, false] {
        let m = fit(LogisticRegressionParams::default().with_standardize(standardize));
        let bytes = m.to_artifact().unwrap().to_bytes().unwrap();
        let loaded = crate::load_predictor(&Artifact::from_bytes(&bytes).unwrap()).unwrap();
        assert_eq!(loaded.flavor(), "logistic_regression");
        assert_eq!(loaded.feature_names(), m.feature_names());
        let (a, b) = (
            m.predict_proba(&x).unwrap(),
            loaded.predict_proba(&x).unwrap(),
        );
        assert!(a.iter().zip(&b).all(|(a, b)| a.to_bits() == b.to_bits()));
        let back = LogisticRegression::from_artifact(&m.to_artifact().unwrap()).unwrap();
        assert_eq!(back, m);
    }
}

#[test]
fn inconsistent_payload_is_rejected() {
    let m = fit(LogisticRegressionParams::default());
    let mut a = m.to_artifact().unwrap();
    a.feature_names.pop();
    let err = crate::load_predictor(&a).err().unwrap();
    assert!(
        err.to_string()
            .contains("3 coefficients for 2 feature names"),
        "{err}"
    );
    let mut a = m.to_artifact().unwrap();
    a.payload["params"]["l2"] = serde_json::json!(-1.0);
    assert!(crate::load_predictor(&a).is_err());
}

#[test]
fn serde_round_trip_checks_invariants() {
    let m = fit(LogisticRegressionParams::default());
    let mut v = serde_json::to_value(&m).unwrap();
    let back: LogisticRegression = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(back, m);
    v["coefficients"] = serde_json::json!([1.0]);
    let err = serde_json::from_value::<LogisticRegression>(v).unwrap_err();
    assert!(
        err.to_string()
            .contains("1 coefficients for 3 feature names"),
        "{err}"
    );
}

#[test]
fn separable_data_without_penalty_terminates() {
    let x = Matrix::from_rows(&[[-2.0], [-1.0], [1.0], [2.0]]).unwrap();
    let y = [false, false, true, true];
    let params = LogisticRegressionParams::default()
        .with_l2(0.0)
        .with_max_iter(50);
    let m = params
        .validate()
        .unwrap()
        .fit(&x, &y, &["x".to_string()])
        .unwrap();
    let p = m.predict_proba(&x).unwrap();
    assert!(p[0] < 0.01 && p[3] > 0.99, "{p:?}");
}

#[test]
fn no_features_fits_the_base_rate() {
    let x = Matrix::zeros(4, 0);
    let m = LogisticRegressionParams::default()
        .validate()
        .unwrap()
        .fit(&x, &[true, false, false, false], &[])
        .unwrap();
    let p = m.predict_proba(&x).unwrap();
    assert!((p[0] - 0.25).abs() < 1e-12, "{p:?}");
    assert!(m.converged());
}

/// A constant column (a feature no user varies on) is not an error and does not change the
/// model: standardized, it is centered to zero and keeps a zero coefficient, so the fit equals
/// the one without that column — for L2, L1 and the fused family alike.
#[test]
fn constant_column_leaves_the_model_unchanged() {
    let (x, y, names) = data();
    let with_const: Vec<[f64; 4]> = ROWS.map(|r| [r.0[0], 7.5, r.0[1], r.0[2]]).to_vec();
    let xc = Matrix::from_rows(&with_const).unwrap();
    let names_c = ["a", "k", "b", "c"].map(String::from).to_vec();
    for params in [
        LogisticRegressionParams::default().with_l2(1e-2),
        LogisticRegressionParams::default()
            .with_l2(1e-3)
            .with_l1(1e-2),
    ] {
        let v = params.validate().unwrap();
        let base = v.fit(&x, &y, &names).unwrap();
        let m = v.fit(&xc, &y, &names_c).unwrap();
        assert!(m.converged());
        assert_eq!(
            m.coefficients()[1],
            0.0,
            "constant column keeps coefficient 0"
        );
        let mut kept = m.coefficients().to_vec();
        kept.remove(1);
        assert_close(&kept, base.coefficients(), 1e-6);
        assert_close(
            &m.predict_proba(&xc).unwrap(),
            &base.predict_proba(&x).unwrap(),
            1e-6,
        );
    }
    // Without standardization it is collinear with the intercept; L2 keeps it identified.
    let raw = LogisticRegressionParams::default()
        .with_l2(1e-2)
        .with_standardize(false)
        .validate()
        .unwrap()
        .fit(&xc, &y, &names_c)
        .unwrap();
    assert!(raw.converged());
    assert!(raw
        .predict_proba(&xc)
        .unwrap()
        .iter()
        .all(|p| p.is_finite()));
}
