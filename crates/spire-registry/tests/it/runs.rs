use spire_core::ErrorKind;
use spire_registry::{NewRun, Registry, RunFilter, RunStatus, TableInput};

use crate::{new_run, temp_registry};

#[tokio::test]
async fn run_lifecycle_round_trips() {
    let (_dir, reg) = temp_registry().await;
    let before = chrono::Utc::now() - chrono::Duration::milliseconds(1);
    let id = reg.create_run(new_run("sports")).await.unwrap();
    assert_eq!(id.len(), 32);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));

    let run = reg.get_run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.segment, "sports");
    assert_eq!(run.experiment, "daily");
    assert_eq!(run.params["model"], "logistic");
    assert_eq!(run.tags["trigger"], "schedule");
    assert_eq!(run.config_hash, "cafebabe");
    assert_eq!(run.spire_version, "0.1.0");
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
    reg.finish_run(&id, RunStatus::Finished, None)
        .await
        .unwrap();
    let err = reg
        .finish_run(&id, RunStatus::Failed, Some("late"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let err = reg
        .finish_run(&id, RunStatus::Running, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    let json = serde_json::to_value(&run).unwrap();
    assert_eq!(json["status"], "finished");
}

#[tokio::test]
async fn failed_run_keeps_its_error() {
    let (_dir, reg) = temp_registry().await;
    let id = reg.create_run(new_run("news")).await.unwrap();
    reg.finish_run(&id, RunStatus::Failed, Some("no positive labels"))
        .await
        .unwrap();
    let run = reg.get_run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.as_deref(), Some("no positive labels"));
}

#[tokio::test]
async fn metric_history_is_ordered_by_step_and_latest_wins() {
    let (_dir, reg) = temp_registry().await;
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

#[tokio::test]
async fn params_are_immutable() {
    let (_dir, reg) = temp_registry().await;
    let id = reg.create_run(new_run("sports")).await.unwrap();
    reg.log_param(&id, "depth", "6").await.unwrap();
    reg.log_param(&id, "depth", "6").await.unwrap();
    let err = reg.log_param(&id, "depth", "8").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let msg = err.to_string();
    assert!(
        msg.contains("depth") && msg.contains("\"6\"") && msg.contains("\"8\""),
        "{msg}"
    );
    // A param given at creation is just as immutable.
    let err = reg.log_param(&id, "model", "gbdt").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(reg.get_run(&id).await.unwrap().params["depth"], "6");
}

#[tokio::test]
async fn unknown_runs_are_not_found_and_named() {
    let (_dir, reg) = temp_registry().await;
    let missing = "0123456789abcdef0123456789abcdef";
    let err = reg.get_run(missing).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains(missing), "{err}");
    for err in [
        reg.log_param(missing, "k", "v").await.unwrap_err(),
        reg.log_metrics(missing, &[("auc".into(), 0.5)], 0)
            .await
            .unwrap_err(),
        reg.set_tag(missing, "k", "v").await.unwrap_err(),
        reg.finish_run(missing, RunStatus::Finished, None)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains(missing), "{err}");
    }
}

#[tokio::test]
async fn invalid_input_is_rejected_before_writing() {
    let (_dir, reg) = temp_registry().await;
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
    let filter = RunFilter {
        limit: 0,
        ..RunFilter::default()
    };
    assert_eq!(
        reg.list_runs(&filter).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(reg.list_runs(&RunFilter::default()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn list_runs_filters_newest_first() {
    let (_dir, reg) = temp_registry().await;
    let mut ids = Vec::new();
    for segment in ["a", "b", "a", "a", "b"] {
        ids.push(reg.create_run(new_run(segment)).await.unwrap());
    }
    reg.log_metrics(&ids[2], &[("auc".into(), 0.7)], 0)
        .await
        .unwrap();
    reg.finish_run(&ids[2], RunStatus::Finished, None)
        .await
        .unwrap();

    let all = reg.list_runs(&RunFilter::default()).await.unwrap();
    let got: Vec<&str> = all.iter().map(|r| r.run_id.as_str()).collect();
    let want: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(got, want);
    assert!(all
        .iter()
        .all(|r| r.params["model"] == "logistic" && r.inputs.len() == 2));

    let a = RunFilter {
        segment: Some("a".into()),
        ..RunFilter::default()
    };
    let got: Vec<String> = reg
        .list_runs(&a)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(got, vec![ids[3].clone(), ids[2].clone(), ids[0].clone()]);

    let finished = RunFilter {
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
    let got: Vec<String> = reg
        .list_runs(&two)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(got, vec![ids[4].clone(), ids[3].clone()]);
}

#[tokio::test]
async fn data_survives_reopening_and_memory_urls_work() {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::db_url(&dir);
    let id = {
        let reg = Registry::open(&url).await.unwrap();
        let id = reg.create_run(new_run("sports")).await.unwrap();
        let wal = dir.path().join("data/spire.db-wal");
        assert!(wal.exists(), "file databases use WAL journaling");
        reg.close().await;
        id
    };
    let reg = Registry::open(&url).await.unwrap();
    assert_eq!(reg.get_run(&id).await.unwrap().segment, "sports");

    let mem = Registry::open("sqlite::memory:").await.unwrap();
    let id = mem.create_run(new_run("x")).await.unwrap();
    assert_eq!(mem.clone().get_run(&id).await.unwrap().segment, "x");

    let err = Registry::open("mysql://localhost/spire").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("mysql://localhost/spire"), "{err}");
}
