//! Spire tracking and model registry: runs, model versions, aliases (SQLite).
//!
//! A [`Registry`] records every run (its segment, params, metrics, tags and the exact Delta
//! table versions it read) and every model version a run produced, with named aliases
//! (`champion`, `challenger`…) whose every move is kept in an audit log. The store is chosen
//! from its URL: `sqlite://PATH` or `sqlite::memory:` today, PostgreSQL later behind the
//! same contract (see [`Registry`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), spire_registry::RegistryError> {
//! use spire_registry::{NewRun, Registry, RunStatus};
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

mod error;
mod models;
mod registry;
mod runs;
mod sqlite;
mod types;

pub use error::RegistryError;
pub use registry::Registry;
pub use types::{
    AliasEvent, Metric, ModelVersion, NewRun, RegisteredModel, Run, RunFilter, RunStatus,
    TableInput,
};
