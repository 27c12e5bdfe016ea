//! Arrow schemas and batch builders for `events_raw` and `dead_letters`.

use std::sync::Arc;

use spire_lake::arrow::array::{
    ArrayRef, BinaryBuilder, Date32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use spire_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use spire_lake::LakeError;

use crate::parse::{ParsedEvent, TEXT_FIELDS};
use crate::record::Position;

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Schema of `events_raw`: the canonical event, its source position and intake time.
pub fn events_raw_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("ts", ts_type(), false),
    ];
    for name in &TEXT_FIELDS[2..] {
        fields.push(Field::new(*name, DataType::Utf8, true));
    }
    fields.extend([
        Field::new("dwell_ms", DataType::Int64, true),
        Field::new("received_at", ts_type(), true),
        Field::new("source", DataType::Utf8, false),
        Field::new("source_partition", DataType::Utf8, false),
        Field::new("source_offset", DataType::Int64, false),
        Field::new("ingest_id", DataType::Utf8, false),
        Field::new("ingested_at", ts_type(), false),
        Field::new("event_date", DataType::Date32, false),
        // Last, so tables written before it existed gain it at their end.
        Field::new("source_sequence", DataType::Utf8, true),
    ]);
    Arc::new(Schema::new(fields))
}

/// Schema of `dead_letters`.
pub fn dead_letters_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("source_partition", DataType::Utf8, false),
        Field::new("source_offset", DataType::Int64, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("payload", DataType::Utf8, false),
        Field::new("payload_bytes", DataType::Binary, false),
        Field::new("ingest_id", DataType::Utf8, false),
        Field::new("ingested_at", ts_type(), false),
        Field::new("source_sequence", DataType::Utf8, true),
    ]))
}

/// Accumulates parsed events into an `events_raw` batch.
pub struct EventsRawBuilder {
    text: Vec<StringBuilder>,
    ts: TimestampMicrosecondBuilder,
    dwell: Int64Builder,
    received: TimestampMicrosecondBuilder,
    source: StringBuilder,
    partition: StringBuilder,
    offset: Int64Builder,
    ingest_id: StringBuilder,
    ingested_at: TimestampMicrosecondBuilder,
    date: Date32Builder,
    sequence: StringBuilder,
    ingest: String,
    now: i64,
    rows: usize,
}

impl EventsRawBuilder {
    /// A builder stamping rows with `ingest_id` and `ingested_at` (µs).
    pub fn new(ingest_id: &str, ingested_at: i64) -> EventsRawBuilder {
        EventsRawBuilder {
            text: (0..TEXT_FIELDS.len())
                .map(|_| StringBuilder::new())
                .collect(),
            ts: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            dwell: Int64Builder::new(),
            received: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            source: StringBuilder::new(),
            partition: StringBuilder::new(),
            offset: Int64Builder::new(),
            ingest_id: StringBuilder::new(),
            ingested_at: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            date: Date32Builder::new(),
            sequence: StringBuilder::new(),
            ingest: ingest_id.to_string(),
            now: ingested_at,
            rows: 0,
        }
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no rows were added.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Adds one event.
    pub fn push(&mut self, e: &ParsedEvent, pos: &Position) {
        for (b, v) in self.text.iter_mut().zip(&e.text) {
            b.append_option(v.as_deref());
        }
        self.ts.append_value(e.ts);
        self.dwell.append_option(e.dwell_ms);
        self.received.append_option(e.received_at);
        self.source.append_value(&pos.source);
        self.partition.append_value(&pos.partition);
        self.offset.append_value(pos.offset);
        self.ingest_id.append_value(&self.ingest);
        self.ingested_at.append_value(self.now);
        self.date
            .append_value(e.ts.div_euclid(86_400_000_000) as i32);
        self.sequence.append_option(pos.sequence.as_deref());
        self.rows += 1;
    }

    /// Finishes the batch (resetting the builder).
    pub fn finish(&mut self) -> Result<RecordBatch, LakeError> {
        let mut cols: Vec<ArrayRef> = Vec::new();
        let mut text: Vec<ArrayRef> = self
            .text
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let rest = text.split_off(2);
        cols.extend(text);
        cols.push(Arc::new(self.ts.finish()));
        cols.extend(rest);
        cols.push(Arc::new(self.dwell.finish()));
        cols.push(Arc::new(self.received.finish()));
        cols.push(Arc::new(self.source.finish()));
        cols.push(Arc::new(self.partition.finish()));
        cols.push(Arc::new(self.offset.finish()));
        cols.push(Arc::new(self.ingest_id.finish()));
        cols.push(Arc::new(self.ingested_at.finish()));
        cols.push(Arc::new(self.date.finish()));
        cols.push(Arc::new(self.sequence.finish()));
        self.rows = 0;
        RecordBatch::try_new(events_raw_schema(), cols).map_err(|source| LakeError::Arrow {
            context: "building an events_raw batch".into(),
            source,
        })
    }
}

/// Accumulates rejected records into a `dead_letters` batch.
pub struct DeadLettersBuilder {
    source: StringBuilder,
    partition: StringBuilder,
    offset: Int64Builder,
    reason: StringBuilder,
    payload: StringBuilder,
    bytes: BinaryBuilder,
    ingest_id: StringBuilder,
    ingested_at: TimestampMicrosecondBuilder,
    sequence: StringBuilder,
    ingest: String,
    now: i64,
    rows: usize,
}

impl DeadLettersBuilder {
    /// A builder stamping rows with `ingest_id` and `ingested_at` (µs).
    pub fn new(ingest_id: &str, ingested_at: i64) -> DeadLettersBuilder {
        DeadLettersBuilder {
            source: StringBuilder::new(),
            partition: StringBuilder::new(),
            offset: Int64Builder::new(),
            reason: StringBuilder::new(),
            payload: StringBuilder::new(),
            bytes: BinaryBuilder::new(),
            ingest_id: StringBuilder::new(),
            ingested_at: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            sequence: StringBuilder::new(),
            ingest: ingest_id.to_string(),
            now: ingested_at,
            rows: 0,
        }
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no rows were added.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Adds one rejected record with its reason.
    pub fn push(&mut self, payload: &[u8], pos: &Position, reason: &str) {
        self.source.append_value(&pos.source);
        self.partition.append_value(&pos.partition);
        self.offset.append_value(pos.offset);
        self.reason.append_value(reason);
        self.payload.append_value(String::from_utf8_lossy(payload));
        self.bytes.append_value(payload);
        self.ingest_id.append_value(&self.ingest);
        self.ingested_at.append_value(self.now);
        self.sequence.append_option(pos.sequence.as_deref());
        self.rows += 1;
    }

    /// Finishes the batch (resetting the builder).
    pub fn finish(&mut self) -> Result<RecordBatch, LakeError> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.source.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.payload.finish()),
            Arc::new(self.bytes.finish()),
            Arc::new(self.ingest_id.finish()),
            Arc::new(self.ingested_at.finish()),
            Arc::new(self.sequence.finish()),
        ];
        self.rows = 0;
        RecordBatch::try_new(dead_letters_schema(), cols).map_err(|source| LakeError::Arrow {
            context: "building a dead_letters batch".into(),
            source,
        })
    }
}
