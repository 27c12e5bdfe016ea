//! Small dense linear algebra for the solvers (crate-private).

/// Smallest accepted ratio of a Cholesky pivot to its diagonal entry (`1 − R²` of that column
/// regressed on the previous ones).
const PIVOT_RTOL: f64 = 1e-12;

/// Solves `a · x = b` for a symmetric positive definite `a` (row-major `p × p`) by Cholesky.
///
/// Only the lower triangle of `a` is read. Returns `None` when `a` is not numerically positive
/// definite: a non-finite pivot, or a pivot below `PIVOT_RTOL` times its diagonal entry (the
/// column is, to working precision, a combination of the previous ones).
pub(crate) fn cholesky_solve(a: &[f64], b: &[f64], p: usize) -> Option<Vec<f64>> {
    debug_assert_eq!(a.len(), p * p);
    debug_assert_eq!(b.len(), p);
    // Factor a = L Lᵀ, L stored row-major in its lower triangle.
    let mut l = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| l[i * p + k] * l[j * p + k]).sum();
            let v = a[i * p + j] - dot;
            if i == j {
                if !(v.is_finite() && v > PIVOT_RTOL * a[i * p + i]) {
                    return None;
                }
                l[i * p + i] = v.sqrt();
            } else {
                l[i * p + j] = v / l[j * p + j];
            }
        }
    }
    // Forward substitution: L y = b.
    let mut y = vec![0.0; p];
    for i in 0..p {
        let dot: f64 = (0..i).map(|k| l[i * p + k] * y[k]).sum();
        y[i] = (b[i] - dot) / l[i * p + i];
    }
    // Back substitution: Lᵀ x = y.
    let mut x = vec![0.0; p];
    for i in (0..p).rev() {
        let dot: f64 = (i + 1..p).map(|k| l[k * p + i] * x[k]).sum();
        x[i] = (y[i] - dot) / l[i * p + i];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn solves_spd_system() {
        // a = [[4, 2, 0], [2, 3, 1], [0, 1, 2]], x = [1, -1, 2] → b = a x.
        let a = [4.0, 2.0, 0.0, 2.0, 3.0, 1.0, 0.0, 1.0, 2.0];
        let b = [2.0, 1.0, 3.0];
        let x = cholesky_solve(&a, &b, 3).unwrap();
        for (got, want) in x.iter().zip([1.0, -1.0, 2.0]) {
            assert!((got - want).abs() < 1e-12, "{x:?}");
        }
    }

    #[test]
    fn rejects_singular_and_empty_is_fine() {
        let a = [1.0, 1.0, 1.0, 1.0];
        assert!(cholesky_solve(&a, &[1.0, 1.0], 2).is_none());
        assert_eq!(cholesky_solve(&[], &[], 0), Some(vec![]));
    }
}
