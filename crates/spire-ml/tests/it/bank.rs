//! Quality on real data: UCI Bank Marketing (see shared/data/bank_marketing/SOURCE.txt).

use std::collections::HashMap;

use spire_ml::{
    average_precision, log_loss, roc_auc, stratified_split, LogisticRegressionParams, Matrix,
    Predictor,
};

const NUMERIC: [&str; 6] = ["age", "balance", "day", "campaign", "pdays", "previous"];
/// One-hot levels per categorical column (every other level is all zeros). "duration" is left
/// out: it is only known after the call, so it would leak the label.
const CATEGORICAL: [(&str, &[&str]); 8] = [
    (
        "job",
        &[
            "admin.",
            "blue-collar",
            "entrepreneur",
            "housemaid",
            "management",
            "retired",
            "self-employed",
            "services",
            "student",
            "technician",
            "unemployed",
        ],
    ),
    ("marital", &["married", "single"]),
    ("education", &["primary", "secondary", "tertiary"]),
    ("housing", &["yes"]),
    ("loan", &["yes"]),
    ("contact", &["cellular", "telephone"]),
    ("poutcome", &["failure", "other", "success"]),
    (
        "month",
        &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ],
    ),
];

pub(crate) struct Bank {
    pub(crate) x: Matrix,
    pub(crate) y: Vec<bool>,
    pub(crate) names: Vec<String>,
}

fn unquote(s: &str) -> &str {
    s.trim().trim_matches('"')
}

pub(crate) fn load() -> Bank {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/bank_marketing/bank-full.csv"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(';').map(unquote).collect();
    let col: HashMap<&str, usize> = header.iter().enumerate().map(|(i, h)| (*h, i)).collect();
    let mut names: Vec<String> = NUMERIC.iter().map(|s| s.to_string()).collect();
    for (c, levels) in CATEGORICAL {
        names.extend(levels.iter().map(|l| format!("{c}={l}")));
    }
    let (mut data, mut y) = (Vec::new(), Vec::new());
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(';').map(unquote).collect();
        for c in NUMERIC {
            data.push(f[col[c]].parse::<f64>().unwrap());
        }
        for (c, levels) in CATEGORICAL {
            data.extend(levels.iter().map(|l| f64::from(u8::from(f[col[c]] == *l))));
        }
        y.push(f[col["y"]] == "yes");
    }
    let x = Matrix::new(y.len(), names.len(), data).unwrap();
    Bank { x, y, names }
}

/// Reference: scikit-learn 1.9.1 on the same 45,211 rows, features and split (the split hash
/// re-implemented in Python): `StandardScaler` fitted on train, then
/// `LogisticRegression(C=1.0, tol=1e-10, max_iter=1000)`; test `roc_auc_score` =
/// 0.7814949766129018, `log_loss` = 0.2962626582799095, `average_precision_score` = 0.41727.
#[test]
fn bank_marketing_matches_sklearn() {
    let bank = load();
    assert_eq!((bank.x.n_rows(), bank.x.n_cols()), (45_211, 41));
    let keys: Vec<String> = (0..bank.y.len()).map(|i| format!("row-{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let split = stratified_split(&keys, &bank.y, 0.25, 7).unwrap();
    // Same split as the Python re-implementation.
    assert_eq!((split.train.len(), split.test.len()), (33_908, 11_303));
    assert_eq!(split.test.iter().sum::<usize>(), 256_559_780);
    assert_eq!(split.test[..5], [2, 4, 10, 20, 21]);

    let pick = |idx: &[usize]| idx.iter().map(|&i| bank.y[i]).collect::<Vec<bool>>();
    let (x_train, y_train) = (bank.x.select_rows(&split.train), pick(&split.train));
    let (x_test, y_test) = (bank.x.select_rows(&split.test), pick(&split.test));
    // sklearn's C = 1 in Kalos's scale: l2 = 1 / (C · n_train).
    let params = LogisticRegressionParams {
        l2: spire_ml::l2_from_sklearn_c(1.0, x_train.n_rows()),
        tol: 1e-10,
        ..Default::default()
    };
    let model = params
        .validate()
        .unwrap()
        .fit(&x_train, &y_train, &bank.names)
        .unwrap();
    assert!(model.converged(), "after {} iterations", model.iterations());

    let p = model.predict_proba(&x_test).unwrap();
    let auc = roc_auc(&y_test, &p).unwrap();
    assert!(auc >= 0.75, "test AUC {auc}");
    assert!(
        (auc - 0.7814949766129018).abs() < 1e-3,
        "test AUC {auc} vs sklearn 0.7815"
    );
    let ll = log_loss(&y_test, &p);
    assert!((ll - 0.2962626582799095).abs() < 1e-3, "log loss {ll}");
    let ap = average_precision(&y_test, &p).unwrap();
    eprintln!(
        "kalos: auc {auc} log_loss {ll} ap {ap} iterations {}",
        model.iterations()
    );
    assert!((ap - 0.41727).abs() < 0.01, "average precision {ap}");
}
