//! Intake: source → parse → `events_raw` / `dead_letters`, exactly once per position.
//!
//! Every commit carries, per source partition, a Delta application transaction
//! (`spire-intake:SOURCE:PARTITION`) whose version is the last offset the commit holds. The
//! commit is a compare-and-set ([`Lake::append_cas`]): it lands only if the table still
//! records the offset this intake last saw for each partition. So a consumer that lost its
//! partition in a rebalance, or a zombie after a restart, cannot commit a batch twice; its
//! batch is dropped and it re-reads its position from the table. Each table (`events_raw`
//! and `dead_letters`) keeps its own positions, so a crash between the two commits of a
//! batch is resumed table by table.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;
use spire_core::config::{Intake, Source as SourceConfig};
use spire_lake::tables::{DEAD_LETTERS, EVENTS_RAW};
use spire_lake::{columns, CasOutcome, Lake, TxnAdvance};

use crate::error::{IngestError, Result};
use crate::parse::Parser;
use crate::record::RawRecord;
use crate::replay::sql_text;
use crate::rows::{DeadLettersBuilder, EventsRawBuilder};
use crate::source::{Checkpoints, LakePosition, PartitionStatus, PositionLookup, Source};

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
    /// Batches dropped because another writer had moved a partition on (streams: a
    /// rebalance or a zombie); their records were read again from the table's position.
    pub refused_batches: u64,
    /// Event dates (days since epoch) that received rows: the partitions to clean.
    pub dates: BTreeSet<i32>,
    /// Things the user should know (e.g. empty files).
    pub notes: Vec<String>,
}

/// The application-transaction id that checkpoints one partition of one source.
pub fn checkpoint_id(source: &str, partition: &str) -> String {
    format!("spire-intake:{source}:{partition}")
}

/// The last offset each partition committed to `events_raw` and `dead_letters`, and where
/// a reader resumes (the smaller of the two; `-1` when only one table has seen it).
pub async fn positions(lake: &Lake, source: &str, partitions: &[String]) -> Result<Positions> {
    let ids: Vec<String> = partitions
        .iter()
        .map(|p| checkpoint_id(source, p))
        .collect();
    let raw = lake.txn_versions(EVENTS_RAW, &ids).await?;
    let dead = lake.txn_versions(DEAD_LETTERS, &ids).await?;
    let mut out = Positions::default();
    for (p, id) in partitions.iter().zip(&ids) {
        out.raw.insert(p.clone(), raw.get(id).copied());
        out.dead.insert(p.clone(), dead.get(id).copied());
    }
    Ok(out)
}

/// Where each of `partitions` stands in the lake, for a stream's [`PositionLookup`]; with
/// `anchored`, also the sequence of the record at each partition's anchor offset.
pub async fn lake_positions(
    lake: &Lake,
    source: &str,
    partitions: &[String],
    anchored: bool,
) -> Result<BTreeMap<String, LakePosition>> {
    let p = positions(lake, source, partitions).await?;
    let mut out: BTreeMap<String, LakePosition> = BTreeMap::new();
    for part in partitions {
        let lp = LakePosition {
            raw: p.raw.get(part).copied().flatten(),
            dead: p.dead.get(part).copied().flatten(),
            anchor_sequence: None,
        };
        if lp.raw.is_some() || lp.dead.is_some() {
            out.insert(part.clone(), lp);
        }
    }
    if anchored {
        let wanted: BTreeMap<String, i64> = out
            .iter()
            .filter_map(|(p, lp)| Some((p.clone(), lp.anchor()?)))
            .collect();
        for (part, sequence) in anchor_sequences(lake, source, &wanted).await? {
            if let Some(lp) = out.get_mut(&part) {
                lp.anchor_sequence = Some(sequence);
            }
        }
    }
    Ok(out)
}

/// The `source_sequence` stored with each `(partition, offset)` of `wanted`, from
/// `events_raw` or `dead_letters` (each record is in exactly one of them).
async fn anchor_sequences(
    lake: &Lake,
    source: &str,
    wanted: &BTreeMap<String, i64>,
) -> Result<BTreeMap<String, String>> {
    let mut found = BTreeMap::new();
    if wanted.is_empty() {
        return Ok(found);
    }
    let parts = wanted
        .keys()
        .map(|p| sql_text(p))
        .collect::<Vec<_>>()
        .join(", ");
    let offsets = wanted
        .values()
        .map(|o| o.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let ctx = lake.session();
    for table in [EVENTS_RAW, DEAD_LETTERS] {
        if lake.register_as(&ctx, table, table).await?.is_none()
            || !Lake::has_column(&ctx, table, "source_sequence").await
        {
            continue;
        }
        let sql = format!(
            "SELECT source_partition, source_offset, source_sequence FROM {table} \
             WHERE source = {} AND source_partition IN ({parts}) AND source_offset IN ({offsets}) \
             AND source_sequence IS NOT NULL",
            sql_text(source)
        );
        for b in Lake::query(&ctx, &sql).await? {
            let (p, o, q) = (
                columns::strings(&b, "source_partition")?,
                columns::ints(&b, "source_offset")?,
                columns::strings(&b, "source_sequence")?,
            );
            for r in 0..b.num_rows() {
                if wanted.get(p.value(r)) == Some(&o.value(r)) {
                    found.insert(p.value(r).to_string(), q.value(r).to_string());
                }
            }
        }
    }
    Ok(found)
}

/// Per-partition positions of both intake tables (`None`: never committed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Positions {
    /// `events_raw`.
    pub raw: BTreeMap<String, Option<i64>>,
    /// `dead_letters`.
    pub dead: BTreeMap<String, Option<i64>>,
}

impl Positions {
    /// Where each partition resumes: after the smaller of the two tables' positions;
    /// partitions neither table has seen are absent, `-1` marks one only one table has seen.
    pub fn resume(&self) -> Checkpoints {
        self.raw
            .iter()
            .filter_map(|(p, raw)| {
                let at = LakePosition {
                    raw: *raw,
                    dead: self.dead.get(p).copied().flatten(),
                    anchor_sequence: None,
                };
                Some((p.clone(), at.resume_after()?))
            })
            .collect()
    }
}

/// When [`Intake::run`] returns.
#[derive(Debug, Clone, Copy)]
pub struct RunUntil<'a> {
    /// Streams: keep reading after catching up (`spire ingest --follow`).
    pub follow: bool,
    /// Set (by a signal handler) to finish the current batch and return.
    pub shutdown: Option<&'a AtomicBool>,
    /// Return after the batch in flight at this instant (a follow loop's round).
    pub deadline: Option<Instant>,
}

impl RunUntil<'_> {
    /// Read everything available now, then return.
    pub fn caught_up() -> RunUntil<'static> {
        RunUntil {
            follow: false,
            shutdown: None,
            deadline: None,
        }
    }

    fn stop(&self) -> bool {
        self.shutdown.is_some_and(|s| s.load(Ordering::SeqCst))
            || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// One intake session over one source: keeps the partitions' expected positions between
/// batches (and between the rounds of a follow loop).
pub struct IntakeSession<'a> {
    lake: Lake,
    config: SourceConfig,
    batch_rows: usize,
    parser: Parser,
    source: &'a mut dyn Source,
    now: i64,
    /// Per table, per partition: the offset this session last saw committed.
    expected_raw: BTreeMap<String, Option<i64>>,
    expected_dead: BTreeMap<String, Option<i64>>,
    epoch: u64,
    report: IntakeReport,
}

impl<'a> IntakeSession<'a> {
    /// Opens a session: a bounded source is positioned from the tables now; a stream gets
    /// a lookup it calls whenever the broker assigns it partitions (which needs Tokio's
    /// multi-threaded runtime, as the lookup reads the lake from inside the stream's poll).
    pub async fn start(
        lake: &Lake,
        config: &SourceConfig,
        intake: &Intake,
        source: &'a mut dyn Source,
        ingest_id: &str,
    ) -> Result<IntakeSession<'a>> {
        let now = chrono::Utc::now().timestamp_micros();
        let mut session = IntakeSession {
            lake: lake.clone(),
            config: config.clone(),
            batch_rows: intake.batch_rows,
            parser: Parser::new(config, intake, now),
            source,
            now,
            expected_raw: BTreeMap::new(),
            expected_dead: BTreeMap::new(),
            epoch: 0,
            report: IntakeReport {
                source: config.name.clone(),
                ingest_id: ingest_id.to_string(),
                ..Default::default()
            },
        };
        if session.source.is_stream() {
            let handle = tokio::runtime::Handle::current();
            if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
                return Err(IngestError::InvalidInput(format!(
                    "source `{}` is a stream: its intake needs Tokio's multi-threaded runtime",
                    config.name
                )));
            }
            let lake = lake.clone();
            let name = config.name.clone();
            let anchored = session.source.anchored();
            let lookup: PositionLookup = Arc::new(move |partitions: &[String]| {
                handle.block_on(lake_positions(&lake, &name, partitions, anchored))
            });
            session.source.set_position_lookup(lookup);
            session.epoch = session.source.assignment_epoch();
        } else {
            let partitions = session.source.partitions();
            let p = positions(lake, &config.name, &partitions).await?;
            session
                .source
                .seek(&p.resume().into_iter().filter(|(_, v)| *v >= 0).collect())?;
            session.expected_raw = p.raw;
            session.expected_dead = p.dead;
        }
        Ok(session)
    }

    /// The counts so far. `dates` holds the dates since the last [`IntakeSession::take_dates`].
    pub fn report(&self) -> &IntakeReport {
        &self.report
    }

    /// The event dates that received rows since the last call (a follow loop cleans them).
    pub fn take_dates(&mut self) -> BTreeSet<i32> {
        std::mem::take(&mut self.report.dates)
    }

    /// Position and lag of each partition a stream holds.
    pub fn status(&self) -> Vec<PartitionStatus> {
        self.source.status()
    }

    /// When the stream's broker last answered (see [`Source::last_contact`]).
    pub fn last_contact(&self) -> Option<Instant> {
        self.source.last_contact()
    }

    /// Asks the stream's broker for a sign of life now (see [`Source::probe`]); a blocking
    /// network call, run on a blocking-capable thread.
    pub fn probe(&mut self) -> bool {
        let source = &mut *self.source;
        tokio::task::block_in_place(|| source.probe())
    }

    /// The stream's last complaint, for messages.
    pub fn last_error(&self) -> Option<String> {
        self.source.last_error()
    }

    /// Ends the session with its report.
    pub fn finish(mut self) -> IntakeReport {
        self.report.notes = self.source.notes();
        self.report
    }

    /// Reads and commits batches until `until` says stop (or, without `follow`, until the
    /// source is exhausted or caught up). `progress` gets the records read so far after
    /// each commit.
    pub async fn run(
        &mut self,
        until: RunUntil<'_>,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<()> {
        loop {
            if until.stop() {
                return Ok(());
            }
            let batch = if self.source.is_stream() {
                let (source, rows) = (&mut *self.source, self.batch_rows);
                tokio::task::block_in_place(|| source.next_batch(rows))?
            } else {
                self.source.next_batch(self.batch_rows)?
            };
            match batch {
                Some(batch) => {
                    self.commit(batch).await?;
                    progress(self.report.read);
                }
                None => {
                    if until.follow {
                        continue;
                    }
                    let source = &mut *self.source;
                    let done = if source.is_stream() {
                        tokio::task::block_in_place(|| source.caught_up())?
                    } else {
                        true
                    };
                    if done {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// The offsets this session last saw committed to `table`, per partition.
    fn expected(&self, table: Table) -> &BTreeMap<String, Option<i64>> {
        match table {
            Table::Raw => &self.expected_raw,
            Table::Dead => &self.expected_dead,
        }
    }

    /// Makes sure the expected positions of `partitions` are known, re-reading them after
    /// an assignment change.
    async fn know(&mut self, partitions: &BTreeSet<&str>) -> Result<()> {
        let epoch = self.source.assignment_epoch();
        if epoch != self.epoch {
            self.expected_raw.clear();
            self.expected_dead.clear();
            self.epoch = epoch;
        }
        let missing: Vec<String> = partitions
            .iter()
            .filter(|p| !self.expected_raw.contains_key(**p))
            .map(|p| p.to_string())
            .collect();
        if !missing.is_empty() {
            let p = positions(&self.lake, &self.config.name, &missing).await?;
            self.expected_raw.extend(p.raw);
            self.expected_dead.extend(p.dead);
        }
        Ok(())
    }

    /// Parses and commits one batch (dead letters, then events). Returns whether both
    /// commits landed; a refused commit re-positions the source instead.
    async fn commit(&mut self, batch: Vec<RawRecord>) -> Result<bool> {
        let partitions: BTreeSet<&str> = batch
            .iter()
            .map(|r| r.position.partition.as_str())
            .collect();
        self.know(&partitions).await?;
        let ingest_id = self.report.ingest_id.clone();
        let mut raw = EventsRawBuilder::new(&ingest_id, self.now);
        let mut dead = DeadLettersBuilder::new(&ingest_id, self.now);
        let mut last: Checkpoints = Checkpoints::new();
        let mut skipped = 0u64;
        let mut dates = BTreeSet::new();
        let is_after = |m: &BTreeMap<String, Option<i64>>, p: &str, offset: i64| {
            m.get(p).copied().flatten().is_none_or(|c| offset > c)
        };
        // Parsing is per record and pure: spread it over the cores, then build the rows in
        // order.
        let parser = &self.parser;
        let parsed: Vec<_> = batch.par_iter().map(|r| parser.parse(r)).collect();
        for (record, parsed) in batch.iter().zip(parsed) {
            let p = &record.position;
            let e = last.entry(p.partition.clone()).or_insert(p.offset);
            *e = (*e).max(p.offset);
            match parsed {
                Ok(event) => {
                    if !is_after(&self.expected_raw, &p.partition, p.offset) {
                        skipped += 1;
                        continue;
                    }
                    dates.insert(event.ts.div_euclid(86_400_000_000) as i32);
                    raw.push(&event, p);
                }
                Err(reason) => {
                    if !is_after(&self.expected_dead, &p.partition, p.offset) {
                        skipped += 1;
                        continue;
                    }
                    dead.push(&record.payload, p, &reason);
                }
            }
        }
        let name = self.config.name.clone();
        let advances = |expected: &BTreeMap<String, Option<i64>>| -> Vec<TxnAdvance> {
            last.iter()
                .filter(|(p, v)| is_after(expected, p, **v))
                .map(|(p, v)| TxnAdvance {
                    id: checkpoint_id(&name, p),
                    expected: expected.get(p).copied().flatten(),
                    version: *v,
                })
                .collect()
        };
        self.report.already_ingested += skipped;

        fail::fail_point!("intake::before_commit", |_| Err(injected(
            "intake::before_commit"
        )));
        // Dead letters first, so a crash between the commits leaves events to re-read, not
        // dead letters. A one-record batch goes to its record's own table first: an anchored
        // stream resumes from a stored record (see `Source::anchored`).
        let order = if batch.len() == 1 && raw.len() == 1 {
            [Table::Raw, Table::Dead]
        } else {
            [Table::Dead, Table::Raw]
        };
        for (i, table) in order.into_iter().enumerate() {
            if i == 1 {
                fail::fail_point!("intake::between_commits", |_| Err(injected(
                    "intake::between_commits"
                )));
            }
            let txns = advances(self.expected(table));
            if txns.is_empty() {
                continue;
            }
            let (n, rows, partition_by): (u64, _, &[&str]) = match table {
                Table::Raw => (raw.len() as u64, raw.finish()?, &["event_date"]),
                Table::Dead => (dead.len() as u64, dead.finish()?, &[]),
            };
            let outcome = self
                .lake
                .append_cas(table.name(), vec![rows], partition_by, &txns)
                .await?;
            if !self.settle(table, outcome, &last).await? {
                return Ok(false);
            }
            match table {
                Table::Raw => {
                    self.report.accepted += n;
                    self.report.dates.extend(std::mem::take(&mut dates));
                }
                Table::Dead => self.report.dead_lettered += n,
            }
            self.report.read += n;
        }
        fail::fail_point!("intake::after_commit", |_| Err(injected(
            "intake::after_commit"
        )));
        tracing::debug!(source = %self.config.name, read = self.report.read, "intake batch committed");
        self.source.committed(&last);
        Ok(true)
    }

    /// Records a commit's outcome. On a refusal: re-reads the positions of the batch's
    /// partitions and re-positions the source (a stream), or stops (a bounded source,
    /// which only another intake of the same source can race).
    async fn settle(
        &mut self,
        table: Table,
        outcome: CasOutcome,
        last: &Checkpoints,
    ) -> Result<bool> {
        let table_name = table.name();
        match outcome {
            CasOutcome::Committed(_) => {
                let expected = match table {
                    Table::Raw => &mut self.expected_raw,
                    Table::Dead => &mut self.expected_dead,
                };
                // The table now records each partition's batch end (or kept a later one).
                for (p, v) in last {
                    let e = expected.entry(p.clone()).or_default();
                    *e = Some(e.map_or(*v, |c| c.max(*v)));
                }
                Ok(true)
            }
            CasOutcome::Conflict {
                id,
                expected,
                found,
            } => {
                let show = |v: Option<i64>| v.map_or("nothing".to_string(), |v| v.to_string());
                if !self.source.is_stream() {
                    return Err(IngestError::Source {
                        source_name: self.config.name.clone(),
                        message: format!(
                            "another intake of this source committed to `{table_name}` at the \
                             same time ({id}: expected {}, found {}); nothing of this batch was \
                             written to `{table_name}`: run `spire ingest` again once only one \
                             runs",
                            show(expected),
                            show(found)
                        ),
                    });
                }
                tracing::info!(source = %self.config.name, table = table_name, id, expected = %show(expected),
                    found = %show(found), "batch refused: another consumer moved the partition on; re-reading the position from the table");
                self.report.refused_batches += 1;
                let parts: Vec<String> = last.keys().cloned().collect();
                let p = positions(&self.lake, &self.config.name, &parts).await?;
                let resume = p.resume();
                self.expected_raw.extend(p.raw);
                self.expected_dead.extend(p.dead);
                let source = &mut *self.source;
                tokio::task::block_in_place(|| source.seek(&resume))?;
                Ok(false)
            }
        }
    }
}

/// The two tables intake commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    /// `events_raw`.
    Raw,
    /// `dead_letters`.
    Dead,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Raw => EVENTS_RAW,
            Table::Dead => DEAD_LETTERS,
        }
    }
}

/// The error a failure point returns (tests inject crashes around the commits with them).
#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
fn injected(point: &str) -> IngestError {
    IngestError::InvalidInput(format!("failure injected at {point}"))
}

/// Reads `source` to exhaustion (a stream: until caught up) into the lake. `progress` is
/// called with the records read so far after each commit.
pub async fn ingest(
    lake: &Lake,
    config: &SourceConfig,
    intake: &Intake,
    source: &mut dyn Source,
    ingest_id: &str,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<IntakeReport> {
    let mut session = IntakeSession::start(lake, config, intake, source, ingest_id).await?;
    session.run(RunUntil::caught_up(), progress).await?;
    Ok(session.finish())
}
