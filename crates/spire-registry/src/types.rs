//! The entities the registry stores: runs and what they logged, model versions, aliases.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::RegistryError;

/// The lifecycle state of a run: `running` until [`TrackingStore::finish_run`] ends it.
///
/// [`TrackingStore::finish_run`]: crate::TrackingStore::finish_run
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Created and not yet finished.
    Running,
    /// Ended successfully.
    Finished,
    /// Ended with an error.
    Failed,
}

impl RunStatus {
    /// The stored and displayed name: `running`, `finished` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "running" => Ok(RunStatus::Running),
            "finished" => Ok(RunStatus::Finished),
            "failed" => Ok(RunStatus::Failed),
            other => Err(RegistryError::InvalidInput(format!(
                "unknown run status {other:?}; expected one of running, finished, failed"
            ))),
        }
    }
}

/// One Delta table version a run read, recorded so the run can be reproduced.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableInput {
    /// The table name (e.g. `events`, `features_daily`).
    pub table: String,
    /// The Delta table version read (≥ 0).
    pub version: i64,
}

/// What a caller knows when it starts a run; see [`TrackingStore::create_run`].
///
/// [`TrackingStore::create_run`]: crate::TrackingStore::create_run
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewRun {
    /// The segment the run trains, tunes or scores.
    pub segment: String,
    /// The experiment (a named group of runs) it belongs to; created on first use.
    pub experiment: String,
    /// Parameters known at start; more can be added with `log_param`.
    pub params: BTreeMap<String, String>,
    /// Tags known at start; more can be set with `set_tag`.
    pub tags: BTreeMap<String, String>,
    /// The Delta table versions the run reads, in order.
    pub inputs: Vec<TableInput>,
    /// Hash of the resolved configuration the run used.
    pub config_hash: String,
    /// The Spire version that ran it.
    pub spire_version: String,
    /// The git commit of the project the run was configured from, if known.
    pub git_commit: Option<String>,
}

/// Whether an experiment is in use or soft-deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    /// In use: new runs may be created in it.
    Active,
    /// Soft-deleted: kept with its runs, hidden from default listings, closed to new runs
    /// until restored.
    Deleted,
}

impl Lifecycle {
    /// The stored and displayed name: `active` or `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Active => "active",
            Lifecycle::Deleted => "deleted",
        }
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Lifecycle {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Lifecycle::Active),
            "deleted" => Ok(Lifecycle::Deleted),
            other => Err(RegistryError::InvalidInput(format!(
                "unknown lifecycle {other:?}; expected active or deleted"
            ))),
        }
    }
}

/// Which experiments a listing returns, by [`Lifecycle`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewType {
    /// Only active experiments (the default).
    #[default]
    ActiveOnly,
    /// Only deleted experiments.
    DeletedOnly,
    /// Both.
    All,
}

impl ViewType {
    /// Whether an experiment in state `lifecycle` is part of this view.
    pub fn includes(self, lifecycle: Lifecycle) -> bool {
        match self {
            ViewType::ActiveOnly => lifecycle == Lifecycle::Active,
            ViewType::DeletedOnly => lifecycle == Lifecycle::Deleted,
            ViewType::All => true,
        }
    }
}

/// A named group of runs; by default one per segment family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Experiment {
    /// UUID v4 as 32 lowercase hex digits.
    pub experiment_id: String,
    /// Its unique name (runs refer to it by name).
    pub name: String,
    /// Active or soft-deleted.
    pub lifecycle: Lifecycle,
    /// Tags (last write wins).
    pub tags: BTreeMap<String, String>,
    /// When it was created (millisecond precision).
    pub created_at: DateTime<Utc>,
    /// When it was last deleted, restored or tagged.
    pub updated_at: DateTime<Utc>,
}

/// Metrics, params and tags logged together by [`TrackingStore::log_batch`]: all stored or
/// none.
///
/// [`TrackingStore::log_batch`]: crate::TrackingStore::log_batch
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogBatch {
    /// Metric points, each with its own step and timestamp.
    pub metrics: Vec<Metric>,
    /// Params (immutable, as with [`TrackingStore::log_param`]).
    ///
    /// [`TrackingStore::log_param`]: crate::TrackingStore::log_param
    pub params: BTreeMap<String, String>,
    /// Tags (last write wins).
    pub tags: BTreeMap<String, String>,
}

impl LogBatch {
    /// How many entries (metric points, params and tags) the batch holds.
    pub fn len(&self) -> usize {
        self.metrics.len() + self.params.len() + self.tags.len()
    }

    /// Whether the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One logged metric value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Metric name, e.g. `auc`.
    pub key: String,
    /// The value; NaN and ±infinity round-trip.
    pub value: f64,
    /// The training step or iteration it was measured at.
    pub step: i64,
    /// When it was measured (stored with millisecond precision).
    pub timestamp: DateTime<Utc>,
}

impl Metric {
    /// A metric point measured now, at `step`.
    pub fn now(key: impl Into<String>, value: f64, step: i64) -> Metric {
        Metric {
            key: key.into(),
            value,
            step,
            timestamp: Utc::now(),
        }
    }
}

/// A run with everything it logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// UUID v4 as 32 lowercase hex digits.
    pub run_id: String,
    /// The experiment it belongs to (its name).
    pub experiment: String,
    /// The id of that experiment.
    pub experiment_id: String,
    /// The segment it is about.
    pub segment: String,
    /// Its lifecycle state.
    pub status: RunStatus,
    /// Logged parameters.
    pub params: BTreeMap<String, String>,
    /// Tags (last write wins).
    pub tags: BTreeMap<String, String>,
    /// The latest value of each metric: highest step, then latest timestamp, then last logged.
    pub metrics: BTreeMap<String, f64>,
    /// The latest point of each metric (the same order as `metrics`), with its step and
    /// timestamp.
    pub latest_metrics: BTreeMap<String, Metric>,
    /// The Delta table versions it read, in the order given at creation.
    pub inputs: Vec<TableInput>,
    /// Hash of the resolved configuration.
    pub config_hash: String,
    /// The Spire version that ran it.
    pub spire_version: String,
    /// The git commit of the project, if it was known at creation.
    pub git_commit: Option<String>,
    /// When it was created (millisecond precision).
    pub started_at: DateTime<Utc>,
    /// When it was finished, if it was.
    pub ended_at: Option<DateTime<Utc>>,
    /// The error message of a failed run.
    pub error: Option<String>,
    /// Active, or soft-deleted by [`TrackingStore::delete_run`](crate::TrackingStore::delete_run).
    pub lifecycle: Lifecycle,
    /// The logged models the run output, in the order they were logged.
    pub outputs: Vec<RunOutput>,
}

/// A logged model a run output, at a step; see [`TrackingStore::log_run_outputs`].
///
/// [`TrackingStore::log_run_outputs`]: crate::TrackingStore::log_run_outputs
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunOutput {
    /// The logged model's id.
    pub model_id: String,
    /// The step the run was at when it output the model.
    pub step: i64,
}

/// Whether a logged model's files are complete (MLflow's `LoggedModelStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoggedModelStatus {
    /// Created; its files are being uploaded.
    Pending,
    /// Its files are complete.
    Ready,
    /// Uploading its files failed.
    Failed,
}

impl LoggedModelStatus {
    /// The stored and displayed name: `pending`, `ready` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            LoggedModelStatus::Pending => "pending",
            LoggedModelStatus::Ready => "ready",
            LoggedModelStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for LoggedModelStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LoggedModelStatus {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(LoggedModelStatus::Pending),
            "ready" => Ok(LoggedModelStatus::Ready),
            "failed" => Ok(LoggedModelStatus::Failed),
            other => Err(RegistryError::InvalidInput(format!(
                "unknown logged model status {other:?}; expected pending, ready or failed"
            ))),
        }
    }
}

/// What a caller knows when it logs a model; see [`TrackingStore::create_logged_model`].
///
/// [`TrackingStore::create_logged_model`]: crate::TrackingStore::create_logged_model
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLoggedModel {
    /// The experiment it belongs to (by id).
    pub experiment_id: String,
    /// Its name within the run (e.g. `model`).
    pub name: String,
    /// The run that logs it, if any (it must exist).
    pub source_run_id: Option<String>,
    /// A free-form type (e.g. `agent`); may be empty.
    pub model_type: String,
    /// Params (immutable once logged).
    pub params: BTreeMap<String, String>,
    /// Tags (last write wins).
    pub tags: BTreeMap<String, String>,
}

/// A model logged by a run (MLflow 3's `LoggedModel`), registrable as a model version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedModel {
    /// `m-` followed by 32 lowercase hex digits.
    pub model_id: String,
    /// The experiment it belongs to.
    pub experiment_id: String,
    /// Its name within the run.
    pub name: String,
    /// The run that logged it, if any.
    pub source_run_id: Option<String>,
    /// A free-form type; may be empty.
    pub model_type: String,
    /// Pending until its files are complete.
    pub status: LoggedModelStatus,
    /// Params.
    pub params: BTreeMap<String, String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// When it was created (millisecond precision).
    pub created_at: DateTime<Utc>,
    /// When its status, params or tags last changed.
    pub updated_at: DateTime<Utc>,
}

/// Which runs [`TrackingStore::list_runs`] returns (newest first).
///
/// [`TrackingStore::list_runs`]: crate::TrackingStore::list_runs
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFilter {
    /// Only runs of this experiment (by name).
    pub experiment: Option<String>,
    /// Only runs of this segment.
    pub segment: Option<String>,
    /// Only runs in this state.
    pub status: Option<RunStatus>,
    /// At most this many runs (≥ 1); defaults to 100.
    pub limit: usize,
}

impl Default for RunFilter {
    fn default() -> Self {
        RunFilter {
            experiment: None,
            segment: None,
            status: None,
            limit: 100,
        }
    }
}

/// A soft-deleted run, as garbage collection sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedRun {
    /// The run's id.
    pub run_id: String,
    /// Its experiment's id (the first folder of its artifacts).
    pub experiment_id: String,
    /// When it was deleted.
    pub deleted_at: DateTime<Utc>,
    /// A model version made from this run (model name, version), if any: such a run is
    /// kept, since the version's artifact lives in the run's folder.
    pub model_version: Option<(String, i64)>,
}

/// One immutable version of a registered model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// The registered model's name.
    pub model: String,
    /// 1, 2, 3… per model, without gaps.
    pub version: i64,
    /// The run that produced it.
    pub run_id: String,
    /// Where the artifact lives (local path or object-store URL).
    pub artifact_uri: String,
    /// The model's input/output signature, as given at registration.
    pub signature: serde_json::Value,
    /// When it was registered (millisecond precision).
    pub created_at: DateTime<Utc>,
    /// The aliases pointing at it now, sorted by name.
    pub aliases: Vec<String>,
}

/// A named model and a summary of its versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredModel {
    /// The model's name.
    pub name: String,
    /// The highest version number.
    pub latest_version: i64,
    /// How many versions exist.
    pub versions: i64,
    /// Alias → version it points at.
    pub aliases: BTreeMap<String, i64>,
    /// When the model was registered (explicitly, or by its first version).
    pub created_at: DateTime<Utc>,
    /// When a version was last registered or an alias last moved.
    pub updated_at: DateTime<Utc>,
}

/// One alias move, from the append-only audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasEvent {
    /// The registered model.
    pub model: String,
    /// The alias that moved.
    pub alias: String,
    /// The version it pointed at before (`None`: it was created).
    pub from_version: Option<i64>,
    /// The version it points at after (`None`: it was deleted).
    pub to_version: Option<i64>,
    /// Who moved it (user or service name).
    pub actor: String,
    /// Why, in the actor's words.
    pub reason: String,
    /// When (millisecond precision).
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn run_status_round_trips_through_text_and_json() {
        for s in [RunStatus::Running, RunStatus::Finished, RunStatus::Failed] {
            assert_eq!(s.to_string().parse::<RunStatus>().unwrap(), s);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
        }
        let err = "done".parse::<RunStatus>().unwrap_err();
        assert_eq!(err.kind(), spire_core::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("\"done\""));
    }

    #[test]
    fn lifecycle_and_view_types() {
        for l in [Lifecycle::Active, Lifecycle::Deleted] {
            assert_eq!(l.to_string().parse::<Lifecycle>().unwrap(), l);
        }
        let err = "gone".parse::<Lifecycle>().unwrap_err();
        assert!(err.to_string().contains("\"gone\""), "{err}");
        assert!(ViewType::default().includes(Lifecycle::Active));
        assert!(!ViewType::ActiveOnly.includes(Lifecycle::Deleted));
        assert!(ViewType::DeletedOnly.includes(Lifecycle::Deleted));
        assert!(!ViewType::DeletedOnly.includes(Lifecycle::Active));
        assert!(ViewType::All.includes(Lifecycle::Deleted));
    }

    #[test]
    fn run_filter_defaults_to_100() {
        assert_eq!(RunFilter::default().limit, 100);
    }
}
