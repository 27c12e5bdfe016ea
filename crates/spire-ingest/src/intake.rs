//! Intake: source → parse → `events_raw` / `dead_letters`, exactly once per position.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use spire_core::config::{Intake, Source as SourceConfig};
use spire_lake::tables::{DEAD_LETTERS, EVENTS_RAW};
use spire_lake::Lake;

use crate::error::Result;
use crate::parse::Parser;
use crate::rows::{DeadLettersBuilder, EventsRawBuilder};
use crate::source::{Checkpoints, Source};

/// Counts of one intake run. `read = accepted + dead_lettered` here; the clean stage splits
/// `accepted` further into kept events (bot-flagged included) and duplicates.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct IntakeReport {
    /// Source name.
    pub source: String,
    /// Id stamped on every row written by this run.
    pub ingest_id: String,
    /// Records read that were not already in the lake.
    pub read: u64,
    /// Rows appended to `events_raw`.
    pub accepted: u64,
    /// Rows appended to `dead_letters`.
    pub dead_lettered: u64,
    /// Records skipped because an earlier run already committed them.
    pub already_ingested: u64,
    /// Event dates (days since epoch) that received rows: the partitions to clean.
    pub dates: BTreeSet<i32>,
    /// Things the user should know (e.g. empty files).
    pub notes: Vec<String>,
}

/// The application-transaction id that checkpoints one partition of one source.
pub fn checkpoint_id(source: &str, partition: &str) -> String {
    format!("spire-intake:{source}:{partition}")
}

/// Reads `source` to exhaustion into the lake. `progress` is called with the records read so
/// far after each commit.
pub async fn ingest(
    lake: &Lake,
    config: &SourceConfig,
    intake: &Intake,
    source: &mut dyn Source,
    ingest_id: &str,
    progress: &mut dyn FnMut(u64),
) -> Result<IntakeReport> {
    let now = chrono::Utc::now().timestamp_micros();
    let parser = Parser::new(config, intake, now);
    let partitions = source.partitions();
    let ids: Vec<String> = partitions
        .iter()
        .map(|p| checkpoint_id(&config.name, p))
        .collect();
    let raw_cp = lake.txn_versions(EVENTS_RAW, &ids).await?;
    let dead_cp = lake.txn_versions(DEAD_LETTERS, &ids).await?;
    let cp_of = |m: &BTreeMap<String, i64>, p: &str| {
        m.get(&checkpoint_id(&config.name, p)).copied().unwrap_or(0)
    };
    let seek: Checkpoints = partitions
        .iter()
        .map(|p| (p.clone(), cp_of(&raw_cp, p).min(cp_of(&dead_cp, p))))
        .filter(|(_, v)| *v > 0)
        .collect();
    source.seek(&seek)?;

    let mut report = IntakeReport {
        source: config.name.clone(),
        ingest_id: ingest_id.to_string(),
        ..Default::default()
    };
    let mut raw = EventsRawBuilder::new(ingest_id, now);
    let mut dead = DeadLettersBuilder::new(ingest_id, now);
    while let Some(batch) = source.next_batch(intake.batch_rows)? {
        let mut txns: BTreeMap<String, i64> = BTreeMap::new();
        for record in &batch {
            let p = &record.position;
            let id = checkpoint_id(&config.name, &p.partition);
            let entry = txns.entry(id).or_insert(p.offset);
            *entry = (*entry).max(p.offset);
            match parser.parse(record) {
                Ok(event) => {
                    if p.offset <= cp_of(&raw_cp, &p.partition) {
                        report.already_ingested += 1;
                        continue;
                    }
                    report
                        .dates
                        .insert(event.ts.div_euclid(86_400_000_000) as i32);
                    raw.push(&event, p);
                }
                Err(reason) => {
                    if p.offset <= cp_of(&dead_cp, &p.partition) {
                        report.already_ingested += 1;
                        continue;
                    }
                    dead.push(&record.payload, p, &reason);
                }
            }
            report.read += 1;
        }
        let txns: Vec<(String, i64)> = txns.into_iter().collect();
        report.dead_lettered += dead.len() as u64;
        report.accepted += raw.len() as u64;
        // Dead letters first, then events: each table's checkpoint moves with its own rows,
        // and a crash between the two commits is resumed per table.
        lake.append_with_txns(DEAD_LETTERS, vec![dead.finish()?], &[], &txns)
            .await?;
        lake.append_with_txns(EVENTS_RAW, vec![raw.finish()?], &["event_date"], &txns)
            .await?;
        tracing::debug!(source = %config.name, read = report.read, "intake batch committed");
        progress(report.read);
    }
    report.notes = source.notes();
    Ok(report)
}
