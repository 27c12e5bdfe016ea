//! Artifacts: bytes round trip, loading through the trait object, errors.

use spire_ml::{load_predictor, Artifact, LogisticRegressionParams, Matrix, MlError, Predictor};

fn model_and_data() -> (spire_ml::LogisticRegression, Matrix) {
    let rows: Vec<[f64; 2]> = (0..200)
        .map(|i| {
            let t = f64::from(i) / 7.0;
            [t.sin() * 3.0 + 1.0 / 3.0, (t * 1.3).cos() * 1e3 + 0.1]
        })
        .collect();
    let y: Vec<bool> = rows.iter().map(|r| r[0] + r[1] / 1e3 > 0.3).collect();
    let x = Matrix::from_rows(&rows).unwrap();
    let names = vec!["sessions_7d".to_string(), "dwell_ms".to_string()];
    let model = LogisticRegressionParams::default()
        .validate()
        .unwrap()
        .fit(&x, &y, &names)
        .unwrap();
    (model, x)
}

#[test]
fn round_trip_gives_bit_identical_predictions() {
    let (model, x) = model_and_data();
    let artifact = model.to_artifact().unwrap();
    let bytes = artifact.to_bytes().unwrap();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(
        text.contains("\"flavor\": \"logistic_regression\""),
        "pretty JSON: {text}"
    );
    let back = Artifact::from_bytes(&bytes).unwrap();
    assert_eq!(back, artifact);
    let loaded: Box<dyn Predictor> = load_predictor(&back).unwrap();
    assert_eq!(loaded.feature_names(), ["sessions_7d", "dwell_ms"]);
    let before = model.predict_proba(&x).unwrap();
    let after = loaded.predict_proba(&x).unwrap();
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a.to_bits(), b.to_bits());
    }
    // Serializing the loaded model again gives the same bytes.
    assert_eq!(loaded.to_artifact().unwrap().to_bytes().unwrap(), bytes);
}

#[test]
fn unknown_flavor_is_a_clear_error() {
    let (model, _) = model_and_data();
    let mut a = model.to_artifact().unwrap();
    a.flavor = "gradient_boosting".into();
    let err = load_predictor(&a).err().unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("gradient_boosting") && msg.contains("logistic_regression"),
        "{msg}"
    );
    assert!(matches!(err, MlError::UnknownFlavor { .. }));
    a.flavor = "logistic_regression".into();
    a.format_version = 2;
    let msg = load_predictor(&a).err().unwrap().to_string();
    assert!(
        msg.contains("format_version 2") && msg.contains("upgrade"),
        "{msg}"
    );
}
