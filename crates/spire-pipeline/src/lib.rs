//! Spire's pipeline: the lifecycle stages wired together over a [`Workspace`].
//!
//! `ingest` (sources → `events_raw` → `events`) → `features` (partials → snapshots) →
//! `train` (labels, fit, evaluate, register, gate) → `score` (champions → thresholds →
//! `segments`). [`run::run`] chains features → train → score for selected segments;
//! [`demo::demo`] scaffolds a synthetic project and runs everything.

pub mod demo;
mod error;
pub mod experiment;
pub mod index;
pub mod progress;
pub mod recovery;
pub mod run;
pub mod scheduling;
pub mod segments;
pub mod stages;
mod workspace;

pub use error::{PipelineError, Result};
pub use progress::{Progress, Quiet};
pub use workspace::Workspace;
