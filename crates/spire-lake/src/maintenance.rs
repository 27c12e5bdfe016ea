//! Table upkeep through delta-rs: compaction of the many small files that streaming appends
//! leave (`spire lake optimize`) and removal of files no version within the retention needs
//! (`spire lake vacuum`).

use std::num::NonZeroU64;

use serde::Serialize;

use crate::error::{LakeError, Result};
use crate::lake::{delta, version_of, Lake};

/// Delta's default retention of removed files (`delta.deletedFileRetentionDuration`):
/// vacuuming keeps at least this much unless forced.
pub const DEFAULT_RETENTION_HOURS: u64 = 168;

/// What compacting one table did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptimizeReport {
    /// The table.
    pub table: String,
    /// The table's version after compaction (unchanged when nothing was compacted).
    pub version: Option<i64>,
    /// Small files rewritten.
    pub files_removed: u64,
    /// Files written in their place.
    pub files_added: u64,
    /// Bytes of the files rewritten.
    pub bytes_removed: i64,
    /// Bytes of the files written.
    pub bytes_added: i64,
    /// Partitions with at least one file compacted.
    pub partitions_optimized: u64,
}

/// What vacuuming one table removed (or would remove, in a dry run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VacuumReport {
    /// The table.
    pub table: String,
    /// Whether nothing was deleted (a dry run).
    pub dry_run: bool,
    /// Files no longer referenced by any version within the retention.
    pub files: Vec<String>,
}

impl Lake {
    /// Compacts the small files of `table` into files of about `target_bytes` (delta-rs's
    /// bin-packing optimize, partition by partition). The rows and every application
    /// transaction version (the intake checkpoints) are unchanged; the rewritten files stay
    /// on storage, and readable by time travel, until a vacuum removes them. A table that
    /// does not exist is [`LakeError::NotFound`].
    pub async fn optimize(&self, table: &str, target_bytes: u64) -> Result<OptimizeReport> {
        let target = NonZeroU64::new(target_bytes).ok_or_else(|| {
            LakeError::InvalidInput(format!(
                "optimize {table}: the target file size must be at least one byte"
            ))
        })?;
        let t = self
            .require(
                table,
                "nothing to compact (`spire lake optimize` with no table compacts them all)",
            )
            .await?;
        let before = version_of(&t);
        let (t, metrics) = t
            .optimize()
            .with_target_size(target)
            .with_commit_properties(self.commit_properties())
            .await
            .map_err(|source| delta(table, source))?;
        let version = if metrics.num_files_removed > 0 {
            version_of(&t)
        } else {
            before
        };
        Ok(OptimizeReport {
            table: table.to_string(),
            version,
            files_removed: metrics.num_files_removed,
            files_added: metrics.num_files_added,
            bytes_removed: metrics.files_removed.total_size,
            bytes_added: metrics.files_added.total_size,
            partitions_optimized: metrics.partitions_optimized,
        })
    }

    /// Deletes the files of `table` that no version newer than `retain_hours` ago refers to.
    /// Below [`DEFAULT_RETENTION_HOURS`] it refuses unless `force` (a reader or writer still
    /// on an older version would lose its files, and time travel to those versions ends).
    pub async fn vacuum(
        &self,
        table: &str,
        retain_hours: u64,
        dry_run: bool,
        force: bool,
    ) -> Result<VacuumReport> {
        if retain_hours < DEFAULT_RETENTION_HOURS && !force {
            return Err(LakeError::InvalidInput(format!(
                "vacuum {table}: --retain-hours {retain_hours} is below Delta's default \
                 retention of {DEFAULT_RETENTION_HOURS} hours; readers and writers still on an \
                 older version would lose their files. Pass --force if nothing is."
            )));
        }
        let hours = i64::try_from(retain_hours).map_err(|_| {
            LakeError::InvalidInput(format!("vacuum {table}: --retain-hours is too large"))
        })?;
        let t = self
            .require(
                table,
                "nothing to vacuum (`spire lake vacuum` with no table vacuums them all)",
            )
            .await?;
        let (_, metrics) = t
            .vacuum()
            .with_retention_period(chrono::Duration::hours(hours))
            .with_enforce_retention_duration(!force)
            .with_dry_run(dry_run)
            .with_commit_properties(self.commit_properties())
            .await
            .map_err(|source| delta(table, source))?;
        let mut files = metrics.files_deleted;
        files.sort();
        Ok(VacuumReport {
            table: table.to_string(),
            dry_run,
            files,
        })
    }
}
