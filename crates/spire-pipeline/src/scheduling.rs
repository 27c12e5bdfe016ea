//! The pipeline's side of scheduling: the project's segments as the scheduler sees them,
//! and the batched DAG a segment runs in (`spire dag`).

use chrono::{DateTime, Utc};
use spire_scheduler::dag::{plan, Due, Plan};
use spire_scheduler::ScheduledModel;

use crate::error::{PipelineError, Result};
use crate::segments::{self, ResolvedSegment};
use crate::workspace::Workspace;

/// The scheduler's view of resolved segments (families expanded).
pub fn scheduled_models(resolved: &[ResolvedSegment]) -> Vec<ScheduledModel> {
    resolved
        .iter()
        .map(|r| ScheduledModel::from_spec(&r.spec, &r.family))
        .collect()
}

/// A segment and the plan of its next run: every segment firing at the same instant is
/// batched with it (an on-demand segment is planned as if run alone, now).
#[derive(Debug, Clone)]
pub struct SegmentDag {
    /// The segment.
    pub model: ScheduledModel,
    /// When the planned run fires.
    pub logical_time: DateTime<Utc>,
    /// The batched tasks.
    pub plan: Plan,
}

/// The DAG of `segment`'s next run after `now` (`spire dag SEGMENT`).
pub async fn segment_dag(ws: &Workspace, segment: &str, now: DateTime<Utc>) -> Result<SegmentDag> {
    let resolved = segments::resolve(ws).await?;
    let models = scheduled_models(&resolved);
    let Some(model) = models.iter().find(|m| m.name == segment) else {
        let mut names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
        names.truncate(10);
        return Err(PipelineError::NotFound(format!(
            "segment `{segment}` (some known segments: {})",
            names.join(", ")
        )));
    };
    let next = |m: &ScheduledModel| m.schedule.schedule.as_ref().and_then(|s| s.next_after(now));
    let (logical_time, due): (DateTime<Utc>, Vec<Due>) = match next(model) {
        Some(t) => (
            t,
            models
                .iter()
                .filter(|m| next(m) == Some(t))
                .map(|m| Due {
                    model: m,
                    logical_time: t,
                })
                .collect(),
        ),
        None => (
            now,
            vec![Due {
                model,
                logical_time: now,
            }],
        ),
    };
    Ok(SegmentDag {
        model: model.clone(),
        logical_time,
        plan: plan(&due),
    })
}
