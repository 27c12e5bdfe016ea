//! Scale: a fleet of 1,000 logistic-regression segment models (50 families × 20 categories)
//! on 50,000 synthetic users runs to completion through `spire scheduler` and four
//! `spire worker` processes sharing one real PostgreSQL registry.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
// The synthetic generator's categories: one family member each.
use spire_ingest::sources::synthetic::CATEGORIES;

const USERS: u32 = 50_000;
/// Days of synthetic events: a week of history before the longest label horizon.
const DAYS: i64 = 14;
const FAMILIES: usize = 50;
const WORKERS: usize = 4;
/// Distinct run times (cron minutes) the families spread over.
const RUN_TIMES: usize = 10;

fn spire(project: &str, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_spire"))
        .args(["--project", project, "--json"])
        .args(args)
        .env("SPIRE_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "spire {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(2000)])
        )
    })
}

/// The project: one synthetic source, one feature set of 32 features (one 28-day window:
/// 5 activity counts, 20 categories, 6 brands, recency), 50 model families of 20 members,
/// each family with its own label horizon, threshold, regularisation and run time.
fn write_project(dir: &std::path::Path, registry: &str) {
    let start = chrono::Utc::now().date_naive() - chrono::Duration::days(DAYS);
    std::fs::write(
        dir.join("spire.toml"),
        format!(
            r#"[project]
name = "fleet"

[storage]
lake = "data/lake"
registry = "{registry}"
artifacts = "data/artifacts"

[[sources]]
name = "clickstream"
kind = "synthetic"
users = {USERS}
days = {DAYS}
seed = 11
start_date = "{start}"

[[feature_sets]]
name = "behaviour"
windows_days = [28]
lateness_hours = 6

[defaults]
test_fraction = 0.25
seed = 7

[scheduler]
lease_secs = 30
"#
        ),
    )
    .unwrap();
    let values = CATEGORIES
        .iter()
        .map(|c| format!("{c:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut segments = String::new();
    for i in 0..FAMILIES {
        let min_count = 1 + i % 2;
        let horizon = 5 + 2 * ((i / 2) % 2);
        let l2 = 1e-4 * (1 + i / 4) as f64;
        let minute = (i % RUN_TIMES) * 5;
        segments.push_str(&format!(
            r#"
[[segment]]
name = "f{i:02}-{{value}}"
kind = "model"
feature_set = "behaviour"
for_each = {{ values = [{values}] }}

[segment.label]
kind = "future_events"
where = "category = '{{value}}'"
min_count = {min_count}
horizon_days = {horizon}

[segment.model]
algorithm = "logistic_regression"
l2 = {l2:e}

[segment.gate]
min_auc = 0.5

[segment.output]
top_fraction = 0.05

[segment.schedule]
cron = "{minute} 5 * * *"
"#
        ));
    }
    std::fs::create_dir_all(dir.join("segments")).unwrap();
    std::fs::write(dir.join("segments/fleet.toml"), segments).unwrap();
}

#[test]
fn a_thousand_models_run_to_completion_with_four_workers_on_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(spire_testkit::PgTestDb::create());
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_str().unwrap();
    write_project(dir.path(), &db.url);

    let started = std::time::Instant::now();
    let lap = |what: &str| eprintln!("{:>6.1} s  {what}", started.elapsed().as_secs_f64());
    spire(p, &["ingest"]);
    lap("ingested");

    // One tick plans the whole fleet; four workers drain the queue between them.
    let tick = json(&spire(p, &["scheduler", "--once"]));
    assert_eq!(tick["due_runs"], 1000, "{tick}");
    let planned = tick["planned_tasks"].as_u64().unwrap();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            Command::new(env!("CARGO_BIN_EXE_spire"))
                .args(["--project", p, "--json", "worker", "--drain"])
                .args(["--id", &format!("w{w}")])
                .env("SPIRE_LOG", "error")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    lap("scheduled");
    let mut ran_by: BTreeMap<String, usize> = BTreeMap::new();
    for (w, child) in workers.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "worker w{w}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with('{'))
            .count();
        ran_by.insert(format!("w{w}"), lines);
    }

    lap("four workers drained the queue");
    // Every task succeeded, and the work spread over the workers.
    let listed = json(&spire(p, &["tasks", "list", "--limit", "10000"]));
    let tasks = listed["tasks"].as_array().unwrap();
    assert_eq!(tasks.len() as u64, planned, "{listed}");
    let failed: Vec<&Value> = tasks.iter().filter(|t| t["state"] != "succeeded").collect();
    assert!(failed.is_empty(), "{failed:?}");
    let mut by_worker: BTreeMap<String, usize> = BTreeMap::new();
    for t in tasks {
        let id = t["task_id"].to_string();
        let logs = json(&spire(p, &["tasks", "logs", &id]));
        let attempts = logs["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "one attempt each: {logs}");
        *by_worker
            .entry(attempts[0]["worker"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(
        by_worker.len() >= 2,
        "the tasks spread over the workers: {by_worker:?} (printed: {ran_by:?})"
    );
    let trains: Vec<&Value> = tasks.iter().filter(|t| t["kind"] == "train").collect();
    assert_eq!(trains.len(), RUN_TIMES, "one fused training per run time");
    let trained: BTreeSet<String> = trains
        .iter()
        .flat_map(|t| t["segments"].as_array().unwrap().iter())
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(trained.len(), 1000);

    // 1,000 tracked training runs, each naming its task, and a registered model for each.
    let runs = json(&spire(p, &["runs", "list", "--limit", "5000"]));
    let runs = runs.as_array().unwrap();
    let tagged: BTreeSet<&str> = runs
        .iter()
        .filter(|r| r["tags"]["spire.task_id"].is_string())
        .filter_map(|r| r["segment"].as_str())
        .collect();
    assert_eq!(tagged.len(), 1000, "{}", runs.len());
    let models = json(&spire(p, &["models", "list"]));
    let champions = models
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["aliases"]["champion"].is_null())
        .count();
    assert!(
        champions >= 950,
        "{champions} of 1000 models passed the gate"
    );

    // The models read 32 features of 50,000 users.
    let features = json(&spire(
        p,
        &["sql", "SELECT * FROM features_behaviour LIMIT 1"],
    ));
    let columns = features[0].as_object().unwrap();
    let ignored = ["user_id", "as_of", "feature_set_version"];
    assert_eq!(
        columns
            .keys()
            .filter(|k| !ignored.contains(&k.as_str()))
            .count(),
        32,
        "{features}"
    );
    let users = json(&spire(
        p,
        &[
            "sql",
            "SELECT COUNT(DISTINCT user_id) AS n FROM features_behaviour",
        ],
    ));
    assert!(users[0]["n"].as_u64().unwrap() >= 45_000, "{users}");

    // Memberships: every champion's segment scored, each (segment, user) once.
    let counts = json(&spire(
        p,
        &[
            "sql",
            "SELECT COUNT(DISTINCT segment) AS segments, COUNT(*) AS rows, \
             COUNT(DISTINCT segment || '/' || user_id || '/' || CAST(as_of AS VARCHAR)) AS distinct_rows \
             FROM segments",
        ],
    ));
    let row = &counts[0];
    assert_eq!(row["rows"], row["distinct_rows"], "{counts}");
    assert!(
        row["segments"].as_u64().unwrap() >= champions as u64,
        "{counts}"
    );
    rt.block_on(db.drop());
}
