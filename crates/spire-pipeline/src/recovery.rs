//! Runs left half-done: found on the next start and settled from what the lake and the
//! registry hold.
//!
//! Every `spire run` is tracked as a *pipeline run* (experiment [`PIPELINE_EXPERIMENT`]); the
//! Delta commits it makes carry its id in their `commitInfo` ([`RUN_ID_TAG`]), and the
//! training runs it starts name it as their parent ([`PARENT_TAG`], MLflow's convention).
//! Each run also records the process that runs it ([`PROCESS_TAG`]: host, pid and the
//! process's start time, so a reused pid is not mistaken for the same process).
//!
//! A process killed mid-way leaves runs in `running` that nobody will finish. [`recover`]
//! finds those whose process is gone (on this host; runs of other hosts are left to their
//! own host) and settles each from the evidence:
//! - a pipeline run whose `segments` commit is in the lake *completed* its last write: it is
//!   marked finished, with the version it wrote;
//! - a training run that registered a model version completed its registration: finished;
//! - anything else is marked failed, with the reason.

use std::collections::BTreeMap;

use serde::Serialize;
use spire_lake::tables::SEGMENTS;
use spire_registry::{ModelRegistry, RunSearch, RunStatus, TrackingStore, ViewType};

use crate::error::Result;
use crate::workspace::Workspace;

/// The experiment holding one run per `spire run`.
pub const PIPELINE_EXPERIMENT: &str = "spire-pipeline";
/// Delta `commitInfo` key naming the run that made a commit.
pub const RUN_ID_TAG: &str = "spire.run_id";
/// Run tag naming the process that runs it: `host:pid:start_ticks`.
pub const PROCESS_TAG: &str = "spire.process";
/// Run tag naming the pipeline run a training run belongs to (MLflow's parent-run tag).
pub const PARENT_TAG: &str = "mlflow.parentRunId";
/// The tag naming the scheduled task a Delta commit or a training run belongs to (set by
/// [`crate::scheduling::PipelineRunner`]): `spire runs list --filter
/// "tags.\`spire.task_id\` = '42'"` finds a task's runs.
pub const TASK_ID_TAG: &str = "spire.task_id";
/// Run tag telling what kind of run it is (`pipeline` for a `spire run`).
pub const KIND_TAG: &str = "spire.kind";
/// Run tag set when [`recover`] settled the run.
pub const RECOVERED_TAG: &str = "spire.recovered";

/// One run [`recover`] settled.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Recovered {
    /// The run.
    pub run_id: String,
    /// Its segment (`*` for a pipeline run).
    pub segment: String,
    /// The status it was given.
    pub status: RunStatus,
    /// Why.
    pub reason: String,
}

/// Tags every run started by this process carries: the process, and the pipeline run or
/// scheduled task it belongs to when the workspace's lake is tagged with one.
pub fn process_tags(ws: &Workspace) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    if let Some(p) = this_process() {
        tags.insert(PROCESS_TAG.to_string(), p);
    }
    if let Some(parent) = ws.lake.commit_tags().get(RUN_ID_TAG) {
        tags.insert(PARENT_TAG.to_string(), parent.clone());
    }
    if let Some(task) = ws.lake.commit_tags().get(TASK_ID_TAG) {
        tags.insert(TASK_ID_TAG.to_string(), task.clone());
    }
    tags
}

/// Settles the runs left `running` by processes of this host that are gone (see the module
/// docs); returns what it did, oldest run first.
pub async fn recover(ws: &Workspace) -> Result<Vec<Recovered>> {
    let mut stale = Vec::new();
    let mut search = RunSearch {
        filter: "attributes.status = 'RUNNING'".into(),
        order_by: vec!["attributes.start_time ASC".into()],
        view: ViewType::All,
        max_results: 1000,
        ..RunSearch::default()
    };
    loop {
        let page = ws.registry.search_runs(&search).await?;
        for run in page.runs {
            let gone = run
                .tags
                .get(PROCESS_TAG)
                .and_then(|p| is_alive(p))
                .is_some_and(|alive| !alive);
            if gone {
                stale.push(run);
            }
        }
        match page.next_page_token {
            Some(t) => search.page_token = Some(t),
            None => break,
        }
    }
    let mut out = Vec::new();
    for run in stale {
        let process = run.tags.get(PROCESS_TAG).cloned().unwrap_or_default();
        let (status, reason) = if run.tags.get(KIND_TAG).map(String::as_str) == Some("pipeline") {
            match ws
                .lake
                .find_tagged_commit(SEGMENTS, RUN_ID_TAG, &run.run_id)
                .await?
            {
                Some(v) => {
                    ws.registry
                        .set_tag(&run.run_id, "segments_version", &v.to_string())
                        .await?;
                    (
                        RunStatus::Finished,
                        format!(
                            "process {process} died after its `{SEGMENTS}` commit (version {v})"
                        ),
                    )
                }
                None => (
                    RunStatus::Failed,
                    format!("process {process} died before its `{SEGMENTS}` commit"),
                ),
            }
        } else {
            let versions = match ws.registry.list_model_versions(&run.segment).await {
                Ok(v) => v,
                Err(e) if e.kind() == spire_core::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            match versions.iter().find(|v| v.run_id == run.run_id) {
                Some(v) => (
                    RunStatus::Finished,
                    format!(
                        "process {process} died after registering model version {}",
                        v.version
                    ),
                ),
                None => (
                    RunStatus::Failed,
                    format!("process {process} died before the run registered a model"),
                ),
            }
        };
        ws.registry
            .set_tag(&run.run_id, RECOVERED_TAG, &reason)
            .await?;
        let error = (status == RunStatus::Failed).then_some(reason.as_str());
        ws.registry.finish_run(&run.run_id, status, error).await?;
        tracing::warn!(run_id = %run.run_id, segment = %run.segment, ?status, "{reason}");
        out.push(Recovered {
            run_id: run.run_id,
            segment: run.segment,
            status,
            reason,
        });
    }
    Ok(out)
}

/// This process as `host:pid:start_ticks` (what [`PROCESS_TAG`] records), if `/proc` says.
pub fn this_process() -> Option<String> {
    let pid = std::process::id();
    Some(format!("{}:{pid}:{}", host()?, start_ticks(pid)?))
}

/// Whether the process named by a [`PROCESS_TAG`] value still runs: `None` when it belongs
/// to another host (or the value is not understood), so only this host's runs are settled.
fn is_alive(process: &str) -> Option<bool> {
    let mut parts = process.rsplitn(3, ':');
    let ticks = parts.next()?;
    let pid: u32 = parts.next()?.parse().ok()?;
    let h = parts.next()?;
    if h != host()? {
        return None;
    }
    Some(start_ticks(pid).is_some_and(|t| t.to_string() == ticks))
}

fn host() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// Field 22 of `/proc/PID/stat`: the process's start time in clock ticks since boot.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_one_is_not() {
        let me = this_process().unwrap();
        assert_eq!(is_alive(&me), Some(true));
        // Same pid, another start time: a reused pid is not the same process.
        let (head, _) = me.rsplit_once(':').unwrap();
        assert_eq!(is_alive(&format!("{head}:1")), Some(false));
        // A child that has exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let ticks = start_ticks(pid);
        child.wait().unwrap();
        if let Some(t) = ticks {
            assert_eq!(
                is_alive(&format!("{}:{pid}:{t}", host().unwrap())),
                Some(false)
            );
        }
        // Another host's process is not judged here.
        assert_eq!(is_alive("some-other-host.invalid:1:1"), None);
        assert_eq!(is_alive("garbage"), None);
    }
}
