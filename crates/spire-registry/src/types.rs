//! The entities the registry stores: runs and what they logged, model versions, aliases.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::RegistryError;

/// The lifecycle state of a run: `running` until [`Registry::finish_run`] ends it.
///
/// [`Registry::finish_run`]: crate::Registry::finish_run
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

/// What a caller knows when it starts a run; see [`Registry::create_run`].
///
/// [`Registry::create_run`]: crate::Registry::create_run
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
    /// When it was logged (millisecond precision).
    pub timestamp: DateTime<Utc>,
}

/// A run with everything it logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// UUID v4 as 32 lowercase hex digits.
    pub run_id: String,
    /// The experiment it belongs to.
    pub experiment: String,
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
    /// The Delta table versions it read, in the order given at creation.
    pub inputs: Vec<TableInput>,
    /// Hash of the resolved configuration.
    pub config_hash: String,
    /// The Spire version that ran it.
    pub spire_version: String,
    /// When it was created (millisecond precision).
    pub started_at: DateTime<Utc>,
    /// When it was finished, if it was.
    pub ended_at: Option<DateTime<Utc>>,
    /// The error message of a failed run.
    pub error: Option<String>,
}

/// Which runs [`Registry::list_runs`] returns (newest first).
///
/// [`Registry::list_runs`]: crate::Registry::list_runs
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFilter {
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
            segment: None,
            status: None,
            limit: 100,
        }
    }
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
    /// When its first version was registered.
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
    fn run_filter_defaults_to_100() {
        assert_eq!(RunFilter::default().limit, 100);
    }
}
