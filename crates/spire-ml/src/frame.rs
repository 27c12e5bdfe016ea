//! Tabular input before encoding: named numeric and categorical columns with missing values.
//!
//! A [`Frame`] is what a user's table looks like (a CSV or Parquet file, a feature snapshot
//! with string columns); a [`crate::preprocess::Preprocessor`] fitted on one turns it into
//! the [`crate::Matrix`] the estimators take.

use crate::error::MlError;

/// The values of one column; `None` is a missing value.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnData {
    /// Numbers (NaN is read as missing by the preprocessor).
    Numeric(Vec<Option<f64>>),
    /// Categories, compared as exact strings.
    Categorical(Vec<Option<String>>),
}

impl ColumnData {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Numeric(v) => v.len(),
            ColumnData::Categorical(v) => v.len(),
        }
    }

    /// Whether the column has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `"numeric"` or `"categorical"`, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            ColumnData::Numeric(_) => "numeric",
            ColumnData::Categorical(_) => "categorical",
        }
    }

    /// The values at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> ColumnData {
        match self {
            ColumnData::Numeric(v) => ColumnData::Numeric(idx.iter().map(|&i| v[i]).collect()),
            ColumnData::Categorical(v) => {
                ColumnData::Categorical(idx.iter().map(|&i| v[i].clone()).collect())
            }
        }
    }
}

/// A named column.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// Column name, unique within its frame.
    pub name: String,
    /// Its values.
    pub data: ColumnData,
}

/// Named columns of equal length.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    n_rows: usize,
    columns: Vec<Column>,
}

impl Frame {
    /// Checks that every column has the same length and a unique, non-empty name.
    pub fn new(columns: Vec<Column>) -> Result<Frame, MlError> {
        let n_rows = columns.first().map_or(0, |c| c.data.len());
        let mut seen = std::collections::HashSet::new();
        for c in &columns {
            if c.name.is_empty() {
                return Err(MlError::Shape("a column has an empty name".into()));
            }
            if !seen.insert(c.name.as_str()) {
                return Err(MlError::Shape(format!("column {:?} appears twice", c.name)));
            }
            if c.data.len() != n_rows {
                return Err(MlError::Shape(format!(
                    "column {:?} has {} rows, column {:?} has {n_rows}",
                    c.name,
                    c.data.len(),
                    columns[0].name
                )));
            }
        }
        Ok(Frame { n_rows, columns })
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// The columns, in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Removes and returns the column named `name`.
    pub fn take(&mut self, name: &str) -> Option<Column> {
        let i = self.columns.iter().position(|c| c.name == name)?;
        Some(self.columns.remove(i))
    }

    /// A frame of the rows at `idx`, in that order (indices must be `< n_rows`).
    pub fn select_rows(&self, idx: &[usize]) -> Frame {
        Frame {
            n_rows: idx.len(),
            columns: self
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    data: c.data.select(idx),
                })
                .collect(),
        }
    }
}
