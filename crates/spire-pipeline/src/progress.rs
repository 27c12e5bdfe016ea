//! Progress reporting from long stages, without tying the pipeline to a terminal.

/// Receives progress of long stages. Implementations must be cheap: stages call `update`
/// after each unit of work (a commit, a date, a model).
///
/// Contract: for one `stage` name, calls go `start` → any number of `update` → `finish`;
/// `done` never decreases between `start` and `finish`.
pub trait Progress: Send + Sync {
    /// A stage begins with `total` units (0 when unknown).
    fn start(&self, stage: &str, total: u64);
    /// `done` units of the current stage are complete.
    fn update(&self, stage: &str, done: u64);
    /// The stage ended; `summary` is one line for the user.
    fn finish(&self, stage: &str, summary: &str);
}

/// Reports nothing (for tests and `--json`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: &str, _: u64) {}
    fn update(&self, _: &str, _: u64) {}
    fn finish(&self, _: &str, _: &str) {}
}
