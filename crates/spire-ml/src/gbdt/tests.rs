#![allow(clippy::unwrap_used)]

use rand::{Rng, SeedableRng};

use super::*;
use crate::algorithms::{estimator, parse_params};
use crate::artifact::{load_model, load_predictor, Model};
use crate::roc_auc;

fn names(d: usize) -> Vec<String> {
    (0..d).map(|j| format!("f{j}")).collect()
}

fn fit(p: GbdtParams, x: &Matrix, y: &[bool]) -> GbdtModel {
    p.validate().unwrap().fit(x, y, &names(x.n_cols())).unwrap()
}

/// `n` rows of `d` uniform features in [-1, 1] and labels `f(row) + noise > 0`.
fn data(
    n: usize,
    d: usize,
    seed: u64,
    noise: f64,
    f: impl Fn(&[f64]) -> f64,
) -> (Matrix, Vec<bool>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let row: Vec<f64> = (0..d).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect();
        y.push(f(&row) + noise * (rng.random::<f64>() * 2.0 - 1.0) > 0.0);
        v.extend(row);
    }
    (Matrix::new(n, d, v).unwrap(), y)
}

#[test]
fn separable_data_is_learned_on_held_out_rows() {
    let (x, y) = data(2000, 3, 1, 0.0, |r| r[1] - 0.2);
    let (xt, yt) = data(1000, 3, 2, 0.0, |r| r[1] - 0.2);
    let m = fit(GbdtParams::default(), &x, &y);
    let auc = roc_auc(&yt, &m.predict_proba(&xt).unwrap()).unwrap();
    assert!(auc > 0.999, "held-out AUC {auc}");
    assert_eq!(m.n_trees(), 100);
    assert_eq!(m.n_train(), 2000);
    assert!(m.n_leaves() > 100);
}

#[test]
fn learns_an_interaction_a_linear_model_cannot() {
    // XOR of two signs: no linear score separates it.
    let (x, y) = data(3000, 2, 3, 0.0, |r| r[0] * r[1]);
    let (xt, yt) = data(1000, 2, 4, 0.0, |r| r[0] * r[1]);
    let gbdt = fit(GbdtParams::default(), &x, &y);
    let auc = roc_auc(&yt, &gbdt.predict_proba(&xt).unwrap()).unwrap();
    assert!(auc > 0.98, "gbdt AUC {auc}");
    let lr = estimator("logistic_regression", serde_json::json!({}))
        .unwrap()
        .fit_boxed(&x, &y, &names(2))
        .unwrap();
    let lr_auc = roc_auc(&yt, &lr.predict_proba(&xt).unwrap()).unwrap();
    assert!(lr_auc < 0.6, "logistic regression AUC {lr_auc}");
}

#[test]
fn a_monotone_effect_gives_increasing_scores() {
    // P(y) rises with f0; f1 is noise.
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let n = 5000;
    let mut v = Vec::new();
    let mut y = Vec::new();
    for _ in 0..n {
        let a: f64 = rng.random::<f64>() * 4.0 - 2.0;
        let b: f64 = rng.random();
        y.push(rng.random::<f64>() < 1.0 / (1.0 + (-2.0 * a).exp()));
        v.extend([a, b]);
    }
    let x = Matrix::new(n, 2, v).unwrap();
    let m = fit(GbdtParams::default(), &x, &y);
    // Mean score over slices of f0 rises from slice to slice.
    let grid: Vec<[f64; 2]> = (0..400)
        .map(|i| {
            [
                -2.0 + 4.0 * f64::from(i / 20) / 20.0,
                f64::from(i % 20) / 20.0,
            ]
        })
        .collect();
    let p = m.predict_proba(&Matrix::from_rows(&grid).unwrap()).unwrap();
    let means: Vec<f64> = p.chunks(20).map(|c| c.iter().sum::<f64>() / 20.0).collect();
    let rises = means.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(rises >= 17, "{rises} of 19 slices rise: {means:?}");
    assert!(means[0] < 0.15 && means[19] > 0.85, "{means:?}");
    // Probabilities are calibrated on average: the mean score is close to the base rate.
    let train_p = m.predict_proba(&x).unwrap();
    let rate = y.iter().filter(|v| **v).count() as f64 / n as f64;
    let mean = train_p.iter().sum::<f64>() / n as f64;
    assert!(
        (mean - rate).abs() < 0.01,
        "mean score {mean}, base rate {rate}"
    );
}

#[test]
fn missing_values_are_learned_not_rejected() {
    // The label is "f0 is missing" (30 % of rows); f1 is noise.
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let mut rows = Vec::new();
    let mut y = Vec::new();
    for _ in 0..2000 {
        let missing = rng.random::<f64>() < 0.3;
        rows.push([if missing { f64::NAN } else { rng.random() }, rng.random()]);
        y.push(missing);
    }
    let x = Matrix::from_rows(&rows).unwrap();
    let m = fit(GbdtParams::default(), &x, &y);
    assert!(m.handles_missing());
    let p = m.predict_proba(&x).unwrap();
    assert!(roc_auc(&y, &p).unwrap() > 0.999);
    let p = m
        .predict_proba(&Matrix::from_rows(&[[f64::NAN, 0.5], [0.5, 0.5]]).unwrap())
        .unwrap();
    assert!(p[0] > 0.9 && p[1] < 0.1, "{p:?}");
    // Infinity is not a missing value.
    let err = m
        .predict_proba(&Matrix::from_rows(&[[f64::INFINITY, 0.5]]).unwrap())
        .unwrap_err();
    assert!(
        matches!(err, MlError::NonFinite { row: 0, col: 0, .. }),
        "{err}"
    );
}

#[test]
fn round_trip_scores_bit_identically_through_load_model() {
    let (x, y) = data(1500, 4, 7, 0.5, |r| r[0] + r[1] * r[2]);
    let params = GbdtParams {
        n_estimators: 40,
        subsample: 0.8,
        colsample: 0.75,
        seed: 9,
        ..Default::default()
    };
    let m = fit(params.clone(), &x, &y);
    let mut scoring = x.clone().into_data();
    scoring[5] = f64::NAN;
    let scoring = Matrix::new(1500, 4, scoring).unwrap();
    let p = m.predict_proba(&scoring).unwrap();
    let bytes = m.to_artifact().unwrap().to_bytes().unwrap();
    let a = Artifact::from_bytes(&bytes).unwrap();
    assert_eq!(a.flavor, "gbdt");
    assert_eq!(a.feature_names, names(4));
    let Model::Predictor(back) = load_model(&a).unwrap() else {
        panic!("a gbdt artifact is a predictor");
    };
    assert_eq!(back.flavor(), "gbdt");
    assert!(back.handles_missing());
    let q = back.predict_proba(&scoring).unwrap();
    assert!(p.iter().zip(&q).all(|(a, b)| a.to_bits() == b.to_bits()));
    let reloaded = GbdtModel::from_artifact(&a).unwrap();
    assert_eq!(reloaded.params(), &params);
    assert_eq!(reloaded.n_trees(), 40);
    // By name, extra columns ignored.
    let cols: Vec<String> = ["f3", "f2", "f1", "f0"].map(String::from).to_vec();
    let reversed = scoring.select_columns(&[3, 2, 1, 0]);
    assert_eq!(back.predict_proba_by_name(&reversed, &cols).unwrap(), q);
}

#[test]
fn deterministic_for_a_seed_whatever_the_threads() {
    let (x, y) = data(3000, 5, 8, 0.8, |r| r[0] - r[3]);
    let base = GbdtParams {
        n_estimators: 30,
        subsample: 0.7,
        colsample: 0.6,
        seed: 11,
        ..Default::default()
    };
    let p = |params: GbdtParams| fit(params, &x, &y).predict_proba(&x).unwrap();
    let a = p(base.clone());
    assert_eq!(a, p(base.clone()), "same seed, same model");
    assert_eq!(
        a,
        p(GbdtParams {
            nthreads: 1,
            ..base.clone()
        }),
        "one thread gives the same model"
    );
    assert_eq!(
        a,
        p(GbdtParams {
            nthreads: 2,
            ..base.clone()
        }),
        "two threads give the same model"
    );
    assert_ne!(
        a,
        p(GbdtParams { seed: 12, ..base }),
        "the seed drives sampling"
    );
}

#[test]
fn leaf_wise_growth_respects_max_leaves() {
    let (x, y) = data(2000, 3, 10, 0.3, |r| r[0] + r[1] - r[2]);
    let m = fit(
        GbdtParams {
            n_estimators: 10,
            growth: Growth::LeafWise,
            max_leaves: 7,
            max_depth: 10,
            ..Default::default()
        },
        &x,
        &y,
    );
    for t in &m.booster.trees {
        assert!(t.nodes.iter().filter(|n| n.is_leaf).count() <= 7);
    }
    let shallow = fit(
        GbdtParams {
            n_estimators: 10,
            max_depth: 1,
            ..Default::default()
        },
        &x,
        &y,
    );
    assert_eq!(shallow.n_leaves(), 20, "stumps have two leaves");
}

#[test]
fn params_by_name_are_validated_with_named_errors() {
    let e = estimator(
        "gbdt",
        parse_params("learning_rate=0.05,n_estimators=20,max_depth=3,growth=leaf_wise").unwrap(),
    )
    .unwrap();
    assert_eq!(e.algorithm(), "gbdt");
    let err = |text: &str| {
        estimator("gbdt", parse_params(text).unwrap())
            .err()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        err("learning_rate=0"),
        "learning_rate = 0: must be in (0, 1]"
    );
    assert_eq!(err("subsample=2"), "subsample = 2: must be in (0, 1]");
    assert_eq!(err("max_depth=0"), "max_depth = 0: must be in 1..=64");
    assert!(err("learning_rat=0.1").contains("unknown field `learning_rat`"));
    assert!(err("growth=sideways").contains("unknown variant `sideways`"));
    assert!(err("n_estimators=lots").contains("gbdt"));
    let e: MlError = GbdtParams {
        l2: -1.0,
        ..Default::default()
    }
    .validate()
    .unwrap_err()
    .into();
    assert!(
        matches!(e, MlError::InvalidParam { param: "l2", .. }),
        "{e}"
    );
}

#[test]
fn bad_training_data_is_an_error() {
    let v = GbdtParams::default().validate().unwrap();
    let x = Matrix::from_rows(&[[1.0], [2.0], [3.0]]).unwrap();
    let one = names(1);
    assert!(matches!(
        v.fit(&x, &[true, true, true], &one),
        Err(MlError::SingleClass(true))
    ));
    assert!(matches!(
        v.fit(&x, &[true, false], &one),
        Err(MlError::Shape(_))
    ));
    assert!(matches!(
        v.fit(&x, &[true, false, true], &names(2)),
        Err(MlError::Shape(_))
    ));
    let empty = Matrix::new(0, 1, vec![]).unwrap();
    assert!(matches!(v.fit(&empty, &[], &one), Err(MlError::Shape(_))));
    let inf = Matrix::from_rows(&[[1.0], [f64::NEG_INFINITY], [3.0]]).unwrap();
    assert!(matches!(
        v.fit(&inf, &[true, false, true], &one),
        Err(MlError::NonFinite { row: 1, .. })
    ));
    let twice = vec!["a".to_string(), "a".to_string()];
    let x2 = Matrix::from_rows(&[[1.0, 2.0], [2.0, 1.0]]).unwrap();
    assert!(matches!(
        v.fit(&x2, &[true, false], &twice),
        Err(MlError::Shape(_))
    ));
    // Constant and all-missing columns are not an error: they are never split on.
    let x3 = Matrix::from_rows(&[
        [1.0, f64::NAN],
        [1.0, f64::NAN],
        [1.0, f64::NAN],
        [1.0, f64::NAN],
    ])
    .unwrap();
    let m = v.fit(&x3, &[true, false, true, false], &names(2)).unwrap();
    let p = m.predict_proba(&x3).unwrap();
    assert!(p.iter().all(|p| (p - 0.5).abs() < 1e-6), "{p:?}");
    // Scoring checks the width.
    assert!(matches!(m.predict_proba(&x), Err(MlError::Shape(_))));
    assert!(m
        .predict_proba(&Matrix::new(0, 2, vec![]).unwrap())
        .unwrap()
        .is_empty());
}

#[test]
fn tampered_artifacts_are_rejected() {
    let (x, y) = data(500, 2, 12, 0.2, |r| r[0] + r[1]);
    let m = fit(
        GbdtParams {
            n_estimators: 5,
            ..Default::default()
        },
        &x,
        &y,
    );
    let good = m.to_artifact().unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut a = good.clone();
        let mut model: serde_json::Value =
            serde_json::from_str(a.payload["model"].as_str().unwrap()).unwrap();
        f(&mut model);
        a.payload["model"] = serde_json::Value::String(model.to_string());
        load_predictor(&a).err().unwrap().to_string()
    };
    let err = edit(&|m| m["trees"][0]["nodes"][0]["split_feature"] = 7.into());
    assert!(err.contains("splits on feature 7"), "{err}");
    let err = edit(&|m| m["trees"][0]["nodes"][0]["left_child"] = 0.into());
    assert!(err.contains("tree 0, node 0 points"), "{err}");
    let err = edit(&|m| m["trees"] = serde_json::json!([]));
    assert!(err.contains("no trees"), "{err}");
    let err = edit(&|m| m["objective_type"] = "SquaredLoss".into());
    assert!(err.contains("LogLoss"), "{err}");
    let mut a = good.clone();
    a.payload["model"] = "not json".into();
    assert!(matches!(load_predictor(&a), Err(MlError::Artifact(_))));
    let mut a = good.clone();
    a.payload["params"]["learning_rate"] = 5.into();
    let err = load_predictor(&a).err().unwrap().to_string();
    assert!(err.contains("learning_rate = 5"), "{err}");
    let mut a = good.clone();
    a.feature_names.pop();
    let err = load_predictor(&a).err().unwrap().to_string();
    assert!(err.contains("splits on feature 1"), "{err}");
    let mut a = good;
    a.format_version = 2;
    assert!(matches!(
        load_predictor(&a),
        Err(MlError::UnsupportedFormatVersion { .. })
    ));
}
