//! Unit tests of k-means (the engine and profiles have their own beside them).
#![allow(clippy::unwrap_used)]

use rand::{Rng, SeedableRng};

use super::*;
use crate::artifact::{load_clusterer, load_predictor};

/// The true centers of [`blobs`].
const TRUE_CENTERS: [[f64; 3]; 4] = [
    [0.0, 0.0, 0.0],
    [10.0, 0.0, 0.0],
    [0.0, 10.0, 0.0],
    [0.0, 0.0, 10.0],
];

/// `per_blob` points around each true center with standard deviation 0.5 per axis (normal
/// draws by Box–Muller), and the blob of each row.
fn blobs(per_blob: usize, seed: u64) -> (Matrix, Vec<usize>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut normal = move || {
        let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let (mut data, mut truth) = (Vec::new(), Vec::new());
    for i in 0..per_blob * 4 {
        let b = i % 4;
        data.extend(TRUE_CENTERS[b].iter().map(|c| c + 0.5 * normal()));
        truth.push(b);
    }
    (Matrix::new(per_blob * 4, 3, data).unwrap(), truth)
}

fn names() -> Vec<String> {
    ["a", "b", "c"].map(String::from).to_vec()
}

fn fit(x: &Matrix, params: KMeansParams) -> KMeans {
    params.validate().unwrap().fit(x, &names()).unwrap()
}

#[test]
fn recovers_well_separated_blobs() {
    let (x, truth) = blobs(250, 1);
    for standardize in [false, true] {
        let m = fit(
            &x,
            KMeansParams::default()
                .with_k(4)
                .with_standardize(standardize),
        );
        assert!(m.converged());
        let centers = m.centers_original();
        // Every true center has a fitted center within 0.15 (the blob mean's standard error
        // is 0.5 / sqrt(250) ≈ 0.03 per axis).
        let mut matched = Vec::new();
        for t in TRUE_CENTERS {
            let (c, dist) = nearest(&t, centers.data(), 3);
            assert!(
                dist.sqrt() < 0.15,
                "center {t:?}: nearest {c} at {}",
                dist.sqrt()
            );
            matched.push(c);
        }
        matched.sort_unstable();
        assert_eq!(matched, [0, 1, 2, 3], "one fitted center per blob");
        // Labels are the blobs up to a renaming.
        let labels = m.predict(&x).unwrap();
        for (l, b) in labels.iter().zip(&truth) {
            let (c, _) = nearest(&TRUE_CENTERS[*b], centers.data(), 3);
            assert_eq!(*l, c);
        }
        let p = m.profiles();
        assert!(p.clusters.iter().all(|c| c.size == 250 && c.share == 0.25));
        if !standardize {
            // Inertia ≈ n · d · σ² = 1000 · 3 · 0.25.
            assert!((m.inertia() / 750.0 - 1.0).abs() < 0.1, "{}", m.inertia());
        }
    }
}

#[test]
fn profiles_name_the_distinguishing_feature() {
    let (x, _) = blobs(100, 2);
    let m = fit(&x, KMeansParams::default().with_k(4));
    for c in &m.profiles().clusters {
        let mean: Vec<f64> = c.features.iter().map(|f| f.mean).collect();
        // The blob at (10, 0, 0) is distinguished by "a", and so on; the origin blob by
        // whichever feature, all three being about 0.58 std below the overall mean.
        if let Some(j) = mean.iter().position(|&v| v > 5.0) {
            assert_eq!(c.top_features(1)[0].feature, names()[j]);
            assert!(c.features[j].ratio.unwrap() > 3.9, "{:?}", c.features[j]);
        }
    }
}

#[test]
fn deterministic_whatever_the_thread_count() {
    // 20,000 rows: ten chunks, so the parallel sums really are split.
    let (x, _) = blobs(5000, 3);
    let params = KMeansParams::default()
        .with_k(6)
        .with_seed(9)
        .with_n_init(2);
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| fit(&x, params.clone()))
    };
    let one = on(1);
    assert_eq!(one, on(2));
    assert_eq!(one, on(3));
    assert_eq!(one, fit(&x, params.clone()));
    // Another seed gives another start; with k = 6 on 4 blobs the result differs.
    let other = fit(&x, params.with_seed(10));
    assert_ne!(one.centers(), other.centers());
}

#[test]
fn more_starts_never_increase_inertia() {
    let (x, _) = blobs(100, 4);
    let params = KMeansParams::default().with_k(7).with_seed(5);
    let one = fit(&x, params.clone().with_n_init(1));
    let five = fit(&x, params.with_n_init(5));
    // Run 0 of both uses the same start, so the best of five is at least as good.
    assert!(five.inertia() <= one.inertia());
}

#[test]
fn k_one_is_the_mean() {
    let x = Matrix::from_rows(&[[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [2.0, 5.0, 2.0]]).unwrap();
    let m = fit(
        &x,
        KMeansParams::default().with_k(1).with_standardize(false),
    );
    assert_eq!(m.centers().data(), &[2.0, 3.0, 2.0]);
    // Squared distances to (2, 3, 2): 3, 3 and 4.
    assert!((m.inertia() - 10.0).abs() < 1e-12);
    assert_eq!(m.predict(&x).unwrap(), [0, 0, 0]);
    let dist = m.transform(&x).unwrap();
    assert!((dist.data()[0] - 3.0f64.sqrt()).abs() < 1e-12);
}

#[test]
fn transform_and_predict_agree() {
    let (x, _) = blobs(50, 6);
    let m = fit(&x, KMeansParams::default().with_k(5));
    let labels = m.predict(&x).unwrap();
    let dist = m.transform(&x).unwrap();
    assert_eq!((dist.n_rows(), dist.n_cols()), (200, 5));
    for (row, l) in dist.rows().zip(&labels) {
        let min = row.iter().copied().fold(f64::INFINITY, f64::min);
        assert_eq!(row[*l], min);
    }
    // Inertia is the sum of squared distances to the assigned centers.
    let inertia: f64 = dist.rows().zip(&labels).map(|(r, l)| r[*l] * r[*l]).sum();
    assert!((inertia - m.inertia()).abs() < 1e-9 * m.inertia());
}

#[test]
fn tol_zero_runs_to_strict_convergence() {
    let (x, _) = blobs(50, 7);
    let m = fit(&x, KMeansParams::default().with_k(3).with_tol(0.0));
    assert!(m.converged());
    let capped = fit(
        &x,
        KMeansParams::default()
            .with_k(3)
            .with_tol(0.0)
            .with_max_iter(1),
    );
    assert_eq!(capped.iterations(), 1);
}

#[test]
fn rejects_bad_training_data() {
    let v = KMeansParams::default().with_k(2).validate().unwrap();
    let x = Matrix::from_rows(&[[1.0, 2.0, 3.0], [3.0, f64::NAN, 1.0]]).unwrap();
    let err = v.fit(&x, &names()).unwrap_err();
    assert!(
        matches!(err, MlError::NonFinite { row: 1, col: 1, .. }),
        "{err}"
    );
    let x = Matrix::from_rows(&[[1.0, 2.0, 3.0]]).unwrap();
    let err = v.fit(&x, &names()).unwrap_err();
    assert!(
        err.to_string()
            .contains("k = 2 clusters need at least 2 distinct training rows, found 1"),
        "{err}"
    );
    // Duplicates do not count as distinct points (and -0.0 is 0.0).
    let x = Matrix::from_rows(&[[0.0, 1.0, 1.0], [-0.0, 1.0, 1.0], [0.0, 1.0, 1.0]]).unwrap();
    assert!(matches!(v.fit(&x, &names()), Err(MlError::Degenerate(_))));
    let err = v.fit(&Matrix::zeros(0, 3), &names()).unwrap_err();
    assert!(matches!(err, MlError::Shape(_)), "{err}");
    let err = v.fit(&Matrix::zeros(4, 0), &[]).unwrap_err();
    assert!(matches!(err, MlError::Shape(_)), "{err}");
    let (x, _) = blobs(10, 8);
    let err = v.fit(&x, &names()[..2]).unwrap_err();
    assert!(
        err.to_string().contains("3 columns but 2 feature names"),
        "{err}"
    );
    let dup = ["a", "b", "a"].map(String::from);
    let err = v.fit(&x, &dup).unwrap_err();
    assert!(err.to_string().contains("\"a\" appears twice"), "{err}");
    // Values so large that squared distances overflow.
    let big = Matrix::from_rows(&[[1e300, 0.0, 0.0], [-1e300, 0.0, 0.0], [0.0, 0.0, 1.0]]).unwrap();
    let raw = KMeansParams::default().with_k(2).with_standardize(false);
    let err = raw.validate().unwrap().fit(&big, &names()).unwrap_err();
    assert!(matches!(err, MlError::Numerical(_)), "{err}");
    // Standardizing cannot rescue them either (their variance overflows).
    assert!(matches!(v.fit(&big, &names()), Err(MlError::Numerical(_))));
}

#[test]
fn fit_from_centers_checks_centers() {
    let (x, _) = blobs(10, 9);
    let v = KMeansParams::default().with_k(2).validate().unwrap();
    let err = v
        .fit_from_centers(&x, &names(), &Matrix::zeros(3, 3))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("3 × 3, expected k × features = 2 × 3"),
        "{err}"
    );
    let bad = Matrix::from_rows(&[[0.0, 0.0, f64::INFINITY], [1.0, 1.0, 1.0]]).unwrap();
    assert!(matches!(
        v.fit_from_centers(&x, &names(), &bad),
        Err(MlError::NonFinite { row: 0, col: 2, .. })
    ));
}

#[test]
fn scoring_checks_shape_and_finiteness() {
    let (x, _) = blobs(10, 10);
    let m = fit(&x, KMeansParams::default().with_k(2));
    let err = m.predict(&Matrix::zeros(1, 2)).unwrap_err();
    assert!(
        err.to_string().contains("expects 3 features (a, b, c)"),
        "{err}"
    );
    assert!(m.transform(&Matrix::zeros(1, 4)).is_err());
    let nan = Matrix::from_rows(&[[0.0, f64::NAN, 0.0]]).unwrap();
    assert!(matches!(m.predict(&nan), Err(MlError::NonFinite { .. })));
    assert_eq!(
        m.predict(&Matrix::zeros(0, 3)).unwrap(),
        Vec::<usize>::new()
    );
}

#[test]
fn artifact_round_trip_is_bit_identical() {
    let (x, _) = blobs(40, 11);
    for standardize in [true, false] {
        let m = fit(
            &x,
            KMeansParams::default()
                .with_k(3)
                .with_standardize(standardize),
        );
        let bytes = m.to_artifact().unwrap().to_bytes().unwrap();
        let a = Artifact::from_bytes(&bytes).unwrap();
        assert_eq!(KMeans::from_artifact(&a).unwrap(), m);
        let loaded = load_clusterer(&a).unwrap();
        assert_eq!(loaded.flavor(), "kmeans");
        assert_eq!(loaded.n_clusters(), 3);
        assert_eq!(loaded.predict(&x).unwrap(), m.predict(&x).unwrap());
        let (t0, t1) = (m.transform(&x).unwrap(), loaded.transform(&x).unwrap());
        assert!(t0
            .data()
            .iter()
            .zip(t1.data())
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        assert_eq!(loaded.profile(&x).unwrap(), *m.profiles());
        assert_eq!(loaded.to_artifact().unwrap().to_bytes().unwrap(), bytes);
    }
}

#[test]
fn wrong_kind_and_inconsistent_payloads_are_rejected() {
    let (x, _) = blobs(20, 12);
    let m = fit(&x, KMeansParams::default().with_k(2));
    let a = m.to_artifact().unwrap();
    let err = load_predictor(&a).err().unwrap();
    assert!(matches!(err, MlError::WrongModelKind { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "kmeans artifact holds a clusterer, not a predictor; load it with load_clusterer"
    );
    let mut bad = a.clone();
    bad.feature_names.pop();
    let err = load_clusterer(&bad).err().unwrap();
    assert!(
        err.to_string()
            .contains("centers must be k × features = 2 × 2"),
        "{err}"
    );
    let mut bad = a.clone();
    bad.payload["centers"][0][0] = serde_json::json!(null);
    assert!(matches!(load_clusterer(&bad), Err(MlError::Artifact(_))));
    let mut bad = a.clone();
    bad.payload["params"]["k"] = serde_json::json!(3);
    assert!(matches!(load_clusterer(&bad), Err(MlError::Artifact(_))));
    let mut bad = a.clone();
    bad.payload["profiles"]["clusters"][0]["size"] = serde_json::json!(1);
    let err = load_clusterer(&bad).err().unwrap();
    assert!(err.to_string().contains("sizes add up"), "{err}");
    let mut bad = a.clone();
    bad.payload["standardizer"] = serde_json::Value::Null;
    assert!(matches!(load_clusterer(&bad), Err(MlError::Artifact(_))));
    let mut bad = a;
    bad.feature_names.clear();
    bad.payload["centers"] = serde_json::json!([[], []]);
    assert!(matches!(load_clusterer(&bad), Err(MlError::Artifact(_))));
}
