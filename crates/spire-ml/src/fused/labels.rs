//! The label matrix of a model family: one column per label set, one row per user.

use crate::error::MlError;

/// Labels for a family of models over the same users, stored one byte per cell, row-major.
///
/// A cell is positive, negative or excluded: an excluded user does not count in that
/// column's training set (it is not eligible for that segment, or belongs to a held-out
/// fold). Several family members may share a column, e.g. the points of a regularization path.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelMatrix {
    n_rows: usize,
    n_cols: usize,
    cells: Vec<u8>,
}

impl LabelMatrix {
    /// Cell value of a negative label.
    pub const NEGATIVE: u8 = 0;
    /// Cell value of a positive label.
    pub const POSITIVE: u8 = 1;
    /// Cell value of a row that does not take part in that column.
    pub const EXCLUDED: u8 = 2;

    /// An `n_rows × n_cols` matrix with every cell excluded.
    pub fn excluded(n_rows: usize, n_cols: usize) -> Result<LabelMatrix, MlError> {
        let len = n_rows.checked_mul(n_cols).ok_or_else(|| {
            MlError::Shape(format!("{n_rows} rows × {n_cols} label columns overflows"))
        })?;
        Ok(LabelMatrix {
            n_rows,
            n_cols,
            cells: vec![Self::EXCLUDED; len],
        })
    }

    /// Builds the matrix from label columns of equal length (`true` = positive); every row
    /// takes part in every column.
    pub fn from_columns<C: AsRef<[bool]>>(columns: &[C]) -> Result<LabelMatrix, MlError> {
        let n_rows = columns.first().map_or(0, |c| c.as_ref().len());
        let mut m = LabelMatrix::excluded(n_rows, columns.len())?;
        for (j, col) in columns.iter().enumerate() {
            let col = col.as_ref();
            if col.len() != n_rows {
                return Err(MlError::Shape(format!(
                    "label column {j} has {} rows, column 0 has {n_rows}",
                    col.len()
                )));
            }
            for (i, &y) in col.iter().enumerate() {
                m.set(i, j, Some(y));
            }
        }
        Ok(m)
    }

    /// Wraps row-major cells (each 0, 1 or 2); fails on a length mismatch or another value.
    pub fn from_cells(
        n_rows: usize,
        n_cols: usize,
        cells: Vec<u8>,
    ) -> Result<LabelMatrix, MlError> {
        if Some(cells.len()) != n_rows.checked_mul(n_cols) {
            return Err(MlError::Shape(format!(
                "{n_rows} rows × {n_cols} label columns needs {} cells, got {}",
                n_rows.saturating_mul(n_cols),
                cells.len()
            )));
        }
        if let Some(pos) = cells.iter().position(|&c| c > Self::EXCLUDED) {
            return Err(MlError::Shape(format!(
                "label cell at row {}, column {} is {}: must be 0 (negative), 1 (positive) or \
                 2 (excluded)",
                pos / n_cols.max(1),
                pos % n_cols.max(1),
                cells[pos]
            )));
        }
        Ok(LabelMatrix {
            n_rows,
            n_cols,
            cells,
        })
    }

    /// Sets one cell: `Some(label)` takes part, `None` is excluded.
    ///
    /// # Panics
    /// Panics if the cell is out of range.
    pub fn set(&mut self, row: usize, col: usize, label: Option<bool>) {
        assert!(
            row < self.n_rows && col < self.n_cols,
            "label cell out of range"
        );
        self.cells[row * self.n_cols + col] = match label {
            Some(true) => Self::POSITIVE,
            Some(false) => Self::NEGATIVE,
            None => Self::EXCLUDED,
        };
    }

    /// The label at a cell: `Some(true/false)`, or `None` when excluded or out of range.
    pub fn get(&self, row: usize, col: usize) -> Option<bool> {
        if row >= self.n_rows || col >= self.n_cols {
            return None;
        }
        match self.cells[row * self.n_cols + col] {
            Self::POSITIVE => Some(true),
            Self::NEGATIVE => Some(false),
            _ => None,
        }
    }

    /// Number of rows (users).
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Number of label columns.
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    /// Row-major cells.
    pub(crate) fn cells(&self) -> &[u8] {
        &self.cells
    }

    /// `(rows taking part, positives)` in column `col`.
    pub fn counts(&self, col: usize) -> (usize, usize) {
        let mut rows = 0;
        let mut pos = 0;
        for r in 0..self.n_rows {
            match self.cells[r * self.n_cols + col] {
                Self::POSITIVE => {
                    rows += 1;
                    pos += 1;
                }
                Self::NEGATIVE => rows += 1,
                _ => {}
            }
        }
        (rows, pos)
    }

    /// Column `col` restricted to the rows taking part: `(row indices, labels)`.
    pub fn column(&self, col: usize) -> (Vec<usize>, Vec<bool>) {
        let mut idx = Vec::new();
        let mut y = Vec::new();
        for r in 0..self.n_rows {
            if let Some(v) = self.get(r, col) {
                idx.push(r);
                y.push(v);
            }
        }
        (idx, y)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn build_and_read() {
        let m = LabelMatrix::from_columns(&[vec![true, false, true], vec![false, false, true]])
            .unwrap();
        assert_eq!((m.n_rows(), m.n_cols()), (3, 2));
        assert_eq!(m.get(0, 0), Some(true));
        assert_eq!(m.get(1, 1), Some(false));
        assert_eq!(m.counts(0), (3, 2));
        let mut m = m;
        m.set(0, 1, None);
        assert_eq!(m.get(0, 1), None);
        assert_eq!(m.counts(1), (2, 1));
        assert_eq!(m.column(1), (vec![1, 2], vec![false, true]));
    }

    #[test]
    fn rejects_bad_shapes_and_cells() {
        assert!(LabelMatrix::from_columns(&[vec![true], vec![true, false]]).is_err());
        assert!(LabelMatrix::from_cells(2, 2, vec![0; 3]).is_err());
        let err = LabelMatrix::from_cells(2, 2, vec![0, 1, 2, 7]).unwrap_err();
        assert!(err.to_string().contains("row 1, column 1 is 7"), "{err}");
    }
}
