//! Benchmark: one scheduler tick over 10,000 segment models (a `for_each` family spread
//! over feature sets, schedules and time zones). Prints JSON.
//!
//! Usage: bench_tick [--models N] [--registry URL]...
//!
//! Measures `decide` (due runs + batched plan, no I/O; median of 20) and, per registry URL,
//! the first full tick (requeue, read states, decide, enqueue, record progress) and a second
//! tick with nothing due.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use chrono::{DateTime, Utc};
use spire_core::config::{ScheduleSpec, SchedulerConfig};
use spire_core::schedule::Schedule;
use spire_registry::Registry;
use spire_scheduler::scheduler::decide;
use spire_scheduler::{ScheduledModel, Scheduler, Work};

fn fleet(n: usize) -> Vec<ScheduledModel> {
    let schedules = [
        ("0 6 * * *", "Europe/Berlin"),
        ("0 5 * * *", "America/New_York"),
        ("30 4 * * *", "UTC"),
        ("0 */6 * * *", "UTC"),
        ("15 3 * * 1", "Asia/Tokyo"),
    ];
    (0..n)
        .map(|i| {
            let (cron, tz) = schedules[i % schedules.len()];
            let gbdt = i % 50 == 0;
            ScheduledModel {
                name: format!("reads-{i:05}"),
                family: "reads-{value}".into(),
                feature_set: format!("fs{}", i % 20),
                work: Work::Model {
                    algorithm: if gbdt { "gbdt" } else { "logistic_regression" }.into(),
                    fusable: !gbdt,
                },
                schedule: ScheduleSpec {
                    schedule: Some(Schedule::parse(cron, tz).unwrap()),
                    pool: gbdt.then(|| "gbdt".to_string()),
                    ..ScheduleSpec::default()
                },
            }
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut n = 10_000;
    let mut urls = Vec::new();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--models" => {
                n = args[i + 1].parse().unwrap();
                i += 1;
            }
            "--registry" => {
                urls.push(args[i + 1].clone());
                i += 1;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 1;
    }
    let models = fleet(n);
    let now: DateTime<Utc> = "2026-11-23T12:00:00Z".parse().unwrap();
    let state = HashMap::new();
    let mut times = Vec::new();
    let mut tasks = 0;
    for _ in 0..20 {
        let started = Instant::now();
        let (scheduled, plan) = decide(&models, &state, now);
        times.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(scheduled.len(), n);
        tasks = plan.tasks.len();
    }
    times.sort_by(f64::total_cmp);
    let mut out = serde_json::json!({
        "models": n,
        "planned_tasks": tasks,
        "decide_ms_median": times[times.len() / 2],
        "decide_ms_max": times[times.len() - 1],
        "ticks": {},
    });
    for url in urls {
        let registry = Registry::open(&url).await.unwrap();
        let scheduler = Scheduler::new(
            registry.clone(),
            SchedulerConfig {
                max_running: None,
                lease_secs: 60,
                pools: BTreeMap::from([("gbdt".to_string(), 2)]),
                keep_finished_days: Some(30),
            },
        );
        scheduler.sync_pools().await.unwrap();
        let first = scheduler.tick(&models, now).await.unwrap();
        let second = scheduler.tick(&models, now).await.unwrap();
        assert_eq!(first.due_runs, n);
        assert_eq!(second.planned_tasks, 0);
        let backend = registry.backend().to_string();
        out["ticks"][backend] = serde_json::json!({
            "first_tick_ms": first.total_ms,
            "first_tick_decide_ms": first.decide_ms,
            "first_tick_tasks": first.planned_tasks,
            "idle_tick_ms": second.total_ms,
        });
        registry.close().await;
    }
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
