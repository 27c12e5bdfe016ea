//! `spire run`: dataset → train → evaluate → register → score → threshold → segments.

use std::collections::BTreeSet;

use serde::Serialize;
use spire_core::config::SegmentKind;

use std::collections::BTreeMap;

use spire_registry::{NewRun, RunStatus, TrackingStore};

use crate::error::Result;
use crate::progress::Progress;
use crate::recovery::{self, Recovered, KIND_TAG, PIPELINE_EXPERIMENT, RUN_ID_TAG};
use crate::segments::{self, ResolvedSegment};
use crate::stages::features;
use crate::stages::score::{self, ScoreOutcome};
use crate::stages::train::{self, TrainOutcome};
use crate::workspace::Workspace;

/// What `spire run` did.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Models trained.
    pub trained: Vec<TrainOutcome>,
    /// Segments scored.
    pub scored: Vec<ScoreOutcome>,
    /// `segments` version written.
    pub segments_version: Option<i64>,
    /// The pipeline run that tracked this invocation (its id tags every Delta commit made).
    pub run_id: String,
    /// Runs an earlier, interrupted invocation left half-done, settled before this one.
    pub recovered: Vec<Recovered>,
}

/// Runs the lifecycle for the segments named (all when empty).
///
/// The invocation is tracked as a pipeline run (experiment
/// [`recovery::PIPELINE_EXPERIMENT`]): every Delta commit it makes carries its id, every
/// training run names it as parent, and it ends `finished` or `failed` with the error. Runs
/// an earlier invocation left half-done are settled first ([`recovery::recover`]).
pub async fn run(ws: &Workspace, names: &[String], progress: &dyn Progress) -> Result<RunSummary> {
    let recovered = recovery::recover(ws).await?;
    let all = segments::resolve(ws).await?;
    let selected: Vec<ResolvedSegment> = segments::select(&all, names)?;
    let mut params = BTreeMap::new();
    params.insert(
        "segments".to_string(),
        selected
            .iter()
            .map(|s| s.spec.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
    );
    let mut tags = recovery::process_tags(ws);
    tags.insert(KIND_TAG.to_string(), "pipeline".to_string());
    let run_id = ws
        .registry
        .create_run(NewRun {
            segment: "*".into(),
            experiment: PIPELINE_EXPERIMENT.into(),
            params,
            tags,
            inputs: Vec::new(),
            config_hash: ws.project.config_hash.clone(),
            spire_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: None,
        })
        .await?;
    let tracked = Workspace {
        lake: ws.lake.tagged([(RUN_ID_TAG, run_id.as_str())]),
        ..ws.clone()
    };
    match stages(&tracked, &selected, progress).await {
        Ok((trained, scored, segments_version)) => {
            if let Some(v) = segments_version {
                ws.registry
                    .set_tag(&run_id, "segments_version", &v.to_string())
                    .await?;
            }
            ws.registry
                .finish_run(&run_id, RunStatus::Finished, None)
                .await?;
            Ok(RunSummary {
                trained,
                scored,
                segments_version,
                run_id,
                recovered,
            })
        }
        Err(e) => {
            ws.registry
                .finish_run(&run_id, RunStatus::Failed, Some(&e.to_string()))
                .await?;
            Err(e)
        }
    }
}

/// Features → train → score for `selected`.
async fn stages(
    ws: &Workspace,
    selected: &[ResolvedSegment],
    progress: &dyn Progress,
) -> Result<(Vec<TrainOutcome>, Vec<ScoreOutcome>, Option<i64>)> {
    let score_date = features::default_as_of(ws).await?;
    let has_models = selected
        .iter()
        .any(|s| matches!(s.spec.kind, SegmentKind::Model(_)));
    let train_date = if has_models {
        Some(train::default_train_as_of(ws, selected).await?)
    } else {
        None
    };
    let sets: Vec<String> = selected
        .iter()
        .filter(|s| !matches!(s.spec.kind, SegmentKind::RuleCombine { .. }))
        .map(|s| s.spec.feature_set.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let dates: Vec<_> = train_date
        .into_iter()
        .chain([score_date])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    features::build(ws, &sets, &dates, progress).await?;
    let trained = match train_date {
        Some(d) => train::train(ws, selected, d, progress).await?,
        None => Vec::new(),
    };
    let (scored, segments_version) = score::score(ws, selected, Some(score_date), progress).await?;
    Ok((trained, scored, segments_version))
}
