//! `spire ingest`: every configured source (or ad-hoc files) → intake → clean → reconcile.

use std::collections::BTreeSet;

use serde::Serialize;
use spire_core::config::{Source as SourceConfig, SourceKind};
use spire_core::time::date_from_days;
use spire_ingest::clean::{self, CleanReport, Reconciliation};
use spire_ingest::intake::{self, IntakeReport};

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
