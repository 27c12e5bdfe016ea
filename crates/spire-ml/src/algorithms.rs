//! Estimators by name: how a segment spec or `spire ml evaluate` picks an algorithm and its
//! params without knowing the concrete types.

use std::collections::BTreeMap;

use crate::artifact::{Fit, Predictor};
use crate::error::MlError;
use crate::gbdt::GbdtParams;
use crate::linear::LogisticRegressionParams;
use crate::matrix::Matrix;

/// A validated estimator behind a trait object.
///
/// Contract: as [`Fit`] — `fit_boxed` does not mutate `self`, is deterministic, checks its
/// inputs before any work and returns a model whose `feature_names()` equals
/// `feature_names`.
pub trait DynFit: Send + Sync {
    /// The algorithm's name, as accepted by [`estimator`].
    fn algorithm(&self) -> &'static str;

    /// Fits a model on `x` and labels `y` (`true` = positive).
    fn fit_boxed(
        &self,
        x: &Matrix,
        y: &[bool],
        feature_names: &[String],
    ) -> Result<Box<dyn Predictor>, MlError>;
}

struct Named<P> {
    name: &'static str,
    params: P,
}

impl<P> DynFit for Named<P>
where
    P: Fit + Send + Sync,
    P::Model: 'static,
{
    fn algorithm(&self) -> &'static str {
        self.name
    }

    fn fit_boxed(
        &self,
        x: &Matrix,
        y: &[bool],
        feature_names: &[String],
    ) -> Result<Box<dyn Predictor>, MlError> {
        Ok(Box::new(self.params.fit(x, y, feature_names)?))
    }
}

/// Builds a validated estimator from its params (a JSON object; unknown keys are rejected).
type Builder = fn(serde_json::Value) -> Result<Box<dyn DynFit>, MlError>;

/// The one registration point for supervised algorithms: `(name, builder)`.
const ALGORITHMS: &[(&str, Builder)] = &[
    ("logistic_regression", |v| {
        let params: LogisticRegressionParams = from_json("logistic_regression", v)?;
        Ok(Box::new(Named {
            name: "logistic_regression",
            params: params.validate()?,
        }))
    }),
    ("gbdt", |v| {
        let params: GbdtParams = from_json("gbdt", v)?;
        Ok(Box::new(Named {
            name: "gbdt",
            params: params.validate()?,
        }))
    }),
];

fn from_json<T: serde::de::DeserializeOwned>(
    algorithm: &str,
    v: serde_json::Value,
) -> Result<T, MlError> {
    serde_json::from_value(v).map_err(|e| MlError::Params {
        algorithm: algorithm.to_string(),
        message: e.to_string(),
    })
}

/// The names [`estimator`] accepts.
pub fn algorithms() -> Vec<&'static str> {
    ALGORITHMS.iter().map(|(n, _)| *n).collect()
}

/// The estimator named `algorithm` with `params` (a JSON object; `{}` for the defaults),
/// validated: an unknown algorithm lists the known ones, an unknown or mistyped parameter is
/// named, and an out-of-range value names the parameter and its allowed range.
pub fn estimator(algorithm: &str, params: serde_json::Value) -> Result<Box<dyn DynFit>, MlError> {
    let Some((_, build)) = ALGORITHMS.iter().find(|(n, _)| *n == algorithm) else {
        return Err(MlError::UnknownAlgorithm {
            algorithm: algorithm.to_string(),
            known: algorithms().iter().map(|s| s.to_string()).collect(),
        });
    };
    build(params)
}

/// Parses `key=value,key=value` (as typed on a command line) into a JSON object: values that
/// parse as JSON numbers or booleans become those, anything else a string. An empty text
/// gives `{}`.
pub fn parse_params(text: &str) -> Result<serde_json::Value, MlError> {
    let mut map = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| MlError::Params {
            algorithm: "-".into(),
            message: format!("{part:?} is not key=value"),
        })?;
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            return Err(MlError::Params {
                algorithm: "-".into(),
                message: format!("{part:?} has an empty key"),
            });
        }
        let value = match serde_json::from_str::<serde_json::Value>(v) {
            Ok(j @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => j,
            _ => serde_json::Value::String(v.to_string()),
        };
        map.insert(k.to_string(), value);
    }
    Ok(serde_json::Value::Object(map.into_iter().collect()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn builds_by_name_and_rejects_bad_params() {
        let e = estimator(
            "logistic_regression",
            parse_params("l2=0.01, l1=0.001").unwrap(),
        )
        .unwrap();
        assert_eq!(e.algorithm(), "logistic_regression");
        let x = Matrix::from_rows(&[[0.0], [1.0], [2.0], [3.0]]).unwrap();
        let m = e
            .fit_boxed(&x, &[false, true, false, true], &["a".to_string()])
            .unwrap();
        assert_eq!(m.flavor(), "logistic_regression");

        let err = estimator("xgboost", serde_json::json!({}))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("\"xgboost\"") && err.contains("logistic_regression"),
            "{err}"
        );
        let err = estimator("logistic_regression", parse_params("lr=1").unwrap())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unknown field `lr`"), "{err}");
        let err = estimator("logistic_regression", parse_params("l2=-1").unwrap())
            .err()
            .unwrap()
            .to_string();
        assert_eq!(err, "l2 = -1: must be >= 0 and finite");
        let err = estimator(
            "logistic_regression",
            parse_params("max_iter=lots").unwrap(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("max_iter") || err.contains("lots"), "{err}");
        assert!(parse_params("novalue").is_err());
        assert_eq!(parse_params("").unwrap(), serde_json::json!({}));
        assert_eq!(
            parse_params("a=1,b=true,c=x").unwrap(),
            serde_json::json!({"a": 1, "b": true, "c": "x"})
        );
    }
}
