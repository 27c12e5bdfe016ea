use std::io::Write;

use crate::{count, file_source, ingest};
use spire_lake::Lake;

const GOOD: &str = r#"{"event_id":"e1","user_id":"u1","ts":"2026-11-01T10:00:00Z","event_type":"pageview","category":"tech","user_agent":"Mozilla/5.0"}"#;

fn lines() -> Vec<Vec<u8>> {
    let ev = |id: &str, user: &str, ts: &str, ua: &str| {
        format!(r#"{{"event_id":"{id}","user_id":"{user}","ts":"{ts}","event_type":"pageview","category":"tech","user_agent":"{ua}"}}"#)
            .into_bytes()
    };
    let mut v = vec![
        GOOD.as_bytes().to_vec(),
        ev("e2", "u1", "2026-11-01T10:05:00Z", "Mozilla/5.0"),
        GOOD.as_bytes().to_vec(), // duplicate of e1
        b"{not json".to_vec(),    // malformed
        br#"{"event_id":"e3","ts":"2026-11-01T10:00:00Z","event_type":"x"}"#.to_vec(), // no user
        br#"{"event_id":"e4","user_id":"u2","event_type":"x"}"#.to_vec(), // no ts
        br#"{"event_id":"e5","user_id":"u2","ts":"2099-01-01T00:00:00Z","event_type":"x"}"#
            .to_vec(), // future
        br#"{"event_id":"e6","user_id":["u2"],"ts":1730000000,"event_type":"x"}"#.to_vec(), // wrong type
        b"\xff\xfe\x00garbage".to_vec(), // not UTF-8
        b"".to_vec(),                    // blank line
        ev(
            "e7",
            "u3",
            "2026-11-02T08:00:00Z",
            "Googlebot/2.1 (+http://www.google.com/bot.html)",
        ),
    ];
    // u4 fires 8 events in one minute: a rate bot (limit 5/min in these tests).
    for i in 0..8 {
        v.push(ev(
            &format!("r{i}"),
            "u4",
            &format!("2026-11-02T09:00:{:02}Z", i * 5),
            "Mozilla/5.0",
        ));
    }
    v
}

#[tokio::test]
async fn counts_reconcile_exactly_and_reingest_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    for l in lines() {
        f.write_all(&l).unwrap();
        f.write_all(b"\n").unwrap();
    }
    drop(f);
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let source = file_source(path.to_str().unwrap());
    let (report, rec) = ingest(&lake, &source, "first").await;

    assert_eq!(report.read, 19);
    assert_eq!(
        rec.read,
        rec.accepted + rec.dead_lettered + rec.duplicates,
        "{rec:?}"
    );
    assert_eq!(rec.dead_lettered, 7);
    assert_eq!(rec.duplicates, 1);
    assert_eq!(rec.accepted, 11);
    assert_eq!(rec.bot_flagged, 9, "1 crawler event + 8 rate-bot events");
    assert_eq!(count(&lake, "SELECT COUNT(*) FROM events").await, 11);
    assert_eq!(
        count(
            &lake,
            "SELECT COUNT(*) FROM events WHERE is_bot AND bot_reason = 'rate'"
        )
        .await,
        8
    );
    assert_eq!(
        count(
            &lake,
            "SELECT COUNT(*) FROM events WHERE is_bot AND bot_reason = 'user_agent'"
        )
        .await,
        1
    );
    // Every dead letter keeps its position and a reason.
    assert_eq!(
        count(
            &lake,
            "SELECT COUNT(DISTINCT source_offset) FROM dead_letters WHERE reason <> ''"
        )
        .await,
        7
    );
    assert_eq!(count(&lake, "SELECT COUNT(*) FROM dead_letters WHERE source_offset = 9 AND reason LIKE 'not UTF-8%'").await, 1);
    assert_eq!(count(&lake, "SELECT COUNT(*) FROM dead_letters WHERE source_offset = 10 AND reason = 'empty record'").await, 1);

    // The same file again: the checkpoint in the Delta log makes it a no-op.
    let (again, rec2) = ingest(&lake, &source, "second").await;
    assert_eq!(again.read, 0);
    assert_eq!(rec2.accepted, 0);
    assert_eq!(count(&lake, "SELECT COUNT(*) FROM events_raw").await, 12);
    assert_eq!(count(&lake, "SELECT COUNT(*) FROM dead_letters").await, 7);

    // Appended lines are picked up from the checkpoint on.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(br#"{"event_id":"e9","user_id":"u9","ts":1730000000000,"event_type":"click"}"#)
        .unwrap();
    f.write_all(b"\n").unwrap();
    drop(f);
    let (third, rec3) = ingest(&lake, &source, "third").await;
    assert_eq!((third.read, rec3.accepted), (1, 1));
    assert_eq!(
        count(
            &lake,
            "SELECT COUNT(*) FROM events_raw WHERE source_offset = 20"
        )
        .await,
        1
    );

    // Cleaning is deterministic: rebuilding every date gives the same rows.
    let before = count(&lake, "SELECT COUNT(*) FROM events").await;
    spire_ingest::clean::clean(&lake, &crate::cleaning(), None, &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(count(&lake, "SELECT COUNT(*) FROM events").await, before);
}

#[tokio::test]
async fn missing_and_empty_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let missing = file_source(dir.path().join("nope/*.jsonl").to_str().unwrap());
    let err = spire_ingest::build_source(&missing)
        .err()
        .expect("missing files must be an error");
    assert!(err.to_string().contains("no file matches"), "{err}");

    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, b"").unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let mut s = spire_ingest::build_source(&file_source(empty.to_str().unwrap())).unwrap();
    let r = spire_ingest::intake::ingest(
        &lake,
        &file_source(empty.to_str().unwrap()),
        &crate::intake_rules(),
        s.as_mut(),
        "x",
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!(r.read, 0);
    assert!(
        r.notes.iter().any(|n| n.contains("is empty")),
        "{:?}",
        r.notes
    );

    let odd = dir.path().join("events.csv");
    std::fs::write(&odd, GOOD).unwrap();
    let err = spire_ingest::build_source(&file_source(odd.to_str().unwrap()))
        .err()
        .expect("unknown extension");
    assert!(err.to_string().contains("unknown extension"), "{err}");
}

#[tokio::test]
async fn parquet_files_share_the_parser() {
    use spire_lake::arrow::array::{Int64Array, RecordBatch, StringArray};
    use spire_lake::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("uid", DataType::Utf8, true),
        Field::new("time_ms", DataType::Int64, true),
        Field::new("event_type", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![Some("p1"), Some("p2"), Some("p3")])),
            Arc::new(StringArray::from(vec![Some("u1"), None, Some("u3")])),
            Arc::new(Int64Array::from(vec![
                1_730_000_000_000,
                1_730_000_001_000,
                1_730_000_002_000,
            ])),
            Arc::new(StringArray::from(vec!["pageview", "pageview", "click"])),
        ],
    )
    .unwrap();
    let path = dir.path().join("part.parquet");
    let file = std::fs::File::create(&path).unwrap();
    let mut w =
        spire_lake::deltalake::parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let mut source = file_source(dir.path().join("*.parquet").to_str().unwrap());
    source.fields = vec![
        ("event_id".into(), "id".into()),
        ("user_id".into(), "uid".into()),
        ("ts".into(), "time_ms".into()),
    ];
    let (report, rec) = ingest(&lake, &source, "pq").await;
    assert_eq!((report.read, rec.accepted, rec.dead_lettered), (3, 2, 1));
    assert_eq!(count(&lake, "SELECT COUNT(*) FROM dead_letters WHERE reason LIKE '%missing required field `user_id` (mapped from `uid`)%'").await, 1);
}
