//! Parsing at the edge: one raw record → one canonical event, or the reason it is rejected.
//!
//! Parsing is per record and stateless. Anything that needs other records (duplicates, bot
//! rates) belongs to the clean stage.

use chrono::DateTime;
use serde_json::Value;
use spire_core::config::{Intake, Source as SourceConfig};
use spire_core::schema::{FieldType, EVENT_FIELDS};

use crate::record::RawRecord;

/// A parsed event in the canonical schema (timestamps in microseconds since the epoch).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedEvent {
    /// Text fields in [`EVENT_FIELDS`] order, for the `Text` fields only.
    pub text: Vec<Option<String>>,
    /// Event time.
    pub ts: i64,
    /// Collector receive time, if the record carried one.
    pub received_at: Option<i64>,
    /// Dwell time in milliseconds.
    pub dwell_ms: Option<i64>,
}

impl ParsedEvent {
    /// The value of a text field by canonical name.
    pub fn text(&self, name: &str) -> Option<&str> {
        TEXT_FIELDS
            .iter()
            .position(|f| *f == name)
            .and_then(|i| self.text.get(i))
            .and_then(|v| v.as_deref())
    }
}

/// Canonical text fields, in schema order.
pub const TEXT_FIELDS: [&str; 11] = [
    "event_id",
    "user_id",
    "event_type",
    "brand",
    "category",
    "content_id",
    "url",
    "referrer",
    "user_agent",
    "device",
    "country",
];

/// Parses records of one source.
#[derive(Debug, Clone)]
pub struct Parser {
    /// For each canonical field in [`EVENT_FIELDS`] order: where to find it in the record.
    lookups: Vec<Lookup>,
    max_future_skew_micros: i64,
    max_record_bytes: u64,
    now_micros: i64,
}

#[derive(Debug, Clone)]
enum Lookup {
    Key(String),
    Pointer(String),
}

impl Parser {
    /// A parser for `source` with `intake` rules, judging future skew against `now_micros`.
    pub fn new(source: &SourceConfig, intake: &Intake, now_micros: i64) -> Parser {
        let lookups = EVENT_FIELDS
            .iter()
            .map(|f| {
                let from = source
                    .fields
                    .iter()
                    .find(|(c, _)| c == f.name)
                    .map_or(f.name, |(_, from)| from.as_str());
                if from.starts_with('/') {
                    Lookup::Pointer(from.to_string())
                } else {
                    Lookup::Key(from.to_string())
                }
            })
            .collect();
        Parser {
            lookups,
            max_future_skew_micros: intake.max_future_skew_secs.saturating_mul(1_000_000),
            max_record_bytes: intake.max_record_bytes,
            now_micros,
        }
    }

    /// Parses one record, or returns the reason it goes to `dead_letters`.
    pub fn parse(&self, record: &RawRecord) -> Result<ParsedEvent, String> {
        let bytes = &record.payload;
        if bytes.len() as u64 > self.max_record_bytes {
            return Err(format!(
                "record is {} bytes, over the {} byte limit (intake.max_record_bytes)",
                bytes.len(),
                self.max_record_bytes
            ));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err("empty record".to_string());
        }
        if let Err(e) = std::str::from_utf8(bytes) {
            return Err(format!(
                "not UTF-8: invalid byte at position {}",
                e.valid_up_to()
            ));
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("malformed JSON: {e}"))?;
        let Value::Object(_) = &value else {
            return Err(format!("expected a JSON object, found {}", kind_of(&value)));
        };
        let mut event = ParsedEvent {
            text: vec![None; TEXT_FIELDS.len()],
            ..ParsedEvent::default()
        };
        let mut text_index = 0;
        for (field, lookup) in EVENT_FIELDS.iter().zip(&self.lookups) {
            let raw = match lookup {
                Lookup::Key(k) => value.get(k.as_str()),
                Lookup::Pointer(p) => value.pointer(p),
            };
            let raw = raw.filter(|v| !v.is_null() && v.as_str() != Some(""));
            let source_name = match lookup {
                Lookup::Key(k) | Lookup::Pointer(k) => k.as_str(),
            };
            if raw.is_none() && field.required {
                let mapped = if source_name == field.name {
                    String::new()
                } else {
                    format!(" (mapped from `{source_name}`)")
                };
                return Err(format!("missing required field `{}`{mapped}", field.name));
            }
            match field.ty {
                FieldType::Text => {
                    if let Some(v) = raw {
                        event.text[text_index] = Some(coerce_text(v).map_err(|k| {
                            format!("field `{}`: expected text, found {k}", field.name)
                        })?);
                    }
                    text_index += 1;
                }
                FieldType::Timestamp => {
                    let parsed = raw
                        .map(|v| {
                            coerce_timestamp(v).map_err(|e| format!("field `{}`: {e}", field.name))
                        })
                        .transpose()?;
                    if field.name == "ts" {
                        event.ts = parsed.unwrap_or_default();
                    } else {
                        event.received_at = parsed;
                    }
                }
                FieldType::Integer => {
                    event.dwell_ms = raw
                        .map(|v| {
                            coerce_integer(v).map_err(|e| format!("field `{}`: {e}", field.name))
                        })
                        .transpose()?;
                }
            }
        }
        if event.ts > self.now_micros.saturating_add(self.max_future_skew_micros) {
            let ahead = (event.ts - self.now_micros) / 1_000_000;
            return Err(format!(
                "`ts` is {ahead} s in the future, beyond the {} s allowed (intake.max_future_skew_secs)",
                self.max_future_skew_micros / 1_000_000
            ));
        }
        Ok(event)
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn coerce_text(v: &Value) -> Result<String, &'static str> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(kind_of(other)),
    }
}

/// Epoch numbers: below 1e11 are seconds, below 1e14 milliseconds, otherwise microseconds.
fn epoch_to_micros(x: f64) -> Result<i64, String> {
    if !x.is_finite() || x < 0.0 {
        return Err(format!("{x} is not a valid epoch time"));
    }
    let micros = if x < 1e11 {
        x * 1e6
    } else if x < 1e14 {
        x * 1e3
    } else {
        x
    };
    if micros > 9.0e15 {
        return Err(format!("{x} is too far in the future to be a timestamp"));
    }
    Ok(micros.round() as i64)
}

fn coerce_timestamp(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => epoch_to_micros(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(x) = s.parse::<f64>() {
                return epoch_to_micros(x);
            }
            DateTime::parse_from_rfc3339(s)
                .map(|d| d.timestamp_micros())
                .map_err(|e| {
                    format!("`{s}` is neither RFC 3339 nor epoch seconds/milliseconds ({e})")
                })
        }
        other => Err(format!("expected a timestamp, found {}", kind_of(other))),
    }
}

fn coerce_integer(v: &Value) -> Result<i64, String> {
    let n = match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n >= 0 => Ok(n),
        Some(n) => Err(format!("{n} is negative")),
        None => Err(format!(
            "expected a non-negative integer, found {}",
            kind_of(v)
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::record::Position;
    use spire_core::config::SourceKind;

    fn parser() -> Parser {
        let source = SourceConfig {
            name: "t".into(),
            kind: SourceKind::File {
                pattern: "x".into(),
                format: None,
            },
            fields: vec![("user_id".into(), "/who/id".into())],
            fallback: None,
        };
        let intake = Intake {
            max_future_skew_secs: 60,
            max_record_bytes: 1000,
            batch_rows: 10,
        };
        Parser::new(&source, &intake, 1_700_000_000_000_000)
    }

    fn rec(s: &[u8]) -> RawRecord {
        RawRecord {
            payload: s.to_vec(),
            position: Position {
                source: "t".into(),
                partition: "p".into(),
                offset: 1,
                sequence: None,
            },
        }
    }

    #[test]
    fn parses_and_coerces() {
        let e = parser()
            .parse(&rec(br#"{"event_id":7,"who":{"id":"u1"},"ts":1699999999000,"event_type":"pageview","dwell_ms":"1500"}"#))
            .unwrap();
        assert_eq!(e.text("event_id"), Some("7"));
        assert_eq!(e.text("user_id"), Some("u1"));
        assert_eq!(e.ts, 1_699_999_999_000_000);
        assert_eq!(e.dwell_ms, Some(1500));
        let e = parser()
            .parse(&rec(br#"{"event_id":"a","who":{"id":"u1"},"ts":"2023-11-14T22:13:20Z","event_type":"x"}"#))
            .unwrap();
        assert_eq!(e.ts, 1_700_000_000_000_000);
    }

    #[test]
    fn rejects_with_reasons() {
        let p = parser();
        let cases: &[(&[u8], &str)] = &[
            (b"{not json", "malformed JSON"),
            (
                br#"{"event_id":"a","ts":1,"event_type":"x"}"#,
                "missing required field `user_id` (mapped from `/who/id`)",
            ),
            (
                br#"{"event_id":"a","who":{"id":"u"},"ts":"yesterday","event_type":"x"}"#,
                "neither RFC 3339",
            ),
            (
                br#"{"event_id":"a","who":{"id":"u"},"ts":1800000000,"event_type":"x"}"#,
                "in the future",
            ),
            (
                br#"{"event_id":"a","who":{"id":["u"]},"ts":1,"event_type":"x"}"#,
                "expected text, found an array",
            ),
            (
                br#"{"event_id":"a","who":{"id":"u"},"ts":1,"event_type":"x","dwell_ms":"long"}"#,
                "non-negative integer",
            ),
            (b"\xff\xfe{}", "not UTF-8"),
            (b"  ", "empty record"),
            (b"[1,2]", "expected a JSON object"),
        ];
        for (input, want) in cases {
            let err = p.parse(&rec(input)).unwrap_err();
            assert!(err.contains(want), "{err} should contain {want}");
        }
        let big = vec![b' '; 2000];
        assert!(p.parse(&rec(&big)).unwrap_err().contains("byte limit"));
    }
}
