//! `spire run`: dataset → train → evaluate → register → score → threshold → segments.

use std::collections::BTreeSet;

use serde::Serialize;
use spire_core::config::SegmentKind;

use crate::error::Result;
use crate::progress::Progress;
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
}

/// Runs the lifecycle for the segments named (all when empty).
pub async fn run(ws: &Workspace, names: &[String], progress: &dyn Progress) -> Result<RunSummary> {
    let all = segments::resolve(ws).await?;
    let selected: Vec<ResolvedSegment> = segments::select(&all, names)?;
    let score_date = features::default_as_of(ws).await?;
    let has_models = selected
        .iter()
        .any(|s| matches!(s.spec.kind, SegmentKind::Model(_)));
    let train_date = if has_models {
        Some(train::default_train_as_of(ws, &selected).await?)
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
        Some(d) => train::train(ws, &selected, d, progress).await?,
        None => Vec::new(),
    };
    let (scored, segments_version) =
        score::score(ws, &selected, Some(score_date), progress).await?;
    Ok(RunSummary {
        trained,
        scored,
        segments_version,
    })
}
