//! `spire ml evaluate`: cross-validate any algorithm on any CSV or Parquet table.
//!
//! The table is read with DataFusion (types inferred), numeric columns stay numbers and
//! everything else becomes a category; per fold, a [`spire_ml::Preprocessor`] is fitted on
//! the training rows only (imputation, missing indicators, one-hot) and the named estimator
//! is fitted through the same code path as segment models; with `--save`, the encoder and
//! the model fitted on every row are written as one [`TabularModel`] artifact. Folds are
//! stratified and keyed by row number, so a run is reproducible for a given seed; or they are
//! read from a column of the table (`--fold-column`), so another tool can evaluate on exactly
//! the same folds.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use spire_lake::datafusion::arrow::datatypes::DataType;
use spire_lake::datafusion::prelude::{
    CsvReadOptions, ParquetReadOptions, SessionConfig, SessionContext,
};
use spire_ml::eval::{cross_validate, CvSummary, Folds, KFold};
use spire_ml::{Column, ColumnData, Frame, MlError, PreprocessParams, TabularModel};

use crate::error::{PipelineError, Result};
use crate::progress::Progress;

/// What to evaluate, as given on the command line.
#[derive(Debug, Clone)]
pub struct EvaluateOptions {
    /// A `.csv` (or other text) or `.parquet` file.
    pub data: PathBuf,
    /// The label column.
    pub label: String,
    /// The label value that counts as positive; inferred for yes/no, true/false and 1/0.
    pub positive: Option<String>,
    /// Columns left out of the features (e.g. identifiers, leaky columns).
    pub drop: Vec<String>,
    /// Algorithm name, see [`spire_ml::algorithms::algorithms`].
    pub algorithm: String,
    /// Algorithm params, a JSON object.
    pub params: serde_json::Value,
    /// Number of stratified folds, `2..=1000` (default 5). With `fold_column`, the number of
    /// distinct values in it, if given.
    pub folds: Option<usize>,
    /// Seed of the fold hash (unused with `fold_column`).
    pub seed: u64,
    /// A column holding each row's fold (integers or labels; each distinct value is one
    /// fold, ordered by value). It is not a feature.
    pub fold_column: Option<String>,
    /// CSV field delimiter; sniffed from the header line when `None`.
    pub delimiter: Option<u8>,
    /// Encoding of the feature columns.
    pub preprocess: PreprocessParams,
    /// Also fit on every row and write the model (encoder + estimator) artifact here.
    pub save: Option<PathBuf>,
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvaluateReport {
    /// The file read.
    pub data: String,
    /// Rows used.
    pub rows: usize,
    /// Positive rows.
    pub positives: usize,
    /// Feature columns read (numeric, categorical).
    pub numeric_columns: usize,
    /// Categorical feature columns read.
    pub categorical_columns: usize,
    /// Columns after encoding, in the first fold.
    pub encoded_features: usize,
    /// The algorithm.
    pub algorithm: String,
    /// Its params as given.
    pub params: serde_json::Value,
    /// The column the folds were read from (`None`: stratified folds made from the seed).
    pub fold_column: Option<String>,
    /// Mean ± std of each metric over the folds.
    pub cv: CvSummary,
    /// Wall time of the cross-validation (reading excluded).
    pub seconds: f64,
    /// Where the model fitted on all rows was written (`--save`).
    pub saved: Option<String>,
}

fn invalid(msg: String) -> PipelineError {
    PipelineError::InvalidInput(msg)
}

/// Reads `path` into a [`Frame`]: numeric Arrow types become numeric columns, anything else
/// categorical (booleans as `true`/`false`).
pub async fn read_frame(path: &Path, delimiter: Option<u8>) -> Result<Frame> {
    let shown = path.display().to_string();
    if !path.is_file() {
        return Err(invalid(format!("{shown}: no such file")));
    }
    // One partition, no split scans: rows come back in file order, so row numbers in
    // messages and the folds keyed by them are the same on every run.
    let ctx = SessionContext::new_with_config(
        SessionConfig::new()
            .with_target_partitions(1)
            .with_repartition_file_scans(false),
    );
    let df_err = |e: spire_lake::datafusion::error::DataFusionError| {
        invalid(format!("{shown}: cannot read the table: {e}"))
    };
    let is_parquet = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    let df = if is_parquet {
        ctx.read_parquet(shown.as_str(), ParquetReadOptions::default())
            .await
            .map_err(df_err)?
    } else {
        let delimiter = match delimiter {
            Some(d) => d,
            None => sniff_delimiter(path)?,
        };
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| format!(".{e}"))
            .unwrap_or_default();
        ctx.read_csv(
            shown.as_str(),
            CsvReadOptions::new()
                .delimiter(delimiter)
                .has_header(true)
                .file_extension(&ext)
                .schema_infer_max_records(100_000),
        )
        .await
        .map_err(df_err)?
    };
    let batches = df.collect().await.map_err(df_err)?;
    let Some(schema) = batches.first().map(|b| b.schema()) else {
        return Err(invalid(format!("{shown}: the table has no rows")));
    };
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let name = field.name();
        let numeric = field.data_type().is_numeric();
        let data = if numeric {
            let mut v = Vec::new();
            for b in &batches {
                let a = spire_lake::columns::floats(b, name)?;
                v.extend(a.iter());
            }
            ColumnData::Numeric(v)
        } else {
            let mut v = Vec::new();
            for b in &batches {
                let a = spire_lake::columns::strings(b, name)?;
                v.extend(a.iter().map(|s| s.map(str::to_string)));
            }
            if matches!(field.data_type(), DataType::Boolean) {
                v.iter_mut()
                    .flatten()
                    .for_each(|s| *s = s.to_ascii_lowercase());
            }
            ColumnData::Categorical(v)
        };
        columns.push(Column {
            name: name.clone(),
            data,
        });
    }
    Frame::new(columns).map_err(|e| invalid(format!("{shown}: {e}")))
}

/// The most frequent of `,`, `;`, tab and `|` in the header line.
fn sniff_delimiter(path: &Path) -> Result<u8> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).map_err(|e| PipelineError::io(path, e))?;
    let mut header = String::new();
    std::io::BufReader::new(file)
        .read_line(&mut header)
        .map_err(|e| PipelineError::io(path, e))?;
    let best = [b',', b';', b'\t', b'|']
        .into_iter()
        .max_by_key(|d| header.bytes().filter(|b| b == d).count())
        .unwrap_or(b',');
    Ok(best)
}

/// Turns the label column into booleans: `positive` if given, else yes/no, true/false or 1/0.
fn labels(column: &Column, positive: Option<&str>, file: &str) -> Result<Vec<bool>> {
    let text: Vec<Option<String>> = match &column.data {
        ColumnData::Numeric(v) => v
            .iter()
            .map(|x| x.filter(|x| !x.is_nan()).map(format_number))
            .collect(),
        ColumnData::Categorical(v) => v.clone(),
    };
    if let Some(row) = text.iter().position(Option::is_none) {
        return Err(invalid(format!(
            "{file}: row {} has no value in label column {:?}; drop or fill such rows first",
            row + 1,
            column.name
        )));
    }
    let values: Vec<&str> = text.iter().flatten().map(String::as_str).collect();
    let mut distinct: Vec<&str> = values.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let positive = match positive {
        Some(p) => {
            let p = match p.parse::<f64>() {
                Ok(x) if matches!(column.data, ColumnData::Numeric(_)) => format_number(x),
                _ => p.to_string(),
            };
            if distinct.contains(&p.as_str()) {
                p
            } else {
                // Boolean columns read as lowercase `true`/`false`: `--positive TRUE` means
                // `true` when exactly one value matches regardless of case.
                let mut same = distinct.iter().filter(|d| d.eq_ignore_ascii_case(&p));
                match (same.next(), same.next()) {
                    (Some(only), None) => only.to_string(),
                    _ => {
                        return Err(invalid(format!(
                            "{file}: --positive {p:?} does not occur in label column {:?} \
                             (values: {})",
                            column.name,
                            preview(&distinct)
                        )))
                    }
                }
            }
        }
        None => {
            let lower: Vec<String> = distinct.iter().map(|s| s.to_ascii_lowercase()).collect();
            let pos = ["yes", "true", "1"]
                .iter()
                .zip(["no", "false", "0"])
                .find(|(p, n)| {
                    lower.len() == 2
                        && lower.contains(&p.to_string())
                        && lower.contains(&n.to_string())
                })
                .map(|(p, _)| *p);
            match pos {
                Some(p) => distinct
                    .iter()
                    .find(|s| s.eq_ignore_ascii_case(p))
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| p.to_string()),
                None => {
                    return Err(invalid(format!(
                        "{file}: label column {:?} has values {}; say which is positive with \
                         --positive VALUE",
                        column.name,
                        preview(&distinct)
                    )))
                }
            }
        }
    };
    Ok(values.iter().map(|v| *v == positive).collect())
}

fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn preview(values: &[&str]) -> String {
    let shown: Vec<String> = values.iter().take(6).map(|v| format!("{v:?}")).collect();
    if values.len() > 6 {
        format!("{}, … ({} distinct)", shown.join(", "), values.len())
    } else {
        shown.join(", ")
    }
}

/// Folds when neither `--cv` nor `--fold-column` is given.
pub const DEFAULT_FOLDS: usize = 5;

/// Folds read from a column: each distinct value is one fold (numbers in numeric order, text
/// in byte order). Fails naming the column and row for a missing or non-integer value, when
/// there are fewer than 2 or more than 1000 distinct values, when `expected` (`--cv`) differs
/// from their number, and when a fold's rows lack a class (its AUC would be undefined).
fn folds_from_column(
    column: &Column,
    y: &[bool],
    expected: Option<usize>,
    file: &str,
) -> Result<Folds> {
    let name = &column.name;
    let missing = |row: usize| {
        invalid(format!(
            "{file}: row {} has no value in fold column {name:?}; every row needs a fold",
            row + 1
        ))
    };
    // Sort keys: integers first by value, then text by bytes (a column is one or the other).
    let keys: Vec<(i64, String)> = match &column.data {
        ColumnData::Numeric(v) => v
            .iter()
            .enumerate()
            .map(|(row, x)| match x {
                Some(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 => {
                    Ok((*x as i64, String::new()))
                }
                Some(x) if !x.is_nan() => Err(invalid(format!(
                    "{file}: row {} of fold column {name:?} holds {x}; fold values must be \
                     integers or labels",
                    row + 1
                ))),
                _ => Err(missing(row)),
            })
            .collect::<Result<_>>()?,
        ColumnData::Categorical(v) => v
            .iter()
            .enumerate()
            .map(|(row, s)| match s {
                Some(s) if !s.is_empty() => Ok((0, s.clone())),
                _ => Err(missing(row)),
            })
            .collect::<Result<_>>()?,
    };
    let mut distinct: Vec<&(i64, String)> = keys.iter().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let shown = |k: &(i64, String)| match &column.data {
        ColumnData::Numeric(_) => k.0.to_string(),
        ColumnData::Categorical(_) => format!("{:?}", k.1),
    };
    let k = distinct.len();
    if !(2..=spire_ml::eval::MAX_FOLDS).contains(&k) {
        return Err(invalid(format!(
            "{file}: fold column {name:?} has {k} distinct values; it needs 2 to {} (one per fold)",
            spire_ml::eval::MAX_FOLDS
        )));
    }
    if let Some(cv) = expected.filter(|cv| *cv != k) {
        return Err(invalid(format!(
            "--cv {cv} disagrees with fold column {name:?}, which has {k} folds; drop --cv"
        )));
    }
    let index: std::collections::HashMap<&(i64, String), usize> = distinct
        .iter()
        .enumerate()
        .map(|(i, key)| (*key, i))
        .collect();
    let assignment: Vec<usize> = keys.iter().map(|key| index[key]).collect();
    let folds = Folds::new(k, assignment).map_err(|e| invalid(format!("{file}: {e}")))?;
    let sizes = folds.sizes();
    for (f, pos) in folds.positives(y).into_iter().enumerate() {
        let class = if pos == 0 {
            "positive"
        } else if pos == sizes[f] {
            "negative"
        } else {
            continue;
        };
        return Err(invalid(format!(
            "{file}: fold {} of fold column {name:?} has no {class} rows, so its AUC is \
             undefined; assign folds stratified by the label",
            shown(distinct[f])
        )));
    }
    Ok(folds)
}

/// Reads the table and cross-validates the algorithm on it.
pub async fn evaluate(opts: &EvaluateOptions, progress: &dyn Progress) -> Result<EvaluateReport> {
    let file = opts.data.display().to_string();
    let estimator = spire_ml::algorithms::estimator(&opts.algorithm, opts.params.clone())
        .map_err(|e| invalid(format!("--algorithm/--params: {e}")))?;
    let mut frame = read_frame(&opts.data, opts.delimiter).await?;
    let names: Vec<String> = frame.columns().iter().map(|c| c.name.clone()).collect();
    let label = frame.take(&opts.label).ok_or_else(|| {
        invalid(format!(
            "{file}: no label column {:?} (columns: {})",
            opts.label,
            names.join(", ")
        ))
    })?;
    let fold_values = match &opts.fold_column {
        Some(c) if c == &opts.label => {
            return Err(invalid(format!(
                "--fold-column {c:?} is the label column; name the column holding fold numbers"
            )))
        }
        Some(c) => Some(frame.take(c).ok_or_else(|| {
            invalid(format!(
                "{file}: no fold column {c:?} (--fold-column; columns: {})",
                names.join(", ")
            ))
        })?),
        None => None,
    };
    for d in &opts.drop {
        if d == &opts.label || Some(d) == opts.fold_column.as_ref() {
            continue;
        }
        frame.take(d).ok_or_else(|| {
            invalid(format!(
                "{file}: --drop names column {d:?}, which is not in the table (columns: {})",
                names.join(", ")
            ))
        })?;
    }
    if frame.columns().is_empty() {
        return Err(invalid(format!("{file}: no feature column is left")));
    }
    let y = labels(&label, opts.positive.as_deref(), &file)?;
    let positives = y.iter().filter(|v| **v).count();
    let numeric_columns = frame
        .columns()
        .iter()
        .filter(|c| matches!(c.data, ColumnData::Numeric(_)))
        .count();
    let ml = |e: MlError| invalid(format!("{file}: {e}"));
    let folds = match &fold_values {
        Some(column) => folds_from_column(column, &y, opts.folds, &file)?,
        None => {
            let keys: Vec<String> = (0..y.len()).map(|i| i.to_string()).collect();
            let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            KFold::new(opts.folds.unwrap_or(DEFAULT_FOLDS), opts.seed)
                .and_then(|k| k.stratified_folds(&key_refs, &y))
                .map_err(ml)?
        }
    };
    let started = Instant::now();
    let mut encoded = 0;
    progress.start("cross-validation", folds.k() as u64);
    let cv = cross_validate(&folds, |fold, split| {
        let train = frame.select_rows(&split.train);
        let test = frame.select_rows(&split.test);
        let y_train: Vec<bool> = split.train.iter().map(|&i| y[i]).collect();
        let y_test: Vec<bool> = split.test.iter().map(|&i| y[i]).collect();
        // The same encoder + estimator pair that `--save` stores and scoring replays.
        let model = TabularModel::fit(&opts.preprocess, estimator.as_ref(), &train, &y_train)?;
        encoded = model.preprocessor().feature_names().len();
        let p = model.predict_proba(&test)?;
        progress.update("cross-validation", fold as u64 + 1);
        Ok(vec![
            (
                "roc_auc".to_string(),
                spire_ml::roc_auc(&y_test, &p).unwrap_or(f64::NAN),
            ),
            (
                "pr_auc".to_string(),
                spire_ml::average_precision(&y_test, &p).unwrap_or(f64::NAN),
            ),
            ("log_loss".to_string(), spire_ml::log_loss(&y_test, &p)),
            ("brier".to_string(), spire_ml::brier_score(&y_test, &p)),
        ])
    })
    .map_err(ml)?;
    let seconds = started.elapsed().as_secs_f64();
    progress.finish(
        "cross-validation",
        &format!("{} folds in {seconds:.1} s", folds.k()),
    );
    let saved = match &opts.save {
        Some(path) => {
            let model =
                TabularModel::fit(&opts.preprocess, estimator.as_ref(), &frame, &y).map_err(ml)?;
            let bytes = model.to_artifact().and_then(|a| a.to_bytes()).map_err(ml)?;
            std::fs::write(path, bytes).map_err(|e| PipelineError::io(path, e))?;
            Some(path.display().to_string())
        }
        None => None,
    };
    Ok(EvaluateReport {
        data: file,
        rows: y.len(),
        positives,
        numeric_columns,
        categorical_columns: frame.columns().len() - numeric_columns,
        encoded_features: encoded,
        algorithm: opts.algorithm.clone(),
        params: opts.params.clone(),
        fold_column: opts.fold_column.clone(),
        cv,
        seconds,
        saved,
    })
}
