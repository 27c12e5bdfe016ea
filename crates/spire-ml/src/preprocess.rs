//! Feature preprocessing fitted on training data and replayed at scoring time.

use serde::{Deserialize, Serialize};

use crate::error::MlError;
use crate::frame::{ColumnData, Frame};
use crate::matrix::Matrix;

/// Per-column standardization `z = (x - mean) / scale`, as scikit-learn's `StandardScaler`.
///
/// `mean` is the column mean and `scale` the population standard deviation (`ddof = 0`) of the
/// training matrix. A constant column (standard deviation zero, up to rounding) gets scale 1,
/// so it is only centered and never divides by zero.
///
/// Deserializing checks the same invariants as [`Standardizer::from_parts`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedStandardizer")]
pub struct Standardizer {
    means: Vec<f64>,
    scales: Vec<f64>,
}

/// The serialized form, checked into a [`Standardizer`] on deserialization.
#[derive(Deserialize)]
struct UncheckedStandardizer {
    means: Vec<f64>,
    scales: Vec<f64>,
}

impl TryFrom<UncheckedStandardizer> for Standardizer {
    type Error = MlError;

    fn try_from(u: UncheckedStandardizer) -> Result<Standardizer, MlError> {
        Standardizer::from_parts(u.means, u.scales)
    }
}

impl Standardizer {
    /// Fits means and scales on `x` (which must be finite and have at least one row).
    pub fn fit(x: &Matrix) -> Result<Standardizer, MlError> {
        if x.n_rows() == 0 {
            return Err(MlError::Shape(
                "cannot fit a standardizer on zero rows".into(),
            ));
        }
        x.check_finite("standardizer input")?;
        let n = x.n_rows() as f64;
        let d = x.n_cols();
        let mut means = vec![0.0; d];
        for row in x.rows() {
            for (m, v) in means.iter_mut().zip(row) {
                *m += v;
            }
        }
        means.iter_mut().for_each(|m| *m /= n);
        let mut sq = vec![0.0; d];
        for row in x.rows() {
            for ((s, v), m) in sq.iter_mut().zip(row).zip(&means) {
                let dev = v - m;
                *s += dev * dev;
            }
        }
        let scales = sq
            .iter()
            .zip(&means)
            .map(|(s, m)| {
                let std = (s / n).sqrt();
                // Treat rounding noise on a constant column as zero variance.
                if std.is_finite() && std > 10.0 * f64::EPSILON * m.abs().max(1.0) {
                    std
                } else {
                    1.0
                }
            })
            .collect();
        Ok(Standardizer { means, scales })
    }

    /// Builds a standardizer from known means and scales (e.g. read from an artifact).
    ///
    /// Fails unless both have the same length, every mean is finite and every scale is finite
    /// and strictly positive.
    pub fn from_parts(means: Vec<f64>, scales: Vec<f64>) -> Result<Standardizer, MlError> {
        let s = Standardizer { means, scales };
        s.validate()?;
        Ok(s)
    }

    /// Checks the invariants documented on [`Standardizer::from_parts`].
    pub(crate) fn validate(&self) -> Result<(), MlError> {
        if self.means.len() != self.scales.len() {
            return Err(MlError::Shape(format!(
                "standardizer has {} means but {} scales",
                self.means.len(),
                self.scales.len()
            )));
        }
        if let Some(j) = self.means.iter().position(|m| !m.is_finite()) {
            return Err(MlError::Artifact(format!(
                "standardizer mean {j} is not finite"
            )));
        }
        if let Some(j) = self
            .scales
            .iter()
            .position(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err(MlError::Artifact(format!(
                "standardizer scale {j} = {} is not finite and > 0",
                self.scales[j]
            )));
        }
        Ok(())
    }

    /// Column means.
    pub fn means(&self) -> &[f64] {
        &self.means
    }

    /// Column scales (standard deviations, 1 for constant columns).
    pub fn scales(&self) -> &[f64] {
        &self.scales
    }

    /// Number of columns this standardizer was fitted on.
    pub fn n_cols(&self) -> usize {
        self.means.len()
    }

    /// Standardizes one row into `out` (both of length [`Standardizer::n_cols`]).
    pub(crate) fn transform_row_into(&self, row: &[f64], out: &mut [f64]) {
        for (((o, v), m), s) in out.iter_mut().zip(row).zip(&self.means).zip(&self.scales) {
            *o = (v - m) / s;
        }
    }

    /// Returns the standardized copy of `x`; [`MlError::Shape`] if the column count differs.
    pub fn transform(&self, x: &Matrix) -> Result<Matrix, MlError> {
        if x.n_cols() != self.n_cols() {
            return Err(MlError::Shape(format!(
                "standardizer was fitted on {} columns, got {}",
                self.n_cols(),
                x.n_cols()
            )));
        }
        let mut data = vec![0.0; x.data().len()];
        let d = self.n_cols();
        if d > 0 {
            for (row, out) in x.rows().zip(data.chunks_exact_mut(d)) {
                self.transform_row_into(row, out);
            }
        }
        Matrix::new(x.n_rows(), d, data)
    }
}

/// How missing numeric values are filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Impute {
    /// The column's mean over the fitting rows (after `log1p`, if set).
    Mean,
    /// The column's median over the fitting rows (after `log1p`, if set).
    Median,
    /// Zero.
    Zero,
}

/// Settings of a [`Preprocessor`], as written in a spec or on the command line.
///
/// Unset fields take their defaults when deserializing; unknown fields are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreprocessParams {
    /// Fill value for missing numbers. Default `mean`.
    pub impute: Impute,
    /// Add a `<column>__missing` indicator for every numeric column that had missing values
    /// when fitted. Default `true`.
    pub missing_indicators: bool,
    /// Numeric columns transformed with `ln(1 + x)` (counts with long tails); values must be
    /// `> -1`. Default none.
    pub log1p: Vec<String>,
    /// Most frequent categories one-hot encoded per categorical column, `1..=10000`; rarer
    /// and unseen categories (and missing values) encode as all zeros. Default `50`.
    pub max_categories: usize,
}

impl Default for PreprocessParams {
    fn default() -> Self {
        PreprocessParams {
            impute: Impute::Mean,
            missing_indicators: true,
            log1p: Vec::new(),
            max_categories: 50,
        }
    }
}

/// What a fitted [`Preprocessor`] does with one input column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnStep {
    /// A number: optional `log1p`, missing filled with `fill`, optional missing indicator.
    Numeric {
        /// Input column.
        name: String,
        /// Apply `ln(1 + x)` first.
        log1p: bool,
        /// Value used for missing entries (in transformed units).
        fill: f64,
        /// Emit a `<name>__missing` 0/1 column.
        indicator: bool,
    },
    /// A category: one 0/1 column per kept category, `<name>=<category>`.
    OneHot {
        /// Input column.
        name: String,
        /// Kept categories, most frequent first (ties by name).
        categories: Vec<String>,
    },
}

/// Turns a [`Frame`] into a [`Matrix`]: imputation, `log1p`, missing indicators and one-hot
/// encoding, learned on training rows and replayed identically when scoring.
///
/// Serializable, so a model artifact can carry it: training and scoring share one encoder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    steps: Vec<ColumnStep>,
}

impl PreprocessParams {
    /// Fits on `frame`: which categories to keep, fill values, which columns get indicators.
    ///
    /// Fails when a parameter is out of range, a `log1p` column is unknown or categorical,
    /// or a numeric value is infinite or `<= -1` in a `log1p` column (naming row and column).
    pub fn fit(&self, frame: &Frame) -> Result<Preprocessor, MlError> {
        if !(1..=10_000).contains(&self.max_categories) {
            return Err(MlError::invalid_param(
                "max_categories",
                self.max_categories,
                "in 1..=10000",
            ));
        }
        for name in &self.log1p {
            match frame.column(name) {
                None => {
                    return Err(MlError::Shape(format!(
                        "log1p names column {name:?}, which is not in the data"
                    )))
                }
                Some(c) if !matches!(c.data, ColumnData::Numeric(_)) => {
                    return Err(MlError::Shape(format!(
                        "log1p names column {name:?}, which is categorical"
                    )))
                }
                Some(_) => {}
            }
        }
        let mut steps = Vec::with_capacity(frame.columns().len());
        for c in frame.columns() {
            match &c.data {
                ColumnData::Numeric(values) => {
                    let log1p = self.log1p.contains(&c.name);
                    let mut present = Vec::with_capacity(values.len());
                    for (row, v) in values.iter().enumerate() {
                        if let Some(v) = numeric_value(*v, log1p, &c.name, row)? {
                            present.push(v);
                        }
                    }
                    let missing = present.len() < values.len();
                    let fill = match self.impute {
                        Impute::Zero => 0.0,
                        _ if present.is_empty() => 0.0,
                        Impute::Mean => present.iter().sum::<f64>() / present.len() as f64,
                        Impute::Median => median(&mut present),
                    };
                    steps.push(ColumnStep::Numeric {
                        name: c.name.clone(),
                        log1p,
                        fill,
                        indicator: missing && self.missing_indicators,
                    });
                }
                ColumnData::Categorical(values) => {
                    let mut counts: std::collections::HashMap<&str, usize> =
                        std::collections::HashMap::new();
                    for v in values.iter().flatten() {
                        *counts.entry(v.as_str()).or_default() += 1;
                    }
                    let mut cats: Vec<(&str, usize)> = counts.into_iter().collect();
                    cats.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                    cats.truncate(self.max_categories);
                    steps.push(ColumnStep::OneHot {
                        name: c.name.clone(),
                        categories: cats.into_iter().map(|(c, _)| c.to_string()).collect(),
                    });
                }
            }
        }
        Ok(Preprocessor { steps })
    }
}

/// A present, finite numeric value (after `log1p`), `None` when missing, or an error.
fn numeric_value(
    v: Option<f64>,
    log1p: bool,
    column: &str,
    row: usize,
) -> Result<Option<f64>, MlError> {
    let Some(v) = v.filter(|v| !v.is_nan()) else {
        return Ok(None);
    };
    if v.is_infinite() {
        return Err(MlError::Shape(format!(
            "column {column:?}, row {row}: value {v} is infinite"
        )));
    }
    if log1p {
        if v <= -1.0 {
            return Err(MlError::Shape(format!(
                "column {column:?}, row {row}: value {v} is <= -1, so log1p is undefined"
            )));
        }
        return Ok(Some(v.ln_1p()));
    }
    Ok(Some(v))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

impl Preprocessor {
    /// The steps, one per input column, in input order.
    pub fn steps(&self) -> &[ColumnStep] {
        &self.steps
    }

    /// The output column names, in order.
    pub fn feature_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for s in &self.steps {
            match s {
                ColumnStep::Numeric {
                    name, indicator, ..
                } => {
                    names.push(name.clone());
                    if *indicator {
                        names.push(format!("{name}__missing"));
                    }
                }
                ColumnStep::OneHot { name, categories } => {
                    names.extend(categories.iter().map(|c| format!("{name}={c}")));
                }
            }
        }
        names
    }

    /// Encodes `frame` (columns found by name; extra columns are ignored).
    ///
    /// Fails naming the column when one is absent or of the other kind, and naming row and
    /// column for an infinite value or a `log1p` value `<= -1`. Unseen categories encode
    /// as all zeros.
    pub fn transform(&self, frame: &Frame) -> Result<Matrix, MlError> {
        let names = self.feature_names();
        let width = names.len();
        let n = frame.n_rows();
        let mut data = vec![0.0; n * width];
        let mut offset = 0;
        for s in &self.steps {
            let name = match s {
                ColumnStep::Numeric { name, .. } | ColumnStep::OneHot { name, .. } => name,
            };
            let col = frame.column(name).ok_or_else(|| {
                MlError::Shape(format!(
                    "column {name:?} is missing; the preprocessor was fitted with it"
                ))
            })?;
            match (s, &col.data) {
                (
                    ColumnStep::Numeric {
                        log1p,
                        fill,
                        indicator,
                        ..
                    },
                    ColumnData::Numeric(values),
                ) => {
                    for (row, v) in values.iter().enumerate() {
                        let value = numeric_value(*v, *log1p, name, row)?;
                        data[row * width + offset] = value.unwrap_or(*fill);
                        if *indicator {
                            data[row * width + offset + 1] = f64::from(u8::from(value.is_none()));
                        }
                    }
                    offset += 1 + usize::from(*indicator);
                }
                (ColumnStep::OneHot { categories, .. }, ColumnData::Categorical(values)) => {
                    let index: std::collections::HashMap<&str, usize> = categories
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.as_str(), i))
                        .collect();
                    for (row, v) in values.iter().enumerate() {
                        if let Some(k) = v.as_deref().and_then(|v| index.get(v)) {
                            data[row * width + offset + k] = 1.0;
                        }
                    }
                    offset += categories.len();
                }
                (_, other) => {
                    let expected = match s {
                        ColumnStep::Numeric { .. } => "numeric",
                        ColumnStep::OneHot { .. } => "categorical",
                    };
                    return Err(MlError::Shape(format!(
                        "column {name:?} is {}, but the preprocessor was fitted on a {expected} \
                         column",
                        other.kind()
                    )));
                }
            }
        }
        Matrix::new(n, width, data)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn matches_population_std() {
        let x = Matrix::from_rows(&[[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, 5.0]]).unwrap();
        let s = Standardizer::fit(&x).unwrap();
        assert_eq!(s.means(), &[2.5, 5.0]);
        assert!((s.scales()[0] - 1.25f64.sqrt()).abs() < 1e-15);
        assert_eq!(s.scales()[1], 1.0, "constant column keeps scale 1");
        let z = s.transform(&x).unwrap();
        let col0: Vec<f64> = z.rows().map(|r| r[0]).collect();
        assert!((col0.iter().sum::<f64>()).abs() < 1e-12);
        assert!(z.rows().all(|r| r[1] == 0.0), "constant column is centered");
    }

    #[test]
    fn near_constant_column_from_rounding_is_constant() {
        let x = Matrix::from_rows(&[[0.1], [0.1], [0.1]]).unwrap();
        assert_eq!(Standardizer::fit(&x).unwrap().scales(), &[1.0]);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(Standardizer::fit(&Matrix::zeros(0, 2)).is_err());
        let s = Standardizer::fit(&Matrix::zeros(2, 2)).unwrap();
        assert!(s.transform(&Matrix::zeros(1, 3)).is_err());
        assert!(Standardizer::from_parts(vec![0.0], vec![0.0]).is_err());
        assert!(Standardizer::from_parts(vec![0.0], vec![1.0, 2.0]).is_err());
        assert!(Standardizer::from_parts(vec![0.0], vec![2.0]).is_ok());
        let bad = serde_json::from_str::<Standardizer>(r#"{"means":[0.0],"scales":[-1.0]}"#);
        assert!(bad.unwrap_err().to_string().contains("scale 0"));
    }

    fn frame() -> Frame {
        use crate::frame::Column;
        Frame::new(vec![
            Column {
                name: "visits".into(),
                data: ColumnData::Numeric(vec![Some(0.0), Some(3.0), None, Some(f64::NAN)]),
            },
            Column {
                name: "device".into(),
                data: ColumnData::Categorical(vec![
                    Some("mobile".into()),
                    Some("desktop".into()),
                    Some("mobile".into()),
                    None,
                ]),
            },
        ])
        .unwrap()
    }

    #[test]
    fn preprocessor_imputes_encodes_and_round_trips() {
        let params = PreprocessParams {
            log1p: vec!["visits".into()],
            ..PreprocessParams::default()
        };
        let p = params.fit(&frame()).unwrap();
        assert_eq!(
            p.feature_names(),
            [
                "visits",
                "visits__missing",
                "device=mobile",
                "device=desktop"
            ]
        );
        let m = p.transform(&frame()).unwrap();
        let fill = 3f64.ln_1p() / 2.0;
        assert_eq!(m.row(0), &[0.0, 0.0, 1.0, 0.0]);
        assert_eq!(m.row(1), &[3f64.ln_1p(), 0.0, 0.0, 1.0]);
        assert_eq!(m.row(2), &[fill, 1.0, 1.0, 0.0]);
        assert_eq!(
            m.row(3),
            &[fill, 1.0, 0.0, 0.0],
            "NaN is missing; None category is zeros"
        );
        let json = serde_json::to_string(&p).unwrap();
        let back: Preprocessor = serde_json::from_str(&json).unwrap();
        assert_eq!(back.transform(&frame()).unwrap(), m);
    }

    #[test]
    fn preprocessor_unseen_category_and_bad_input() {
        use crate::frame::Column;
        let p = PreprocessParams {
            impute: Impute::Median,
            max_categories: 1,
            ..PreprocessParams::default()
        }
        .fit(&frame())
        .unwrap();
        assert_eq!(
            p.feature_names(),
            ["visits", "visits__missing", "device=mobile"]
        );
        let scoring = Frame::new(vec![
            Column {
                name: "device".into(),
                data: ColumnData::Categorical(vec![Some("tv".into())]),
            },
            Column {
                name: "visits".into(),
                data: ColumnData::Numeric(vec![Some(1.0)]),
            },
        ])
        .unwrap();
        assert_eq!(p.transform(&scoring).unwrap().row(0), &[1.0, 0.0, 0.0]);
        let wrong_kind = Frame::new(vec![Column {
            name: "visits".into(),
            data: ColumnData::Categorical(vec![Some("x".into())]),
        }])
        .unwrap();
        let err = p.transform(&wrong_kind).unwrap_err().to_string();
        assert!(err.contains("\"visits\" is categorical"), "{err}");
        let err = p
            .transform(&Frame::new(vec![]).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"visits\" is missing"), "{err}");
        let err = PreprocessParams {
            log1p: vec!["device".into()],
            ..PreprocessParams::default()
        }
        .fit(&frame())
        .unwrap_err()
        .to_string();
        assert!(err.contains("categorical"), "{err}");
        let neg = Frame::new(vec![Column {
            name: "v".into(),
            data: ColumnData::Numeric(vec![Some(1.0), Some(-2.0)]),
        }])
        .unwrap();
        let err = PreprocessParams {
            log1p: vec!["v".into()],
            ..PreprocessParams::default()
        }
        .fit(&neg)
        .unwrap_err()
        .to_string();
        assert!(err.contains("row 1") && err.contains("log1p"), "{err}");
    }
}
