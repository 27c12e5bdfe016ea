//! Spire tracking and model registry: experiments, runs, model versions, aliases.
//!
//! A [`Registry`] records every run (its segment, params, metrics, tags and lineage: the
//! exact Delta table versions it read, the config hash, the Spire version and git commit)
//! and every model version a run produced, with named aliases (`champion`, `challenger`…)
//! whose every move is kept in an audit log.
//!
//! Two contracts describe it — [`TrackingStore`] (experiments and runs) and
//! [`ModelRegistry`] (models, versions, aliases) — and two backends implement both, chosen
//! from the URL given to [`Registry::open`]: SQLite (`sqlite://PATH`, the embedded
//! default) and PostgreSQL (`postgres://…`). Each backend has its own versioned migrations
//! (`migrations/sqlite/`, `migrations/postgres/`), applied on open; one conformance suite
//! checks both.
//!
//! The scheduler keeps its durable state here too: a task queue with leases and fencing
//! tokens ([`TaskQueue`]), per-model schedule state ([`ScheduleState`]) and the
//! single-active-scheduler lock ([`Registry::try_lock_scheduler`]); see [`tasks`].
//!
//! Runs are found with [`TrackingStore::search_runs`], which speaks MLflow's filter grammar
//! (`metrics.auc > 0.8 and params.algorithm = 'lr' and tags.segment LIKE 'reads-%'`) with
//! ordering and page tokens; see [`RunSearch`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), spire_registry::RegistryError> {
//! use spire_registry::{ModelRegistry, NewRun, Registry, RunStatus, TrackingStore};
//!
//! let registry = Registry::open("sqlite://spire-data/spire.db").await?;
//! let run_id = registry
//!     .create_run(NewRun {
//!         segment: "sports_fans".into(),
//!         experiment: "daily".into(),
//!         ..NewRun::default()
//!     })
//!     .await?;
//! registry.log_metrics(&run_id, &[("auc".into(), 0.81)], 0).await?;
//! registry.finish_run(&run_id, RunStatus::Finished, None).await?;
//! let version = registry
//!     .create_model_version("sports_fans", &run_id, "file:///models/1", serde_json::json!({}))
//!     .await?;
//! registry
//!     .set_alias("sports_fans", "champion", version.version, "ci", "passed the AUC gate")
//!     .await?;
//! # Ok(())
//! # }
//! ```

pub mod artifacts;
mod backend;
mod check;
mod error;
pub mod gc;
mod registry;
mod search;
mod store;
pub mod tasks;
pub mod tokens;
mod types;

pub use artifacts::ArtifactStore;
pub use error::RegistryError;
pub use registry::{Backend, Registry};
pub use search::{RunPage, RunSearch, MAX_SEARCH_RESULTS};
pub use store::{ModelRegistry, TrackingStore};
pub use tasks::{
    Attempt, ClaimLimits, Lease, ModelSchedule, NewTask, Outcome, ScheduleState, SchedulerLock,
    Task, TaskFilter, TaskKey, TaskQueue, TaskState,
};
pub use tokens::{ApiToken, NewToken, Role, TokenStore};
pub use types::{
    AliasEvent, DeletedRun, Experiment, Lifecycle, LogBatch, LoggedModel, LoggedModelStatus,
    Metric, ModelVersion, NewLoggedModel, NewRun, RegisteredModel, Run, RunFilter, RunOutput,
    RunStatus, TableInput, ViewType,
};

/// The most entries (metric points, params and tags together) one
/// [`TrackingStore::log_batch`] call accepts; larger batches are
/// [`RegistryError::InvalidInput`]. It bounds how long one call holds the write lock.
pub const MAX_BATCH: usize = 10_000;
