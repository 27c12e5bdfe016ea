//! `spire ingest --follow` on a real Kinesis-compatible server (kinesalite, from
//! `scripts/kinesis-server.sh`): killed with SIGKILL at random moments while a producer keeps
//! writing, restarted each time, then stopped with SIGINT (Ctrl-C). At the end every
//! produced record is in the lake exactly once under its shard and sequence number, each
//! shard's offsets run without a gap, and `events` holds each event once. A bounded
//! `spire ingest` afterwards finds nothing new.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod streams;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use spire_testkit::KinesisStream;
use streams::{int, ok, payload, spire, sql, text, Lcg};

const EVENTS: usize = 20_000;
const SHARDS: i32 = 3;
const KILLS: usize = 3;
/// Every BAD-th record is malformed: dead letters must be exactly-once too.
const BAD: usize = 101;

fn follow(project: &str) -> Child {
    spire(
        project,
        &[
            "ingest",
            "--follow",
            "--source",
            "clicks",
            "--clean-every",
            "2s",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

fn record(i: usize) -> (String, Vec<u8>) {
    (format!("k{i}"), payload(i, BAD))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_follow_survives_sigkills_and_stops_cleanly_on_sigint() {
    let stream = KinesisStream::create("spire-follow", SHARDS).await;
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
batch_rows = 2000

[[sources]]
name = "clicks"
kind = "kinesis"
stream = "{stream}"
region = "us-east-1"
endpoint = "{endpoint}"
batch_max_wait_ms = 200
"#,
            stream = stream.name,
            endpoint = stream.endpoint
        ),
    )
    .unwrap();

    // The producer writes the stream in 10 slices while the follower is killed and restarted.
    let producer = stream.clone();
    let producing = tokio::spawn(async move {
        let all: Vec<(String, Vec<u8>)> = (0..EVENTS).map(record).collect();
        let mut produced = Vec::new();
        for slice in all.chunks(EVENTS / 10) {
            produced.extend(producer.put(slice).await);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        produced
    });

    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = Lcg(seed);
    for kill in 0..KILLS {
        let mut child = follow(&project);
        let wait = rng.next_ms(1_500, 4_000);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        assert!(
            child.try_wait().unwrap().is_none(),
            "the follower died on its own before kill {kill} (seed {seed}): {}",
            String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr)
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let produced = producing.await.unwrap();

    // A last follower reads to the end of the stream; SIGINT (what Ctrl-C sends) stops it:
    // it commits the batch in flight, cleans, and prints its summary.
    let child = follow(&project);
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
    // One more status round, so the last status line shows the follower at the tip.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "SIGINT is a clean stop (seed {seed}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statuses: Vec<&Value> = lines.iter().filter_map(|l| l.get("status")).collect();
    let last_status = statuses.last().expect("at least one status line");
    let shards = last_status["partitions"].as_array().unwrap();
    assert_eq!(shards.len(), SHARDS as usize, "{last_status}");
    for s in shards {
        assert_eq!(s["behind_ms"].as_i64(), Some(0), "at the tip: {s}");
    }
    let summary = lines.last().unwrap();
    assert_eq!(summary["sources"][0]["intake"]["source"], "clicks");

    // Every produced record exactly once, under its shard and sequence number.
    let stored = sql(
        &project,
        "SELECT source_partition AS p, source_offset AS o, source_sequence AS s FROM events_raw \
         UNION ALL SELECT source_partition, source_offset, source_sequence FROM dead_letters",
    );
    assert_eq!(stored.len(), EVENTS, "every record once (seed {seed})");
    let mut by_sequence: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut by_shard: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for row in &stored {
        let (p, s, o) = (text(row, "p"), text(row, "s"), int(row, "o"));
        assert!(
            by_sequence.insert((p.clone(), s), o).is_none(),
            "stored twice (seed {seed}): {row}"
        );
        by_shard.entry(p).or_default().push(o);
    }
    for (shard, sequence) in &produced {
        assert!(
            by_sequence.contains_key(&(shard.clone(), sequence.clone())),
            "never stored (seed {seed}): {shard} {sequence}"
        );
    }
    for (shard, mut offsets) in by_shard {
        offsets.sort_unstable();
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, expected,
            "{shard}: offsets without gaps (seed {seed})"
        );
    }
    let events = sql(
        &project,
        "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events",
    );
    let good = (EVENTS - EVENTS.div_ceil(BAD)) as i64;
    assert_eq!(int(&events[0], "n"), good, "events: each good record once");
    assert_eq!(int(&events[0], "d"), good);

    // A bounded run finds every shard at the tip and nothing new to read.
    let again = ok(spire(&project, &["ingest", "--source", "clicks"])
        .output()
        .unwrap());
    assert_eq!(
        again["sources"][0]["intake"]["read"].as_u64(),
        Some(0),
        "{again}"
    );
}
