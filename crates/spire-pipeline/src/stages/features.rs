//! `spire features build`: refresh partials, then write snapshots.

use chrono::NaiveDate;
use serde::Serialize;
use spire_features::partials::{self, PartialsReport};
use spire_features::snapshot::{self, SnapshotReport};
use spire_lake::tables::EVENTS;

use crate::error::{PipelineError, Result};
use crate::progress::Progress;
use crate::workspace::Workspace;

/// The outcome for one feature set.
#[derive(Debug, Clone, Serialize)]
pub struct FeatureBuild {
    /// Partials refresh.
    pub partials: PartialsReport,
    /// Snapshots written.
    pub snapshots: Vec<SnapshotReport>,
}

/// The default snapshot date: the day after the last event date (all complete days).
pub async fn default_as_of(ws: &Workspace) -> Result<NaiveDate> {
    let ctx = ws.lake.session();
    if ws.lake.register_as(&ctx, EVENTS, "events").await?.is_none() {
        return Err(PipelineError::NotFound(
            "no `events` table yet: run `spire ingest` first".into(),
        ));
    }
    Ok(spire_features::labels::data_end(&ctx).await?)
}

/// Refreshes partials and builds a snapshot per date in `as_of` for `feature_sets` (all when
/// empty).
pub async fn build(
    ws: &Workspace,
    feature_sets: &[String],
    as_of: &[NaiveDate],
    progress: &dyn Progress,
) -> Result<Vec<FeatureBuild>> {
    let sets: Vec<_> = if feature_sets.is_empty() {
        ws.project.feature_sets.clone()
    } else {
        feature_sets
            .iter()
            .map(|n| {
                ws.project.feature_set(n).cloned().ok_or_else(|| {
                    PipelineError::NotFound(format!("no feature set `{n}` in spire.toml"))
                })
            })
            .collect::<Result<_>>()?
    };
    if sets.is_empty() {
        return Err(PipelineError::InvalidInput(
            "spire.toml declares no [[feature_sets]]".into(),
        ));
    }
    let mut out = Vec::new();
    for fs in &sets {
        let stage = format!("partials {}", fs.name);
        progress.start(&stage, 0);
        let mut tick = |done: usize, _total: usize| progress.update(&stage, done as u64);
        let p = partials::refresh(&ws.lake, fs, &mut tick).await?;
        progress.finish(
            &stage,
            &format!(
                "{}: {} of {} event dates rebuilt",
                fs.name, p.dates_rebuilt, p.dates_total
            ),
        );
        let mut snapshots = Vec::new();
        for date in as_of {
            let stage = format!("snapshot {} {date}", fs.name);
            progress.start(&stage, 0);
            let s = snapshot::build(&ws.lake, fs, *date).await?;
            progress.finish(
                &stage,
                &format!(
                    "{} as of {date}: {} users × {} features",
                    fs.name,
                    s.users,
                    s.columns.len()
                ),
            );
            snapshots.push(s);
        }
        out.push(FeatureBuild {
            partials: p,
            snapshots,
        });
    }
    Ok(out)
}
