//! Garbage collection of deleted runs (`spire gc`): each run deleted before a cut-off
//! loses its artifact folder (`EXPERIMENT_ID/RUN_ID/` in the [`ArtifactStore`]), then its
//! rows. A run that is the source of a model version is kept, since that version's model
//! file lives in the run's folder.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::artifacts::{run_prefix, ArtifactStore};
use crate::{RegistryError, TrackingStore};

/// What one collection did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Runs removed, with the number of artifact files deleted for each.
    pub purged: Vec<PurgedRun>,
    /// Runs left in place, with why.
    pub kept: Vec<KeptRun>,
    /// Whether nothing was actually removed.
    pub dry_run: bool,
}

/// A run `spire gc` removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgedRun {
    /// Its id.
    pub run_id: String,
    /// Its artifact folder's URL.
    pub artifacts: String,
    /// Files deleted from that folder (0 in a dry run).
    pub files_deleted: usize,
}

/// A deleted run `spire gc` kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptRun {
    /// Its id.
    pub run_id: String,
    /// Why it stays.
    pub reason: String,
}

/// Removes every run deleted before `before`: artifacts first, then rows, so a failure
/// part way leaves the run listed for the next collection. With `dry_run` only reports.
pub async fn collect(
    store: &impl TrackingStore,
    artifacts: &ArtifactStore,
    before: DateTime<Utc>,
    dry_run: bool,
) -> Result<GcReport, RegistryError> {
    let mut report = GcReport {
        dry_run,
        ..GcReport::default()
    };
    for run in store.deleted_runs(before).await? {
        if let Some((model, version)) = &run.model_version {
            report.kept.push(KeptRun {
                run_id: run.run_id,
                reason: format!("source of model {model:?} version {version}"),
            });
            continue;
        }
        let prefix = run_prefix(&run.experiment_id, &run.run_id);
        let url = artifacts.url_of(&prefix)?;
        let files_deleted = if dry_run {
            0
        } else {
            let n = artifacts.delete(&prefix).await?;
            store.purge_run(&run.run_id).await?;
            n
        };
        report.purged.push(PurgedRun {
            run_id: run.run_id,
            artifacts: url,
            files_deleted,
        });
    }
    Ok(report)
}
