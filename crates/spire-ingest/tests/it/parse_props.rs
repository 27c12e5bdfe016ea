//! Property tests of the edge parser: whatever bytes arrive, parsing returns an event or a
//! reason (never a panic), and a well-formed event survives it intact.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use spire_core::config::{Intake, Source, SourceKind};
use spire_ingest::parse::Parser;
use spire_ingest::record::{Position, RawRecord};

/// Receive time of every test record: 2023-11-14T22:13:20Z.
const NOW_MICROS: i64 = 1_700_000_000_000_000;
const MAX_BYTES: u64 = 2048;

fn parser(fields: Vec<(String, String)>) -> Parser {
    let source = Source {
        name: "props".into(),
        kind: SourceKind::File {
            pattern: "x".into(),
            format: None,
        },
        fields,
        fallback: None,
    };
    let intake = Intake {
        max_future_skew_secs: 300,
        max_record_bytes: MAX_BYTES,
        batch_rows: 10,
    };
    Parser::new(&source, &intake, NOW_MICROS)
}

fn record(payload: Vec<u8>) -> RawRecord {
    RawRecord {
        payload,
        position: Position {
            source: "props".into(),
            partition: "p".into(),
            offset: 1,
            sequence: None,
        },
    }
}

/// Any JSON value, nested a few levels, with keys often named like canonical fields.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("event_id".to_string()),
        Just("user_id".to_string()),
        Just("ts".to_string()),
        Just("event_type".to_string()),
        Just("dwell_ms".to_string()),
        Just("received_at".to_string()),
        "[a-z_]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        (0i64..4_000_000_000_000).prop_map(|n| Value::String(n.to_string())),
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary bytes: an event or a reason, never a panic; over the limit is refused
    /// by size before anything else.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..3000)) {
        let p = parser(Vec::new());
        let len = bytes.len() as u64;
        match p.parse(&record(bytes)) {
            Ok(event) => prop_assert!(event.text("event_id").is_some()),
            Err(reason) => {
                prop_assert!(!reason.is_empty());
                if len > MAX_BYTES {
                    prop_assert!(reason.contains("byte limit"), "{}", reason);
                }
            }
        }
    }

    /// Arbitrary JSON documents, also through JSON-pointer field mappings: an accepted
    /// event has every required field and a time within the allowed future skew.
    #[test]
    fn arbitrary_json_is_accepted_only_when_complete(
        value in json_value(),
        mapped in any::<bool>(),
    ) {
        let fields = if mapped {
            vec![("user_id".to_string(), "/user/id".to_string())]
        } else {
            Vec::new()
        };
        let p = parser(fields);
        let bytes = serde_json::to_vec(&value).unwrap();
        match p.parse(&record(bytes)) {
            Ok(event) => {
                for field in ["event_id", "user_id", "event_type"] {
                    prop_assert!(event.text(field).is_some_and(|v| !v.is_empty()), "{field}");
                }
                prop_assert!(event.ts >= 0 && event.ts <= NOW_MICROS + 300_000_000);
                prop_assert!(event.dwell_ms.is_none_or(|d| d >= 0));
            }
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
    }

    /// A well-formed event keeps its values; every strict prefix of its bytes is refused.
    #[test]
    fn wellformed_events_round_trip_and_prefixes_are_refused(
        id in "[A-Za-z0-9-]{1,24}",
        user in "[a-z0-9]{1,16}",
        secs in 1_000_000_000i64..1_699_999_000,
        dwell in proptest::option::of(0u32..3_600_000),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut doc = json!({"event_id": id, "user_id": user, "ts": secs, "event_type": "pageview"});
        if let Some(d) = dwell {
            doc["dwell_ms"] = json!(d);
        }
        let bytes = serde_json::to_vec(&doc).unwrap();
        let p = parser(Vec::new());
        let event = p.parse(&record(bytes.clone())).unwrap();
        prop_assert_eq!(event.text("event_id"), Some(id.as_str()));
        prop_assert_eq!(event.text("user_id"), Some(user.as_str()));
        prop_assert_eq!(event.ts, secs * 1_000_000);
        prop_assert_eq!(event.dwell_ms, dwell.map(i64::from));
        let prefix = bytes[..cut.index(bytes.len())].to_vec();
        let reason = p.parse(&record(prefix)).unwrap_err();
        prop_assert!(
            reason.starts_with("malformed JSON") || reason == "empty record",
            "{}", reason
        );
    }
}
