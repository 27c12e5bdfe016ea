//! The [`Source`] trait and the factory that builds sources from config.

use std::collections::BTreeMap;

use spire_core::config::{Source as SourceConfig, SourceKind};

use crate::error::Result;
use crate::record::RawRecord;
use crate::sources::{file::FileSource, synthetic::SyntheticSource};

/// Checkpoints: for each partition of a source, the last offset already committed.
pub type Checkpoints = BTreeMap<String, i64>;

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
    }
}
