//! Conformance: runs, params, metrics, tags, lineage.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use spire_core::ErrorKind;
use spire_registry::{
    LogBatch, Metric, NewRun, RunFilter, RunStatus, TableInput, TrackingStore, MAX_BATCH,
};

use crate::{new_run, TestDb};

crate::conformance!(
    run_lifecycle_round_trips,
    failed_run_keeps_its_error,
    metric_history_is_ordered_by_step_and_latest_wins,
    metric_steps_and_timestamps_round_trip,
    params_are_immutable,
    log_batch_is_all_or_nothing,
    tags_can_be_deleted,
    unknown_runs_are_not_found_and_named,
    invalid_input_is_rejected_before_writing,
    list_runs_filters_newest_first,
    lineage_finds_the_runs_that_read_a_table,
);

fn ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

pub async fn run_lifecycle_round_trips(t: TestDb) {
    let reg = t.reg;
    let before = Utc::now() - chrono::Duration::milliseconds(1);
    let id = reg.create_run(new_run("sports")).await.unwrap();
    assert_eq!(id.len(), 32);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));

    let run = reg.get_run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.segment, "sports");
    assert_eq!(run.experiment, "daily");
    let experiment = reg.get_experiment_by_name("daily").await.unwrap();
    assert_eq!(run.experiment_id, experiment.experiment_id);
    assert_eq!(run.params["model"], "logistic");
    assert_eq!(run.tags["trigger"], "schedule");
    assert_eq!(run.config_hash, "cafebabe");
    assert_eq!(run.spire_version, "0.1.0");
    assert_eq!(run.git_commit.as_deref(), Some("0123abc"));
    assert_eq!(
        run.inputs,
        vec![
            TableInput {
                table: "features".into(),
                version: 12
            },
            TableInput {
                table: "events".into(),
                version: 3
            },
        ],
        "inputs keep their order"
    );
    assert!(run.started_at >= before);
    assert_eq!(run.ended_at, None);

    reg.log_param(&id, "l2", "0.01").await.unwrap();
    reg.set_tag(&id, "trigger", "manual").await.unwrap();
    reg.set_tag(&id, "owner", "ana").await.unwrap();
    reg.log_metrics(&id, &[("auc".into(), 0.8), ("loss".into(), 0.4)], 0)
        .await
        .unwrap();
    reg.log_metrics(&id, &[("auc".into(), 0.85)], 1)
        .await
        .unwrap();
    reg.finish_run(&id, RunStatus::Finished, None)
        .await
        .unwrap();

    let run = reg.get_run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Finished);
    assert!(run.ended_at.is_some_and(|t| t >= run.started_at));
    assert_eq!(run.params.get("l2").map(String::as_str), Some("0.01"));
    assert_eq!(run.tags["trigger"], "manual", "tags are last-write-wins");
    assert_eq!(run.tags["owner"], "ana");
    assert_eq!(run.metrics["auc"], 0.85);
    assert_eq!(run.metrics["loss"], 0.4);
    assert_eq!(run.error, None);

    // Finishing again with the same status is a no-op; with another it is a conflict.
    let ended = run.ended_at;
    reg.finish_run(&id, RunStatus::Finished, None)
        .await
        .unwrap();
    assert_eq!(reg.get_run(&id).await.unwrap().ended_at, ended);
    let err = reg
        .finish_run(&id, RunStatus::Failed, Some("late"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains(&id), "{err}");
    let err = reg
        .finish_run(&id, RunStatus::Running, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(reg.get_run(&id).await.unwrap().status, RunStatus::Finished);

    let json = serde_json::to_value(&run).unwrap();
    assert_eq!(json["status"], "finished");
}

pub async fn failed_run_keeps_its_error(t: TestDb) {
    let reg = t.reg;
    let id = reg.create_run(new_run("news")).await.unwrap();
    reg.finish_run(&id, RunStatus::Failed, Some("no positive labels"))
        .await
        .unwrap();
    let run = reg.get_run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.as_deref(), Some("no positive labels"));
}

pub async fn metric_history_is_ordered_by_step_and_latest_wins(t: TestDb) {
    let reg = t.reg;
    let id = reg.create_run(new_run("sports")).await.unwrap();
    reg.log_metrics(&id, &[("loss".into(), 0.9)], 0)
        .await
        .unwrap();
    reg.log_metrics(&id, &[("loss".into(), 0.5)], 2)
        .await
        .unwrap();
    // Logged later but at an earlier step: history sorts it in, and it is not "latest".
    reg.log_metrics(&id, &[("loss".into(), 0.7)], 1)
        .await
        .unwrap();
    reg.log_metrics(
        &id,
        &[("nan".into(), f64::NAN), ("inf".into(), f64::INFINITY)],
        0,
    )
    .await
    .unwrap();
    reg.log_metrics(&id, &[("ninf".into(), f64::NEG_INFINITY)], 0)
        .await
        .unwrap();

    let history = reg.metric_history(&id, "loss").await.unwrap();
    let points: Vec<(i64, f64)> = history.iter().map(|m| (m.step, m.value)).collect();
    assert_eq!(points, vec![(0, 0.9), (1, 0.7), (2, 0.5)]);
    assert!(history.iter().all(|m| m.key == "loss"));

    let run = reg.get_run(&id).await.unwrap();
    assert_eq!(run.metrics["loss"], 0.5, "latest = highest step");
    assert!(run.metrics["nan"].is_nan());
    assert_eq!(run.metrics["inf"], f64::INFINITY);
    assert_eq!(run.metrics["ninf"], f64::NEG_INFINITY);
    let nan = reg.metric_history(&id, "nan").await.unwrap();
    assert!(nan[0].value.is_nan());

    assert!(reg.metric_history(&id, "never").await.unwrap().is_empty());
    let err = reg.metric_history("nope", "loss").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

pub async fn metric_steps_and_timestamps_round_trip(t: TestDb) {
    let reg = t.reg;
    let id = reg.create_run(new_run("sports")).await.unwrap();
    let point = |value: f64, step: i64, at: i64| Metric {
        key: "auc".into(),
        value,
        step,
        timestamp: ms(at),
    };
    // Same step: ordered by timestamp, then by logging order.
    reg.log_metric(&id, &point(0.3, 5, 1_700_000_000_300))
        .await
        .unwrap();
    reg.log_metric(&id, &point(0.1, 5, 1_700_000_000_100))
        .await
        .unwrap();
    reg.log_metric(&id, &point(0.2, 5, 1_700_000_000_300))
        .await
        .unwrap();
    reg.log_metric(&id, &point(-1.0, -2, 1_800_000_000_000))
        .await
        .unwrap();
    // Sub-millisecond precision is truncated.
    let precise = DateTime::from_timestamp(1_700_000_000, 456_789_000).unwrap();
    reg.log_metric(
        &id,
        &Metric {
            key: "lat".into(),
            value: 1.5,
            step: i64::MAX,
            timestamp: precise,
        },
    )
    .await
    .unwrap();

    let history = reg.metric_history(&id, "auc").await.unwrap();
    let got: Vec<(f64, i64, i64)> = history
        .iter()
        .map(|m| (m.value, m.step, m.timestamp.timestamp_millis()))
        .collect();
    assert_eq!(
        got,
        vec![
            (-1.0, -2, 1_800_000_000_000),
            (0.1, 5, 1_700_000_000_100),
            (0.3, 5, 1_700_000_000_300),
            (0.2, 5, 1_700_000_000_300),
        ]
    );
    let run = reg.get_run(&id).await.unwrap();
    assert_eq!(
        run.metrics["auc"], 0.2,
        "latest: highest step, timestamp, then last"
    );
    let lat = reg.metric_history(&id, "lat").await.unwrap();
    assert_eq!(lat[0].step, i64::MAX);
    assert_eq!(lat[0].timestamp, ms(1_700_000_000_456));
}

pub async fn params_are_immutable(t: TestDb) {
    let reg = t.reg;
    let id = reg.create_run(new_run("sports")).await.unwrap();
    reg.log_param(&id, "depth", "6").await.unwrap();
    reg.log_param(&id, "depth", "6").await.unwrap();
    let err = reg.log_param(&id, "depth", "8").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let msg = err.to_string();
    assert!(
        msg.contains("\"depth\"")
            && msg.contains("\"6\"")
            && msg.contains("\"8\"")
            && msg.contains(&id),
        "{msg}"
    );
    // A param given at creation is just as immutable.
    let err = reg.log_param(&id, "model", "gbdt").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().contains("\"logistic\""), "{err}");
    let run = reg.get_run(&id).await.unwrap();
    assert_eq!(run.params["depth"], "6");
    assert_eq!(run.params["model"], "logistic");
}

pub async fn log_batch_is_all_or_nothing(t: TestDb) {
    let reg = t.reg;
    let id = reg.create_run(new_run("sports")).await.unwrap();
    reg.log_param(&id, "depth", "6").await.unwrap();

    let metrics: Vec<Metric> = (0..450)
        .map(|i| Metric {
            key: format!("k{}", i % 3),
            value: f64::from(i),
            step: i64::from(i / 3),
            timestamp: ms(1_700_000_000_000 + i64::from(i)),
        })
        .collect();
    let conflicting = LogBatch {
        metrics: metrics.clone(),
        params: BTreeMap::from([
            ("depth".to_string(), "8".to_string()),
            ("lr".to_string(), "0.1".to_string()),
        ]),
        tags: BTreeMap::from([("batch".to_string(), "1".to_string())]),
    };
    let err = reg.log_batch(&id, &conflicting).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("\"depth\""), "{err}");
    let run = reg.get_run(&id).await.unwrap();
    assert!(run.metrics.is_empty(), "no metric of the failed batch");
    assert!(
        !run.params.contains_key("lr"),
        "no param of the failed batch"
    );
    assert!(
        !run.tags.contains_key("batch"),
        "no tag of the failed batch"
    );

    let too_big = LogBatch {
        metrics: vec![Metric::now("x", 1.0, 0); MAX_BATCH + 1],
        ..LogBatch::default()
    };
    let err = reg.log_batch(&id, &too_big).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains(&id), "{err}");

    let bad_key = LogBatch {
        metrics: vec![Metric::now(" x", 1.0, 0)],
        ..LogBatch::default()
    };
    assert_eq!(
        reg.log_batch(&id, &bad_key).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );

    reg.log_batch(&id, &LogBatch::default()).await.unwrap();
    let good = LogBatch {
        metrics: metrics.clone(),
        params: BTreeMap::from([
            ("depth".to_string(), "6".to_string()),
            ("lr".to_string(), "0.1".to_string()),
        ]),
        tags: BTreeMap::from([
            ("batch".to_string(), "2".to_string()),
            ("trigger".to_string(), "batch".to_string()),
        ]),
    };
    reg.log_batch(&id, &good).await.unwrap();
    let run = reg.get_run(&id).await.unwrap();
    assert_eq!(run.params["lr"], "0.1");
    assert_eq!(run.tags["batch"], "2");
    assert_eq!(run.tags["trigger"], "batch");
    assert_eq!(run.metrics.len(), 3);
    assert_eq!(run.metrics["k2"], 449.0);
    let k1 = reg.metric_history(&id, "k1").await.unwrap();
    assert_eq!(k1.len(), 150);
    let want: Vec<Metric> = metrics.into_iter().filter(|m| m.key == "k1").collect();
    assert_eq!(k1, want, "every point keeps its step and timestamp");

    let err = reg
        .log_batch("0000", &LogBatch::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

pub async fn tags_can_be_deleted(t: TestDb) {
    let reg = t.reg;
    let id = reg.create_run(new_run("sports")).await.unwrap();
    reg.delete_tag(&id, "trigger").await.unwrap();
    assert!(reg.get_run(&id).await.unwrap().tags.is_empty());
    let err = reg.delete_tag(&id, "trigger").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string().contains("\"trigger\"") && err.to_string().contains(&id),
        "{err}"
    );
    let err = reg.delete_tag("0000", "trigger").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("0000"), "{err}");
}

pub async fn unknown_runs_are_not_found_and_named(t: TestDb) {
    let reg = t.reg;
    let missing = "0123456789abcdef0123456789abcdef";
    let err = reg.get_run(missing).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains(missing), "{err}");
    for err in [
        reg.log_param(missing, "k", "v").await.unwrap_err(),
        reg.log_metrics(missing, &[("auc".into(), 0.5)], 0)
            .await
            .unwrap_err(),
        reg.log_metric(missing, &Metric::now("auc", 0.5, 0))
            .await
            .unwrap_err(),
        reg.set_tag(missing, "k", "v").await.unwrap_err(),
        reg.finish_run(missing, RunStatus::Finished, None)
            .await
            .unwrap_err(),
        reg.metric_history(missing, "auc").await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains(missing), "{err}");
    }
}

pub async fn invalid_input_is_rejected_before_writing(t: TestDb) {
    let reg = t.reg;
    let err = reg
        .create_run(NewRun {
            segment: "s".into(),
            ..NewRun::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let mut bad = new_run("s");
    bad.inputs[0].version = -1;
    let err = reg.create_run(bad).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("\"features\""), "{err}");
    let mut bad = new_run("s");
    bad.params.insert("bad\nkey".into(), "v".into());
    assert_eq!(
        reg.create_run(bad).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let id = reg.create_run(new_run("s")).await.unwrap();
    let err = reg
        .log_metrics(&id, &[(String::new(), 1.0)], 0)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = reg.log_param(&id, &"k".repeat(300), "v").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let filter = RunFilter {
        limit: 0,
        ..RunFilter::default()
    };
    assert_eq!(
        reg.list_runs(&filter).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let runs = reg.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 1, "only the valid run was written");
    assert!(runs[0].metrics.is_empty() && runs[0].params.len() == 1);
}

pub async fn list_runs_filters_newest_first(t: TestDb) {
    let reg = t.reg;
    let mut ids = Vec::new();
    for segment in ["a", "b", "a", "a", "b"] {
        ids.push(reg.create_run(new_run(segment)).await.unwrap());
    }
    let mut weekly = new_run("a");
    weekly.experiment = "weekly".into();
    let weekly = reg.create_run(weekly).await.unwrap();
    reg.log_metrics(&ids[2], &[("auc".into(), 0.7)], 0)
        .await
        .unwrap();
    reg.finish_run(&ids[2], RunStatus::Finished, None)
        .await
        .unwrap();

    let all = reg.list_runs(&RunFilter::default()).await.unwrap();
    let got: Vec<&str> = all.iter().map(|r| r.run_id.as_str()).collect();
    let mut want: Vec<&str> = vec![weekly.as_str()];
    want.extend(ids.iter().rev().map(String::as_str));
    assert_eq!(got, want);
    assert!(all
        .iter()
        .all(|r| r.params["model"] == "logistic" && r.inputs.len() == 2));

    let ids_of = |runs: Vec<spire_registry::Run>| -> Vec<String> {
        runs.into_iter().map(|r| r.run_id).collect()
    };
    let a = RunFilter {
        segment: Some("a".into()),
        ..RunFilter::default()
    };
    let got = ids_of(reg.list_runs(&a).await.unwrap());
    assert_eq!(
        got,
        vec![
            weekly.clone(),
            ids[3].clone(),
            ids[2].clone(),
            ids[0].clone()
        ]
    );

    let daily_a = RunFilter {
        experiment: Some("daily".into()),
        segment: Some("a".into()),
        ..RunFilter::default()
    };
    let got = ids_of(reg.list_runs(&daily_a).await.unwrap());
    assert_eq!(got, vec![ids[3].clone(), ids[2].clone(), ids[0].clone()]);

    let finished = RunFilter {
        experiment: None,
        segment: Some("a".into()),
        status: Some(RunStatus::Finished),
        limit: 10,
    };
    let runs = reg.list_runs(&finished).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].run_id, ids[2]);
    assert_eq!(runs[0].metrics["auc"], 0.7);

    let two = RunFilter {
        limit: 2,
        ..RunFilter::default()
    };
    let got = ids_of(reg.list_runs(&two).await.unwrap());
    assert_eq!(got, vec![weekly, ids[4].clone()]);

    let none = RunFilter {
        experiment: Some("nope".into()),
        ..RunFilter::default()
    };
    assert!(reg.list_runs(&none).await.unwrap().is_empty());
}

pub async fn lineage_finds_the_runs_that_read_a_table(t: TestDb) {
    let reg = t.reg;
    let first = reg.create_run(new_run("a")).await.unwrap(); // events v3, features v12
    let mut later = new_run("b");
    later.inputs = vec![
        TableInput {
            table: "events".into(),
            version: 4,
        },
        TableInput {
            table: "events".into(),
            version: 3,
        },
    ];
    let second = reg.create_run(later).await.unwrap();
    let mut unrelated = new_run("c");
    unrelated.inputs.clear();
    reg.create_run(unrelated).await.unwrap();

    assert_eq!(
        reg.runs_reading("events", Some(3)).await.unwrap(),
        vec![second.clone(), first.clone()],
        "newest first, each run once"
    );
    assert_eq!(
        reg.runs_reading("events", Some(4)).await.unwrap(),
        vec![second.clone()]
    );
    assert_eq!(
        reg.runs_reading("events", None).await.unwrap(),
        vec![second, first.clone()]
    );
    assert_eq!(
        reg.runs_reading("features", Some(12)).await.unwrap(),
        vec![first]
    );
    assert!(reg
        .runs_reading("features", Some(11))
        .await
        .unwrap()
        .is_empty());
    assert!(reg.runs_reading("nobody", None).await.unwrap().is_empty());
    let err = reg.runs_reading("events", Some(-1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}
