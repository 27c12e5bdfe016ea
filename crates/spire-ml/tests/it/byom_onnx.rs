//! scikit-learn models exported to ONNX by skl2onnx, run by tract, against scikit-learn's
//! own `predict_proba` on real data (UCI Online Shoppers Purchasing Intention). Fixtures:
//! `tests/fixtures/byom/make_byom_fixtures.py`.

use serde::Deserialize;
use spire_ml::{
    load_predictor, roc_auc, Artifact, Matrix, MlError, OnnxModel, OnnxOptions, Predictor,
};

#[derive(Deserialize)]
struct Fixture {
    sklearn: String,
    model_file: String,
    input_name: String,
    feature_names: Vec<String>,
    rows: Vec<Vec<f64>>,
    sklearn_proba: Vec<f64>,
    labels: Vec<u8>,
    roc_auc: f64,
}

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/byom");

fn fixture(name: &str) -> (Fixture, Matrix, Vec<u8>) {
    let json = std::fs::read_to_string(format!("{DIR}/{name}.json")).unwrap();
    let f: Fixture = serde_json::from_str(&json).unwrap();
    let x = Matrix::from_rows(&f.rows).unwrap();
    let bytes = std::fs::read(format!("{DIR}/{}", f.model_file)).unwrap();
    (f, x, bytes)
}

fn options(f: &Fixture) -> OnnxOptions {
    OnnxOptions {
        feature_names: Some(f.feature_names.clone()),
        output: None,
    }
}

/// Scores a fixture and compares with scikit-learn; returns the max |Δp|.
fn matches_sklearn(name: &str) -> f64 {
    let (f, x, bytes) = fixture(name);
    assert_eq!(f.sklearn, "1.9.1");
    let m = OnnxModel::from_bytes(&bytes, &options(&f)).unwrap();
    assert_eq!(m.input_names(), [f.input_name.as_str()]);
    assert_eq!(m.output_name(), "probabilities");
    assert_eq!(m.feature_names(), f.feature_names.as_slice());
    let p = m.predict_proba(&x).unwrap();
    assert_eq!(p.len(), f.sklearn_proba.len());
    let d = p
        .iter()
        .zip(&f.sklearn_proba)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!("{name}: {} rows, max |Δp| vs sklearn = {d:e}", p.len());
    assert!(d <= 1e-5, "{name}: max |Δp| = {d:e}");
    // Evaluated like a native model: the ROC AUC agrees with scikit-learn's (scores differ by
    // float rounding, which could swap a near tie: 1e-3 allows a few of 5,859 pairs).
    let y: Vec<bool> = f.labels.iter().map(|&l| l == 1).collect();
    let auc = roc_auc(&y, &p).unwrap();
    assert!(
        (auc - f.roc_auc).abs() <= 1e-3,
        "{name}: AUC {auc} vs {}",
        f.roc_auc
    );
    // Not a constant model: the fixture has rows on both sides.
    assert!(p.iter().any(|&v| v < 0.2) && p.iter().any(|&v| v > 0.8));
    d
}

#[test]
fn logistic_regression_matches_sklearn() {
    matches_sklearn("onnx_logreg");
}

#[test]
fn mlp_matches_sklearn() {
    matches_sklearn("onnx_mlp");
}

#[test]
fn artifact_round_trip_is_bit_identical() {
    for name in ["onnx_logreg", "onnx_mlp"] {
        let (f, x, bytes) = fixture(name);
        let m = OnnxModel::from_bytes(&bytes, &options(&f)).unwrap();
        let a = m.to_artifact().unwrap();
        let encoded = a.to_bytes().unwrap();
        let back = Artifact::from_bytes(&encoded).unwrap();
        assert_eq!(back.flavor, "onnx");
        let loaded: Box<dyn Predictor> = load_predictor(&back).unwrap();
        assert_eq!(loaded.flavor(), "onnx");
        assert!(!loaded.handles_missing());
        assert_eq!(loaded.feature_names(), f.feature_names.as_slice());
        let (p, q) = (
            m.predict_proba(&x).unwrap(),
            loaded.predict_proba(&x).unwrap(),
        );
        for (a, b) in p.iter().zip(&q) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        assert_eq!(loaded.to_artifact().unwrap().to_bytes().unwrap(), encoded);
        // Scoring rows one at a time gives what the batch gave.
        for i in [0, 17, 299] {
            let one = loaded.predict_proba(&x.select_rows(&[i])).unwrap();
            assert!((one[0] - p[i]).abs() <= 1e-6, "row {i}");
        }
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let (f, x, bytes) = fixture("onnx_logreg");
    // A single input of ten columns needs feature names.
    let err = OnnxModel::from_bytes(&bytes, &OnnxOptions::default()).unwrap_err();
    assert!(
        matches!(err, MlError::Shape(_)) && err.to_string().contains("feature names"),
        "{err}"
    );
    let mut opts = options(&f);
    opts.feature_names.as_mut().unwrap().pop();
    let err = OnnxModel::from_bytes(&bytes, &opts).unwrap_err();
    assert!(err.to_string().contains("9 feature names"), "{err}");

    let m = OnnxModel::from_bytes(&bytes, &options(&f)).unwrap();
    let err = m.predict_proba(&x.select_columns(&[0, 1, 2])).unwrap_err();
    assert!(matches!(err, MlError::Shape(_)), "{err}");
    let mut nan = x.select_rows(&[0, 1]).into_data();
    nan[13] = f64::NAN;
    let nan = Matrix::new(2, 10, nan).unwrap();
    assert!(matches!(
        m.predict_proba(&nan),
        Err(MlError::NonFinite { row: 1, col: 3, .. })
    ));
    let mut names = f.feature_names.clone();
    names[4] = "Revenue".into();
    let err = m.predict_proba_by_name(&x, &names).unwrap_err();
    assert!(err.to_string().contains("\"ProductRelated\""), "{err}");

    let opts = OnnxOptions {
        output: Some("label".into()),
        ..options(&f)
    };
    let err = OnnxModel::from_bytes(&bytes, &opts).unwrap_err();
    assert!(err.to_string().contains("int64"), "{err}");
    let opts = OnnxOptions {
        output: Some("proba".into()),
        ..options(&f)
    };
    let err = OnnxModel::from_bytes(&bytes, &opts).unwrap_err();
    assert!(
        err.to_string().contains("no output \"proba\"") && err.to_string().contains("label"),
        "{err}"
    );
}

#[test]
fn truncated_and_foreign_files_are_errors() {
    let (f, _, bytes) = fixture("onnx_mlp");
    let opts = options(&f);
    for cut in (0..bytes.len()).step_by(53).chain([bytes.len() - 1]) {
        let err = OnnxModel::from_bytes(&bytes[..cut], &opts).unwrap_err();
        assert!(
            matches!(err, MlError::ModelFile { .. } | MlError::Shape(_)),
            "cut {cut}: {err}"
        );
    }
    let text = std::fs::read(format!("{DIR}/lgbm_numeric.txt")).unwrap();
    let err = OnnxModel::from_bytes(&text, &opts).unwrap_err();
    assert!(matches!(err, MlError::ModelFile { .. }), "{err}");
    let err = OnnxModel::from_file(format!("{DIR}/missing.onnx"), &opts).unwrap_err();
    assert!(err.to_string().contains("missing.onnx"), "{err}");
}

#[test]
fn corrupt_payload_is_an_artifact_error() {
    let (f, _, bytes) = fixture("onnx_logreg");
    let m = OnnxModel::from_bytes(&bytes, &options(&f)).unwrap();
    let mut a = m.to_artifact().unwrap();
    a.payload["onnx_base64"] = "not base64!".into();
    let err = load_predictor(&a).err().unwrap();
    assert!(matches!(err, MlError::Artifact(_)), "{err}");
    let mut a = m.to_artifact().unwrap();
    a.feature_names.truncate(3);
    let err = load_predictor(&a).err().unwrap();
    assert!(matches!(err, MlError::Artifact(_)), "{err}");
}

#[test]
fn binary_tree_ensembles_are_refused_with_the_operator_named() {
    // skl2onnx's binary TreeEnsembleClassifier with one base value (gradient boosting):
    // tract 0.23 cannot load it. Tree models have their own importer (LightGbmModel).
    let bytes = std::fs::read(format!("{DIR}/onnx_gbt.onnx")).unwrap();
    let (f, _, _) = fixture("onnx_logreg");
    let err = OnnxModel::from_bytes(&bytes, &options(&f)).unwrap_err();
    assert!(matches!(err, MlError::ModelFile { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("TreeEnsembleClassifier") && msg.contains("base_values"),
        "{msg}"
    );
}
