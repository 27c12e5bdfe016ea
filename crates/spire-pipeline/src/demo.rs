//! `spire demo`: scaffold a project on the synthetic clickstream and run the whole lifecycle,
//! then check the models against the generator's oracle and a shuffled-label control.

use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;
use spire_core::config::{LoadOptions, SegmentKind, SourceKind};
use spire_features::dataset::{self, FeatureMatrix};
use spire_features::labels::{self, FutureEventsLabel};
use spire_ingest::sources::synthetic::{Clickstream, CATEGORIES};
use spire_lake::datafusion::prelude::SessionContext;

use crate::error::{PipelineError, Result};
use crate::progress::Progress;
use crate::run::{self, RunSummary};
use crate::stages::ingest::{self, IngestSummary, IngestTarget};
use crate::stages::train::fit_and_evaluate;
use crate::workspace::Workspace;

/// Demo size.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// Synthetic users.
    pub users: u64,
    /// Days of traffic.
    pub days: u32,
    /// Seed.
    pub seed: u64,
}

/// One row of the demo's table.
#[derive(Debug, Clone, Serialize)]
pub struct DemoRow {
    /// Segment.
    pub segment: String,
    /// Test ROC AUC.
    pub auc: f64,
    /// Test average precision.
    pub pr_auc: f64,
    /// Positives among test users.
    pub positives_test: usize,
    /// Test users.
    pub n_test: usize,
    /// Members in the segments table.
    pub audience: usize,
    /// AUC of the generator's true propensity on the same test users.
    pub oracle_auc: f64,
    /// AUC on true test labels of a model fitted on shuffled labels.
    pub control_auc: f64,
}

/// The demo's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// Project folder.
    pub dir: String,
    /// Ingest counts.
    pub ingest: IngestSummary,
    /// Lifecycle outcome.
    pub run: RunSummary,
    /// One row per model segment.
    pub rows: Vec<DemoRow>,
    /// Mean test AUC.
    pub mean_auc: f64,
    /// Mean oracle AUC.
    pub mean_oracle_auc: f64,
    /// Mean shuffled-label control AUC.
    pub mean_control_auc: f64,
}

/// Writes a demo project into `dir` (which must not hold a `spire.toml` yet).
pub fn scaffold(dir: &Path, options: &DemoOptions) -> Result<()> {
    if dir.join("spire.toml").exists() {
        return Ok(());
    }
    let start = chrono::Utc::now().date_naive() - chrono::Duration::days(i64::from(options.days));
    let config = include_str!("../../../examples/quickstart/spire.toml")
        .replace("users = 20000", &format!("users = {}", options.users))
        .replace("days = 30", &format!("days = {}", options.days))
        .replace("seed = 42", &format!("seed = {}", options.seed))
        .replace(
            "start_date = \"2026-10-01\"",
            &format!("start_date = \"{start}\""),
        );
    write(&dir.join("spire.toml"), &config)?;
    write(
        &dir.join("segments/interests.toml"),
        include_str!("../../../examples/quickstart/segments/interests.toml"),
    )?;
    write(
        &dir.join("segments/rules.toml"),
        include_str!("../../../examples/quickstart/segments/rules.toml"),
    )?;
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| PipelineError::io(d, e))?;
    }
    std::fs::write(path, text).map_err(|e| PipelineError::io(path, e))
}

/// Scaffolds (if needed) and runs the demo in `dir`.
pub async fn demo(
    dir: &Path,
    options: &DemoOptions,
    progress: &dyn Progress,
) -> Result<DemoReport> {
    scaffold(dir, options)?;
    let ws = Workspace::open(dir, &LoadOptions::default()).await?;
    let ingest = ingest::ingest(&ws, &IngestTarget::All, progress).await?;
    let run = run::run(&ws, &[], progress).await?;
    let synthetic = ws.project.sources.iter().find_map(|s| match &s.kind {
        SourceKind::Synthetic(settings) => Some(Clickstream::new(settings.clone())),
        SourceKind::File { .. } | SourceKind::Kafka(_) | SourceKind::Kinesis(_) => None,
    });
    let rows = check(&ws, &run, synthetic.as_ref(), progress).await?;
    let mean = |f: &dyn Fn(&DemoRow) -> f64| {
        let v: Vec<f64> = rows.iter().map(f).filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    Ok(DemoReport {
        dir: dir.display().to_string(),
        mean_auc: mean(&|r| r.auc),
        mean_oracle_auc: mean(&|r| r.oracle_auc),
        mean_control_auc: mean(&|r| r.control_auc),
        ingest,
        run,
        rows,
    })
}

/// Oracle and control per trained segment.
async fn check(
    ws: &Workspace,
    run: &RunSummary,
    synthetic: Option<&Clickstream>,
    progress: &dyn Progress,
) -> Result<Vec<DemoRow>> {
    let all = crate::segments::resolve(ws).await?;
    progress.start("oracle and control", run.trained.len() as u64);
    let mut rows = Vec::new();
    let mut snapshots: std::collections::HashMap<
        (String, chrono::NaiveDate),
        (SessionContext, FeatureMatrix),
    > = std::collections::HashMap::new();
    for (i, t) in run.trained.iter().enumerate() {
        let audience = run
            .scored
            .iter()
            .find(|s| s.segment == t.segment)
            .map_or(0, |s| s.members);
        let spec = all.iter().find(|s| s.spec.name == t.segment);
        let oracle_auc = match (synthetic, spec.and_then(|s| s.value.as_deref())) {
            (Some(gen), Some(value)) => match CATEGORIES.iter().position(|c| *c == value) {
                Some(c) => {
                    let day = (t.as_of - gen.settings().start_date).num_days().max(0) as u32;
                    let (scores, y): (Vec<f64>, Vec<bool>) = t
                        .test_users
                        .iter()
                        .filter_map(|(u, y)| {
                            let idx: u64 = u.trim_start_matches('u').parse().ok()?;
                            Some((gen.expected_events(idx, c, day, 7), *y))
                        })
                        .unzip();
                    spire_ml::roc_auc(&y, &scores).unwrap_or(f64::NAN)
                }
                None => f64::NAN,
            },
            _ => f64::NAN,
        };
        let control_auc = match spec {
            Some(s) => {
                // Segments of one family share a snapshot: load each matrix once.
                let key = (s.spec.feature_set.clone(), t.as_of);
                if !snapshots.contains_key(&key) {
                    let (ctx, v) = dataset::features_session(&ws.lake, &key.0).await?;
                    ws.lake
                        .register_as(&ctx, spire_lake::tables::EVENTS, "events")
                        .await?;
                    let m = dataset::load(&ctx, &key.0, v, t.as_of).await?;
                    snapshots.insert(key.clone(), (ctx, m));
                }
                match snapshots.get(&key) {
                    Some((ctx, m)) => control(ws, s, ctx, m, t.as_of, i as u64).await?,
                    None => f64::NAN,
                }
            }
            None => f64::NAN,
        };
        rows.push(DemoRow {
            segment: t.segment.clone(),
            auc: t.evaluation.auc,
            pr_auc: t.evaluation.pr_auc,
            positives_test: t.evaluation.positives_test,
            n_test: t.evaluation.n_test,
            audience,
            oracle_auc,
            control_auc,
        });
        progress.update("oracle and control", rows.len() as u64);
    }
    progress.finish("oracle and control", "done");
    Ok(rows)
}

/// Fits the segment's model on shuffled training labels; returns its AUC on true test labels.
async fn control(
    ws: &Workspace,
    s: &crate::segments::ResolvedSegment,
    ctx: &SessionContext,
    m: &FeatureMatrix,
    as_of: chrono::NaiveDate,
    salt: u64,
) -> Result<f64> {
    let SegmentKind::Model(spec) = &s.spec.kind else {
        return Ok(f64::NAN);
    };
    let spire_core::config::Label::FutureEvents {
        predicate,
        min_count,
        horizon_days,
    } = &spec.label
    else {
        return Ok(f64::NAN);
    };
    let label = FutureEventsLabel {
        segment: s.spec.name.clone(),
        predicate: predicate.clone(),
        min_count: *min_count,
        horizon_days: *horizon_days,
    };
    let pos = labels::future_events(ctx, as_of, &[label])
        .await?
        .remove(&s.spec.name)
        .unwrap_or_default();
    let rows: Vec<usize> = (0..m.user_ids.len()).collect();
    let y: Vec<bool> = m.user_ids.iter().map(|u| pos.contains(u)).collect();
    let mut shuffled = y.clone();
    shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(
        ws.project.defaults.seed ^ (salt + 1),
    ));
    let fitted = fit_and_evaluate(
        &s.spec.name,
        m,
        &rows,
        &shuffled,
        spec,
        ws.project.defaults.test_fraction,
        ws.project.defaults.seed,
    )?;
    // Score the held-out users with the shuffled-label model, against their true labels.
    let index: std::collections::HashMap<&str, usize> = m
        .user_ids
        .iter()
        .enumerate()
        .map(|(i, u)| (u.as_str(), i))
        .collect();
    let ncol = m.columns.len();
    let mut data = Vec::new();
    let mut truth = Vec::new();
    for (u, _) in &fitted.test_users {
        if let Some(r) = index.get(u.as_str()) {
            data.extend_from_slice(&m.values[r * ncol..(r + 1) * ncol]);
            truth.push(y[*r]);
        }
    }
    let model_err = |source| PipelineError::Model {
        segment: s.spec.name.clone(),
        source,
    };
    let x = spire_ml::Matrix::new(truth.len(), ncol, data).map_err(model_err)?;
    let p = fitted.model.predict_proba(&x).map_err(model_err)?;
    Ok(spire_ml::roc_auc(&truth, &p).unwrap_or(f64::NAN))
}
