//! Feature preprocessing fitted on training data and replayed at scoring time.

use serde::{Deserialize, Serialize};

use crate::error::MlError;
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
}
