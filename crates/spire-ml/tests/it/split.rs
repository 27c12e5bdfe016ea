//! Split determinism and stratification.

use spire_ml::{stratified_split, Split};

fn data(n: usize) -> (Vec<String>, Vec<bool>) {
    let keys = (0..n).map(|i| format!("user-{i}")).collect();
    let y = (0..n).map(|i| i % 10 < 3).collect();
    (keys, y)
}

#[test]
fn deterministic_and_stratified() {
    let (keys, y) = data(1000);
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let a = stratified_split(&keys, &y, 0.2, 42).unwrap();
    assert_eq!(a, stratified_split(&keys, &y, 0.2, 42).unwrap());
    assert_eq!((a.train.len(), a.test.len()), (800, 200));
    let pos = |idx: &[usize]| idx.iter().filter(|&&i| y[i]).count();
    assert_eq!(pos(&a.test), 60, "round(0.2 * 300) positives in test");
    assert_eq!(pos(&a.train), 240);
    // A partition of all rows, each side ascending.
    let mut all: Vec<usize> = a.train.iter().chain(&a.test).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..1000).collect::<Vec<_>>());
    assert!(a.test.windows(2).all(|w| w[0] < w[1]));
    // Another seed gives another split.
    assert_ne!(a, stratified_split(&keys, &y, 0.2, 43).unwrap());
}

#[test]
fn side_follows_the_key_not_the_row_order() {
    let (keys, y) = data(500);
    let fwd: Vec<&str> = keys.iter().map(String::as_str).collect();
    let rev: Vec<&str> = fwd.iter().rev().copied().collect();
    let y_rev: Vec<bool> = y.iter().rev().copied().collect();
    let a = stratified_split(&fwd, &y, 0.3, 9).unwrap();
    let b = stratified_split(&rev, &y_rev, 0.3, 9).unwrap();
    let test_keys = |s: &Split, k: &[&str]| {
        let mut v: Vec<String> = s.test.iter().map(|&i| k[i].to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(test_keys(&a, &fwd), test_keys(&b, &rev));
}
