//! Dead letters after a config fix: list the records intake rejected, and replay them —
//! parse their stored bytes again with the source's current rules and append the ones that
//! pass to `events_raw` under their original source positions.
//!
//! A dead letter is *pending* while no `events_raw` row holds its position. Replaying only
//! reads pending ones, so running it twice appends nothing twice; records that fail again
//! stay in `dead_letters` (with their first reason) and are reported with the new one. The
//! intake checkpoints are not touched: a replay never moves a stream's position.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;
use spire_core::config::{Intake, Source as SourceConfig};
use spire_lake::arrow::array::Array;
use spire_lake::tables::{DEAD_LETTERS, EVENTS_RAW};
use spire_lake::{columns, Lake};

use crate::error::Result;
use crate::parse::Parser;
use crate::record::{Position, RawRecord};
use crate::rows::EventsRawBuilder;

/// One pending dead letter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    /// Where the record came from.
    pub source: String,
    /// Its stream: file path, Kafka `topic/partition`, …
    pub partition: String,
    /// Its offset in the stream.
    pub offset: i64,
    /// Its Kinesis sequence number (`None` for other sources).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<String>,
    /// Why intake rejected it.
    pub reason: String,
    /// The record as text (invalid UTF-8 replaced), for reading.
    pub payload: String,
    /// The exact bytes, for replaying.
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// What a replay of one source did (or would do, in a dry run).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplayReport {
    /// Source name.
    pub source: String,
    /// Id stamped on the `events_raw` rows it appended.
    pub ingest_id: String,
    /// Pending dead letters read.
    pub pending: u64,
    /// Of those, parsed now and appended to `events_raw`.
    pub replayed: u64,
    /// Of those, rejected again, by their new reason.
    pub still_rejected: BTreeMap<String, u64>,
    /// Event dates (days since epoch) that received rows: the partitions to clean.
    pub dates: BTreeSet<i32>,
    /// Whether nothing was written.
    pub dry_run: bool,
}

/// `s` as a SQL string literal.
pub(crate) fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The pending dead letters of `source` (all sources when `None`), oldest position first:
/// one per position (the first rejection), skipping positions `events_raw` already holds.
pub async fn pending(lake: &Lake, source: Option<&str>) -> Result<Vec<DeadLetter>> {
    let ctx = lake.session();
    if lake.register_as(&ctx, DEAD_LETTERS, "d").await?.is_none() {
        return Ok(Vec::new());
    }
    let filter = source.map_or(String::new(), |s| format!("WHERE source = {}", sql_text(s)));
    // Tables written before Kinesis sources existed have no `source_sequence` column.
    let sequence = if Lake::has_column(&ctx, "d", "source_sequence").await {
        "source_sequence"
    } else {
        "CAST(NULL AS VARCHAR) AS source_sequence"
    };
    let batches = Lake::query(
        &ctx,
        &format!(
            "SELECT source, source_partition, source_offset, {sequence}, reason, payload, \
             payload_bytes FROM d {filter} \
             ORDER BY source, source_partition, source_offset, ingested_at"
        ),
    )
    .await?;
    let mut letters: Vec<DeadLetter> = Vec::new();
    for b in &batches {
        let (src, part, off, seq) = (
            columns::strings(b, "source")?,
            columns::strings(b, "source_partition")?,
            columns::ints(b, "source_offset")?,
            columns::strings(b, "source_sequence")?,
        );
        let (reason, payload, bytes) = (
            columns::strings(b, "reason")?,
            columns::strings(b, "payload")?,
            columns::binaries(b, "payload_bytes")?,
        );
        for r in 0..b.num_rows() {
            let letter = DeadLetter {
                source: src.value(r).to_string(),
                partition: part.value(r).to_string(),
                offset: off.value(r),
                sequence: seq.is_valid(r).then(|| seq.value(r).to_string()),
                reason: reason.value(r).to_string(),
                payload: payload.value(r).to_string(),
                bytes: bytes.value(r).to_vec(),
            };
            let same = letters.last().is_some_and(|l| {
                (&l.source, &l.partition, l.offset)
                    == (&letter.source, &letter.partition, letter.offset)
            });
            if !same {
                letters.push(letter);
            }
        }
    }
    if letters.is_empty() || lake.register_as(&ctx, EVENTS_RAW, "e").await?.is_none() {
        return Ok(letters);
    }
    // Positions already in events_raw (replayed before), read only for these partitions.
    let mut partitions: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for l in &letters {
        partitions
            .entry(l.source.as_str())
            .or_default()
            .insert(l.partition.as_str());
    }
    let mut held: HashSet<(String, String, i64)> = HashSet::new();
    for (source, parts) in partitions {
        let parts: Vec<&str> = parts.into_iter().collect();
        for chunk in parts.chunks(200) {
            let list = chunk
                .iter()
                .map(|p| sql_text(p))
                .collect::<Vec<_>>()
                .join(", ");
            let batches = Lake::query(
                &ctx,
                &format!(
                    "SELECT source, source_partition, source_offset FROM e \
                     WHERE source = {} AND source_partition IN ({list})",
                    sql_text(source)
                ),
            )
            .await?;
            for b in &batches {
                let (src, part, off) = (
                    columns::strings(b, "source")?,
                    columns::strings(b, "source_partition")?,
                    columns::ints(b, "source_offset")?,
                );
                for r in 0..b.num_rows() {
                    held.insert((
                        src.value(r).to_string(),
                        part.value(r).to_string(),
                        off.value(r),
                    ));
                }
            }
        }
    }
    letters.retain(|l| !held.contains(&(l.source.clone(), l.partition.clone(), l.offset)));
    Ok(letters)
}

/// Replays the pending dead letters of `config`'s source with its current parsing rules;
/// appends what passes to `events_raw` in one commit (nothing when `dry_run`).
pub async fn replay(
    lake: &Lake,
    config: &SourceConfig,
    intake: &Intake,
    ingest_id: &str,
    dry_run: bool,
) -> Result<ReplayReport> {
    let now = chrono::Utc::now().timestamp_micros();
    let parser = Parser::new(config, intake, now);
    let mut report = ReplayReport {
        source: config.name.clone(),
        ingest_id: ingest_id.to_string(),
        dry_run,
        ..ReplayReport::default()
    };
    let mut rows = EventsRawBuilder::new(ingest_id, now);
    for letter in pending(lake, Some(&config.name)).await? {
        report.pending += 1;
        let record = RawRecord {
            payload: letter.bytes,
            position: Position {
                source: letter.source,
                partition: letter.partition,
                offset: letter.offset,
                sequence: letter.sequence,
            },
        };
        match parser.parse(&record) {
            Ok(event) => {
                report
                    .dates
                    .insert(event.ts.div_euclid(86_400_000_000) as i32);
                rows.push(&event, &record.position);
                report.replayed += 1;
            }
            Err(reason) => *report.still_rejected.entry(reason).or_default() += 1,
        }
    }
    if !dry_run && !rows.is_empty() {
        // Through `append_cas` without transactions: a plain append that also adds columns
        // an older `events_raw` lacks; replays never move an intake position.
        lake.append_cas(EVENTS_RAW, vec![rows.finish()?], &["event_date"], &[])
            .await?;
    }
    Ok(report)
}
