//! A dense, row-major matrix of `f64`: the one input type of every estimator.

use crate::error::MlError;

/// A dense matrix stored row by row (row `i` is `data[i * n_cols .. (i + 1) * n_cols]`).
///
/// Rows are observations (users), columns are features. The invariant
/// `data.len() == n_rows * n_cols` holds for every value of this type.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    n_rows: usize,
    n_cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// Wraps row-major `data` as an `n_rows × n_cols` matrix.
    ///
    /// Fails with [`MlError::Shape`] when `data.len() != n_rows * n_cols`. Values are not
    /// checked for finiteness here; estimators check them where it matters.
    pub fn new(n_rows: usize, n_cols: usize, data: Vec<f64>) -> Result<Matrix, MlError> {
        let expected = n_rows.checked_mul(n_cols).ok_or_else(|| {
            MlError::Shape(format!("{n_rows} rows × {n_cols} columns overflows usize"))
        })?;
        if data.len() != expected {
            return Err(MlError::Shape(format!(
                "{n_rows} rows × {n_cols} columns needs {expected} values, got {}",
                data.len()
            )));
        }
        Ok(Matrix {
            n_rows,
            n_cols,
            data,
        })
    }

    /// An `n_rows × n_cols` matrix of zeros.
    ///
    /// # Panics
    /// Panics if `n_rows * n_cols` overflows `usize` (the allocation could never succeed).
    pub fn zeros(n_rows: usize, n_cols: usize) -> Matrix {
        let len = n_rows
            .checked_mul(n_cols)
            .unwrap_or_else(|| panic!("{n_rows} rows × {n_cols} columns overflows usize"));
        Matrix {
            n_rows,
            n_cols,
            data: vec![0.0; len],
        }
    }

    /// Builds a matrix from rows; every row must have the same length (else [`MlError::Shape`]).
    ///
    /// With no rows the result has zero rows and zero columns.
    pub fn from_rows<R: AsRef<[f64]>>(rows: &[R]) -> Result<Matrix, MlError> {
        let n_cols = rows.first().map_or(0, |r| r.as_ref().len());
        let mut data = Vec::with_capacity(rows.len() * n_cols);
        for (i, row) in rows.iter().enumerate() {
            let row = row.as_ref();
            if row.len() != n_cols {
                return Err(MlError::Shape(format!(
                    "row {i} has {} values, row 0 has {n_cols}",
                    row.len()
                )));
            }
            data.extend_from_slice(row);
        }
        Matrix::new(rows.len(), n_cols, data)
    }

    /// Number of rows (observations).
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Number of columns (features).
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    /// Row `i` as a slice of `n_cols` values.
    ///
    /// # Panics
    /// Panics if `i >= n_rows`.
    pub fn row(&self, i: usize) -> &[f64] {
        assert!(
            i < self.n_rows,
            "row {i} out of range (n_rows = {})",
            self.n_rows
        );
        &self.data[i * self.n_cols..(i + 1) * self.n_cols]
    }

    /// The value at row `i`, column `j`, or `None` when out of range.
    pub fn get(&self, i: usize, j: usize) -> Option<f64> {
        if i < self.n_rows && j < self.n_cols {
            self.data.get(i * self.n_cols + j).copied()
        } else {
            None
        }
    }

    /// Iterates over the rows in order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[f64]> + '_ {
        // `chunks_exact(0)` panics, so a zero-column matrix yields empty rows explicitly.
        let n_cols = self.n_cols;
        (0..self.n_rows).map(move |i| &self.data[i * n_cols..(i + 1) * n_cols])
    }

    /// All values, row-major.
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// Consumes the matrix and returns its row-major values.
    pub fn into_data(self) -> Vec<f64> {
        self.data
    }

    /// A new matrix made of the rows at `idx`, in that order (repeats allowed).
    ///
    /// # Panics
    /// Panics if an index is `>= n_rows`; indices come from [`crate::split`] or the caller's own
    /// bookkeeping, never from user data directly.
    pub fn select_rows(&self, idx: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(idx.len() * self.n_cols);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Matrix {
            n_rows: idx.len(),
            n_cols: self.n_cols,
            data,
        }
    }

    /// A new matrix made of the columns at `idx`, in that order (repeats allowed).
    ///
    /// # Panics
    /// Panics if an index is `>= n_cols`; indices come from the caller's own bookkeeping
    /// (e.g. matching column names), never from user data directly.
    pub fn select_columns(&self, idx: &[usize]) -> Matrix {
        assert!(
            idx.iter().all(|&j| j < self.n_cols),
            "column index out of range (n_cols = {})",
            self.n_cols
        );
        let mut data = Vec::with_capacity(self.n_rows * idx.len());
        for row in self.rows() {
            data.extend(idx.iter().map(|&j| row[j]));
        }
        Matrix {
            n_rows: self.n_rows,
            n_cols: idx.len(),
            data,
        }
    }

    /// The first non-finite value as `(row, col, value)`, if any.
    pub fn first_non_finite(&self) -> Option<(usize, usize, f64)> {
        let pos = self.data.iter().position(|v| !v.is_finite())?;
        let n_cols = self.n_cols.max(1);
        Some((pos / n_cols, pos % n_cols, self.data[pos]))
    }

    /// Fails with [`MlError::NonFinite`] naming the first infinite value (NaN is allowed: it
    /// marks a missing value for models that handle them).
    pub(crate) fn check_not_infinite(&self, what: &'static str) -> Result<(), MlError> {
        let n_cols = self.n_cols.max(1);
        match self.data.iter().position(|v| v.is_infinite()) {
            Some(pos) => Err(MlError::NonFinite {
                what,
                row: pos / n_cols,
                col: pos % n_cols,
                value: self.data[pos],
            }),
            None => Ok(()),
        }
    }

    /// Fails with [`MlError::NonFinite`] naming the first NaN or infinite value.
    pub(crate) fn check_finite(&self, what: &'static str) -> Result<(), MlError> {
        match self.first_non_finite() {
            Some((row, col, value)) => Err(MlError::NonFinite {
                what,
                row,
                col,
                value,
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_length() {
        assert!(Matrix::new(2, 3, vec![0.0; 6]).is_ok());
        let err = Matrix::new(2, 3, vec![0.0; 5]).unwrap_err();
        assert!(err.to_string().contains("needs 6 values, got 5"), "{err}");
        assert!(Matrix::new(usize::MAX, 2, vec![]).is_err());
    }

    #[test]
    fn rows_and_selection() {
        let m = Matrix::from_rows(&[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]).unwrap();
        assert_eq!((m.n_rows(), m.n_cols()), (3, 2));
        assert_eq!(m.row(1), &[3.0, 4.0]);
        assert_eq!(m.get(2, 1), Some(6.0));
        assert_eq!(m.get(3, 0), None);
        let s = m.select_rows(&[2, 0, 2]);
        assert_eq!(s.data(), &[5.0, 6.0, 1.0, 2.0, 5.0, 6.0]);
        assert_eq!(m.rows().count(), 3);
        assert_eq!(Matrix::zeros(2, 2).data(), &[0.0; 4]);
    }

    #[test]
    fn column_selection_and_infinity_check() {
        let m = Matrix::from_rows(&[[1.0, 2.0, 3.0], [4.0, f64::NAN, 6.0]]).unwrap();
        let s = m.select_columns(&[2, 0]);
        assert_eq!((s.n_rows(), s.n_cols()), (2, 2));
        assert_eq!(s.data(), &[3.0, 1.0, 6.0, 4.0]);
        assert!(m.check_not_infinite("scoring matrix").is_ok());
        let m = Matrix::from_rows(&[[1.0, 2.0], [f64::NEG_INFINITY, 0.0]]).unwrap();
        let err = m.check_not_infinite("scoring matrix").unwrap_err();
        assert!(
            matches!(err, MlError::NonFinite { row: 1, col: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn ragged_rows_rejected() {
        let rows: Vec<Vec<f64>> = vec![vec![1.0, 2.0], vec![3.0]];
        assert!(matches!(Matrix::from_rows(&rows), Err(MlError::Shape(_))));
    }

    #[test]
    fn zero_columns() {
        let m = Matrix::zeros(3, 0);
        assert_eq!(m.rows().map(<[f64]>::len).sum::<usize>(), 0);
        assert_eq!(m.select_rows(&[0, 1]).n_rows(), 2);
    }

    #[test]
    fn finds_non_finite() {
        let m = Matrix::from_rows(&[[1.0, 2.0], [3.0, f64::NAN]]).unwrap();
        let (r, c, v) = m.first_non_finite().unwrap();
        assert_eq!((r, c), (1, 1));
        assert!(v.is_nan());
        let err = m.check_finite("training matrix").unwrap_err();
        assert!(err.to_string().contains("row 1, column 1"), "{err}");
    }
}
