//! Train → evaluate → register → gate, for the model segments of one or more families.
//!
//! Segments sharing a feature set share one snapshot: the matrix is loaded once, labels of
//! every segment are computed in one pass per horizon, and all `logistic_regression` segments
//! train together as one fused family ([`spire_ml::fused`]); `gbdt` segments train one by one
//! (trees share no work across labels). Each segment trains on its eligible users, split by a
//! stable hash of `user_id` (stratified by label), with one registry run and model version per
//! segment.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use serde::Serialize;
use spire_core::config::{ImportSpec, Label, ModelSpec, SegmentKind, Threshold};
use spire_features::dataset::{self, FeatureMatrix};
use spire_features::labels::{self, FutureEventsLabel};
use spire_lake::tables::EVENTS;
use spire_ml::eval::{Folds, KFold};
use spire_ml::fused::{FamilyParams, LabelMatrix, Member};
use spire_ml::tune::{Objective, ParamMap, Trial, TrialState, TuneResult};
use spire_ml::{Artifact, Fit, GbdtParams, LogisticRegressionParams, Matrix, MlError, Predictor};
use spire_registry::{ModelRegistry, NewRun, RunStatus, TableInput, TrackingStore};

use crate::error::{PipelineError, Result};
use crate::progress::Progress;
use crate::segments::ResolvedSegment;
use crate::workspace::Workspace;

/// Test-set metrics of one fitted segment model.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Evaluation {
    /// ROC AUC on held-out users.
    pub auc: f64,
    /// Average precision on held-out users.
    pub pr_auc: f64,
    /// Log loss on held-out users.
    pub log_loss: f64,
    /// Brier score on held-out users.
    pub brier: f64,
    /// Training rows.
    pub n_train: usize,
    /// Test rows.
    pub n_test: usize,
    /// Positives among training rows.
    pub positives_train: usize,
    /// Positives among test rows.
    pub positives_test: usize,
    /// Solver iterations (`logistic_regression`) or trees (`gbdt`).
    pub iterations: usize,
}

/// One segment's training outcome.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOutcome {
    /// Segment.
    pub segment: String,
    /// Family.
    pub family: String,
    /// Registry run.
    pub run_id: String,
    /// Registered model version.
    pub model_version: i64,
    /// Training snapshot date.
    pub as_of: NaiveDate,
    /// Test metrics.
    pub evaluation: Evaluation,
    /// Whether the gate passed (and `champion` moved to this version).
    pub promoted: bool,
    /// The gate's verdict in words.
    pub gate: String,
    /// Held-out users, with their labels (for external checks such as the demo's oracle).
    #[serde(skip)]
    pub test_users: Vec<(String, bool)>,
}

/// A fitted, evaluated model before registration.
pub struct Fitted {
    /// The model.
    pub model: Box<dyn Predictor>,
    /// Its evaluation.
    pub evaluation: Evaluation,
    /// Held-out users with labels.
    pub test_users: Vec<(String, bool)>,
    /// For a `min_precision` output rule: the score cut chosen on the held-out users (`None`
    /// when no cut reaches the precision, or for other rules).
    pub threshold: Option<spire_ml::eval::PrecisionThreshold>,
    /// Every tuning trial and the best, when the spec tunes.
    pub tuning: Option<TuneResult>,
}

/// Fits one model on the rows of `m` selected by `rows`, with labels `y` (aligned with
/// `rows`), evaluating on a stratified held-out split keyed by user id.
pub fn fit_and_evaluate(
    segment: &str,
    m: &FeatureMatrix,
    rows: &[usize],
    y: &[bool],
    spec: &ModelSpec,
    test_fraction: f64,
    seed: u64,
) -> Result<Fitted> {
    let model_err = |source| PipelineError::Model {
        segment: segment.to_string(),
        source,
    };
    let keys: Vec<&str> = rows.iter().map(|r| m.user_ids[*r].as_str()).collect();
    let split = spire_ml::stratified_split(&keys, y, test_fraction, seed).map_err(model_err)?;
    let ncol = m.columns.len();
    let gather = |idx: &[usize]| -> Result<Matrix> {
        let mut data = Vec::with_capacity(idx.len() * ncol);
        for i in idx {
            let r = rows[*i];
            data.extend_from_slice(&m.values[r * ncol..(r + 1) * ncol]);
        }
        Matrix::new(idx.len(), ncol, data).map_err(model_err)
    };
    let x_train = gather(&split.train)?;
    let y_train: Vec<bool> = split.train.iter().map(|i| y[*i]).collect();
    let x_test = gather(&split.test)?;
    let y_test: Vec<bool> = split.test.iter().map(|i| y[*i]).collect();
    let (model, iterations) = fit_one(spec, &x_train, &y_train, &m.columns).map_err(model_err)?;
    let p = model.predict_proba(&x_test).map_err(model_err)?;
    let evaluation = evaluation(&y_train, &y_test, &p, iterations);
    let test_users = split
        .test
        .iter()
        .map(|i| (keys[*i].to_string(), y[*i]))
        .collect();
    Ok(Fitted {
        model,
        evaluation,
        test_users,
        threshold: None,
        tuning: None,
    })
}

/// Fits the model `spec` names on its own; returns it with its solver iterations
/// (`logistic_regression`) or trees (`gbdt`).
fn fit_one(
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
fn evaluation(y_train: &[bool], y_test: &[bool], p: &[f64], iterations: usize) -> Evaluation {
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

/// The latest `as_of` at which every label of `segments` has a complete horizon.
pub async fn default_train_as_of(
    ws: &Workspace,
    segments: &[ResolvedSegment],
) -> Result<NaiveDate> {
    let end = crate::stages::features::default_as_of(ws).await?;
    let horizon = segments
        .iter()
        .filter_map(|s| match &s.spec.kind {
            SegmentKind::Model(ModelSpec {
                label: Label::FutureEvents { horizon_days, .. },
                ..
            }) => Some(*horizon_days),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    Ok(end - chrono::Duration::days(i64::from(horizon)))
}

/// Trains every model segment in `segments` as of `as_of` (snapshots must exist).
pub async fn train(
    ws: &Workspace,
    segments: &[ResolvedSegment],
    as_of: NaiveDate,
    progress: &dyn Progress,
) -> Result<Vec<TrainOutcome>> {
    let mut by_fs: BTreeMap<String, Vec<(&ResolvedSegment, &ModelSpec)>> = BTreeMap::new();
    for s in segments {
        if let SegmentKind::Model(m) = &s.spec.kind {
            by_fs
                .entry(s.spec.feature_set.clone())
                .or_default()
                .push((s, m));
        }
    }
    let total: usize = by_fs.values().map(Vec::len).sum();
    progress.start("train", total as u64);
    let mut out = Vec::new();
    for (fs, group) in by_fs {
        let (ctx, features_version) = dataset::features_session(&ws.lake, &fs).await?;
        let m = dataset::load(&ctx, &fs, features_version, as_of).await?;
        let events_version = ws
            .lake
            .register_as(&ctx, EVENTS, "events")
            .await?
            .unwrap_or(-1);
        let future: Vec<FutureEventsLabel> = group
            .iter()
            .filter_map(|(s, spec)| match &spec.label {
                Label::FutureEvents {
                    predicate,
                    min_count,
                    horizon_days,
                } => Some(FutureEventsLabel {
                    segment: s.spec.name.clone(),
                    predicate: predicate.clone(),
                    min_count: *min_count,
                    horizon_days: *horizon_days,
                }),
                Label::SeedList { .. } => None,
            })
            .collect();
        let mut positives = labels::future_events(&ctx, as_of, &future).await?;
        for (s, spec) in &group {
            if let Label::SeedList { path } = &spec.label {
                positives.insert(s.spec.name.clone(), labels::seed_list(path)?);
            }
        }
        let inputs = vec![
            TableInput {
                table: EVENTS.into(),
                version: events_version,
            },
            TableInput {
                table: spire_lake::tables::features(&fs),
                version: features_version,
            },
        ];
        let mut prepared = Vec::with_capacity(group.len());
        for (s, spec) in group {
            let name = &s.spec.name;
            let eligible: Option<HashSet<String>> = match &spec.eligibility {
                Some(p) => Some(dataset::eligible(&ctx, as_of, p, name).await?),
                None => None,
            };
            let rows: Vec<usize> = (0..m.user_ids.len())
                .filter(|r| {
                    eligible
                        .as_ref()
                        .is_none_or(|e| e.contains(&m.user_ids[*r]))
                })
                .collect();
            let pos = positives.get(name).cloned().unwrap_or_default();
            let y: Vec<bool> = rows.iter().map(|r| pos.contains(&m.user_ids[*r])).collect();
            prepared.push(Prepared { s, spec, rows, y });
        }
        for o in train_family(ws, &m, &prepared, as_of, &inputs).await? {
            out.push(o);
            progress.update("train", out.len() as u64);
        }
    }
    let promoted = out.iter().filter(|o| o.promoted).count();
    progress.finish(
        "train",
        &format!(
            "{} models trained, {promoted} promoted to champion",
            out.len()
        ),
    );
    Ok(out)
}

/// One model segment of a feature set, with its eligible snapshot rows and their labels.
struct Prepared<'a> {
    s: &'a ResolvedSegment,
    spec: &'a ModelSpec,
    /// Eligible rows of the snapshot.
    rows: Vec<usize>,
    /// Labels aligned with `rows`.
    y: Vec<bool>,
}

/// Trains the model segments of one feature set: the `logistic_regression` ones as one fused
/// family (one shared matrix of every user of the snapshot, one label column per segment
/// holding its training users: eligible and not held out), the others (`gbdt`) one by one on
/// the same splits; then per segment: evaluation on its held-out users, registration and the
/// gate.
async fn train_family(
    ws: &Workspace,
    m: &FeatureMatrix,
    prepared: &[Prepared<'_>],
    as_of: NaiveDate,
    inputs: &[TableInput],
) -> Result<Vec<TrainOutcome>> {
    let defaults = &ws.project.defaults;
    let fused = prepared.iter().filter(|p| is_fused(p.spec)).count();
    let mut run_ids = Vec::with_capacity(prepared.len());
    for p in prepared {
        run_ids.push(start_run(ws, p, m, as_of, inputs.to_vec(), fused).await?);
    }
    let fitted = match fit_all(m, prepared, defaults.test_fraction, defaults.seed) {
        Ok(f) => f,
        Err(e) => {
            for run_id in &run_ids {
                ws.registry
                    .finish_run(run_id, RunStatus::Failed, Some(&e.to_string()))
                    .await?;
            }
            return Err(e);
        }
    };
    let mut out = Vec::with_capacity(prepared.len());
    for ((p, run_id), f) in prepared.iter().zip(run_ids).zip(fitted) {
        out.push(finish_registration(ws, p, m, as_of, run_id, f).await?);
    }
    Ok(out)
}

/// Whether a segment trains in the fused linear family (else on its own).
fn is_fused(spec: &ModelSpec) -> bool {
    spec.algorithm == "logistic_regression"
}

/// Fits every prepared segment (the fused family first, then the others one by one) and
/// returns their fits in `prepared` order.
fn fit_all(
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
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| !m.columns.contains(n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(PipelineError::InvalidInput(format!(
            "segment `{segment}`: the imported model reads feature(s) {} that feature set `{}` \
             does not have; name its inputs with `model.features` (the set has: {})",
            missing.join(", "),
            m.feature_set,
            m.columns.join(", ")
        )));
    }
    Ok(names
        .iter()
        .filter_map(|n| m.columns.iter().position(|c| c == n))
        .collect())
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
    let mut family_trials: BTreeMap<&str, Vec<Trial>> = BTreeMap::new();
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
        let warm = family_trials
            .get(p.s.family.as_str())
            .cloned()
            .unwrap_or_default();
        let result = spire_ml::tune::tune(&t.space, &params, &objective, &warm)
            .map_err(|e| model_err(name, e))?;
        family_trials
            .entry(p.s.family.as_str())
            .or_default()
            .extend(result.trials.iter().cloned());
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

/// Opens the registry run of one segment, with its params and lineage.
async fn start_run(
    ws: &Workspace,
    p: &Prepared<'_>,
    m: &FeatureMatrix,
    as_of: NaiveDate,
    inputs: Vec<TableInput>,
    family_size: usize,
) -> Result<String> {
    let (s, spec) = (p.s, p.spec);
    let defaults = &ws.project.defaults;
    let mut params = BTreeMap::new();
    params.insert("algorithm".to_string(), spec.algorithm.clone());
    if let Some(table) = spec.params.as_object() {
        for (k, v) in table {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            params.insert(k.clone(), text);
        }
    }
    params.insert("as_of".to_string(), as_of.to_string());
    params.insert("feature_set".to_string(), m.feature_set.clone());
    params.insert(
        "feature_set_version".to_string(),
        m.feature_set_version.to_string(),
    );
    params.insert(
        "test_fraction".to_string(),
        defaults.test_fraction.to_string(),
    );
    params.insert("seed".to_string(), defaults.seed.to_string());
    params.insert("label".to_string(), format!("{:?}", spec.label));
    if let Some(import) = &spec.import {
        params.insert("model_file".to_string(), import.path.display().to_string());
        params.insert("model_format".to_string(), import.format().to_string());
    }
    if is_fused(spec) {
        params.insert("trainer".to_string(), "fused".to_string());
        params.insert("fused_family_size".to_string(), family_size.to_string());
    } else {
        params.insert("trainer".to_string(), "single".to_string());
    }
    let mut tags = crate::recovery::process_tags(ws);
    tags.insert("family".to_string(), s.family.clone());
    Ok(ws
        .registry
        .create_run(NewRun {
            segment: s.spec.name.clone(),
            experiment: s.family.clone(),
            params,
            tags,
            inputs,
            config_hash: ws.project.config_hash.clone(),
            spire_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: None,
        })
        .await?)
}

/// Logs metrics, stores the artifact, registers the version and applies the gate.
async fn finish_registration(
    ws: &Workspace,
    p: &Prepared<'_>,
    m: &FeatureMatrix,
    as_of: NaiveDate,
    run_id: String,
    fitted: Fitted,
) -> Result<TrainOutcome> {
    let (s, spec) = (p.s, p.spec);
    let name = &s.spec.name;
    let e = &fitted.evaluation;
    let metrics: Vec<(String, f64)> = vec![
        ("auc".into(), e.auc),
        ("pr_auc".into(), e.pr_auc),
        ("log_loss".into(), e.log_loss),
        ("brier".into(), e.brier),
        ("n_train".into(), e.n_train as f64),
        ("n_test".into(), e.n_test as f64),
        ("positives_train".into(), e.positives_train as f64),
        ("positives_test".into(), e.positives_test as f64),
        ("iterations".into(), e.iterations as f64),
    ];
    if let Some(t) = &fitted.tuning {
        for trial in &t.trials {
            if let Some(v) = trial.value {
                ws.registry
                    .log_metrics(&run_id, &[("tune_cv_auc".into(), v)], trial.number as i64)
                    .await?;
            }
        }
        for (k, v) in &t.best().params {
            ws.registry
                .log_param(&run_id, &format!("tuned_{k}"), &v.to_string())
                .await?;
        }
        let pruned = t
            .trials
            .iter()
            .filter(|t| t.state == TrialState::Pruned)
            .count();
        ws.registry
            .log_param(&run_id, "tune_trials", &t.trials.len().to_string())
            .await?;
        ws.registry
            .set_tag(
                &run_id,
                "tuning",
                &format!(
                    "{} trials ({pruned} pruned), best #{} cv AUC {:.4}",
                    t.trials.len(),
                    t.best().number,
                    t.best().value.unwrap_or(f64::NAN)
                ),
            )
            .await?;
    }
    let mut metrics = metrics;
    if let Some(t) = &fitted.threshold {
        metrics.push(("threshold_score".into(), t.threshold));
        metrics.push(("threshold_precision".into(), t.precision));
        metrics.push(("threshold_recall".into(), t.recall));
    }
    ws.registry.log_metrics(&run_id, &metrics, 0).await?;
    let artifact = fitted
        .model
        .to_artifact()
        .map_err(|source| PipelineError::Model {
            segment: name.clone(),
            source,
        })?;
    let uri = save_artifact(&ws.project.storage.artifacts, name, &run_id, &artifact)?;
    if let Some(t) = &fitted.tuning {
        let path = std::path::Path::new(&ws.project.storage.artifacts)
            .join(name)
            .join(&run_id)
            .join("tuning.json");
        let bytes = serde_json::to_vec_pretty(t).map_err(|e| {
            PipelineError::InvalidInput(format!("cannot serialize the tuning trials: {e}"))
        })?;
        std::fs::write(&path, bytes).map_err(|e| PipelineError::io(&path, e))?;
    }
    let mut signature = serde_json::json!({
        "inputs": artifact.feature_names,
        "output": "probability",
        "feature_set": m.feature_set,
        "feature_set_version": m.feature_set_version,
    });
    // The min_precision cut is part of the model version: scoring applies this exact score.
    if let (Threshold::MinPrecision(min_precision), Some(t)) =
        (s.spec.output.threshold, &fitted.threshold)
    {
        signature["threshold"] = serde_json::json!({
            "rule": "min_precision",
            "min_precision": min_precision,
            "score": t.threshold,
            "precision": t.precision,
            "recall": t.recall,
            "selected": t.selected,
        });
    }
    let version = ws
        .registry
        .create_model_version(name, &run_id, &uri, signature)
        .await?;
    let auc_ok = e.auc.is_finite() && e.auc >= spec.min_auc;
    let threshold_missing = match s.spec.output.threshold {
        Threshold::MinPrecision(p) if fitted.threshold.is_none() => Some(p),
        _ => None,
    };
    let promoted = auc_ok && threshold_missing.is_none();
    let gate = match threshold_missing {
        _ if !auc_ok => format!("failed: test AUC {:.4} < min_auc {}", e.auc, spec.min_auc),
        Some(p) => format!(
            "failed: no score threshold reaches precision {p} on the held-out users \
             (test AUC {:.4})",
            e.auc
        ),
        None => format!("passed: test AUC {:.4} >= min_auc {}", e.auc, spec.min_auc),
    };
    if promoted {
        ws.registry
            .set_alias(
                name,
                "champion",
                version.version,
                "spire run",
                &format!("gate {gate}"),
            )
            .await?;
    }
    ws.registry.set_tag(&run_id, "gate", &gate).await?;
    ws.registry
        .finish_run(&run_id, RunStatus::Finished, None)
        .await?;
    Ok(TrainOutcome {
        segment: name.clone(),
        family: s.family.clone(),
        run_id,
        model_version: version.version,
        as_of,
        evaluation: fitted.evaluation,
        promoted,
        gate,
        test_users: fitted.test_users,
    })
}

/// Writes an artifact under `<artifacts>/<segment>/<run_id>/model.json`; returns its URI.
pub fn save_artifact(
    root: &str,
    segment: &str,
    run_id: &str,
    artifact: &Artifact,
) -> Result<String> {
    let dir = std::path::Path::new(root).join(segment).join(run_id);
    std::fs::create_dir_all(&dir).map_err(|e| PipelineError::io(&dir, e))?;
    let path = dir.join("model.json");
    let bytes = artifact.to_bytes().map_err(|source| PipelineError::Model {
        segment: segment.into(),
        source,
    })?;
    std::fs::write(&path, bytes).map_err(|e| PipelineError::io(&path, e))?;
    Ok(format!("file://{}", path.display()))
}

/// Reads an artifact from a URI written by [`save_artifact`].
pub fn read_artifact(uri: &str, segment: &str) -> Result<Artifact> {
    let path = uri.strip_prefix("file://").unwrap_or(uri);
    let bytes = std::fs::read(path).map_err(|e| PipelineError::io(path, e))?;
    Artifact::from_bytes(&bytes).map_err(|source| PipelineError::Model {
        segment: segment.into(),
        source,
    })
}

/// Loads the model of an artifact from a URI written by [`save_artifact`].
pub fn load_artifact(uri: &str, segment: &str) -> Result<Box<dyn Predictor>> {
    let artifact = read_artifact(uri, segment)?;
    spire_ml::load_predictor(&artifact).map_err(|source| PipelineError::Model {
        segment: segment.into(),
        source,
    })
}
