//! K-means against scikit-learn on real data: UCI Online Shoppers Purchasing Intention
//! (see shared/data/online_shoppers_intention/SOURCE.txt), reference from the committed
//! fixture of `tests/fixtures/make_kmeans_fixture.py`.

use std::collections::HashMap;

use serde::Deserialize;
use spire_ml::{Clusterer, KMeansParams, Matrix};

#[derive(Deserialize)]
struct Fixture {
    sklearn: String,
    every: usize,
    n_rows: usize,
    columns: Vec<String>,
    scaler_mean: Vec<f64>,
    scaler_scale: Vec<f64>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    k: usize,
    tol: f64,
    max_iter: usize,
    initial_centers: Vec<Vec<f64>>,
    centers: Vec<Vec<f64>>,
    centers_original: Vec<Vec<f64>>,
    inertia: f64,
    n_iter: usize,
    labels: Vec<usize>,
    sizes: Vec<usize>,
    cluster_means: Vec<Vec<f64>>,
}

fn fixture() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kmeans_online_shoppers.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The sample the fixture used: every `every`-th row, the named numeric columns.
fn load(columns: &[String], every: usize) -> Matrix {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/online_shoppers_intention/online_shoppers_intention.csv"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col: HashMap<&str, usize> = header.iter().enumerate().map(|(i, h)| (*h, i)).collect();
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()).step_by(every) {
        let f: Vec<&str> = line.split(',').collect();
        let row: Vec<f64> = columns
            .iter()
            .map(|c| f[col[c.as_str()]].parse::<f64>().unwrap())
            .collect();
        rows.push(row);
    }
    Matrix::from_rows(&rows).unwrap()
}

/// Relative agreement to 1e-6, with an absolute floor of 1e-6 for values near 0.
fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-6 * want.abs().max(1.0),
        "{what}: got {got}, sklearn {want}"
    );
}

fn close_rows(got: &Matrix, want: &[Vec<f64>], what: &str) {
    assert_eq!(got.n_rows(), want.len(), "{what}");
    for (i, (g, w)) in got.rows().zip(want).enumerate() {
        for (j, (a, b)) in g.iter().zip(w).enumerate() {
            close(*a, *b, &format!("{what}[{i}][{j}]"));
        }
    }
}

#[test]
fn lloyd_from_sklearn_start_reaches_sklearn_solution() {
    let fx = fixture();
    assert_eq!(fx.sklearn, "1.9.1");
    let x = load(&fx.columns, fx.every);
    assert_eq!((x.n_rows(), x.n_cols()), (fx.n_rows, 10));
    for case in &fx.cases {
        let what = format!("k={}", case.k);
        let params = KMeansParams {
            k: case.k,
            tol: case.tol,
            max_iter: case.max_iter,
            ..Default::default()
        };
        let init = Matrix::from_rows(&case.initial_centers).unwrap();
        let m = params
            .validate()
            .unwrap()
            .fit_from_centers(&x, &fx.columns, &init)
            .unwrap();
        // Spire's standardizer is scikit-learn's StandardScaler.
        let s = m.standardizer().unwrap();
        for (a, b) in s.means().iter().zip(&fx.scaler_mean) {
            close(*a, *b, "scaler mean");
        }
        for (a, b) in s.scales().iter().zip(&fx.scaler_scale) {
            close(*a, *b, "scaler scale");
        }
        assert!(m.converged(), "{what}");
        assert_eq!(m.iterations(), case.n_iter, "{what}: Lloyd iterations");
        assert_eq!(m.predict(&x).unwrap(), case.labels, "{what}: labels");
        close(m.inertia(), case.inertia, &format!("{what} inertia"));
        close_rows(m.centers(), &case.centers, &format!("{what} centers"));
        close_rows(
            &m.centers_original(),
            &case.centers_original,
            &format!("{what} original centers"),
        );
        // Profiles: sizes and per-feature means of sklearn's clusters, in original units.
        let profiles = m.profiles();
        for (c, p) in profiles.clusters.iter().enumerate() {
            assert_eq!(p.size, case.sizes[c], "{what}: size of cluster {c}");
            for (f, want) in p.features.iter().zip(&case.cluster_means[c]) {
                close(
                    f.mean,
                    *want,
                    &format!("{what} cluster {c} mean {}", f.feature),
                );
            }
        }
        let shares: f64 = profiles.clusters.iter().map(|p| p.share).sum();
        assert!((shares - 1.0).abs() < 1e-12);
    }
}

/// From its own k-means++ starts, Spire finds a solution at least about as good as the one
/// scikit-learn reached from its start (k-means has local optima, so allow 2%).
#[test]
fn own_starts_find_a_comparable_optimum() {
    let fx = fixture();
    let x = load(&fx.columns, fx.every);
    let case = &fx.cases[0];
    let m = KMeansParams::default()
        .with_k(case.k)
        .with_n_init(5)
        .with_seed(3)
        .validate()
        .unwrap()
        .fit(&x, &fx.columns)
        .unwrap();
    assert!(
        m.inertia() <= case.inertia * 1.02,
        "spire {} vs sklearn {}",
        m.inertia(),
        case.inertia
    );
    // Every cluster is used, and a profile names its most distinguishing features.
    for p in &m.profiles().clusters {
        assert!(p.size > 0);
        let top = p.top_features(3);
        assert_eq!(top.len(), 3);
        assert!(top[0].std_difference.abs() >= top[2].std_difference.abs());
    }
}
