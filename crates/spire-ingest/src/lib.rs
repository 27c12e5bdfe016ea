//! Spire intake: sources, parsing at the edge, dead letters, and the deterministic clean stage.
//!
//! Two layers, as on any Delta lakehouse:
//! - **intake** ([`intake::ingest`]) is stateless: it parses each record and appends it to
//!   `events_raw` with its exact source position, or to `dead_letters` with the reason;
//!   each commit carries the per-partition checkpoint as a Delta application transaction, so
//!   a re-run resumes exactly where the table says it stopped;
//! - **cleaning** ([`clean::clean`]) rebuilds whole event-date partitions of `events` from
//!   `events_raw`: duplicates removed by `event_id`, bots flagged (user-agent patterns and
//!   per-minute rates). Replaying it always gives the same table.

pub mod clean;
mod error;
pub mod intake;
pub mod parse;
pub mod record;
pub mod replay;
pub mod rows;
pub mod source;
pub mod sources;

pub use error::{IngestError, Result};
pub use source::{build_source, Source};

/// Microseconds since the epoch of midnight UTC at the start of `date`.
pub(crate) fn time_micros(date: chrono::NaiveDate) -> i64 {
    spire_core::time::start_of_micros(date)
}

/// RFC 3339 text (UTC, millisecond precision) of an instant in microseconds.
pub(crate) fn rfc3339_micros(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}
