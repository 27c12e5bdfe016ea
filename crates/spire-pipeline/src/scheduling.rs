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

/// Runs scheduled tasks with the pipeline's stages (what `spire worker` plugs into the
/// scheduler). Every task is idempotent: snapshots and memberships are keyed by date and
/// replaced on a re-run, and a re-trained model is a new version that the gate judges again.
///
/// A task's as-of date is the local date of its run, but never later than the data: a run
/// on a day whose events have not arrived reads the latest complete day.
#[derive(Debug, Clone)]
pub struct PipelineRunner {
    ws: Workspace,
}

impl PipelineRunner {
    /// A runner over `ws`.
    pub fn new(ws: Workspace) -> PipelineRunner {
        PipelineRunner { ws }
    }

    async fn run_task(&self, task: &spire_registry::tasks::Task) -> Result<serde_json::Value> {
        let names: Vec<String> =
            serde_json::from_value(task.payload["segments"].clone()).map_err(|e| {
                PipelineError::InvalidInput(format!(
                    "task {} has no segment list in its payload: {e}",
                    task.task_id
                ))
            })?;
        let wanted: chrono::NaiveDate = serde_json::from_value(task.payload["as_of"].clone())
            .map_err(|e| {
                PipelineError::InvalidInput(format!("task {} has no as_of: {e}", task.task_id))
            })?;
        self.run_planned(
            &task.key.kind,
            &task.key.key,
            &names,
            wanted,
            &task.task_id.to_string(),
            task.key.logical_time,
        )
        .await
    }

    /// Runs one batched task — `kind` (snapshot, train, score, publish) over `key` for the
    /// segments `names` as of `wanted` — tagging its Delta commits and runs with `task_ref`
    /// (a queue task id, or an Airflow `dag/task` name). What `spire worker` and
    /// `spire task run` both call.
    pub async fn run_planned(
        &self,
        kind: &str,
        key: &str,
        names: &[String],
        wanted: chrono::NaiveDate,
        task_ref: &str,
        logical_time: DateTime<Utc>,
    ) -> Result<serde_json::Value> {
        use crate::progress::Quiet;
        use crate::stages::{features, score, train};
        use spire_core::config::SegmentKind;

        // Every Delta commit and training run of this task carries its id.
        let tagged = Workspace {
            lake: self.ws.lake.tagged([
                (crate::recovery::TASK_ID_TAG, task_ref.to_string()),
                ("spire.logical_time", logical_time.to_rfc3339()),
            ]),
            ..self.ws.clone()
        };
        let ws = &tagged;
        let resolved = segments::resolve(ws).await?;
        let selected = segments::select(&resolved, names)?;
        let as_of = wanted.min(features::default_as_of(ws).await?);
        let has_models = selected
            .iter()
            .any(|s| matches!(s.spec.kind, SegmentKind::Model(_)));
        match kind {
            "snapshot" => {
                let mut dates = vec![as_of];
                if has_models {
                    let train_as_of = train::default_train_as_of(ws, &selected).await?;
                    dates.push(train_as_of.min(as_of));
                }
                dates.sort();
                dates.dedup();
                let built = features::build(ws, &[key.to_string()], &dates, &Quiet).await?;
                Ok(serde_json::json!({
                    "feature_set": key,
                    "dates": dates,
                    "snapshots": built.iter().map(|b| b.snapshots.len()).sum::<usize>(),
                }))
            }
            "train" => {
                let train_as_of = train::default_train_as_of(ws, &selected).await?.min(as_of);
                let outcomes = train::train(ws, &selected, train_as_of, &Quiet).await?;
                Ok(serde_json::json!({
                    "as_of": train_as_of,
                    "models": outcomes.iter().map(|o| serde_json::json!({
                        "segment": o.segment, "version": o.model_version,
                        "auc": o.evaluation.auc, "promoted": o.promoted, "run_id": o.run_id,
                    })).collect::<Vec<_>>(),
                }))
            }
            "score" | "publish" => {
                let (scored, version) = score::score(ws, &selected, Some(as_of), &Quiet).await?;
                Ok(serde_json::json!({
                    "as_of": as_of,
                    "segments_version": version,
                    "segments": scored.iter().map(|s| serde_json::json!({
                        "segment": s.segment, "members": s.members,
                    })).collect::<Vec<_>>(),
                }))
            }
            other => Err(PipelineError::InvalidInput(format!(
                "task {task_ref} has unknown kind {other:?} (snapshot, train, score, publish)"
            ))),
        }
    }
}

impl spire_scheduler::TaskRunner for PipelineRunner {
    async fn run(
        &self,
        task: &spire_registry::tasks::Task,
    ) -> std::result::Result<serde_json::Value, spire_scheduler::TaskFailure> {
        self.run_task(task).await.map_err(|e| {
            let message = format!("{e}");
            if e.kind() == spire_core::ErrorKind::InvalidInput {
                spire_scheduler::TaskFailure::permanent(message)
            } else {
                spire_scheduler::TaskFailure::retryable(message)
            }
        })
    }
}
