//! Spire's scheduler: thousands of segment models, each on its own schedule, batched into
//! tasks the way their data is shared, run by any number of workers.
//!
//! - [`model`]: the scheduler's view of a segment ([`ScheduledModel`]): what it reads, how
//!   it trains, its schedule and retry policy.
//! - [`due`]: which segments are due at which logical times (cron in a time zone, pause,
//!   catch-up), and backfills.
//! - [`dag`]: a segment's lifecycle as stages, and [`dag::plan`], which batches the stages
//!   of everything due at once into tasks (one snapshot per feature set and date, one fused
//!   training per family, one scoring per feature set, one publish per run).
//!
//! - [`scheduler`]: the tick (due → plan → enqueue, requeue of expired leases), backfills,
//!   and the loop with one active scheduler and standbys.
//! - [`worker`]: workers claim tasks with leases, heartbeat, and complete with the lease's
//!   fencing token; stages plug in through [`TaskRunner`].
//!
//! - [`airflow`]: the same batched tasks as Airflow DAG files, for teams that run Airflow.
//!
//! This crate depends on `spire-core` and `spire-registry` only: the stages themselves live
//! in the pipeline and plug in through a trait, so the scheduler's tests never link the data
//! stack.

pub mod airflow;
pub mod dag;
pub mod due;
pub mod model;
pub mod scheduler;
pub mod worker;

pub use dag::{plan, Plan, PlannedTask, Stage, TaskKind};
pub use due::{backfill_times, due_runs, DueRun, ModelState};
pub use model::{ScheduledModel, Work};
pub use scheduler::{Scheduler, TickReport};
pub use worker::{TaskFailure, TaskRunner, Worker, WorkerConfig};

#[cfg(test)]
mod tests;
