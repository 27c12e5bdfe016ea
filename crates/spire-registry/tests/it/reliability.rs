//! Conformance, reliability: 8 concurrent writers × 10,000 metric points each on one run
//! (through two handles) → every point is stored exactly once.
//!
//! Each writer logs 90 % of its points in `log_batch` calls of 450 and 10 % as single
//! `log_metric` calls, interleaved (80,000 single-point transactions would take minutes in
//! a debug build; 8,000 of them plus 160 batches exercise both paths).

use std::collections::BTreeSet;
use std::time::Instant;

use chrono::DateTime;
use spire_registry::{LogBatch, Metric, Registry, TrackingStore};

use crate::{new_run, TestDb};

crate::conformance!(eight_writers_store_every_metric_exactly_once);

const WRITERS: i64 = 8;
const POINTS: i64 = 10_000;
const ROUND: i64 = 500;
const BATCHED: i64 = 450;

fn point(writer: i64, step: i64) -> Metric {
    Metric {
        key: format!("w{writer}"),
        value: step as f64 + writer as f64 / 10.0,
        step,
        timestamp: DateTime::from_timestamp_millis(1_700_000_000_000 + step).unwrap(),
    }
}

async fn write_all(reg: Registry, run: String, writer: i64) -> Result<(), String> {
    for round in 0..POINTS / ROUND {
        let first = round * ROUND;
        let batch = LogBatch {
            metrics: (first..first + BATCHED).map(|s| point(writer, s)).collect(),
            ..LogBatch::default()
        };
        reg.log_batch(&run, &batch)
            .await
            .map_err(|e| format!("writer {writer}, batch at step {first}: {e:?}"))?;
        for step in first + BATCHED..first + ROUND {
            reg.log_metric(&run, &point(writer, step))
                .await
                .map_err(|e| format!("writer {writer}, step {step}: {e:?}"))?;
        }
    }
    Ok(())
}

pub async fn eight_writers_store_every_metric_exactly_once(t: TestDb) {
    let second = Registry::open(&t.url).await.unwrap();
    let reg = t.reg;
    let run = reg.create_run(new_run("load")).await.unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let handle = if writer % 2 == 0 { &reg } else { &second };
        tasks.push(tokio::spawn(write_all(handle.clone(), run.clone(), writer)));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    eprintln!(
        "{} backend: {} points from {WRITERS} writers in {:.1?}",
        reg.backend(),
        WRITERS * POINTS,
        started.elapsed()
    );

    let stored = reg.get_run(&run).await.unwrap();
    let keys: Vec<&str> = stored.metrics.keys().map(String::as_str).collect();
    assert_eq!(keys, ["w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7"]);
    let mut total = 0;
    for writer in 0..WRITERS {
        let history = second
            .metric_history(&run, &format!("w{writer}"))
            .await
            .unwrap();
        total += history.len();
        assert_eq!(history.len() as i64, POINTS, "count of writer {writer}");
        let steps: BTreeSet<i64> = history.iter().map(|m| m.step).collect();
        assert_eq!(
            steps.len() as i64,
            POINTS,
            "distinct steps of writer {writer}"
        );
        assert_eq!(steps, (0..POINTS).collect::<BTreeSet<i64>>());
        for m in &history {
            assert_eq!(m, &point(writer, m.step), "writer {writer}");
        }
        assert_eq!(stored.metrics[&format!("w{writer}")], history[9_999].value);
    }
    assert_eq!(total as i64, WRITERS * POINTS);
}
