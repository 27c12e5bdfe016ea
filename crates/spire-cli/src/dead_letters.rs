//! `spire dead-letters list|replay`: the records intake rejected, and their replay after a
//! config fix.

use std::collections::BTreeMap;

use serde_json::json;
use spire_ingest::replay;
use spire_pipeline::stages::ingest::replay_dead_letters;
use spire_pipeline::{Progress, Result, Workspace};

use crate::cli::{Cli, DeadLettersCommand};
use crate::output::{self, table};

/// Runs `spire dead-letters ...`.
pub async fn run(
    cli: &Cli,
    ws: &Workspace,
    command: &DeadLettersCommand,
    progress: &dyn Progress,
) -> Result<()> {
    match command {
        DeadLettersCommand::List { source, limit } => {
            let pending = replay::pending(&ws.lake, source.as_deref()).await?;
            let mut by_reason: BTreeMap<(&str, &str), u64> = BTreeMap::new();
            for l in &pending {
                *by_reason
                    .entry((l.source.as_str(), l.reason.as_str()))
                    .or_default() += 1;
            }
            if cli.json {
                let counts: Vec<serde_json::Value> = by_reason
                    .iter()
                    .map(|((s, r), n)| json!({"source": s, "reason": r, "count": n}))
                    .collect();
                output::json(&json!({
                    "pending": pending.len(),
                    "by_reason": counts,
                    "records": &pending[..pending.len().min(*limit)],
                }));
            } else {
                println!("{} pending dead letters", pending.len());
                let rows: Vec<Vec<String>> = by_reason
                    .iter()
                    .map(|((s, r), n)| vec![n.to_string(), s.to_string(), r.to_string()])
                    .collect();
                table(&["count", "source", "reason"], &rows);
                let rows: Vec<Vec<String>> = pending
                    .iter()
                    .take(*limit)
                    .map(|l| {
                        let mut preview: String = l.payload.chars().take(60).collect();
                        if l.payload.chars().count() > 60 {
                            preview.push('…');
                        }
                        vec![
                            format!("{}:{}:{}", l.source, l.partition, l.offset),
                            l.reason.chars().take(60).collect(),
                            preview,
                        ]
                    })
                    .collect();
                if !rows.is_empty() {
                    println!();
                    table(&["position", "reason", "payload"], &rows);
                }
            }
        }
        DeadLettersCommand::Replay { source, dry_run } => {
            let summary = replay_dead_letters(ws, source.as_deref(), *dry_run, progress).await?;
            if cli.json {
                output::json(&summary);
            } else {
                for r in &summary.sources {
                    let verb = if *dry_run { "would replay" } else { "replayed" };
                    println!(
                        "{}: {verb} {} of {} pending dead letters",
                        r.source, r.replayed, r.pending
                    );
                    for (reason, n) in &r.still_rejected {
                        println!("  {n} still rejected: {reason}");
                    }
                }
                for s in &summary.skipped {
                    println!("{s}: left alone (no such source in spire.toml any more)");
                }
                if summary.sources.is_empty() && summary.skipped.is_empty() {
                    println!("no pending dead letters");
                }
            }
        }
    }
    Ok(())
}
