//! Train → evaluate → register → gate, for the model segments of one or more families.
//!
//! Segments sharing a feature set share one snapshot: the matrix is loaded once, labels of
//! every segment are computed in one pass per horizon, and all `logistic_regression` segments
//! train together as one fused family ([`spire_ml::fused`]); `gbdt` segments train one by one
//! (trees share no work across labels). Each segment trains on its eligible users, split by a
//! stable hash of `user_id` (stratified by label), with one registry run and model version per
//! segment.

mod fit;

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use serde::Serialize;
use spire_core::config::{Label, ModelSpec, SegmentKind, Threshold};
use spire_features::dataset::{self, FeatureMatrix};
use spire_features::labels::{self, FutureEventsLabel};
use spire_lake::tables::EVENTS;
use spire_ml::tune::{TrialState, TuneResult};
use spire_ml::{Artifact, Matrix, Predictor};
use spire_registry::artifacts::run_prefix;
use spire_registry::{ArtifactStore, ModelRegistry, NewRun, RunStatus, TableInput, TrackingStore};

use crate::error::{PipelineError, Result};
use crate::progress::Progress;
use crate::segments::ResolvedSegment;
use crate::workspace::Workspace;
use fit::{evaluation, fit_all, fit_one, is_fused};

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
    let experiment_id = ws.registry.get_run(&run_id).await?.experiment_id;
    let folder = format!("{}/artifacts", run_prefix(&experiment_id, &run_id));
    let uri = save_artifact(&ws.artifacts, &folder, name, &artifact).await?;
    if let Some(t) = &fitted.tuning {
        let bytes = serde_json::to_vec_pretty(t).map_err(|e| {
            PipelineError::InvalidInput(format!("cannot serialize the tuning trials: {e}"))
        })?;
        ws.artifacts
            .put(&format!("{folder}/tuning.json"), bytes)
            .await?;
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

/// Writes a model as `FOLDER/model.json` in the artifact store (`FOLDER` is the run's
/// `EXPERIMENT/RUN/artifacts`); returns its URL, which the model version records.
pub async fn save_artifact(
    store: &ArtifactStore,
    folder: &str,
    segment: &str,
    artifact: &Artifact,
) -> Result<String> {
    let bytes = artifact.to_bytes().map_err(|source| PipelineError::Model {
        segment: segment.into(),
        source,
    })?;
    let relative = format!("{folder}/model.json");
    store.put(&relative, bytes).await?;
    Ok(store.url_of(&relative)?)
}

/// Reads a model artifact from a URL written by [`save_artifact`] (a file inside `store`),
/// or from a local `file://` path written by an earlier Spire.
pub async fn read_artifact(store: &ArtifactStore, uri: &str, segment: &str) -> Result<Artifact> {
    let bytes = match store.relative_of(uri) {
        Some(relative) => store.get(relative).await?.to_vec(),
        None if uri.starts_with("file://") || !uri.contains("://") => {
            let path = uri.strip_prefix("file://").unwrap_or(uri);
            std::fs::read(path).map_err(|e| PipelineError::io(path, e))?
        }
        None => {
            return Err(PipelineError::InvalidInput(format!(
                "model of segment {segment:?} is at {uri}, outside the artifact store {} \
                 (storage.artifacts): point storage.artifacts at the store it was written to",
                store.root_url()
            )))
        }
    };
    Artifact::from_bytes(&bytes).map_err(|source| PipelineError::Model {
        segment: segment.into(),
        source,
    })
}

/// Loads the model of an artifact from a URL written by [`save_artifact`].
pub async fn load_artifact(
    store: &ArtifactStore,
    uri: &str,
    segment: &str,
) -> Result<Box<dyn Predictor>> {
    let artifact = read_artifact(store, uri, segment).await?;
    spire_ml::load_predictor(&artifact).map_err(|source| PipelineError::Model {
        segment: segment.into(),
        source,
    })
}
