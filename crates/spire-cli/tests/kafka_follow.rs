//! `spire ingest --follow` on a real Kafka-protocol broker (tansu, from
//! `scripts/kafka-broker.sh`): killed with SIGKILL at random moments while a producer keeps
//! writing, restarted each time, then stopped with SIGTERM. At the end every produced record
//! is in the lake exactly once: (partition, offset) unique and gap-free over `events_raw`
//! and `dead_letters`, and `events` holds each event once.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod streams;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use spire_testkit::KafkaTopic;
use streams::{int, payload, spire, sql, Lcg};

const EVENTS: usize = 200_000;
const PARTITIONS: i32 = 4;
const KILLS: usize = 5;
/// Every BAD-th record is malformed: dead letters must be exactly-once too.
const BAD: usize = 101;

fn follow(project: &str, extra: &[&str]) -> Child {
    let mut args = vec![
        "ingest",
        "--follow",
        "--source",
        "clicks",
        "--clean-every",
        "2s",
    ];
    args.extend_from_slice(extra);
    spire(project, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn record(i: usize) -> (i32, Vec<u8>) {
    ((i % PARTITIONS as usize) as i32, payload(i, BAD))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_survives_sigkills_and_stops_cleanly_on_sigterm() {
    let topic = KafkaTopic::create("spire-follow", PARTITIONS).await;
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().to_str().unwrap().to_string();
    std::fs::write(
        dir.path().join("spire.toml"),
        format!(
            r#"[project]
name = "follow"

[storage]
lake = "data/lake"

[intake]
batch_rows = 5000

[[sources]]
name = "clicks"
kind = "kafka"
brokers = "{brokers}"
topics = ["{topic}"]
batch_max_wait_ms = 200

[sources.options]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
"#,
            brokers = topic.brokers,
            topic = topic.name
        ),
    )
    .unwrap();

    // The producer writes the stream in 20 slices while the consumer is killed and restarted.
    let producer_topic = topic.clone();
    let producing = tokio::spawn(async move {
        let producer = producer_topic.producer();
        let all: Vec<(i32, Vec<u8>)> = (0..EVENTS).map(record).collect();
        for slice in all.chunks(EVENTS / 20) {
            producer_topic.produce(&producer, slice).await;
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    });

    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = Lcg(seed);
    for kill in 0..KILLS {
        let mut child = follow(&project, &[]);
        let wait = rng.next_ms(1_500, 6_000);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        assert!(
            child.try_wait().unwrap().is_none(),
            "the follower died on its own before kill {kill} (seed {seed}): {}",
            String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr)
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    producing.await.unwrap();

    // A last follower reads to the end of the stream, compacting the small files the killed
    // ones left on its way, then SIGTERM stops it: it commits the batch in flight, cleans,
    // and prints its summary.
    let child = follow(&project, &["--compact-every", "1s"]);
    let pid = child.id();
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rows = sql(
            &project,
            "SELECT (SELECT count(*) FROM events_raw) + (SELECT count(*) FROM dead_letters) AS n",
        );
        if int(&rows[0], "n") >= EVENTS as i64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the follower did not catch up within 300 s (seed {seed}): {rows:?}"
        );
    }
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "SIGTERM is a clean stop (seed {seed}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Status lines (one per round) carry the lag of each partition; the last line is the
    // run's summary.
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statuses: Vec<&Value> = lines.iter().filter_map(|l| l.get("status")).collect();
    let last_status = statuses.last().expect("at least one status line");
    let partitions = last_status["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), PARTITIONS as usize, "{last_status}");
    for p in partitions {
        assert_eq!(p["lag"].as_i64(), Some(0), "caught up: {p}");
    }
    assert!(
        statuses
            .iter()
            .any(|s| s["compacted_files"].as_u64() > Some(0)),
        "--compact-every compacted the small files: {statuses:?}"
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["sources"][0]["intake"]["source"], "clicks");

    let per_partition = sql(
        &project,
        "SELECT source_partition AS p, count(*) AS n, count(DISTINCT source_offset) AS d, \
                min(source_offset) AS lo, max(source_offset) AS hi \
         FROM (SELECT source_partition, source_offset FROM events_raw \
               UNION ALL SELECT source_partition, source_offset FROM dead_letters) t \
         GROUP BY source_partition ORDER BY source_partition",
    );
    assert_eq!(
        per_partition.len(),
        PARTITIONS as usize,
        "{per_partition:?}"
    );
    let expected = (EVENTS / PARTITIONS as usize) as i64;
    for row in &per_partition {
        assert_eq!(
            int(row, "n"),
            expected,
            "every record once (seed {seed}): {row}"
        );
        assert_eq!(
            int(row, "d"),
            expected,
            "no offset twice (seed {seed}): {row}"
        );
        assert_eq!(
            (int(row, "lo"), int(row, "hi")),
            (0, expected - 1),
            "no gap (seed {seed}): {row}"
        );
    }
    let events = sql(
        &project,
        "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events",
    );
    let good = (EVENTS - EVENTS.div_ceil(BAD)) as i64;
    assert_eq!(int(&events[0], "n"), good, "events: each good record once");
    assert_eq!(int(&events[0], "d"), good);
}
