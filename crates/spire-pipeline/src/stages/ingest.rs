//! `spire ingest`: every configured source (or ad-hoc files) → intake → clean → reconcile.

use std::collections::BTreeSet;

use serde::Serialize;
use spire_core::config::{Source as SourceConfig, SourceKind};
use spire_core::time::date_from_days;
use spire_ingest::clean::{self, CleanReport, Reconciliation};
use spire_ingest::intake::{self, IntakeReport};
use spire_ingest::replay::ReplayReport;

use crate::error::{PipelineError, Result};
use crate::progress::Progress;
use crate::workspace::Workspace;

/// What to ingest.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestTarget {
    /// Every source in `spire.toml`.
    All,
    /// The named sources.
    Sources(Vec<String>),
    /// Files matching a path or glob, without editing the config.
    Path(String),
}

/// The outcome of one source.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSummary {
    /// Intake counts.
    pub intake: IntakeReport,
    /// `read = accepted + dead_lettered + duplicates`, after cleaning.
    pub reconciliation: Reconciliation,
}

/// The outcome of `spire ingest`.
#[derive(Debug, Clone, Serialize)]
pub struct IngestSummary {
    /// Per source.
    pub sources: Vec<SourceSummary>,
    /// The clean stage.
    pub clean: CleanReport,
}

/// Runs intake for `target`, then cleans the touched event dates.
pub async fn ingest(
    ws: &Workspace,
    target: &IngestTarget,
    progress: &dyn Progress,
) -> Result<IngestSummary> {
    let configs: Vec<SourceConfig> = match target {
        IngestTarget::All => {
            if ws.project.sources.is_empty() {
                return Err(PipelineError::InvalidInput(
                    "spire.toml declares no [[sources]]: add one, or pass --path FILE_OR_GLOB"
                        .into(),
                ));
            }
            ws.project.sources.clone()
        }
        IngestTarget::Sources(names) => names
            .iter()
            .map(|n| {
                ws.project.source(n).cloned().ok_or_else(|| {
                    let known: Vec<&str> =
                        ws.project.sources.iter().map(|s| s.name.as_str()).collect();
                    PipelineError::NotFound(format!(
                        "no source `{n}` in spire.toml (sources: {})",
                        known.join(", ")
                    ))
                })
            })
            .collect::<Result<_>>()?,
        IngestTarget::Path(p) => {
            let pattern = if std::path::Path::new(p).is_absolute() {
                p.clone()
            } else {
                std::env::current_dir()
                    .map(|d| d.join(p).display().to_string())
                    .unwrap_or_else(|_| p.clone())
            };
            vec![SourceConfig {
                name: "files".into(),
                kind: SourceKind::File {
                    pattern,
                    format: None,
                },
                fields: Vec::new(),
            }]
        }
    };
    let mut reports = Vec::new();
    let mut dates = BTreeSet::new();
    for config in &configs {
        let mut source = spire_ingest::build_source(config)?;
        let ingest_id = uuid::Uuid::new_v4().simple().to_string();
        let stage = format!("ingest {}", config.name);
        progress.start(&stage, 0);
        let mut tick = |n: u64| progress.update(&stage, n);
        let report = intake::ingest(
            &ws.lake,
            config,
            &ws.project.intake,
            source.as_mut(),
            &ingest_id,
            &mut tick,
        )
        .await?;
        progress.finish(
            &stage,
            &format!(
                "{}: {} read, {} accepted, {} dead-lettered",
                config.name, report.read, report.accepted, report.dead_lettered
            ),
        );
        dates.extend(report.dates.iter().copied());
        reports.push(report);
    }
    let dates: Vec<_> = dates.into_iter().map(date_from_days).collect();
    progress.start("clean", dates.len() as u64);
    let mut tick = |done: usize, _total: usize| progress.update("clean", done as u64);
    let clean = clean::clean(&ws.lake, &ws.project.cleaning, Some(dates), &mut tick).await?;
    progress.finish(
        "clean",
        &format!(
            "{} dates rebuilt: {} events ({} bot), {} duplicates removed",
            clean.dates, clean.events, clean.bot_events, clean.duplicates
        ),
    );
    let mut sources = Vec::new();
    for intake in reports {
        let reconciliation = clean::reconcile(
            &ws.lake,
            &intake.ingest_id,
            intake.read,
            intake.dead_lettered,
        )
        .await?;
        sources.push(SourceSummary {
            intake,
            reconciliation,
        });
    }
    Ok(IngestSummary { sources, clean })
}

/// The outcome of `spire dead-letters replay`.
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    /// Per source with pending dead letters.
    pub sources: Vec<ReplayReport>,
    /// Sources whose dead letters were left: no longer configured.
    pub skipped: Vec<String>,
    /// The clean stage over the dates that received rows (none in a dry run).
    pub clean: Option<CleanReport>,
}

/// The source config a dead letter of `name` is replayed with: the configured source, or the
/// defaults `spire ingest --path` used (source `files`).
fn replay_config(ws: &Workspace, name: &str) -> Option<SourceConfig> {
    ws.project.source(name).cloned().or_else(|| {
        (name == "files").then(|| SourceConfig {
            name: "files".into(),
            kind: SourceKind::File {
                pattern: String::new(),
                format: None,
            },
            fields: Vec::new(),
        })
    })
}

/// Replays the pending dead letters of `source` (every source when `None`) with the
/// current config, then cleans the dates that received rows.
pub async fn replay_dead_letters(
    ws: &Workspace,
    source: Option<&str>,
    dry_run: bool,
    progress: &dyn Progress,
) -> Result<ReplaySummary> {
    use spire_ingest::replay;
    let pending = replay::pending(&ws.lake, source).await?;
    let names: BTreeSet<String> = pending.iter().map(|l| l.source.clone()).collect();
    if let Some(s) = source {
        if replay_config(ws, s).is_none() {
            return Err(PipelineError::NotFound(format!(
                "no source `{s}` in spire.toml to replay its dead letters with"
            )));
        }
    }
    let mut sources = Vec::new();
    let mut skipped = Vec::new();
    let mut dates = BTreeSet::new();
    for name in names {
        let Some(config) = replay_config(ws, &name) else {
            skipped.push(name);
            continue;
        };
        let stage = format!("replay {name}");
        progress.start(&stage, 0);
        let ingest_id = uuid::Uuid::new_v4().simple().to_string();
        let report =
            replay::replay(&ws.lake, &config, &ws.project.intake, &ingest_id, dry_run).await?;
        progress.finish(
            &stage,
            &format!(
                "{name}: {} pending, {} replayed, {} still rejected",
                report.pending,
                report.replayed,
                report.still_rejected.values().sum::<u64>()
            ),
        );
        dates.extend(report.dates.iter().copied());
        sources.push(report);
    }
    let clean = if dry_run || dates.is_empty() {
        None
    } else {
        let dates: Vec<_> = dates.into_iter().map(date_from_days).collect();
        progress.start("clean", dates.len() as u64);
        let mut tick = |done: usize, _total: usize| progress.update("clean", done as u64);
        let report = clean::clean(&ws.lake, &ws.project.cleaning, Some(dates), &mut tick).await?;
        progress.finish("clean", &format!("{} dates rebuilt", report.dates));
        Some(report)
    };
    Ok(ReplaySummary {
        sources,
        skipped,
        clean,
    })
}
