//! The [`Source`] trait and the factory that builds sources from config.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use spire_core::config::{Source as SourceConfig, SourceKind};

use crate::error::Result;
use crate::record::RawRecord;
use crate::sources::{
    file::FileSource, kafka::KafkaSource, kinesis::KinesisSource, synthetic::SyntheticSource,
};

/// Checkpoints: for each partition of a source, the last offset already committed. For a
/// stream, `-1` means "nothing committed yet": read the partition from its start.
pub type Checkpoints = BTreeMap<String, i64>;

/// Where one partition of a stream stands in the lake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LakePosition {
    /// The last offset committed to `events_raw` (`None`: never).
    pub raw: Option<i64>,
    /// The last offset committed to `dead_letters` (`None`: never).
    pub dead: Option<i64>,
    /// For a source whose offsets are Spire's own counters ([`Source::anchored`]): the
    /// source's id (Kinesis sequence number) of the record at [`LakePosition::anchor`],
    /// read from the row that holds it.
    pub anchor_sequence: Option<String>,
}

impl LakePosition {
    /// Where a source with absolute offsets (Kafka) resumes: after the smaller of the two
    /// tables' offsets, after `-1` (from the start) when only one table has seen the
    /// partition, `None` when neither has.
    pub fn resume_after(&self) -> Option<i64> {
        match (self.raw, self.dead) {
            (None, None) => None,
            (Some(r), Some(d)) => Some(r.min(d)),
            _ => Some(-1),
        }
    }

    /// Where an anchored source resumes: after the smaller offset any table recorded. The
    /// record at that offset is stored in one of the tables (see [`Source::anchored`]), so
    /// its sequence can be read back.
    pub fn anchor(&self) -> Option<i64> {
        match (self.raw, self.dead) {
            (Some(r), Some(d)) => Some(r.min(d)),
            (one, other) => one.or(other),
        }
    }

    /// Whether both tables hold a position (an anchored source may batch freely).
    pub fn in_both(&self) -> bool {
        self.raw.is_some() && self.dead.is_some()
    }
}

/// How a stream asks the lake where each of a set of partitions stands: called with
/// partition names when the stream takes them (a broker assigns them, or shards are
/// discovered), it returns each partition the lake has seen (absent: never seen, start per
/// the source's settings).
pub type PositionLookup =
    Arc<dyn Fn(&[String]) -> Result<BTreeMap<String, LakePosition>> + Send + Sync>;

/// What a stream knows of one partition it reads, for status output.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PartitionStatus {
    /// Partition name (`topic/partition` for Kafka).
    pub partition: String,
    /// The last offset committed to the lake by this process, if any.
    pub committed: Option<i64>,
    /// The broker's high watermark as last seen (the offset the next produced record gets).
    pub high_watermark: Option<i64>,
    /// Records produced but not yet committed to the lake: `high_watermark - committed - 1`.
    pub lag: Option<i64>,
    /// Kinesis: how far the last read was behind the shard's tip, in milliseconds (Kinesis
    /// has no record count to report as lag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behind_ms: Option<i64>,
}

/// A source of raw records.
///
/// Contract:
/// - `next_batch` yields records in partition order: within one partition, offsets strictly
///   increase; a batch may mix partitions. `Ok(None)` means the source is exhausted for now
///   (a bounded source is done; a stream has nothing buffered).
/// - Every record carries its exact [`Position`](crate::record::Position); the source never
///   re-numbers a record, so a position identifies the record across restarts.
/// - After `seek(checkpoints)`, the source skips every record whose offset is `<=` the
///   checkpoint of its partition: the resume point after a crash or a re-run.
/// - A source never drops a record it could not decode: it delivers the bytes and lets the
///   parser dead-letter them. Only failures to read at all (a missing file) are errors.
/// - A stream ([`Source::is_stream`]) is told its partitions at runtime by a broker. Before
///   its first batch the intake installs a [`PositionLookup`]; whenever partitions are
///   assigned, the stream resumes each one right after the position the lookup returns,
///   never from a broker-side offset. It bumps [`Source::assignment_epoch`] on every
///   assignment change and never returns a batch that mixes records read before and after
///   one. `seek` on a stream re-positions the named partitions it holds (after a refused
///   commit) and leaves the others alone.
/// - An *anchored* stream ([`Source::anchored`]) numbers each partition's records itself,
///   because the source's own ids do not fit an `i64` (Kinesis sequence numbers). It puts
///   the source's id in [`Position::sequence`](crate::record::Position) and resumes after the
///   id the lookup reads back at [`LakePosition::anchor`]. So that this record is always
///   stored, a batch holding a record of a partition not yet in both tables
///   ([`LakePosition::in_both`]) holds that one record only; intake commits a one-record
///   batch to the record's own table first.
pub trait Source: Send {
    /// The source's name (from config).
    fn name(&self) -> &str;
    /// Skips everything at or before the given per-partition offsets.
    fn seek(&mut self, checkpoints: &Checkpoints) -> Result<()>;
    /// Up to `max_records` records, or `None` when exhausted.
    fn next_batch(&mut self, max_records: usize) -> Result<Option<Vec<RawRecord>>>;
    /// The partitions this source will read (known up front for bounded sources).
    fn partitions(&self) -> Vec<String>;
    /// Things the user should be told after reading (e.g. empty files); none by default.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether the source is an unbounded stream whose partitions a broker assigns.
    fn is_stream(&self) -> bool {
        false
    }
    /// Streams: installs how assigned partitions find their position in the lake.
    fn set_position_lookup(&mut self, _lookup: PositionLookup) {}
    /// Streams: whether offsets are Spire's counters anchored on stored sequence numbers
    /// (the lookup then reads [`LakePosition::anchor_sequence`]).
    fn anchored(&self) -> bool {
        false
    }
    /// Streams: a counter bumped whenever partitions are assigned or revoked.
    fn assignment_epoch(&self) -> u64 {
        0
    }
    /// Whether everything available has been read. A bounded source is caught up once
    /// `next_batch` returned `None`; a stream when every assigned partition is read up to
    /// its high watermark (and it holds an assignment at all).
    fn caught_up(&mut self) -> Result<bool> {
        Ok(true)
    }
    /// Streams: the positions just committed to the lake, so the stream can report lag
    /// (Kafka also commits them to the consumer group, for other tools' lag reports).
    fn committed(&mut self, _positions: &Checkpoints) {}
    /// Streams: position and lag of each assigned partition.
    fn status(&self) -> Vec<PartitionStatus> {
        Vec::new()
    }
    /// Streams: when the broker last answered a fetch or a [`Source::probe`] (`None`: not
    /// yet). `spire ingest --follow` switches to a fallback source once this is older than
    /// the source's `failover_after_secs`.
    fn last_contact(&self) -> Option<Instant> {
        None
    }
    /// Streams: asks the broker for a sign of life now (a metadata request, bounded by a
    /// few seconds); returns whether it answered, and moves [`Source::last_contact`] on when
    /// it did. Bounded sources always answer.
    fn probe(&mut self) -> bool {
        true
    }
    /// Streams: the broker's or service's last complaint, for messages.
    fn last_error(&self) -> Option<String> {
        None
    }
}

/// Builds the source described by `config` (the one registration point for source kinds).
pub fn build_source(config: &SourceConfig) -> Result<Box<dyn Source>> {
    match &config.kind {
        SourceKind::File { pattern, format } => {
            Ok(Box::new(FileSource::new(&config.name, pattern, *format)?))
        }
        SourceKind::Synthetic(settings) => Ok(Box::new(SyntheticSource::new(
            &config.name,
            settings.clone(),
        ))),
        SourceKind::Kafka(settings) => Ok(Box::new(KafkaSource::new(&config.name, settings)?)),
        SourceKind::Kinesis(settings) => Ok(Box::new(KinesisSource::new(&config.name, settings))),
    }
}
