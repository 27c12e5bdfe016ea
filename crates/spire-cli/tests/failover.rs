//! Failover from Kafka to Kinesis and back, with `spire ingest --follow`: both streams carry
//! the same events (as mirrored deployments run them). The test's own Kafka broker (tansu)
//! disappears mid-stream (its gate cuts every connection and refuses new ones; the broker
//! keeps its data) while the producers keep writing to both; the follower switches to
//! Kinesis, then back to Kafka once the broker answers again. At the end `events` holds every event exactly once, the
//! Kafka partitions are gap-free in `events_raw`, and the status lines say which source was
//! read and why it switched.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod streams;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;
use spire_testkit::{KafkaBroker, KafkaTopic, KinesisStream};
use streams::{int, payload, spire, sql};

const EVENTS: usize = 6_000;
const SLICES: usize = 30;
/// Every BAD-th record is malformed.
const BAD: usize = 101;

/// Rows of both intake tables read from `source`.
fn rows_from(project: &str, source: &str) -> i64 {
    let q = format!(
        "SELECT (SELECT count(*) FROM events_raw WHERE source = '{source}') + \
                (SELECT count(*) FROM dead_letters WHERE source = '{source}') AS n"
    );
    // Before the first commit the tables do not exist yet.
    match spire(project, &["sql", &q]).output() {
        Ok(out) if out.status.success() => {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            let rows = v
                .as_array()
                .cloned()
                .or_else(|| v.get("rows").and_then(Value::as_array).cloned())
                .unwrap();
            int(&rows[0], "n")
        }
        _ => 0,
    }
}

/// Waits until `done`; on timeout stops the follower and fails with what it printed.
async fn wait_for(
    what: &str,
    limit: Duration,
    follower: &mut Option<Child>,
    logs: &Path,
    mut done: impl FnMut() -> bool,
) {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > limit {
            let mut child = follower.take().unwrap();
            let _ = child.kill();
            let _ = child.wait();
            let read = |name: &str| std::fs::read_to_string(logs.join(name)).unwrap_or_default();
            panic!(
                "{what}: not within {limit:?}\n--- follower stdout:\n{}\n--- stderr:\n{}",
                read("follower.out"),
                read("follower.err")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_fails_over_to_kinesis_and_back_without_losing_an_event() {
    let broker = KafkaBroker::spawn().await;
    let topic = KafkaTopic::create_on(&broker.brokers, "spire-failover", 2).await;
    let stream = KinesisStream::create("spire-failover", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().to_str().unwrap().to_string();
    std::fs::write(
        dir.path().join("spire.toml"),
        format!(
            r#"[project]
name = "failover"

[storage]
lake = "data/lake"

[[sources]]
name = "clicks"
kind = "kafka"
brokers = "{brokers}"
topics = ["{topic}"]
batch_max_wait_ms = 200
fallback = "clicks-kinesis"
failover_after_secs = 3

[sources.options]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"

[[sources]]
name = "clicks-kinesis"
kind = "kinesis"
stream = "{stream}"
region = "us-east-1"
endpoint = "{endpoint}"
batch_max_wait_ms = 200
"#,
            brokers = broker.brokers,
            topic = topic.name,
            stream = stream.name,
            endpoint = stream.endpoint
        ),
    )
    .unwrap();

    // Both streams carry every event, slice by slice. The Kafka producer's deliveries wait
    // while the broker is frozen and go on after; Kinesis keeps taking them.
    let kafka_topic = topic.clone();
    let to_kafka = tokio::spawn(async move {
        let producer = kafka_topic.producer();
        for s in 0..SLICES {
            let slice: Vec<(i32, Vec<u8>)> = (s * EVENTS / SLICES..(s + 1) * EVENTS / SLICES)
                .map(|i| ((i % 2) as i32, payload(i, BAD)))
                .collect();
            kafka_topic.produce(&producer, &slice).await;
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    });
    let kinesis = stream.clone();
    let to_kinesis = tokio::spawn(async move {
        for s in 0..SLICES {
            let slice: Vec<(String, Vec<u8>)> = (s * EVENTS / SLICES..(s + 1) * EVENTS / SLICES)
                .map(|i| (format!("k{i}"), payload(i, BAD)))
                .collect();
            kinesis.put(&slice).await;
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    });

    // Output goes to files: a pipe nobody reads would block the follower once full.
    let out_path = dir.path().join("follower.out");
    let err_path = dir.path().join("follower.err");
    let follower = spire(
        &project,
        &[
            "ingest",
            "--follow",
            "--source",
            "clicks",
            "--clean-every",
            "1s",
        ],
    )
    .env("SPIRE_LOG", "warn,spire_ingest=info,spire_pipeline=info")
    .stdout(std::fs::File::create(&out_path).unwrap())
    .stderr(std::fs::File::create(&err_path).unwrap())
    .spawn()
    .unwrap();
    let pid = follower.id();
    let mut follower = Some(follower);

    // Kafka flows; then the broker stops answering.
    wait_for(
        "records from Kafka",
        Duration::from_secs(120),
        &mut follower,
        dir.path(),
        || rows_from(&project, "clicks") >= 400,
    )
    .await;
    broker.disconnect();
    let kafka_at_pause = rows_from(&project, "clicks");
    // The follower switches to Kinesis and reads it.
    wait_for(
        "records from Kinesis",
        Duration::from_secs(60),
        &mut follower,
        dir.path(),
        || rows_from(&project, "clicks-kinesis") > 0,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.reconnect();

    // The broker answers again: the follower returns to Kafka and reads all of it.
    to_kinesis.await.unwrap();
    to_kafka.await.unwrap();
    wait_for(
        "everything from Kafka",
        Duration::from_secs(180),
        &mut follower,
        dir.path(),
        || {
            rows_from(&project, "clicks") >= EVENTS as i64
                && int(
                    &sql(&project, "SELECT count(DISTINCT event_id) AS d FROM events")[0],
                    "d",
                ) == (EVENTS - EVENTS.div_ceil(BAD)) as i64
        },
    )
    .await;
    // Two more rounds, so the touched dates are cleaned and a status shows Kafka again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = follower.take().unwrap().wait().unwrap();
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    assert!(exit.success(), "SIGTERM is a clean stop: {stderr}");
    let lines: Vec<Value> = std::fs::read_to_string(&out_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statuses: Vec<&Value> = lines.iter().filter_map(|l| l.get("status")).collect();

    // The status lines say which source was read, and why it switched.
    let reading: BTreeSet<&str> = statuses
        .iter()
        .filter_map(|s| s["reading"].as_str())
        .collect();
    assert_eq!(
        reading,
        BTreeSet::from(["clicks", "clicks-kinesis"]),
        "both sources were read"
    );
    assert_eq!(
        statuses.last().unwrap()["reading"],
        "clicks",
        "back on Kafka"
    );
    let switches: Vec<&Value> = statuses
        .iter()
        .flat_map(|s| s["switches"].as_array().unwrap())
        .collect();
    assert!(
        switches.len() >= 2,
        "away and back: {switches:?} (kafka rows at the pause: {kafka_at_pause})"
    );
    assert_eq!(switches[0]["from"], "clicks");
    assert_eq!(switches[0]["to"], "clicks-kinesis");
    assert!(
        switches[0]["reason"]
            .as_str()
            .unwrap()
            .contains("no fetch from `clicks` succeeded for"),
        "{}",
        switches[0]
    );
    let back = switches.last().unwrap();
    assert_eq!(back["to"], "clicks");
    assert!(
        back["reason"].as_str().unwrap().contains("answers again"),
        "{back}"
    );
    let summary = lines.last().unwrap();
    let summarized: Vec<&str> = summary["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["intake"]["source"].as_str().unwrap())
        .collect();
    // The primary's consumers (a fresh one after the outage), then the fallback.
    assert_eq!(summarized.first(), Some(&"clicks"));
    assert_eq!(summarized.last(), Some(&"clicks-kinesis"));

    // Every event exactly once in `events`, whichever stream brought it.
    let events = sql(
        &project,
        "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events",
    );
    let good = (EVENTS - EVENTS.div_ceil(BAD)) as i64;
    assert_eq!(int(&events[0], "n"), good, "events: each good event once");
    assert_eq!(int(&events[0], "d"), good);
    // Kafka's partitions are whole and gap-free; Kinesis added its own copies beside them.
    let kafka = sql(
        &project,
        "SELECT source_partition AS p, count(*) AS n, count(DISTINCT source_offset) AS d, \
                min(source_offset) AS lo, max(source_offset) AS hi \
         FROM (SELECT source_partition, source_offset FROM events_raw WHERE source = 'clicks' \
               UNION ALL SELECT source_partition, source_offset FROM dead_letters \
               WHERE source = 'clicks') t GROUP BY source_partition",
    );
    assert_eq!(kafka.len(), 2, "{kafka:?}");
    for row in &kafka {
        // The producer may write a record twice when its connection is cut mid-request
        // (Kafka producers are at-least-once unless idempotent); each offset is still
        // stored once, and `events` keeps one row per event.
        let n = int(row, "n");
        assert!(n >= (EVENTS / 2) as i64, "every produced offset: {row}");
        assert_eq!(
            (int(row, "d"), int(row, "lo"), int(row, "hi")),
            (n, 0, n - 1),
            "{row}"
        );
    }
    assert!(rows_from(&project, "clicks-kinesis") > 0);
}
