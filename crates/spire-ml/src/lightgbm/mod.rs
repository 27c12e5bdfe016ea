//! LightGBM binary classifiers trained in Python (or LightGBM's CLI), loaded from LightGBM's
//! own text model file and scored in pure Rust (no LightGBM library).
//!
//! ```
//! use spire_ml::{LightGbmModel, Matrix, Predictor};
//!
//! let text = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n\
//!     max_feature_idx=0\nobjective=binary sigmoid:1\nfeature_names=visits\n\n\
//!     Tree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nthreshold=2.5\n\
//!     decision_type=2\nleft_child=-1\nright_child=-2\nleaf_value=-1 1\nshrinkage=1\n\n\
//!     end of trees\n";
//! let model = LightGbmModel::from_model_text(text)?;
//! let p = model.predict_proba(&Matrix::from_rows(&[[1.0], [3.0], [f64::NAN]])?)?;
//! assert!(p[0] < 0.5 && p[1] > 0.5);
//! assert_eq!(p[2], p[0]); // NaN scores as 0.0 when training saw no missing values
//! # Ok::<(), spire_ml::MlError>(())
//! ```
//!
//! Scoring reproduces LightGBM's `Booster.predict`: the raw score is the sum of the trees'
//! leaf values in file order (their mean for random-forest models), and the probability is
//! `1 / (1 + exp(-sigmoid · raw))`. Missing values follow each split's learned rule (NaN or
//! zero as missing, default direction), categorical splits test the category's bit, and
//! cells with `|v| <= 1e-35` score as 0.0, as LightGBM reads them. Categorical features take
//! the integer codes LightGBM was trained on (for a pandas `category` column, the index of
//! the category in the model's `pandas_categorical` list).

mod parse;
mod tree;

#[cfg(test)]
mod tests;

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::artifact::{check_feature_names, Artifact, Predictor};
use crate::error::MlError;
use crate::matrix::Matrix;
use parse::Parsed;
use tree::ZERO_THRESHOLD;

/// Rows per rayon task when scoring.
const SCORE_MIN_LEN: usize = 1024;

/// A LightGBM binary classifier (`objective=binary`) imported from its text model file.
///
/// Built by [`LightGbmModel::from_model_file`] / [`LightGbmModel::from_model_text`] or loaded
/// from an [`Artifact`] of flavor [`LightGbmModel::FLAVOR`]. The artifact keeps the model
/// text byte for byte, so a round trip scores bit-identically and the text can be handed
/// back to LightGBM. It [handles missing values](Predictor::handles_missing): NaN cells are
/// missing values, routed as LightGBM routes them.
#[derive(Clone, Debug)]
pub struct LightGbmModel {
    feature_names: Vec<String>,
    text: String,
    model: Parsed,
}

/// The artifact payload: the model text as LightGBM wrote it.
#[derive(Serialize, Deserialize)]
struct Payload {
    model_text: String,
}

impl LightGbmModel {
    /// The flavor name under which this model is stored in an [`Artifact`].
    pub const FLAVOR: &'static str = "lightgbm";
    /// The newest artifact payload format this build writes and reads.
    pub const FORMAT_VERSION: u32 = 1;

    /// Parses a model text as written by `Booster.save_model` / `model_to_string` (or
    /// LightGBM's CLI). The feature names are those of the file's `feature_names` line.
    ///
    /// Fails with [`MlError::ModelFile`] naming the line and key for a malformed or truncated
    /// text (a file must reach its `end of trees` line), and naming the objective for models
    /// that are not binary classifiers (`multiclass`, `regression`, `lambdarank`, ...) or use
    /// linear trees.
    pub fn from_model_text(text: &str) -> Result<LightGbmModel, MlError> {
        let model = parse::parse(text)?;
        Ok(LightGbmModel {
            feature_names: model.feature_names.clone(),
            text: text.to_string(),
            model,
        })
    }

    /// Reads and parses a model file; fails like [`LightGbmModel::from_model_text`], or with
    /// [`MlError::ModelFile`] naming the path when it cannot be read as UTF-8 text.
    pub fn from_model_file(path: impl AsRef<Path>) -> Result<LightGbmModel, MlError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            MlError::model_file(
                "LightGBM",
                Some(path.display().to_string()),
                format!("cannot read the model file: {e}"),
            )
        })?;
        LightGbmModel::from_model_text(&text)
    }

    /// The same model expecting columns named `names` (one per feature, in the file's
    /// order), e.g. to map LightGBM's `Column_0, Column_1, ...` of a model trained on a
    /// NumPy array to the columns of a feature table. The model text is unchanged.
    ///
    /// Fails with [`MlError::Shape`] when the count differs from the model's, and with
    /// [`MlError::Shape`] for an empty or repeated name.
    pub fn with_feature_names(mut self, names: Vec<String>) -> Result<LightGbmModel, MlError> {
        check_feature_names(&names, self.model.feature_names.len())?;
        self.feature_names = names;
        Ok(self)
    }

    /// The model text as LightGBM wrote it (save it to a `.txt` file to load it back into
    /// LightGBM).
    pub fn model_text(&self) -> &str {
        &self.text
    }

    /// Number of trees (boosting rounds).
    pub fn n_trees(&self) -> usize {
        self.model.trees.len()
    }

    /// Total number of leaves over all trees.
    pub fn n_leaves(&self) -> usize {
        self.model.trees.iter().map(|t| t.n_leaves()).sum()
    }

    /// The `sigmoid` parameter of the binary objective (1 by default).
    pub fn sigmoid(&self) -> f64 {
        self.model.sigmoid
    }

    /// The features some tree splits on as categories (integer codes).
    pub fn categorical_features(&self) -> Vec<&str> {
        self.feature_names
            .iter()
            .enumerate()
            .filter(|(j, _)| {
                self.model
                    .trees
                    .iter()
                    .any(|t| t.splits_categorically_on(*j))
            })
            .map(|(_, n)| n.as_str())
            .collect()
    }

    /// Raw scores (log-odds before the sigmoid), one per row, as LightGBM's
    /// `predict(raw_score=True)`; same checks as `predict_proba`.
    pub fn raw_score(&self, x: &Matrix) -> Result<Vec<f64>, MlError> {
        self.check_scoring_input(x)?;
        Ok(x.data()
            .par_chunks(x.n_cols().max(1))
            .with_min_len(SCORE_MIN_LEN)
            .map(|row| self.raw_row(row))
            .collect())
    }

    fn raw_row(&self, row: &[f64]) -> f64 {
        // LightGBM keeps only cells with |v| > kZeroThreshold (or NaN); the rest read as 0.0.
        let row: Vec<f64> = row
            .iter()
            .map(|&v| if v.abs() <= ZERO_THRESHOLD { 0.0 } else { v })
            .collect();
        let mut sum = 0.0;
        for tree in &self.model.trees {
            sum += tree.predict(&row);
        }
        if self.model.average_output {
            sum /= self.model.trees.len() as f64;
        }
        sum
    }

    fn check_scoring_input(&self, x: &Matrix) -> Result<(), MlError> {
        if x.n_cols() != self.feature_names.len() {
            return Err(MlError::Shape(format!(
                "model expects {} features ({}), got {} columns",
                self.feature_names.len(),
                self.feature_names.join(", "),
                x.n_cols()
            )));
        }
        x.check_not_infinite("scoring matrix")
    }

    /// Rebuilds a model from an artifact of flavor [`LightGbmModel::FLAVOR`]: parses the
    /// stored model text and applies the artifact's feature names. Fails with
    /// [`MlError::Artifact`] when the payload is not a model text or does not match the
    /// feature names.
    pub fn from_artifact(a: &Artifact) -> Result<LightGbmModel, MlError> {
        let payload: Payload = a.payload_as(Self::FLAVOR)?;
        let wrap = |e: MlError| MlError::Artifact(format!("{} payload: {e}", Self::FLAVOR));
        LightGbmModel::from_model_text(&payload.model_text)
            .and_then(|m| m.with_feature_names(a.feature_names.clone()))
            .map_err(wrap)
    }
}

impl Predictor for LightGbmModel {
    fn flavor(&self) -> &'static str {
        Self::FLAVOR
    }

    fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    fn predict_proba(&self, x: &Matrix) -> Result<Vec<f64>, MlError> {
        let mut scores = self.raw_score(x)?;
        let s = self.model.sigmoid;
        // LightGBM's BinaryLogloss::ConvertOutput.
        scores
            .iter_mut()
            .for_each(|r| *r = 1.0 / (1.0 + (-s * *r).exp()));
        Ok(scores)
    }

    fn to_artifact(&self) -> Result<Artifact, MlError> {
        let payload = serde_json::to_value(Payload {
            model_text: self.text.clone(),
        })
        .map_err(|e| MlError::Artifact(format!("cannot serialize model: {e}")))?;
        Ok(Artifact {
            flavor: Self::FLAVOR.to_string(),
            format_version: Self::FORMAT_VERSION,
            feature_names: self.feature_names.clone(),
            payload,
        })
    }

    fn handles_missing(&self) -> bool {
        true
    }
}
