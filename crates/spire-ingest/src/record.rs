//! Raw records and their source positions.

/// Where a record came from: exact enough to find it again and to resume after it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    /// The source's name from `spire.toml`.
    pub source: String,
    /// The stream within the source: a file path, a Kafka partition, a synthetic day.
    pub partition: String,
    /// Offset within the partition: a 1-based line or row number, a Kafka offset, a
    /// Kinesis shard's record counter (0 for the first record Spire read of the shard).
    pub offset: i64,
    /// The source's own id of the record where it is not the offset: a Kinesis sequence
    /// number (up to 128 decimal digits, too wide for an `i64`). `None` for other sources.
    pub sequence: Option<String>,
}

/// One record as the source delivered it.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    /// The exact bytes (a JSON document for every current source).
    pub payload: Vec<u8>,
    /// Where it came from.
    pub position: Position,
}
