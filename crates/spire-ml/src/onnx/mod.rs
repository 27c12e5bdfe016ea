//! Binary classifiers from PyTorch, Keras or scikit-learn exported to ONNX, run by `tract`
//! (a pure-Rust ONNX runtime).
//!
//! ```no_run
//! use spire_ml::onnx::{OnnxModel, OnnxOptions};
//! use spire_ml::{Matrix, Predictor};
//!
//! // Exported in Python with
//! // skl2onnx.to_onnx(pipeline, X[:1].astype(np.float32), options={"zipmap": False}).
//! let names: Vec<String> = ["visits", "dwell_secs"].map(String::from).to_vec();
//! let model = OnnxModel::from_file(
//!     "model.onnx",
//!     &OnnxOptions { feature_names: Some(names), ..OnnxOptions::default() },
//! )?;
//! let p = model.predict_proba(&Matrix::from_rows(&[[3.0, 41.5]])?)?;
//! # Ok::<(), spire_ml::MlError>(())
//! ```
//!
//! What a graph must look like:
//! - Inputs (graph inputs that are not initializers) are float or double tensors of shape
//!   `[rows, columns]`; their columns, input after input, are the model's features. With one
//!   input the caller names the features; with one single-column input per feature the
//!   input names are the feature names unless the caller gives others.
//! - The probability output is the one the caller names, else the first float or double
//!   tensor output (scikit-learn's `probabilities`, after the int64 `label`). Of shape
//!   `[rows, 2]` its column 1 is the positive class; of shape `[rows, 1]` or `[rows]` (a
//!   sigmoid unit, as PyTorch or Keras models end) it is the positive class. Values must be
//!   probabilities in `[0, 1]`: a model that ends with logits is rejected when scored.
//! - scikit-learn classifiers must be exported with `options={"zipmap": False}` (ZipMap's
//!   list of dictionaries is not a tensor). ONNX-ML `Scaler` nodes (`StandardScaler`) are
//!   rewritten into standard operators, since tract 0.23 lacks them; the nodes only other
//!   outputs need (such as `label`) are dropped.
//! - Tree ensembles (`TreeEnsembleClassifier`) are better imported natively: tract 0.23
//!   rejects skl2onnx's binary ones and runs the others slowly; use
//!   [`crate::LightGbmModel`] for LightGBM.
//!
//! Cells fed to a float input are rounded to `f32`, so probabilities agree with the
//! exporting library to about 1e-7. The model does not take missing values
//! ([`Predictor::handles_missing`] is `false`): impute them first, as before exporting.

mod graph;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tract_onnx::prelude::{
    tvec, Framework, InferenceModelExt, IntoRunnable, IntoTValue, TValue, TVec, Tensor, TractError,
    TypedRunnableModel,
};

use crate::artifact::{check_feature_names, Artifact, Predictor};
use crate::error::MlError;
use crate::matrix::Matrix;
use graph::{ElemType, Input};

const FORMAT: &str = "ONNX";
/// Rows per tract run (and per rayon task) when scoring.
const CHUNK_ROWS: usize = 2048;

/// How to read an ONNX graph: everything is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OnnxOptions {
    /// The model's feature names, one per input column (required when a single input has
    /// several columns; else the input names are used).
    pub feature_names: Option<Vec<String>>,
    /// The name of the probability output (default: the first float or double tensor
    /// output).
    pub output: Option<String>,
}

/// A binary classifier exported to ONNX, run by tract.
///
/// Built by [`OnnxModel::from_bytes`] / [`OnnxModel::from_file`] or loaded from an
/// [`Artifact`] of flavor [`OnnxModel::FLAVOR`], whose payload keeps the ONNX file byte for
/// byte (base64) and the name of the probability output, so a round trip scores
/// bit-identically. See the [module docs](self) for the graphs it accepts.
#[derive(Clone)]
pub struct OnnxModel {
    feature_names: Vec<String>,
    bytes: Arc<[u8]>,
    inputs: Vec<Input>,
    output: String,
    plan: Arc<TypedRunnableModel>,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("feature_names", &self.feature_names)
            .field("bytes", &self.bytes.len())
            .field("inputs", &self.inputs)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

/// The artifact payload.
#[derive(Serialize, Deserialize)]
struct Payload {
    /// The ONNX file, standard base64 with padding.
    onnx_base64: String,
    /// The probability output's name.
    output: String,
}

fn error(location: Option<String>, message: impl Into<String>) -> MlError {
    MlError::model_file(FORMAT, location, message)
}

/// A tract error (an `anyhow` error) with its chain of causes.
fn tract_error(what: &str, e: TractError) -> MlError {
    error(None, format!("{what}: {e:#}"))
}

impl OnnxModel {
    /// The flavor name under which this model is stored in an [`Artifact`].
    pub const FLAVOR: &'static str = "onnx";
    /// The newest artifact payload format this build writes and reads.
    pub const FORMAT_VERSION: u32 = 1;

    /// Loads an ONNX file's bytes: parses the graph, checks its inputs and output against
    /// the [module rules](self) and `options`, and compiles it with tract.
    ///
    /// Fails with [`MlError::ModelFile`] for bytes that are not an ONNX model (truncated,
    /// another format), a graph without a probability output, inputs that are not float
    /// tensors of `[rows, columns]`, an operator tract cannot run (named in the message), or
    /// an output that is not one or two probability columns; with [`MlError::Shape`] when
    /// the feature names do not match the input columns in count or are not unique.
    pub fn from_bytes(bytes: &[u8], options: &OnnxOptions) -> Result<OnnxModel, MlError> {
        let onnx = tract_onnx::onnx();
        let proto = onnx.proto_model_for_read(&mut &bytes[..]).map_err(|e| {
            tract_error("not a readable ONNX model (truncated or another format)", e)
        })?;
        let n_names = options.feature_names.as_ref().map(Vec::len);
        let prepared = graph::prepare(proto, options.output.as_deref(), n_names)?;
        let width: usize = prepared.inputs.iter().map(|i| i.width).sum();
        let feature_names = match &options.feature_names {
            Some(names) => {
                check_feature_names(names, width)?;
                names.clone()
            }
            None if prepared.inputs.iter().all(|i| i.width == 1) => {
                prepared.inputs.iter().map(|i| i.name.clone()).collect()
            }
            None => {
                return Err(MlError::Shape(format!(
                    "the ONNX graph takes {width} columns in input(s) {}: give the feature \
                     names (OnnxOptions::feature_names)",
                    prepared
                        .inputs
                        .iter()
                        .map(|i| format!("{:?}", i.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        };
        let plan = onnx
            .model_for_proto_model(&prepared.proto)
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| tract_error("tract cannot run this graph", e))?;
        let model = OnnxModel {
            feature_names,
            bytes: Arc::from(bytes),
            inputs: prepared.inputs,
            output: prepared.output,
            plan,
        };
        // A probe row checks that the graph runs and what its output looks like.
        model.run_chunk(&vec![0.0; width], 1, 0, false)?;
        Ok(model)
    }

    /// Reads and loads an ONNX file; fails like [`OnnxModel::from_bytes`], or with
    /// [`MlError::ModelFile`] naming the path when it cannot be read.
    pub fn from_file(path: impl AsRef<Path>, options: &OnnxOptions) -> Result<OnnxModel, MlError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            error(
                Some(path.display().to_string()),
                format!("cannot read the model file: {e}"),
            )
        })?;
        OnnxModel::from_bytes(&bytes, options)
    }

    /// The ONNX file as loaded.
    pub fn onnx_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The names of the graph inputs fed, in order.
    pub fn input_names(&self) -> Vec<&str> {
        self.inputs.iter().map(|i| i.name.as_str()).collect()
    }

    /// The name of the probability output read.
    pub fn output_name(&self) -> &str {
        &self.output
    }

    /// Rebuilds a model from an artifact of flavor [`OnnxModel::FLAVOR`]; fails with
    /// [`MlError::Artifact`] when the payload is not base64 of a loadable ONNX file or does
    /// not match the artifact's feature names.
    pub fn from_artifact(a: &Artifact) -> Result<OnnxModel, MlError> {
        let wrap = |e: String| MlError::Artifact(format!("{} payload: {e}", Self::FLAVOR));
        let payload: Payload = a.payload_as(Self::FLAVOR)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(payload.onnx_base64.as_bytes())
            .map_err(|e| wrap(format!("onnx_base64 is not base64: {e}")))?;
        let options = OnnxOptions {
            feature_names: Some(a.feature_names.clone()),
            output: Some(payload.output),
        };
        OnnxModel::from_bytes(&bytes, &options).map_err(|e| wrap(e.to_string()))
    }

    /// Runs the graph on `n` rows (row-major, all features); `first_row` numbers them in
    /// messages. With `check_range`, values outside `[0, 1]` are an error.
    fn run_chunk(
        &self,
        rows: &[f64],
        n: usize,
        first_row: usize,
        check_range: bool,
    ) -> Result<Vec<f64>, MlError> {
        let d = self.feature_names.len();
        let mut feeds: TVec<TValue> = tvec![];
        let mut col = 0;
        for input in &self.inputs {
            let cells = rows
                .chunks_exact(d)
                .flat_map(|r| &r[col..col + input.width]);
            let shape = [n, input.width];
            let tensor = match input.elem {
                ElemType::F32 => {
                    let v: Vec<f32> = cells.map(|&c| c as f32).collect();
                    Tensor::from_shape(&shape, &v)
                }
                ElemType::F64 => {
                    let v: Vec<f64> = cells.copied().collect();
                    Tensor::from_shape(&shape, &v)
                }
            }
            .map_err(|e| tract_error("cannot build an input tensor", e))?;
            feeds.push(tensor.into_tvalue());
            col += input.width;
        }
        let outputs = self
            .plan
            .run(feeds)
            .map_err(|e| tract_error("running the graph failed", e))?;
        let out = outputs
            .first()
            .ok_or_else(|| error(None, "the graph returned no output"))?;
        let values = out
            .cast_to::<f64>()
            .map_err(|e| tract_error("the output is not numeric", e))?;
        let view = values
            .to_plain_array_view::<f64>()
            .map_err(|e| tract_error("cannot read the output", e))?;
        let (col, width) = match view.shape() {
            [m] if *m == n => (0, 1),
            [m, 1] if *m == n => (0, 1),
            [m, 2] if *m == n => (1, 2),
            shape => {
                return Err(error(
                    Some(format!("output {:?}", self.output)),
                    format!(
                        "has shape {shape:?} for {n} rows; expected [{n}, 2] (both classes), \
                         [{n}, 1] or [{n}]: only binary classifiers are supported"
                    ),
                ))
            }
        };
        let flat: Vec<f64> = view.iter().copied().collect();
        let p: Vec<f64> = flat.chunks_exact(width).map(|r| r[col]).collect();
        if check_range {
            if let Some(i) = p.iter().position(|v| !(0.0..=1.0).contains(v)) {
                return Err(MlError::OutOfRange {
                    what: "ONNX model output",
                    row: first_row + i,
                    value: p[i],
                    allowed: "a probability in [0, 1] (does the graph end with logits? \
                              export it with its sigmoid or softmax)",
                });
            }
        }
        Ok(p)
    }
}

impl Predictor for OnnxModel {
    fn flavor(&self) -> &'static str {
        Self::FLAVOR
    }

    fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    fn predict_proba(&self, x: &Matrix) -> Result<Vec<f64>, MlError> {
        let d = self.feature_names.len();
        if x.n_cols() != d {
            return Err(MlError::Shape(format!(
                "model expects {d} features ({}), got {} columns",
                self.feature_names.join(", "),
                x.n_cols()
            )));
        }
        x.check_finite("scoring matrix")?;
        let chunks: Vec<Vec<f64>> = x
            .data()
            .par_chunks(CHUNK_ROWS * d)
            .enumerate()
            .map(|(k, rows)| self.run_chunk(rows, rows.len() / d, k * CHUNK_ROWS, true))
            .collect::<Result<_, _>>()?;
        Ok(chunks.concat())
    }

    fn to_artifact(&self) -> Result<Artifact, MlError> {
        let payload = serde_json::to_value(Payload {
            onnx_base64: base64::engine::general_purpose::STANDARD.encode(&self.bytes),
            output: self.output.clone(),
        })
        .map_err(|e| MlError::Artifact(format!("cannot serialize model: {e}")))?;
        Ok(Artifact {
            flavor: Self::FLAVOR.to_string(),
            format_version: Self::FORMAT_VERSION,
            feature_names: self.feature_names.clone(),
            payload,
        })
    }
}
