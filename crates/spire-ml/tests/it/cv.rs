//! Cross-validation folds shared by a model family, and a real cross-validation and time
//! holdout on UCI Bank Marketing.

use spire_ml::eval::{cross_validate, time_holdout, KFold};
use spire_ml::{
    average_precision, log_loss, roc_auc, stratified_split, LogisticRegressionParams, Matrix,
    MlError, Predictor,
};

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user-{i}")).collect()
}

fn refs(keys: &[String]) -> Vec<&str> {
    keys.iter().map(String::as_str).collect()
}

fn spread(counts: &[usize]) -> usize {
    counts.iter().max().unwrap() - counts.iter().min().unwrap()
}

#[test]
fn stratified_folds_balance_both_classes_exactly() {
    let owned = keys(1003);
    let keys = refs(&owned);
    let y: Vec<bool> = (0..1003).map(|i| i % 9 == 0).collect(); // 112 positives
    let folds = KFold::new(5, 7)
        .unwrap()
        .stratified_folds(&keys, &y)
        .unwrap();
    assert_eq!(folds.k(), 5);
    assert!(spread(&folds.sizes()) <= 1, "{:?}", folds.sizes());
    let pos = folds.positives(&y);
    assert!(spread(&pos) <= 1, "{pos:?}");
    assert_eq!(pos.iter().sum::<usize>(), 112);
    let neg: Vec<usize> = folds.sizes().iter().zip(&pos).map(|(s, p)| s - p).collect();
    assert!(spread(&neg) <= 1, "{neg:?}");
    // The test sides partition the rows; train is the complement.
    let mut all: Vec<usize> = folds.splits().flat_map(|s| s.test).collect();
    all.sort_unstable();
    assert_eq!(all, (0..1003).collect::<Vec<_>>());
    for split in folds.splits() {
        assert_eq!(split.train.len() + split.test.len(), 1003);
    }
    // Another seed deals other folds.
    let other = KFold::new(5, 8)
        .unwrap()
        .stratified_folds(&keys, &y)
        .unwrap();
    assert_ne!(folds, other);
}

#[test]
fn a_key_keeps_its_fold_whatever_the_row_order() {
    let owned = keys(500);
    let fwd = refs(&owned);
    let y: Vec<bool> = (0..500).map(|i| i % 4 == 1).collect();
    let rev: Vec<&str> = fwd.iter().rev().copied().collect();
    let y_rev: Vec<bool> = y.iter().rev().copied().collect();
    let kf = KFold::new(4, 11).unwrap();
    let a = kf.stratified_folds(&fwd, &y).unwrap();
    let b = kf.stratified_folds(&rev, &y_rev).unwrap();
    for (i, key) in fwd.iter().enumerate() {
        assert_eq!(a.assignment()[i], b.assignment()[499 - i], "key {key}");
    }
    // Label-free folds are a pure function of the key: every model of a family shares them,
    // even models with different labels.
    let u = kf.folds(&fwd).unwrap();
    for (i, key) in fwd.iter().enumerate() {
        assert_eq!(u.assignment()[i], kf.fold_of(key));
    }
    assert_eq!(u, kf.folds(&fwd).unwrap());
    assert!(
        u.sizes().iter().all(|&s| (90..=160).contains(&s)),
        "{:?}",
        u.sizes()
    );
}

#[test]
fn folds_inside_a_split_with_the_same_seed_are_balanced() {
    // The fold hash is independent of the holdout hash for the same seed: cross-validating
    // the training side of a split still fills every fold.
    let owned = keys(4000);
    let keys = refs(&owned);
    let y: Vec<bool> = (0..4000).map(|i| i % 5 == 0).collect();
    let split = stratified_split(&keys, &y, 0.25, 3).unwrap();
    let train_keys: Vec<&str> = split.train.iter().map(|&i| keys[i]).collect();
    let folds = KFold::new(5, 3).unwrap().folds(&train_keys).unwrap();
    // 3,000 rows over 5 folds: 600 expected, binomial sd ≈ 22.
    assert!(
        folds.sizes().iter().all(|&s| (500..=700).contains(&s)),
        "{:?}",
        folds.sizes()
    );
}

#[test]
fn bad_fold_requests_are_clear_errors() {
    let owned = keys(10);
    let keys = refs(&owned);
    let y: Vec<bool> = (0..10).map(|i| i < 3).collect();
    let err = KFold::new(4, 0)
        .unwrap()
        .stratified_folds(&keys, &y)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("needs at least 4 positive rows, found 3"),
        "{err}"
    );
    let err = KFold::new(2, 0)
        .unwrap()
        .stratified_folds(&keys, &y[..9])
        .unwrap_err();
    assert!(matches!(err, MlError::Shape(_)), "{err}");
    let dup = ["a", "b", "c", "a"];
    let err = KFold::new(2, 0)
        .unwrap()
        .stratified_folds(&dup, &[true, false, true, false])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("key \"a\" appears in rows 0 and 3"),
        "{err}"
    );
    // Two keys cannot fill 50 hash folds.
    let err = KFold::new(50, 0).unwrap().folds(&["a", "b"]).unwrap_err();
    assert!(matches!(err, MlError::Degenerate(_)), "{err}");
    assert!(KFold::new(0, 0).is_err());
}

/// 5-fold stratified cross-validation of the logistic regression on Bank Marketing: the
/// folds are the same for every model of the family, the summary reports mean ± std, and the
/// mean AUC agrees with the single-split AUC of tests/it/bank.rs (0.7815 on one 25% split).
#[test]
fn cross_validates_logistic_regression_on_bank_marketing() {
    let bank = crate::bank::load();
    let owned = keys(bank.y.len());
    let keys = refs(&owned);
    let folds = KFold::new(5, 7)
        .unwrap()
        .stratified_folds(&keys, &bank.y)
        .unwrap();
    let pick = |idx: &[usize]| -> (Matrix, Vec<bool>) {
        (
            bank.x.select_rows(idx),
            idx.iter().map(|&i| bank.y[i]).collect(),
        )
    };
    let summary = cross_validate(&folds, |_, split| {
        let (x_train, y_train) = pick(&split.train);
        let (x_test, y_test) = pick(&split.test);
        let params = LogisticRegressionParams {
            l2: spire_ml::l2_from_sklearn_c(1.0, x_train.n_rows()),
            tol: 1e-10,
            ..Default::default()
        };
        let model = params.validate()?.fit(&x_train, &y_train, &bank.names)?;
        let p = model.predict_proba(&x_test)?;
        let top = spire_ml::top_k(&y_test, &p, 0.1)?;
        Ok(vec![
            ("auc".into(), roc_auc(&y_test, &p).unwrap_or(f64::NAN)),
            (
                "ap".into(),
                average_precision(&y_test, &p).unwrap_or(f64::NAN),
            ),
            ("log_loss".into(), log_loss(&y_test, &p)),
            ("lift@10%".into(), top.lift),
        ])
    })
    .unwrap();
    assert_eq!(summary.n_folds(), 5);
    let auc = summary.get("auc").unwrap();
    eprintln!(
        "bank 5-fold CV: {auc}; {}",
        summary.get("lift@10%").unwrap()
    );
    assert!((auc.mean - 0.7815).abs() < 0.02, "{auc}");
    assert!(auc.std > 0.0 && auc.std < 0.02, "{auc}");
    let lift = summary.get("lift@10%").unwrap();
    assert!(lift.mean > 2.5, "a useful model: {lift}");
}

/// Bank Marketing rows are in call-date order (May 2008 – Nov 2010), so the row position is
/// a time: training on the first 80% and testing on the last 20% is a time holdout.
#[test]
fn time_holdout_on_bank_marketing() {
    let bank = crate::bank::load();
    let n = bank.y.len();
    let time: Vec<usize> = (0..n).collect();
    let cutoff = n * 4 / 5;
    let split = time_holdout(&time, &bank.y, &cutoff).unwrap();
    assert_eq!(split.train, (0..cutoff).collect::<Vec<_>>());
    assert_eq!(split.test, (cutoff..n).collect::<Vec<_>>());
    // Later calls succeed far more often: the time holdout sees a shifted base rate that a
    // random split hides.
    let rate = |idx: &[usize]| idx.iter().filter(|&&i| bank.y[i]).count() as f64 / idx.len() as f64;
    assert!(rate(&split.test) > 2.0 * rate(&split.train));
}
