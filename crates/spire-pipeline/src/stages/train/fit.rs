//! Fitting: the fused linear family, single models (`gbdt`, and imported models, which are
//! loaded instead of fitted), held-out evaluation and the tuning objective.

use std::collections::BTreeMap;

use spire_core::config::{ImportSpec, ModelSpec, Threshold};
use spire_features::dataset::FeatureMatrix;
use spire_ml::eval::{Folds, KFold};
use spire_ml::fused::{FamilyParams, LabelMatrix, Member};
use spire_ml::tune::{Objective, ParamMap, Trial, TuneResult};
use spire_ml::{Fit, GbdtParams, LogisticRegressionParams, Matrix, MlError, Predictor};

use super::{Evaluation, Fitted, Prepared};
use crate::error::{PipelineError, Result};

/// Fits the model `spec` names on its own; returns it with its solver iterations
/// (`logistic_regression`) or trees (`gbdt`).
pub(super) fn fit_one(
    spec: &ModelSpec,
    x: &Matrix,
    y: &[bool],
    names: &[String],
) -> std::result::Result<(Box<dyn Predictor>, usize), MlError> {
    let params_err = |e: serde_json::Error| MlError::Params {
        algorithm: spec.algorithm.clone(),
        message: e.to_string(),
    };
    if spec.algorithm == "gbdt" {
        let params: GbdtParams = serde_json::from_value(spec.params.clone()).map_err(params_err)?;
        let model = params.validate()?.fit(x, y, names)?;
        let trees = model.n_trees();
        return Ok((Box::new(model), trees));
    }
    let params = LogisticRegressionParams {
        l2: spec.l2,
        l1: spec.l1,
        max_iter: spec.max_iter,
        ..Default::default()
    };
    let model = params.validate()?.fit(x, y, names)?;
    let iterations = model.iterations();
    Ok((Box::new(model), iterations))
}

/// Held-out metrics of probabilities `p` for labels `y_test`, of a model fitted on `y_train`.
pub(super) fn evaluation(
    y_train: &[bool],
    y_test: &[bool],
    p: &[f64],
    iterations: usize,
) -> Evaluation {
    Evaluation {
        auc: spire_ml::roc_auc(y_test, p).unwrap_or(f64::NAN),
        pr_auc: spire_ml::average_precision(y_test, p).unwrap_or(f64::NAN),
        log_loss: spire_ml::log_loss(y_test, p),
        brier: spire_ml::brier_score(y_test, p),
        n_train: y_train.len(),
        n_test: y_test.len(),
        positives_train: y_train.iter().filter(|v| **v).count(),
        positives_test: y_test.iter().filter(|v| **v).count(),
        iterations,
    }
}

/// Whether a segment trains in the fused linear family (else on its own).
pub(super) fn is_fused(spec: &ModelSpec) -> bool {
    spec.algorithm == "logistic_regression"
}

/// Fits every prepared segment (the fused family first, then the others one by one) and
/// returns their fits in `prepared` order.
pub(super) fn fit_all(
    m: &FeatureMatrix,
    prepared: &[Prepared<'_>],
    test_fraction: f64,
    seed: u64,
) -> Result<Vec<Fitted>> {
    let (linear, single): (Vec<usize>, Vec<usize>) =
        (0..prepared.len()).partition(|&i| is_fused(prepared[i].spec));
    let mut fitted: Vec<Option<Fitted>> = (0..prepared.len()).map(|_| None).collect();
    if !linear.is_empty() {
        let family: Vec<&Prepared<'_>> = linear.iter().map(|&i| &prepared[i]).collect();
        for (i, f) in linear
            .iter()
            .zip(fit_family(m, &family, test_fraction, seed)?)
        {
            fitted[*i] = Some(f);
        }
    }
    for i in single {
        fitted[i] = Some(fit_single(m, &prepared[i], test_fraction, seed)?);
    }
    fitted
        .into_iter()
        .zip(prepared)
        .map(|(f, p)| {
            f.ok_or_else(|| PipelineError::Model {
                segment: p.s.spec.name.clone(),
                source: MlError::Numerical("the segment was not fitted".into()),
            })
        })
        .collect()
}

/// Fits one segment on its own (e.g. `gbdt`) on the training side of its split, and
/// evaluates it on the held-out side.
fn fit_single(
    m: &FeatureMatrix,
    p: &Prepared<'_>,
    test_fraction: f64,
    seed: u64,
) -> Result<Fitted> {
    let name = &p.s.spec.name;
    let model_err = |source| PipelineError::Model {
        segment: name.clone(),
        source,
    };
    let keys: Vec<&str> = p.rows.iter().map(|r| m.user_ids[*r].as_str()).collect();
    let split = spire_ml::stratified_split(&keys, &p.y, test_fraction, seed).map_err(model_err)?;
    // An imported model reads its own columns, in its own order; a fitted one all columns.
    let imported = match &p.spec.import {
        Some(import) => Some(load_import(name, import)?),
        None => None,
    };
    let columns: Vec<usize> = match &imported {
        Some(model) => snapshot_columns(m, model.feature_names(), name)?,
        None => (0..m.columns.len()).collect(),
    };
    let ncol = m.columns.len();
    let gather = |idx: &[usize]| {
        let mut data = Vec::with_capacity(idx.len() * columns.len());
        for i in idx {
            let row = &m.values[p.rows[*i] * ncol..(p.rows[*i] + 1) * ncol];
            data.extend(columns.iter().map(|c| row[*c]));
        }
        Matrix::new(idx.len(), columns.len(), data).map_err(model_err)
    };
    let y_train: Vec<bool> = split.train.iter().map(|i| p.y[*i]).collect();
    let y_test: Vec<bool> = split.test.iter().map(|i| p.y[*i]).collect();
    let (model, iterations) = match imported {
        Some(model) => (model, 0),
        None => fit_one(p.spec, &gather(&split.train)?, &y_train, &m.columns).map_err(model_err)?,
    };
    let prob = model
        .predict_proba(&gather(&split.test)?)
        .map_err(model_err)?;
    let threshold = precision_cut(p, &y_test, &prob).map_err(model_err)?;
    Ok(Fitted {
        model,
        evaluation: evaluation(&y_train, &y_test, &prob, iterations),
        test_users: split
            .test
            .iter()
            .map(|i| (keys[*i].to_string(), p.y[*i]))
            .collect(),
        threshold,
        tuning: None,
    })
}

/// Reads an imported model file (`algorithm = "import"`): ONNX through tract, or LightGBM's
/// text model, with the spec's feature names when it gives them.
fn load_import(segment: &str, import: &ImportSpec) -> Result<Box<dyn Predictor>> {
    let model_err = |source| PipelineError::Model {
        segment: segment.to_string(),
        source,
    };
    Ok(match import.format() {
        "onnx" => {
            let options = spire_ml::OnnxOptions {
                feature_names: import.features.clone(),
                ..Default::default()
            };
            Box::new(spire_ml::OnnxModel::from_file(&import.path, &options).map_err(model_err)?)
        }
        _ => {
            let mut model =
                spire_ml::LightGbmModel::from_model_file(&import.path).map_err(model_err)?;
            if let Some(names) = &import.features {
                model = model.with_feature_names(names.clone()).map_err(model_err)?;
            }
            Box::new(model)
        }
    })
}

/// The snapshot column of each feature a model reads, in the model's order; a feature the
/// snapshot lacks is an error naming it and the columns there are.
fn snapshot_columns(m: &FeatureMatrix, names: &[String], segment: &str) -> Result<Vec<usize>> {
    m.column_indices(names).map_err(|missing| {
        PipelineError::InvalidInput(format!(
            "segment `{segment}`: the imported model reads feature(s) {} that feature set `{}` \
             does not have; name its inputs with `model.features` (the set has: {})",
            missing.join(", "),
            m.feature_set,
            m.columns.join(", ")
        ))
    })
}

/// For a `min_precision` output rule, the score cut reaching it on the held-out users.
fn precision_cut(
    p: &Prepared<'_>,
    y_test: &[bool],
    prob: &[f64],
) -> std::result::Result<Option<spire_ml::eval::PrecisionThreshold>, MlError> {
    match p.s.spec.output.threshold {
        Threshold::MinPrecision(min_precision) if y_test.iter().any(|v| *v) => {
            spire_ml::eval::precision_threshold(y_test, prob, min_precision)
        }
        _ => Ok(None),
    }
}

/// Splits every segment's users, fits all segments together as one fused linear family and
/// evaluates each on its held-out users.
fn fit_family(
    m: &FeatureMatrix,
    prepared: &[&Prepared<'_>],
    test_fraction: f64,
    seed: u64,
) -> Result<Vec<Fitted>> {
    let n = m.user_ids.len();
    let ncol = m.columns.len();
    let model_err = |segment: &str, source| PipelineError::Model {
        segment: segment.to_string(),
        source,
    };
    let family_err = |source: MlError| match source {
        MlError::Member { name, source } => PipelineError::Model {
            segment: name,
            source: *source,
        },
        other => PipelineError::Model {
            segment: prepared
                .iter()
                .map(|p| p.s.spec.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            source: other,
        },
    };
    let mut labels = LabelMatrix::excluded(n, prepared.len()).map_err(family_err)?;
    let mut splits = Vec::with_capacity(prepared.len());
    for (j, p) in prepared.iter().enumerate() {
        let keys: Vec<&str> = p.rows.iter().map(|r| m.user_ids[*r].as_str()).collect();
        let split = spire_ml::stratified_split(&keys, &p.y, test_fraction, seed)
            .map_err(|e| model_err(&p.s.spec.name, e))?;
        for &t in &split.train {
            labels.set(p.rows[t], j, Some(p.y[t]));
        }
        splits.push(split);
    }
    let x = Matrix::new(n, ncol, m.values.clone()).map_err(family_err)?;
    // Tuned segments search l2/l1 by cross-validation on their training users first; later
    // members of a `for_each` family warm-start from the trials of earlier ones.
    let mut tunings: Vec<Option<TuneResult>> = Vec::with_capacity(prepared.len());
    let mut family_trials: BTreeMap<&str, Vec<Vec<Trial>>> = BTreeMap::new();
    for (p, split) in prepared.iter().zip(&splits) {
        let Some(t) = &p.spec.tune else {
            tunings.push(None);
            continue;
        };
        let name = &p.s.spec.name;
        let rows: Vec<usize> = split.train.iter().map(|i| p.rows[*i]).collect();
        let y: Vec<bool> = split.train.iter().map(|i| p.y[*i]).collect();
        let keys: Vec<&str> = rows.iter().map(|r| m.user_ids[*r].as_str()).collect();
        let folds = KFold::new(t.folds, seed)
            .and_then(|k| k.stratified_folds(&keys, &y))
            .map_err(|e| model_err(name, e))?;
        let objective = CvObjective {
            x: x.select_rows(&rows),
            y,
            names: &m.columns,
            folds,
            base: serde_json::json!({
                "l2": p.spec.l2,
                "l1": p.spec.l1,
                "max_iter": p.spec.max_iter,
            }),
        };
        let params = spire_ml::tune::TuneParams {
            seed,
            ..t.params.clone()
        };
        let earlier = family_trials.get(p.s.family.as_str());
        let warm: Vec<&[Trial]> = earlier
            .map(|studies| studies.iter().map(Vec::as_slice).collect())
            .unwrap_or_default();
        let result = spire_ml::tune::tune(&t.space, &params, &objective, &warm)
            .map_err(|e| model_err(name, e))?;
        family_trials
            .entry(p.s.family.as_str())
            .or_default()
            .push(result.trials.clone());
        tunings.push(Some(result));
    }
    let members: Vec<Member> = prepared
        .iter()
        .zip(&tunings)
        .enumerate()
        .map(|(j, (p, tuning))| {
            let best = tuning.as_ref().map(|t| &t.best().params);
            let get = |k: &str, default: f64| {
                best.and_then(|b| b.get(k))
                    .and_then(|v| v.as_f64())
                    .unwrap_or(default)
            };
            Member::elastic_net(
                p.s.spec.name.clone(),
                j,
                get("l2", p.spec.l2),
                get("l1", p.spec.l1),
            )
        })
        .collect();
    let params = FamilyParams {
        max_iter: prepared
            .iter()
            .map(|p| p.spec.max_iter)
            .max()
            .unwrap_or(100)
            .max(100),
        ..FamilyParams::default()
    };
    let family = params
        .validate()
        .and_then(|v| v.fit(&x, &m.columns, &labels, &members))
        .map_err(family_err)?;
    let mut out = Vec::with_capacity(prepared.len());
    let mut tunings = tunings.into_iter();
    for (j, (p, split)) in prepared.iter().zip(&splits).enumerate() {
        let tuning = tunings.next().flatten();
        let name = &p.s.spec.name;
        let model = family.model(j).ok_or_else(|| {
            model_err(
                name,
                MlError::Numerical("the family fit lost a member".into()),
            )
        })?;
        let test_rows: Vec<usize> = split.test.iter().map(|i| p.rows[*i]).collect();
        let x_test = x.select_rows(&test_rows);
        let y_test: Vec<bool> = split.test.iter().map(|i| p.y[*i]).collect();
        let prob = model
            .predict_proba(&x_test)
            .map_err(|e| model_err(name, e))?;
        let member = &family.members()[j];
        let evaluation = Evaluation {
            auc: spire_ml::roc_auc(&y_test, &prob).unwrap_or(f64::NAN),
            pr_auc: spire_ml::average_precision(&y_test, &prob).unwrap_or(f64::NAN),
            log_loss: spire_ml::log_loss(&y_test, &prob),
            brier: spire_ml::brier_score(&y_test, &prob),
            n_train: member.n_train,
            n_test: y_test.len(),
            positives_train: member.n_positive,
            positives_test: y_test.iter().filter(|v| **v).count(),
            iterations: member.iterations,
        };
        let test_users = split
            .test
            .iter()
            .map(|i| (m.user_ids[p.rows[*i]].clone(), p.y[*i]))
            .collect();
        let threshold = precision_cut(p, &y_test, &prob).map_err(|e| model_err(name, e))?;
        out.push(Fitted {
            model: Box::new(model),
            evaluation,
            test_users,
            threshold,
            tuning,
        });
    }
    Ok(out)
}

/// Cross-validated AUC of a logistic regression with trial params on one segment's training
/// users (the tuning objective).
struct CvObjective<'a> {
    x: Matrix,
    y: Vec<bool>,
    names: &'a [String],
    folds: Folds,
    base: serde_json::Value,
}

impl Objective for CvObjective<'_> {
    fn folds(&self) -> usize {
        self.folds.k()
    }

    fn evaluate_fold(&self, params: &ParamMap, fold: usize) -> std::result::Result<f64, MlError> {
        let split = self
            .folds
            .split(fold)
            .ok_or_else(|| MlError::Shape(format!("fold {fold} does not exist")))?;
        let mut merged = self.base.clone();
        for (k, v) in params {
            merged[k] = v.clone();
        }
        let estimator = spire_ml::algorithms::estimator("logistic_regression", merged)?;
        let y_train: Vec<bool> = split.train.iter().map(|&i| self.y[i]).collect();
        let y_val: Vec<bool> = split.test.iter().map(|&i| self.y[i]).collect();
        let model = estimator.fit_boxed(&self.x.select_rows(&split.train), &y_train, self.names)?;
        let p = model.predict_proba(&self.x.select_rows(&split.test))?;
        spire_ml::roc_auc(&y_val, &p).ok_or_else(|| {
            MlError::Degenerate(format!("fold {fold} has one class only: AUC is undefined"))
        })
    }
}
