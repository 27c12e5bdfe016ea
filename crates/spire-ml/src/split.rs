//! Deterministic, stratified train/test splits keyed by entity.

use crate::error::MlError;

/// Row indices of a train/test split, each list ascending.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Split {
    /// Rows used for fitting.
    pub train: Vec<usize>,
    /// Rows held out for evaluation.
    pub test: Vec<usize>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The stable 64-bit hash of `(seed, key)` that orders rows in [`stratified_split`].
///
/// FNV-1a 64 over the 8 little-endian bytes of `seed` followed by the UTF-8 bytes of `key`,
/// then the splitmix64 finalizer to spread FNV's weak low bits. Fixed forever: changing it
/// would move users between train and test.
pub fn split_hash(seed: u64, key: &str) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in seed.to_le_bytes().iter().chain(key.as_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Deterministic stratified split by entity key.
///
/// Each row is ranked by [`split_hash`]`(seed, key)` (ties by row index); within each class the
/// first `round(test_fraction · n_class)` rows go to test and the rest to train. Class ratios
/// therefore match on both sides (up to rounding), the result does not depend on row order or
/// thread count, and for the same seed and data a key always lands on the same side. Keys are
/// expected to identify one row each; rows sharing a key and class are adjacent in the
/// ranking, so at most one such group per class can straddle the cut.
///
/// Fails with [`MlError::InvalidParam`] unless `0 < test_fraction < 1`, and with
/// [`MlError::Shape`] when `keys` and `y` differ in length. Empty input gives an empty split.
pub fn stratified_split(
    keys: &[&str],
    y: &[bool],
    test_fraction: f64,
    seed: u64,
) -> Result<Split, MlError> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(MlError::invalid_param(
            "test_fraction",
            test_fraction,
            "in (0, 1)",
        ));
    }
    if keys.len() != y.len() {
        return Err(MlError::Shape(format!(
            "{} keys but {} labels",
            keys.len(),
            y.len()
        )));
    }
    let mut split = Split::default();
    for class in [false, true] {
        let mut rows: Vec<(u64, usize)> = keys
            .iter()
            .zip(y)
            .enumerate()
            .filter(|(_, (_, &label))| label == class)
            .map(|(i, (key, _))| (split_hash(seed, key), i))
            .collect();
        rows.sort_unstable();
        let n_test = (test_fraction * rows.len() as f64).round() as usize;
        let (test, train) = rows.split_at(n_test.min(rows.len()));
        split.test.extend(test.iter().map(|&(_, i)| i));
        split.train.extend(train.iter().map(|&(_, i)| i));
    }
    split.train.sort_unstable();
    split.test.sort_unstable();
    Ok(split)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_fixed() {
        // Pinned values: a change here moves users between train and test.
        assert_eq!(split_hash(0, ""), split_hash(0, ""));
        assert_ne!(split_hash(0, "a"), split_hash(1, "a"));
        assert_eq!(split_hash(42, "user-1"), 0x6bb6_7e0a_9d93_ad11);
    }

    #[test]
    fn rejects_bad_arguments() {
        for f in [0.0, 1.0, -0.1, f64::NAN] {
            let err = stratified_split(&["a"], &[true], f, 0).unwrap_err();
            assert!(err.to_string().starts_with("test_fraction = "), "{err}");
        }
        assert!(matches!(
            stratified_split(&["a"], &[], 0.5, 0),
            Err(MlError::Shape(_))
        ));
        assert_eq!(
            stratified_split(&[], &[], 0.5, 0).unwrap(),
            Split::default()
        );
    }
}
