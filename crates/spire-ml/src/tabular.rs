//! A model over a table: the fitted [`Preprocessor`] and the estimator's model, stored and
//! loaded together so training and scoring encode rows the same way.

use serde::{Deserialize, Serialize};

use crate::algorithms::DynFit;
use crate::artifact::{load_predictor, Artifact, Predictor};
use crate::error::MlError;
use crate::frame::Frame;
use crate::preprocess::{PreprocessParams, Preprocessor};

/// Preprocessing (imputation, `log1p`, missing indicators, one-hot) followed by a model.
///
/// Its artifact (flavor [`TabularModel::FLAVOR`]) names the raw input columns as its
/// feature names and nests the inner model's own artifact, so any predictor flavor can sit
/// behind the encoder.
pub struct TabularModel {
    preprocessor: Preprocessor,
    columns: Vec<String>,
    model: Box<dyn Predictor>,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    preprocessor: Preprocessor,
    model: Artifact,
}

impl std::fmt::Debug for TabularModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TabularModel")
            .field("columns", &self.columns)
            .field("model", &self.model.flavor())
            .finish()
    }
}

impl TabularModel {
    /// The flavor name stored in artifacts.
    pub const FLAVOR: &'static str = "tabular";
    /// The newest payload format this build writes and reads.
    pub const FORMAT_VERSION: u32 = 1;

    /// Fits the preprocessor on `frame`, then `estimator` on the encoded rows.
    pub fn fit(
        preprocess: &PreprocessParams,
        estimator: &dyn DynFit,
        frame: &Frame,
        y: &[bool],
    ) -> Result<TabularModel, MlError> {
        let preprocessor = preprocess.fit(frame)?;
        let x = preprocessor.transform(frame)?;
        let model = estimator.fit_boxed(&x, y, &preprocessor.feature_names())?;
        Ok(TabularModel {
            preprocessor,
            columns: frame.columns().iter().map(|c| c.name.clone()).collect(),
            model,
        })
    }

    /// Probabilities for the rows of `frame` (columns found by name, extras ignored).
    pub fn predict_proba(&self, frame: &Frame) -> Result<Vec<f64>, MlError> {
        let x = self.preprocessor.transform(frame)?;
        self.model.predict_proba(&x)
    }

    /// The raw input columns the model was fitted on.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The fitted encoder.
    pub fn preprocessor(&self) -> &Preprocessor {
        &self.preprocessor
    }

    /// The model behind the encoder.
    pub fn model(&self) -> &dyn Predictor {
        self.model.as_ref()
    }

    /// The serialized form, nesting the inner model's artifact.
    pub fn to_artifact(&self) -> Result<Artifact, MlError> {
        let payload = Payload {
            preprocessor: self.preprocessor.clone(),
            model: self.model.to_artifact()?,
        };
        Ok(Artifact {
            flavor: Self::FLAVOR.to_string(),
            format_version: Self::FORMAT_VERSION,
            feature_names: self.columns.clone(),
            payload: serde_json::to_value(payload)
                .map_err(|e| MlError::Artifact(format!("cannot serialize model: {e}")))?,
        })
    }

    /// Rebuilds from an artifact of flavor [`TabularModel::FLAVOR`]; the inner model's
    /// feature names must be the encoder's outputs.
    pub fn from_artifact(a: &Artifact) -> Result<TabularModel, MlError> {
        let p: Payload = a.payload_as(Self::FLAVOR)?;
        let model = load_predictor(&p.model)?;
        if model.feature_names() != p.preprocessor.feature_names().as_slice() {
            return Err(MlError::Artifact(
                "the inner model's feature names are not the encoder's outputs".into(),
            ));
        }
        Ok(TabularModel {
            preprocessor: p.preprocessor,
            columns: a.feature_names.clone(),
            model,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::frame::{Column, ColumnData};

    fn frame() -> Frame {
        let n = 200;
        Frame::new(vec![
            Column {
                name: "visits".into(),
                data: ColumnData::Numeric(
                    (0..n)
                        .map(|i| {
                            if i % 17 == 0 {
                                None
                            } else {
                                Some((i % 10) as f64)
                            }
                        })
                        .collect(),
                ),
            },
            Column {
                name: "device".into(),
                data: ColumnData::Categorical(
                    (0..n)
                        .map(|i| Some(["mobile", "desktop", "tv"][i % 3].to_string()))
                        .collect(),
                ),
            },
        ])
        .unwrap()
    }

    #[test]
    fn round_trips_and_scores_raw_rows() {
        let f = frame();
        let y: Vec<bool> = (0..200).map(|i| i % 3 == 0 || i % 10 > 7).collect();
        let est =
            crate::algorithms::estimator("logistic_regression", serde_json::json!({})).unwrap();
        let m = TabularModel::fit(&PreprocessParams::default(), est.as_ref(), &f, &y).unwrap();
        let p = m.predict_proba(&f).unwrap();
        let auc = crate::roc_auc(&y, &p).unwrap();
        assert!(auc > 0.8, "device and visits are learnable: {auc}");
        let bytes = m.to_artifact().unwrap().to_bytes().unwrap();
        let back = TabularModel::from_artifact(&Artifact::from_bytes(&bytes).unwrap()).unwrap();
        assert_eq!(
            back.predict_proba(&f).unwrap(),
            p,
            "bit-identical after reload"
        );
        assert_eq!(back.columns(), ["visits", "device"]);
        // Scoring rows with an unseen category and a missing number works.
        let scoring = Frame::new(vec![
            Column {
                name: "device".into(),
                data: ColumnData::Categorical(vec![Some("watch".into())]),
            },
            Column {
                name: "visits".into(),
                data: ColumnData::Numeric(vec![None]),
            },
        ])
        .unwrap();
        assert_eq!(back.predict_proba(&scoring).unwrap().len(), 1);
        let loaded = crate::load_model(&m.to_artifact().unwrap()).unwrap();
        assert_eq!(loaded.kind(), "tabular");
    }
}
