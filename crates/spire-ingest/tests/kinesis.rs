//! Kinesis intake against a real Kinesis-compatible server (kinesalite, from
//! `scripts/kinesis-server.sh`): exactly once into Delta through injected crashes around
//! the commits, a shard split mid-stream and two intakes racing on one stream. Failure
//! points are process-wide, which is why this is its own test binary.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};

use spire_core::config::{Intake, KinesisSettings, Source, SourceKind, StartFrom};
use spire_ingest::intake::{IntakeReport, IntakeSession, RunUntil};
use spire_ingest::sources::kinesis::KinesisSource;
use spire_ingest::IngestError;
use spire_lake::Lake;
use spire_testkit::KinesisStream;

const EVENTS: usize = 30_000;
const SHARDS: i32 = 3;
/// Every BAD-th record is malformed JSON: it must land in `dead_letters`, exactly once.
const BAD: usize = 97;

fn config(stream: &KinesisStream) -> Source {
    Source {
        name: "clicks-kinesis".into(),
        kind: SourceKind::Kinesis(KinesisSettings {
            stream: stream.name.clone(),
            region: Some("us-east-1".into()),
            endpoint: Some(stream.endpoint.clone()),
            start_from: StartFrom::Earliest,
            batch_max_wait_ms: 300,
            batch_max_bytes: 64 << 20,
        }),
        fields: vec![],
        fallback: None,
    }
}

fn intake() -> Intake {
    Intake {
        max_future_skew_secs: 300,
        max_record_bytes: 4096,
        batch_rows: 1_000,
    }
}

fn records(range: std::ops::Range<usize>) -> Vec<(String, Vec<u8>)> {
    range
        .map(|i| {
            let payload = if i.is_multiple_of(BAD) {
                format!(r#"{{"event_id":"e{i}","user_id":"#).into_bytes()
            } else {
                format!(
                    r#"{{"event_id":"e{i}","user_id":"u{}","ts":{},"event_type":"pageview","category":"c{}","user_agent":"Mozilla/5.0"}}"#,
                    i % 2_000,
                    1_793_000_000_000i64 + (i as i64) * 1_000,
                    i % 7
                )
                .into_bytes()
            };
            (format!("u{}", i % 2_000), payload)
        })
        .collect()
}

/// One intake: reads every shard until caught up.
async fn consume(
    lake: &Lake,
    stream: &KinesisStream,
    id: &str,
) -> Result<IntakeReport, IngestError> {
    let config = config(stream);
    let SourceKind::Kinesis(settings) = &config.kind else {
        unreachable!()
    };
    let mut src = KinesisSource::with_client(&config.name, settings, stream.client.clone());
    let mut session = IntakeSession::start(lake, &config, &intake(), &mut src, id).await?;
    session.run(RunUntil::caught_up(), &mut |_| {}).await?;
    Ok(session.finish())
}

/// Every row of both tables: (shard, offset, sequence, table).
async fn rows(lake: &Lake) -> Vec<(String, i64, String, &'static str)> {
    let ctx = lake.session();
    lake.register_all(&ctx).await.unwrap();
    let mut out = Vec::new();
    for table in ["events_raw", "dead_letters"] {
        let batches = Lake::query(
            &ctx,
            &format!("SELECT source_partition, source_offset, source_sequence FROM {table}"),
        )
        .await
        .unwrap();
        for b in &batches {
            let p = spire_lake::columns::strings(b, "source_partition").unwrap();
            let o = spire_lake::columns::ints(b, "source_offset").unwrap();
            let s = spire_lake::columns::strings(b, "source_sequence").unwrap();
            for i in 0..b.num_rows() {
                out.push((
                    p.value(i).to_string(),
                    o.value(i),
                    s.value(i).to_string(),
                    table,
                ));
            }
        }
    }
    out
}

/// Sequence numbers are decimal integers of up to 128 digits: compare them as numbers.
fn seq_key(s: &str) -> (usize, &str) {
    (s.len(), s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kinesis_intake_is_exactly_once_through_crashes_reshards_and_races() {
    // SPIRE_LOG=info shows shard discovery and refused batches.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("SPIRE_LOG"))
        .with_test_writer()
        .try_init();
    let stream = KinesisStream::create("spire-intake", SHARDS).await;
    let first = EVENTS * 2 / 3;
    let mut produced = stream.put(&records(0..first)).await;
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();

    // Crashes injected around the two commits of a batch. Each run stops with the injected
    // error; the next one resumes every shard after the sequence number stored in the lake.
    for (point, plan) in [
        ("intake::between_commits", "1*off->return"),
        ("intake::before_commit", "3*off->return"),
        ("intake::between_commits", "3*off->return"),
        ("intake::after_commit", "2*off->return"),
        ("intake::between_commits", "4*off->return"),
    ] {
        fail::cfg(point, plan).unwrap();
        let err = consume(&lake, &stream, point).await.unwrap_err();
        fail::remove(point);
        assert!(
            err.to_string().contains(point),
            "expected the failure injected at {point}, got: {err}"
        );
    }
    let partial = rows(&lake).await.len();
    assert!(
        partial > 0 && partial < first,
        "the crashed runs committed part of the stream: {partial}"
    );

    // A reshard mid-stream: the rest of the events go to the open shards, two of them new
    // children of the split one, which intake reads only after their parent's end.
    let split = stream.open_shards().await[0].clone();
    let children = stream.split(&split).await;
    assert_eq!(children.len(), 2, "a split makes two shards");
    produced.extend(stream.put(&records(first..EVENTS)).await);
    assert!(
        produced.iter().any(|(s, _)| children.contains(s)),
        "records landed in the children"
    );

    // Two intakes of one stream at once (a zombie next to its replacement): both read
    // every shard; the compare-and-set commits let one of them land each batch, and the
    // other re-reads its position from the table.
    let spawn = |id: &'static str| {
        let (lake, stream) = (lake.clone(), stream.clone());
        tokio::spawn(async move { consume(&lake, &stream, id).await })
    };
    let (a, b) = (spawn("intake-a"), spawn("intake-b"));
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    eprintln!(
        "racing intakes: a read {} ({} refused), b read {} ({} refused)",
        a.read, a.refused_batches, b.read, b.refused_batches
    );
    assert!(a.read + b.read > 0);

    // A late intake finds nothing left to do.
    let late = consume(&lake, &stream, "late").await.unwrap();
    assert_eq!(late.read, 0, "everything was already committed: {late:?}");

    // Every produced record exactly once, under its own shard and sequence number.
    let stored = rows(&lake).await;
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (shard, _, seq, _) in &stored {
        *seen.entry((shard.clone(), seq.clone())).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "records stored twice: {twice:?}");
    let wanted: BTreeSet<(String, String)> = produced.iter().cloned().collect();
    let have: BTreeSet<(String, String)> = seen.keys().cloned().collect();
    let missing: Vec<_> = wanted.difference(&have).take(5).collect();
    assert!(missing.is_empty(), "records never stored: {missing:?}");
    assert_eq!(have, wanted, "nothing stored that was not produced");
    assert_eq!(stored.len(), EVENTS);

    // Per shard, offsets run 0, 1, 2, … without a gap, in sequence-number order.
    let mut by_shard: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
    for (shard, offset, seq, _) in &stored {
        by_shard.entry(shard).or_default().push((*offset, seq));
    }
    assert_eq!(by_shard.len(), SHARDS as usize + 2, "{:?}", by_shard.keys());
    for (shard, mut list) in by_shard {
        list.sort();
        for (i, (offset, _)) in list.iter().enumerate() {
            assert_eq!(*offset, i as i64, "{shard}: offsets without gaps");
        }
        assert!(
            list.windows(2).all(|w| seq_key(w[0].1) < seq_key(w[1].1)),
            "{shard}: offsets follow sequence numbers"
        );
    }
    let dead = stored.iter().filter(|r| r.3 == "dead_letters").count();
    assert_eq!(dead, EVENTS.div_ceil(BAD), "every malformed record, once");
}
