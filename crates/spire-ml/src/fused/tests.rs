#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use super::*;
use crate::artifact::Predictor;

/// `n × d` correlated Gaussian features and `m` label columns drawn from random logistic
/// models (column `j` uses seed-dependent true weights).
fn synthetic(n: usize, d: usize, m: usize, seed: u64) -> (Matrix, Vec<Vec<bool>>, Vec<String>) {
    synthetic_sparse(n, d, d, m, seed)
}

/// As [`synthetic`], with labels that depend on the first `informative` columns only.
fn synthetic_sparse(
    n: usize,
    d: usize,
    informative: usize,
    m: usize,
    seed: u64,
) -> (Matrix, Vec<Vec<bool>>, Vec<String>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let normal = Normal::new(0.0, 1.0).unwrap();
    let mut data = Vec::with_capacity(n * d);
    for _ in 0..n {
        let shared: f64 = normal.sample(&mut rng);
        for k in 0..d {
            let v: f64 = normal.sample(&mut rng);
            // Correlated columns with different scales and offsets.
            data.push((0.6 * shared + v) * (1.0 + k as f64) + 3.0 * k as f64);
        }
    }
    let x = Matrix::new(n, d, data).unwrap();
    let mut cols = Vec::new();
    for _ in 0..m {
        let w: Vec<f64> = (0..d)
            .map(|k| {
                if k < informative {
                    rng.random_range(-1.0..1.0)
                } else {
                    0.0
                }
            })
            .collect();
        let b: f64 = rng.random_range(-2.0..0.5);
        let col = x
            .rows()
            .map(|r| {
                let z: f64 = b + r
                    .iter()
                    .enumerate()
                    .map(|(k, v)| w[k] * (v - 3.0 * k as f64) / (1.0 + k as f64))
                    .sum::<f64>();
                rng.random::<f64>() < 1.0 / (1.0 + (-z).exp())
            })
            .collect();
        cols.push(col);
    }
    let names = (0..d).map(|k| format!("f{k}")).collect();
    (x, cols, names)
}

/// The penalised objective of `model` on `(x, y)`, in `f64`.
fn objective(model: &LogisticRegression, x: &Matrix, y: &[bool], l2: f64, l1: f64) -> f64 {
    let z = model.decision_function(x).unwrap();
    let loss: f64 = z
        .iter()
        .zip(y)
        .map(|(z, &y)| {
            let sp = z.max(0.0) + (-z.abs()).exp().ln_1p();
            sp - if y { *z } else { 0.0 }
        })
        .sum::<f64>()
        / y.len() as f64;
    let w = model.coefficients();
    loss + 0.5 * l2 * w.iter().map(|v| v * v).sum::<f64>()
        + l1 * w.iter().map(|v| v.abs()).sum::<f64>()
}

#[test]
fn l2_family_matches_separate_newton_fits() {
    let (x, cols, names) = synthetic(4000, 8, 6, 11);
    let labels = LabelMatrix::from_columns(&cols).unwrap();
    let l2s = [1e-4, 1e-3, 1e-2, 1e-1, 1e-4, 3e-3];
    let members: Vec<Member> = l2s
        .iter()
        .enumerate()
        .map(|(j, &l2)| Member::l2(format!("seg{j}"), j, l2))
        .collect();
    let family = FamilyParams::default()
        .validate()
        .unwrap()
        .fit(&x, &names, &labels, &members)
        .unwrap();
    let fused_p = family.predict_proba(&x).unwrap();
    for (j, &l2) in l2s.iter().enumerate() {
        let m = &family.members()[j];
        assert!(m.stop.is_converged(), "member {j}: {:?}", m.stop);
        let separate = LogisticRegressionParams::default()
            .with_l2(l2)
            .with_tol(1e-12)
            .validate()
            .unwrap()
            .fit(&x, &cols[j], &names)
            .unwrap();
        let fused = family.model(j).unwrap();
        let f_sep = objective(&separate, &x, &cols[j], l2, 0.0);
        let f_fused = objective(&fused, &x, &cols[j], l2, 0.0);
        let gap = (f_fused - f_sep) / f_sep.abs();
        assert!(gap <= 1e-6, "member {j}: relative objective gap {gap:e}");
        assert!(
            (m.objective - f_fused).abs() <= 1e-6 * f_fused,
            "reported objective"
        );
        let p_sep = separate.predict_proba(&x).unwrap();
        let p_fused = fused.predict_proba(&x).unwrap();
        let dp = p_sep
            .iter()
            .zip(&p_fused)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(dp <= 1e-4, "member {j}: max |Δp| = {dp:e}");
        // The fused f32 scoring path agrees with the f64 single-model path.
        let col = fused_p.column(j);
        let ds = col
            .iter()
            .zip(&p_fused)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(ds <= 1e-5, "member {j}: fused scoring differs by {ds:e}");
    }
}

#[test]
fn excluded_rows_match_a_fit_on_the_subset() {
    let (x, cols, names) = synthetic(3000, 5, 2, 5);
    let mut labels = LabelMatrix::from_columns(&cols).unwrap();
    // Member 1 sees only every third row.
    for i in 0..x.n_rows() {
        if i % 3 != 0 {
            labels.set(i, 1, None);
        }
    }
    let params = FamilyParams {
        standardize: false,
        ..FamilyParams::default()
    };
    let members = [Member::l2("all", 0, 1e-3), Member::l2("third", 1, 1e-3)];
    let family = params
        .validate()
        .unwrap()
        .fit(&x, &names, &labels, &members)
        .unwrap();
    assert_eq!(family.members()[1].n_train, 1000);
    let (idx, y) = labels.column(1);
    let xs = x.select_rows(&idx);
    let separate = LogisticRegressionParams::default()
        .with_l2(1e-3)
        .with_standardize(false)
        .with_tol(1e-12)
        .validate()
        .unwrap()
        .fit(&xs, &y, &names)
        .unwrap();
    let fused = family.model(1).unwrap();
    let gap = (objective(&fused, &xs, &y, 1e-3, 0.0) - objective(&separate, &xs, &y, 1e-3, 0.0))
        / objective(&separate, &xs, &y, 1e-3, 0.0);
    assert!(gap <= 1e-6, "gap {gap:e}");
}

#[test]
fn regularization_path_shares_a_label_column() {
    let (x, cols, names) = synthetic(2000, 6, 1, 3);
    let labels = LabelMatrix::from_columns(&cols).unwrap();
    let path = [1e-4, 1e-3, 1e-2, 1e-1, 1.0];
    let members: Vec<Member> = path
        .iter()
        .map(|&l2| Member::l2(format!("l2={l2}"), 0, l2))
        .collect();
    let family = FamilyParams::default()
        .validate()
        .unwrap()
        .fit(&x, &names, &labels, &members)
        .unwrap();
    let norms: Vec<f64> = family
        .members()
        .iter()
        .map(|m| m.coefficients.iter().map(|c| c * c).sum::<f64>())
        .collect();
    assert!(norms.windows(2).all(|w| w[0] > w[1]), "norms {norms:?}");
}

/// Karush–Kuhn–Tucker conditions of the elastic-net objective, checked in `f64`.
fn assert_kkt(model: &LogisticRegression, x: &Matrix, y: &[bool], l2: f64, l1: f64, tol: f64) {
    let z = model.standardizer().unwrap().transform(x).unwrap();
    let p = model.predict_proba(x).unwrap();
    let n = y.len() as f64;
    let w = model.coefficients();
    let mut gb = 0.0;
    for (k, wk) in w.iter().enumerate() {
        let g: f64 = z
            .rows()
            .zip(&p)
            .zip(y)
            .map(|((r, p), &y)| r[k] * (p - if y { 1.0 } else { 0.0 }))
            .sum::<f64>()
            / n
            + l2 * wk;
        if *wk == 0.0 {
            assert!(
                g.abs() <= l1 + tol,
                "coef {k} is 0 but |g| = {} > l1",
                g.abs()
            );
        } else {
            let r = g + l1 * wk.signum();
            assert!(
                r.abs() <= tol,
                "coef {k} = {wk}: stationarity residual {r:e}"
            );
        }
    }
    for (pi, &yi) in p.iter().zip(y) {
        gb += pi - if yi { 1.0 } else { 0.0 };
    }
    assert!((gb / n).abs() <= tol, "intercept gradient {:e}", gb / n);
}

#[test]
fn lasso_and_elastic_net_satisfy_kkt_and_are_sparse() {
    let (x, cols, names) = synthetic_sparse(3000, 10, 5, 2, 21);
    for (l2, l1) in [(0.0, 0.02), (0.01, 0.01)] {
        let model = LogisticRegressionParams::default()
            .with_l2(l2)
            .with_l1(l1)
            .with_tol(1e-9)
            .validate()
            .unwrap()
            .fit(&x, &cols[0], &names)
            .unwrap();
        assert!(model.converged(), "l2={l2} l1={l1}");
        assert_kkt(&model, &x, &cols[0], l2, l1, 2e-5);
        let zeros = model.coefficients().iter().filter(|c| **c == 0.0).count();
        assert!(
            zeros >= 1,
            "l1 = {l1} should zero some coefficients: {:?}",
            model.coefficients()
        );
        // Round-trips through its artifact with the L1 strength.
        let back = crate::load_predictor(&model.to_artifact().unwrap()).unwrap();
        assert_eq!(
            back.predict_proba(&x).unwrap(),
            model.predict_proba(&x).unwrap()
        );
    }
    // A family mixing smooth and L1 members solves both.
    let labels = LabelMatrix::from_columns(&cols).unwrap();
    let members = [
        Member::l2("smooth", 0, 1e-3),
        Member::elastic_net("sparse", 1, 0.0, 0.02),
    ];
    let family = FamilyParams {
        tol: 1e-7,
        ..FamilyParams::default()
    }
    .validate()
    .unwrap()
    .fit(&x, &names, &labels, &members)
    .unwrap();
    assert!(family.members().iter().all(|m| m.stop.is_converged()));
    assert_kkt(&family.model(1).unwrap(), &x, &cols[1], 0.0, 0.02, 2e-5);
}

#[test]
fn deterministic_whatever_the_thread_count() {
    let (x, cols, names) = synthetic(20_000, 6, 4, 8);
    let labels = LabelMatrix::from_columns(&cols).unwrap();
    let members: Vec<Member> = (0..4)
        .map(|j| Member::l2(format!("m{j}"), j, 1e-3))
        .collect();
    let fit = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let f = FamilyParams::default()
                    .validate()
                    .unwrap()
                    .fit(&x, &names, &labels, &members)
                    .unwrap();
                let s = f.predict_proba(&x).unwrap();
                (f, s)
            })
    };
    let (a, sa) = fit(1);
    let (b, sb) = fit(3);
    assert_eq!(a, b);
    assert_eq!(sa, sb);
}

#[test]
fn bad_input_names_the_member() {
    let (x, cols, names) = synthetic(200, 3, 1, 1);
    let mut labels = LabelMatrix::from_columns(&[cols[0].clone(), vec![true; 200]]).unwrap();
    let v = FamilyParams::default().validate().unwrap();
    let err = v
        .fit(
            &x,
            &names,
            &labels,
            &[Member::l2("ok", 0, 1e-3), Member::l2("all-buyers", 1, 1e-3)],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"all-buyers\"") && err.contains("only one class"),
        "{err}"
    );
    for i in 0..200 {
        labels.set(i, 1, None);
    }
    let err = v
        .fit(&x, &names, &labels, &[Member::l2("empty", 1, 1e-3)])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"empty\"") && err.contains("empty training set"),
        "{err}"
    );
    let err = v
        .fit(&x, &names, &labels, &[Member::l2("far", 9, 1e-3)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("label column 9"), "{err}");
    let err = v
        .fit(&x, &names, &labels, &[Member::l2("neg", 0, -1.0)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"neg\"") && err.contains("l2 = -1"), "{err}");
    let mut data = x.data().to_vec();
    data[7] = f64::NAN;
    let bad = Matrix::new(200, 3, data).unwrap();
    let err = v
        .fit(&bad, &names, &labels, &[Member::l2("a", 0, 1e-3)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 2, column 1"), "{err}");
    assert!(v.fit(&x, &names, &labels, &[]).is_err());
    let err = FamilyParams {
        tol: 0.0,
        ..FamilyParams::default()
    }
    .validate()
    .unwrap_err();
    assert_eq!(err.to_string(), "tol = 0: must be in (0, 1)");
    let family = v
        .fit(
            &x,
            &names,
            &LabelMatrix::from_columns(&cols).unwrap(),
            &[Member::l2("a", 0, 1e-3)],
        )
        .unwrap();
    let err = family
        .predict_proba(&Matrix::zeros(2, 4))
        .unwrap_err()
        .to_string();
    assert!(err.contains("expects 3 features"), "{err}");
}

#[test]
fn linear_scorer_matches_each_models_own_probabilities_across_groups() {
    let (x, cols, names) = synthetic(600, 5, 3, 11);
    let labels = LabelMatrix::from_columns(&cols).expect("labels");
    let family = FamilyParams::default()
        .validate()
        .expect("params")
        .fit(
            &x,
            &names,
            &labels,
            &[Member::l2("a", 0, 1e-3), Member::l2("b", 1, 1e-2)],
        )
        .expect("family");
    // A model trained separately (on other rows: its own standardizer) and one without
    // standardization form groups of their own.
    let y2 = cols[2].clone();
    let half = x.select_rows(&(0..300).collect::<Vec<_>>());
    let lone = crate::LogisticRegressionParams::default()
        .validate()
        .expect("params")
        .fit(&half, &y2[..300], &names)
        .expect("lone");
    let raw = crate::LogisticRegressionParams::default()
        .with_standardize(false)
        .validate()
        .expect("params")
        .fit(&x, &y2, &names)
        .expect("raw");
    let a = family.model(0).expect("a");
    let b = family.model(1).expect("b");
    let models = [&a, &lone, &b, &raw];
    let scorer = LinearScorer::new(&models).expect("scorer");
    assert_eq!((scorer.n_models(), scorer.n_groups()), (4, 3));
    let scores = scorer.predict_proba(&x).expect("scores");
    for (k, m) in models.iter().enumerate() {
        let own = m.predict_proba(&x).expect("own");
        let got = scores.column(k);
        let gap = own
            .iter()
            .zip(&got)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f64::max);
        assert!(gap < 1e-5, "model {k}: max |Δp| {gap}");
    }
    // Same products as the family's own scoring.
    let fam = family.predict_proba(&x).expect("family scores");
    assert_eq!(fam.column(1), scores.column(2));
}

#[test]
fn linear_scorer_rejects_models_of_different_features_and_bad_matrices() {
    let (x, cols, _) = synthetic(200, 3, 1, 5);
    let y = cols[0].clone();
    let params = crate::LogisticRegressionParams::default()
        .validate()
        .expect("params");
    let names: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
    let other: Vec<String> = vec!["a".into(), "c".into(), "b".into()];
    let m1 = params.fit(&x, &y, &names).expect("m1");
    let m2 = params.fit(&x, &y, &other).expect("m2");
    let err = LinearScorer::new(&[&m1, &m2]).expect_err("different features");
    assert!(err.to_string().contains("model 1"), "{err}");
    let scorer = LinearScorer::new(&[&m1]).expect("scorer");
    let narrow = Matrix::new(1, 2, vec![0.0, 1.0]).expect("matrix");
    assert!(scorer.predict_proba(&narrow).is_err());
    let nan = Matrix::new(1, 3, vec![0.0, f64::NAN, 1.0]).expect("matrix");
    let err = scorer.predict_proba(&nan).expect_err("NaN");
    assert!(
        err.to_string().to_lowercase().contains("nan") || err.to_string().contains("finite"),
        "{err}"
    );
}
