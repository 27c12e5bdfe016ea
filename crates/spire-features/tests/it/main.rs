//! Integration tests of partials, snapshots and labels on real Delta tables.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write;
use std::path::Path;

use spire_core::config::{Cleaning, FeatureSet, Intake, Source, SourceKind};
use spire_features::{dataset, partials, snapshot};
use spire_lake::Lake;

fn feature_set() -> FeatureSet {
    FeatureSet {
        name: "b".into(),
        windows_days: vec![1, 7],
        aggregations: spire_core::config::AGGREGATIONS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        categories: Some(vec!["tech".into(), "food".into()]),
        brands: None,
        max_discovered_values: 10,
        lateness_hours: 6,
        session_gap_secs: 1800,
        sql: vec![(
            "plays".into(),
            "SELECT user_id, COUNT(*) AS n_events_sql FROM events GROUP BY user_id".into(),
        )],
        definition_hash: "test".into(),
    }
}

fn event(id: &str, user: &str, ts: &str, received: &str, cat: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","user_id":"{user}","ts":"{ts}","received_at":"{received}","event_type":"pageview","category":"{cat}","brand":"b1","content_id":"c-{id}","dwell_ms":2000}}"#
    )
}

async fn ingest(lake: &Lake, dir: &Path, name: &str, lines: &[String]) {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    drop(f);
    let source = Source {
        name: "f".into(),
        kind: SourceKind::File {
            pattern: path.display().to_string(),
            format: None,
        },
        fields: vec![],
        fallback: None,
    };
    let intake = Intake {
        max_future_skew_secs: 300,
        max_record_bytes: 1 << 20,
        batch_rows: 1000,
    };
    let mut s = spire_ingest::build_source(&source).unwrap();
    let r = spire_ingest::intake::ingest(lake, &source, &intake, s.as_mut(), name, &mut |_| {})
        .await
        .unwrap();
    let cleaning = Cleaning {
        bot_user_agent_patterns: vec![],
        max_events_per_user_per_minute: 100,
    };
    let dates = r
        .dates
        .iter()
        .map(|d| spire_core::time::date_from_days(*d))
        .collect();
    spire_ingest::clean::clean(lake, &cleaning, Some(dates), &mut |_, _| {})
        .await
        .unwrap();
}

async fn snapshot_rows(
    lake: &Lake,
    fs: &FeatureSet,
    as_of: chrono::NaiveDate,
) -> dataset::FeatureMatrix {
    partials::refresh(lake, fs, &mut |_, _| {}).await.unwrap();
    snapshot::build(lake, fs, as_of).await.unwrap();
    let (ctx, v) = dataset::features_session(lake, &fs.name).await.unwrap();
    dataset::load(&ctx, &fs.name, v, as_of).await.unwrap()
}

fn value(m: &dataset::FeatureMatrix, user: &str, col: &str) -> f64 {
    let r = m.user_ids.iter().position(|u| u == user).unwrap();
    let c = m
        .columns
        .iter()
        .position(|c| c == col)
        .unwrap_or_else(|| panic!("no column {col} in {:?}", m.columns));
    m.values[r * m.columns.len() + c]
}

#[tokio::test]
async fn snapshots_are_point_in_time_correct() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let fs = feature_set();
    let as_of = spire_core::time::parse_date("2026-11-10").unwrap();
    ingest(
        &lake,
        dir.path(),
        "a.jsonl",
        &[
            event(
                "1",
                "u1",
                "2026-11-09T10:00:00Z",
                "2026-11-09T10:00:01Z",
                "tech",
            ),
            event(
                "2",
                "u1",
                "2026-11-09T10:10:00Z",
                "2026-11-09T10:10:01Z",
                "tech",
            ),
            event(
                "3",
                "u1",
                "2026-11-05T10:00:00Z",
                "2026-11-05T10:00:01Z",
                "food",
            ),
            // Late, but within the 6 h allowance after the cut-off: counts.
            event(
                "4",
                "u2",
                "2026-11-09T23:00:00Z",
                "2026-11-10T05:00:00Z",
                "food",
            ),
            event(
                "5",
                "u2",
                "2026-11-01T12:00:00Z",
                "2026-11-01T12:00:01Z",
                "tech",
            ),
        ],
    )
    .await;
    let before = snapshot_rows(&lake, &fs, as_of).await;
    assert_eq!(value(&before, "u1", "events_1d"), 2.0);
    assert_eq!(value(&before, "u1", "events_7d"), 3.0);
    assert_eq!(value(&before, "u1", "category_tech_7d"), 2.0);
    assert_eq!(value(&before, "u1", "sessions_1d"), 1.0);
    assert_eq!(value(&before, "u1", "distinct_content_7d"), 3.0);
    assert_eq!(value(&before, "u1", "mean_dwell_s_7d"), 2.0);
    assert_eq!(
        value(&before, "u1", "n_events_sql"),
        3.0,
        "SQL transforms see the same window"
    );
    assert_eq!(value(&before, "u2", "events_1d"), 1.0);
    assert_eq!(
        value(&before, "u2", "events_7d"),
        1.0,
        "the 2026-11-01 event is outside 7 days"
    );
    assert!((value(&before, "u2", "days_since_last") - 1.0 / 24.0).abs() < 1e-9);

    // Events after the cut-off and late arrivals beyond the allowance must not change it.
    ingest(
        &lake,
        dir.path(),
        "b.jsonl",
        &[
            event(
                "6",
                "u1",
                "2026-11-10T00:00:00Z",
                "2026-11-10T00:00:01Z",
                "tech",
            ),
            event(
                "7",
                "u1",
                "2026-11-11T09:00:00Z",
                "2026-11-11T09:00:01Z",
                "tech",
            ),
            event(
                "8",
                "u1",
                "2026-11-09T12:00:00Z",
                "2026-11-10T06:00:01Z",
                "tech",
            ),
            event(
                "9",
                "u3",
                "2026-11-08T12:00:00Z",
                "2026-11-12T00:00:00Z",
                "food",
            ),
        ],
    )
    .await;
    let after = snapshot_rows(&lake, &fs, as_of).await;
    assert_eq!(
        before.user_ids, after.user_ids,
        "u3 arrived too late to be in the snapshot"
    );
    assert_eq!(before.columns, after.columns);
    assert_eq!(before.values, after.values);

    // A later snapshot does see them.
    let later = snapshot_rows(
        &lake,
        &fs,
        spire_core::time::parse_date("2026-11-12").unwrap(),
    )
    .await;
    assert_eq!(value(&later, "u1", "events_7d"), 6.0);
    assert!(later.user_ids.contains(&"u3".to_string()));
}

#[tokio::test]
async fn labels_refuse_incomplete_horizons() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    ingest(
        &lake,
        dir.path(),
        "a.jsonl",
        &[
            event(
                "1",
                "u1",
                "2026-11-09T10:00:00Z",
                "2026-11-09T10:00:01Z",
                "tech",
            ),
            event(
                "2",
                "u1",
                "2026-11-09T11:00:00Z",
                "2026-11-09T11:00:01Z",
                "tech",
            ),
        ],
    )
    .await;
    let ctx = lake.session();
    lake.register_as(&ctx, "events", "events").await.unwrap();
    let label = |h| spire_features::labels::FutureEventsLabel {
        segment: "s".into(),
        predicate: "category = 'tech'".into(),
        min_count: 2,
        horizon_days: h,
    };
    let ok = spire_features::labels::future_events(
        &ctx,
        spire_core::time::parse_date("2026-11-08").unwrap(),
        &[label(2)],
    )
    .await
    .unwrap();
    assert!(ok["s"].contains("u1"));
    let err = spire_features::labels::future_events(
        &ctx,
        spire_core::time::parse_date("2026-11-08").unwrap(),
        &[label(7)],
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("complete only before 2026-11-10"),
        "{err}"
    );
}
