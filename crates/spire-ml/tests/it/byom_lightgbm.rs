//! LightGBM models trained in Python, loaded from their text model files and scored in Rust,
//! against LightGBM's own `predict` on real data (UCI Online Shoppers Purchasing Intention).
//! Fixtures: `tests/fixtures/byom/make_byom_fixtures.py`.

use serde::Deserialize;
use spire_ml::{
    load_model, load_predictor, roc_auc, Artifact, LightGbmModel, Matrix, MlError, Predictor,
};

#[derive(Deserialize)]
struct Fixture {
    lightgbm: String,
    model_file: String,
    feature_names: Vec<String>,
    categorical_features: Vec<String>,
    n_trees: usize,
    rows: Vec<Vec<Option<f64>>>,
    proba: Vec<f64>,
    raw_score: Vec<f64>,
    labels: Vec<u8>,
    roc_auc: f64,
}

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/byom");

fn fixture(name: &str) -> (Fixture, Matrix, String) {
    let json = std::fs::read_to_string(format!("{DIR}/{name}.json")).unwrap();
    let f: Fixture = serde_json::from_str(&json).unwrap();
    let rows: Vec<Vec<f64>> = f
        .rows
        .iter()
        .map(|r| r.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
        .collect();
    let x = Matrix::from_rows(&rows).unwrap();
    let path = format!("{DIR}/{}", f.model_file);
    (f, x, path)
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

/// Scores a fixture and compares with LightGBM; returns the max |Δp|.
fn matches_lightgbm(name: &str) -> f64 {
    let (f, x, path) = fixture(name);
    assert_eq!(f.lightgbm, "4.7.0");
    let m = LightGbmModel::from_model_file(&path).unwrap();
    assert_eq!(m.feature_names(), f.feature_names.as_slice());
    assert_eq!(m.n_trees(), f.n_trees);
    assert!(m.n_trees() >= 100);
    let mut cats = m.categorical_features();
    cats.sort_unstable();
    let mut want: Vec<&str> = f.categorical_features.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(cats, want);

    let raw = m.raw_score(&x).unwrap();
    let p = m.predict_proba(&x).unwrap();
    let (d_raw, d_p) = (max_abs_diff(&raw, &f.raw_score), max_abs_diff(&p, &f.proba));
    println!(
        "{name}: {} rows, max |Δraw| = {d_raw:e}, max |Δp| = {d_p:e}",
        p.len()
    );
    // Raw scores are sums in LightGBM's order: bit-identical. Probabilities go through the
    // platform's `exp`, as LightGBM's do.
    assert_eq!(d_raw, 0.0, "{name}: max |Δraw| = {d_raw:e}");
    assert!(d_p <= 1e-12, "{name}: max |Δp| = {d_p:e}");
    // Evaluated like a native model: Kalos's ROC AUC of these scores is scikit-learn's.
    let y: Vec<bool> = f.labels.iter().map(|&l| l == 1).collect();
    let auc = roc_auc(&y, &p).unwrap();
    assert!(
        (auc - f.roc_auc).abs() <= 1e-12,
        "{name}: AUC {auc} vs {}",
        f.roc_auc
    );
    // The scored rows exercise what they are meant to.
    assert!(x.data().iter().any(|v| v.is_nan()), "{name} has no NaN");
    d_p
}

#[test]
fn numeric_model_with_missing_values_matches_lightgbm() {
    matches_lightgbm("lgbm_numeric");
}

#[test]
fn categorical_model_matches_lightgbm() {
    matches_lightgbm("lgbm_categorical");
}

#[test]
fn zero_as_missing_model_matches_lightgbm() {
    matches_lightgbm("lgbm_zero_missing");
    let m = LightGbmModel::from_model_file(format!("{DIR}/lgbm_zero_missing.txt")).unwrap();
    assert_eq!(m.sigmoid(), 0.7);
}

#[test]
fn artifact_round_trip_is_bit_identical() {
    for name in ["lgbm_numeric", "lgbm_categorical", "lgbm_zero_missing"] {
        let (_, x, path) = fixture(name);
        let m = LightGbmModel::from_model_file(&path).unwrap();
        let bytes = m.to_artifact().unwrap().to_bytes().unwrap();
        let back = Artifact::from_bytes(&bytes).unwrap();
        assert_eq!(back.flavor, "lightgbm");
        let loaded: Box<dyn Predictor> = load_predictor(&back).unwrap();
        assert_eq!(loaded.flavor(), "lightgbm");
        assert!(loaded.handles_missing());
        assert_eq!(loaded.feature_names(), m.feature_names());
        let (a, b) = (
            m.predict_proba(&x).unwrap(),
            loaded.predict_proba(&x).unwrap(),
        );
        for (a, b) in a.iter().zip(&b) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        // The stored text is the file, byte for byte, and reserializing is stable.
        assert_eq!(
            back.payload["model_text"].as_str().unwrap(),
            std::fs::read_to_string(&path).unwrap()
        );
        assert_eq!(loaded.to_artifact().unwrap().to_bytes().unwrap(), bytes);
        assert_eq!(load_model(&back).unwrap().kind(), "predictor");
    }
}

#[test]
fn scoring_by_column_name() {
    let (f, x, path) = fixture("lgbm_categorical");
    let m = LightGbmModel::from_model_file(&path).unwrap();
    // Columns reversed, plus an extra column the model ignores.
    let d = x.n_cols();
    let mut idx: Vec<usize> = (0..d).rev().collect();
    idx.push(0);
    let shuffled = x.select_columns(&idx);
    let mut names: Vec<String> = f.feature_names.iter().rev().cloned().collect();
    names.push("unused".into());
    let p = m.predict_proba_by_name(&shuffled, &names).unwrap();
    assert_eq!(p, m.predict_proba(&x).unwrap());

    names[0] = "Revenue".into();
    let err = m.predict_proba_by_name(&shuffled, &names).unwrap_err();
    assert!(matches!(err, MlError::Shape(_)), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("{:?}", f.feature_names[d - 1])),
        "{err}"
    );
    let err = m.predict_proba(&shuffled).unwrap_err();
    assert!(matches!(err, MlError::Shape(_)), "{err}");
}

#[test]
fn every_line_truncation_of_a_real_file_is_an_error() {
    let text = std::fs::read_to_string(format!("{DIR}/lgbm_numeric.txt")).unwrap();
    let end = text.find("end of trees").unwrap();
    let mut cuts: Vec<usize> = text[..end]
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .collect();
    // And inside lines: the middle of every 7th line.
    let mids: Vec<usize> = cuts
        .windows(2)
        .step_by(7)
        .map(|w| (w[0] + w[1]) / 2)
        .filter(|&i| text.is_char_boundary(i))
        .collect();
    cuts.extend(mids);
    for cut in cuts {
        let err = LightGbmModel::from_model_text(&text[..cut]).unwrap_err();
        assert!(matches!(err, MlError::ModelFile { .. }), "cut {cut}: {err}");
    }
}

#[test]
fn unreadable_file_names_the_path() {
    let err = LightGbmModel::from_model_file(format!("{DIR}/no_such_model.txt")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("no_such_model.txt") && msg.contains("cannot read"),
        "{msg}"
    );
}
