//! Kafka intake against a real Kafka-protocol broker (tansu, from `scripts/kafka-broker.sh`):
//! exactly once into Delta through injected crashes around the commits and through group
//! rebalances. Failure points are process-wide, which is why this is its own test binary.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;

use spire_core::config::{Intake, KafkaSettings, Source, SourceKind, StartFrom};
use spire_ingest::intake::{IntakeReport, IntakeSession, RunUntil};
use spire_ingest::IngestError;
use spire_lake::Lake;
use spire_testkit::KafkaTopic;

const EVENTS: usize = 200_000;
const PARTITIONS: i32 = 4;
/// Every BAD-th record is malformed JSON: it must land in `dead_letters`, exactly once.
const BAD: usize = 97;

fn source(topic: &KafkaTopic, group: &str) -> Source {
    Source {
        name: "clicks".into(),
        kind: SourceKind::Kafka(KafkaSettings {
            brokers: topic.brokers.clone(),
            topics: vec![topic.name.clone()],
            group_id: group.into(),
            start_from: StartFrom::Earliest,
            batch_max_wait_ms: 300,
            batch_max_bytes: 64 << 20,
            options: BTreeMap::from([
                ("session.timeout.ms".to_string(), "6000".to_string()),
                ("heartbeat.interval.ms".to_string(), "500".to_string()),
            ]),
        }),
        fields: vec![],
        fallback: None,
    }
}

fn intake() -> Intake {
    Intake {
        max_future_skew_secs: 300,
        max_record_bytes: 4096,
        batch_rows: 7_000,
    }
}

fn records() -> Vec<(i32, Vec<u8>)> {
    (0..EVENTS)
        .map(|i| {
            let payload = if i.is_multiple_of(BAD) {
                format!(r#"{{"event_id":"e{i}","user_id":"#).into_bytes()
            } else {
                format!(
                    r#"{{"event_id":"e{i}","user_id":"u{}","ts":{},"event_type":"pageview","category":"c{}","user_agent":"Mozilla/5.0"}}"#,
                    i % 5_000,
                    1_793_000_000_000i64 + (i as i64) * 1_000,
                    i % 7
                )
                .into_bytes()
            };
            ((i % PARTITIONS as usize) as i32, payload)
        })
        .collect()
}

/// One consumer: joins the group, reads until its partitions are caught up, leaves.
async fn consume(lake: &Lake, config: &Source, id: &str) -> Result<IntakeReport, IngestError> {
    let mut src = spire_ingest::build_source(config)?;
    let mut session = IntakeSession::start(lake, config, &intake(), src.as_mut(), id).await?;
    session.run(RunUntil::caught_up(), &mut |_| {}).await?;
    Ok(session.finish())
}

/// Per partition: rows, distinct offsets, lowest and highest offset, over both tables.
async fn offsets(lake: &Lake) -> Vec<(String, i64, i64, i64, i64)> {
    let ctx = lake.session();
    lake.register_all(&ctx).await.unwrap();
    let batches = Lake::query(
        &ctx,
        "SELECT source_partition AS p, count(*) AS n, count(DISTINCT source_offset) AS d, \
                min(source_offset) AS lo, max(source_offset) AS hi \
         FROM (SELECT source_partition, source_offset FROM events_raw \
               UNION ALL SELECT source_partition, source_offset FROM dead_letters) t \
         GROUP BY source_partition ORDER BY source_partition",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    for b in &batches {
        let p = spire_lake::columns::strings(b, "p").unwrap();
        let n = spire_lake::columns::ints(b, "n").unwrap();
        let d = spire_lake::columns::ints(b, "d").unwrap();
        let lo = spire_lake::columns::ints(b, "lo").unwrap();
        let hi = spire_lake::columns::ints(b, "hi").unwrap();
        for i in 0..b.num_rows() {
            out.push((
                p.value(i).to_string(),
                n.value(i),
                d.value(i),
                lo.value(i),
                hi.value(i),
            ));
        }
    }
    out
}

/// Where offsets jump or repeat, with the ingest ids around them (for failure messages).
async fn gaps(lake: &Lake) -> String {
    let ctx = lake.session();
    lake.register_all(&ctx).await.unwrap();
    let batches = Lake::query(
        &ctx,
        "SELECT p, o, next_o, id, next_id FROM ( \
           SELECT source_partition AS p, source_offset AS o, ingest_id AS id, \
                  lead(source_offset) OVER (PARTITION BY source_partition ORDER BY source_offset) AS next_o, \
                  lead(ingest_id) OVER (PARTITION BY source_partition ORDER BY source_offset) AS next_id \
           FROM (SELECT source_partition, source_offset, ingest_id FROM events_raw \
                 UNION ALL SELECT source_partition, source_offset, ingest_id FROM dead_letters) t) w \
         WHERE next_o <> o + 1 ORDER BY p, o LIMIT 40",
    )
    .await
    .unwrap();
    spire_lake::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string()
}

async fn table_rows(lake: &Lake, table: &str) -> i64 {
    let ctx = lake.session();
    lake.register_all(&ctx).await.unwrap();
    let b = Lake::query(&ctx, &format!("SELECT count(*) AS n FROM {table}"))
        .await
        .unwrap();
    spire_lake::columns::ints(&b[0], "n").unwrap().value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_intake_is_exactly_once_through_crashes_and_rebalances() {
    // SPIRE_LOG=info shows the rebalances and refused batches.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("SPIRE_LOG"))
        .with_test_writer()
        .try_init();
    let topic = KafkaTopic::create("spire-intake", PARTITIONS).await;
    let producer = topic.producer();
    topic.produce(&producer, &records()).await;
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let group = format!("g-{}", topic.name);
    let config = source(&topic, &group);

    // Crashes injected around the two commits of a batch: before the dead letters, between
    // the dead letters and the events, after both (before the group offsets). Each run
    // stops with the injected error; the next consumer resumes from the tables.
    for (point, plan) in [
        ("intake::between_commits", "3*off->return"),
        ("intake::before_commit", "2*off->return"),
        ("intake::after_commit", "4*off->return"),
        ("intake::between_commits", "1*off->return"),
    ] {
        fail::cfg(point, plan).unwrap();
        let err = consume(&lake, &config, point).await.unwrap_err();
        fail::remove(point);
        assert!(
            err.to_string().contains(point),
            "expected the failure injected at {point}, got: {err}"
        );
    }
    let partial = table_rows(&lake, "events_raw").await;
    assert!(
        partial > 0 && partial < EVENTS as i64,
        "the crashed runs committed part of the stream: {partial}"
    );

    // Two consumers of one group at once: the second one's join rebalances the first; the
    // first one leaving when caught up rebalances the second. Each resumes every partition
    // it is given from the tables' positions.
    let spawn = |id: &'static str| {
        let (lake, config) = (lake.clone(), config.clone());
        tokio::spawn(async move { consume(&lake, &config, id).await })
    };
    let (a, b) = (spawn("consumer-a"), spawn("consumer-b"));
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    assert!(a.read + b.read > 0);

    // A late consumer finds nothing left to do.
    let late = consume(&lake, &config, "late").await.unwrap();
    assert_eq!(late.read, 0, "everything was already committed: {late:?}");

    let per_partition = offsets(&lake).await;
    if per_partition
        .iter()
        .any(|(_, n, d, _, _)| n != d || *n != (EVENTS / 4) as i64)
    {
        eprintln!("gaps and repeats:\n{}", gaps(&lake).await);
    }
    assert_eq!(
        per_partition.len(),
        PARTITIONS as usize,
        "{per_partition:?}"
    );
    for (p, n, distinct, lo, hi) in &per_partition {
        let expected = (EVENTS / PARTITIONS as usize) as i64;
        assert_eq!(*n, expected, "{p}: every record once ({per_partition:?})");
        assert_eq!(*distinct, *n, "{p}: no offset twice");
        assert_eq!((*lo, *hi), (0, expected - 1), "{p}: no gap");
    }
    let dead = table_rows(&lake, "dead_letters").await;
    assert_eq!(
        dead,
        EVENTS.div_ceil(BAD) as i64,
        "every malformed record, once"
    );
    assert_eq!(table_rows(&lake, "events_raw").await + dead, EVENTS as i64);
}
