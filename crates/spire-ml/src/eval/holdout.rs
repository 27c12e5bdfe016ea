//! Time-based holdout: train on the past, test on the future.

use std::fmt::Debug;

use crate::error::MlError;
use crate::split::Split;

/// Splits rows by time: rows with `times[i] < cutoff` train, rows with `times[i] >= cutoff`
/// test (both lists ascending).
///
/// `T` is any totally ordered time (epoch seconds, days, `chrono` dates, ...). This is the
/// honest estimate for a model that will score future users: no row of the test period can
/// leak into training.
///
/// Fails with [`MlError::Shape`] when `times` and `y` differ in length, and with
/// [`MlError::Degenerate`] when either side is empty or holds one class only (a model cannot
/// be fitted, or AUC computed, on it); the message names the side and the cutoff.
///
/// ```
/// use spire_ml::eval::time_holdout;
///
/// let day = [1, 2, 3, 4, 5, 6];
/// let y = [true, false, true, false, false, true];
/// let split = time_holdout(&day, &y, &4)?;
/// assert_eq!(split.train, [0, 1, 2]);
/// assert_eq!(split.test, [3, 4, 5]);
/// # Ok::<(), spire_ml::MlError>(())
/// ```
pub fn time_holdout<T: Ord + Debug>(times: &[T], y: &[bool], cutoff: &T) -> Result<Split, MlError> {
    if times.len() != y.len() {
        return Err(MlError::Shape(format!(
            "{} times but {} labels",
            times.len(),
            y.len()
        )));
    }
    let mut split = Split::default();
    for (i, t) in times.iter().enumerate() {
        if t < cutoff {
            split.train.push(i);
        } else {
            split.test.push(i);
        }
    }
    for (side, rows, rule) in [
        ("train", &split.train, "time < cutoff"),
        ("test", &split.test, "time >= cutoff"),
    ] {
        let Some(&first) = rows.first() else {
            return Err(MlError::Degenerate(format!(
                "time holdout at cutoff {cutoff:?}: the {side} side ({rule}) has no rows; \
                 move the cutoff inside the data's time range"
            )));
        };
        let class = y[first];
        if rows.iter().all(|&i| y[i] == class) {
            return Err(MlError::Degenerate(format!(
                "time holdout at cutoff {cutoff:?}: every {side} row ({rule}, {} rows) is {}; \
                 both classes are needed on each side",
                rows.len(),
                if class { "positive" } else { "negative" }
            )));
        }
    }
    Ok(split)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_cutoff_in_any_row_order() {
        let t = [5, 1, 4, 2, 3, 6, 1];
        let y = [true, false, false, true, true, false, true];
        let s = time_holdout(&t, &y, &4).unwrap();
        assert_eq!(s.train, [1, 3, 4, 6]);
        assert_eq!(s.test, [0, 2, 5]);
    }

    #[test]
    fn rejects_empty_or_single_class_sides() {
        let t = [1, 2, 3, 4];
        let y = [true, false, true, false];
        let err = time_holdout(&t, &y, &0).unwrap_err();
        assert!(
            err.to_string()
                .contains("train side (time < cutoff) has no rows"),
            "{err}"
        );
        let err = time_holdout(&t, &y, &5).unwrap_err();
        assert!(err.to_string().contains("test side"), "{err}");
        let err = time_holdout(&t, &y, &4).unwrap_err();
        assert!(
            err.to_string()
                .contains("every test row (time >= cutoff, 1 rows) is negative"),
            "{err}"
        );
        assert!(matches!(err, MlError::Degenerate(_)));
        let err = time_holdout(&t, &[true, true, false, true], &3).unwrap_err();
        assert!(err.to_string().contains("every train row"), "{err}");
        assert!(matches!(
            time_holdout(&t, &y[..3], &2),
            Err(MlError::Shape(_))
        ));
    }
}
