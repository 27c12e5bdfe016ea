//! Ticks, workers, dead workers, timeouts and the single active scheduler.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use spire_core::config::{ScheduleSpec, SchedulerConfig};
use spire_core::schedule::Schedule;
use spire_registry::tasks::{
    ClaimLimits, Outcome, ScheduleState, Task, TaskFilter, TaskQueue, TaskState,
};
use spire_registry::Registry;
use spire_scheduler::scheduler::{run, LoopEvent};
use spire_scheduler::{
    ScheduledModel, Scheduler, TaskFailure, TaskRunner, Work, Worker, WorkerConfig,
};

use crate::on_both;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn model(name: &str, fs: &str, algorithm: &str, cron: &str) -> ScheduledModel {
    ScheduledModel {
        name: name.into(),
        family: name.into(),
        feature_set: fs.into(),
        work: Work::Model {
            algorithm: algorithm.into(),
            fusable: algorithm == "logistic_regression",
        },
        schedule: ScheduleSpec {
            schedule: Some(Schedule::parse(cron, "UTC").unwrap()),
            retry_backoff_secs: 1,
            ..ScheduleSpec::default()
        },
    }
}

fn fleet() -> Vec<ScheduledModel> {
    let mut models: Vec<ScheduledModel> = (0..6)
        .map(|i| {
            model(
                &format!("reads-{i}"),
                "behaviour",
                "logistic_regression",
                "0 6 * * *",
            )
        })
        .collect();
    let mut gbdt = model("buyers", "behaviour", "gbdt", "0 6 * * *");
    gbdt.schedule.pool = Some("gbdt".into());
    models.push(gbdt);
    models.push(model(
        "brand-x",
        "brands",
        "logistic_regression",
        "0 6 * * *",
    ));
    models
}

fn config() -> SchedulerConfig {
    SchedulerConfig {
        max_running: None,
        lease_secs: 60,
        pools: BTreeMap::from([("gbdt".to_string(), 1)]),
        keep_finished_days: Some(30),
    }
}

/// A test stage runner: records the order tasks ran in; can sleep or fail on demand.
#[derive(Default, Clone)]
struct Recorder {
    ran: Arc<Mutex<Vec<String>>>,
    sleep_first: Option<Duration>,
}

impl TaskRunner for Recorder {
    async fn run(&self, task: &Task) -> Result<Value, TaskFailure> {
        if let Some(d) = self.sleep_first {
            if task.attempts == 1 {
                tokio::time::sleep(d).await;
            }
        }
        if task.payload["segments"]
            .as_array()
            .is_none_or(|s| s.is_empty())
        {
            return Err(TaskFailure::permanent("a task without segments"));
        }
        let label = format!(
            "{}[{}]@{}",
            task.key.kind,
            task.key.key,
            task.key.logical_time.format("%d")
        );
        self.ran.lock().unwrap().push(label.clone());
        Ok(json!({"ran": label}))
    }
}

fn worker(registry: &Registry, id: &str, lease: Duration) -> Worker {
    Worker::new(
        registry.clone(),
        WorkerConfig {
            id: id.into(),
            lease,
            limits: ClaimLimits::default(),
            idle_poll: Duration::from_millis(20),
        },
    )
}

/// `Worker::drain`, counting the tasks it ran.
async fn drain(w: &Worker, runner: &Recorder) -> usize {
    let mut n = 0;
    w.drain(runner, |_| n += 1).await.unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_enqueue_each_run_once_and_workers_follow_dependencies() {
    on_both(|url| async move {
        let registry = Registry::open(&url).await.unwrap();
        let scheduler = Scheduler::new(registry.clone(), config());
        scheduler.sync_pools().await.unwrap();
        let models = fleet();
        let now = utc("2026-11-20T06:30:00Z");
        let first = scheduler.tick(&models, now).await.unwrap();
        assert_eq!(first.due_runs, 8);
        // snapshot×2, train fused×2 + gbdt, score×2, publish.
        assert_eq!(first.planned_tasks, 8);
        let again = scheduler.tick(&models, now).await.unwrap();
        assert_eq!(
            (again.due_runs, again.planned_tasks),
            (0, 0),
            "nothing twice"
        );
        let all = registry
            .list_tasks(&TaskFilter {
                limit: 100,
                ..TaskFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 8);
        let state = registry.schedule_state("reads-3").await.unwrap().unwrap();
        assert_eq!(state.last_logical_time, Some(utc("2026-11-20T06:00:00Z")));

        // Pause one model: the next day it is not due, the others are.
        registry.set_paused("brand-x", true).await.unwrap();
        let next = scheduler
            .tick(&models, utc("2026-11-21T06:00:00Z"))
            .await
            .unwrap();
        assert_eq!(next.due_runs, 7);

        // Two workers drain the queue; every task runs once, after its dependencies.
        let runner = Recorder::default();
        let (a, b) = (
            worker(&registry, "a", Duration::from_secs(30)),
            worker(&registry, "b", Duration::from_secs(30)),
        );
        let (ra, rb) = (runner.clone(), runner.clone());
        let (na, nb) = tokio::join!(async move { drain(&a, &ra).await }, async move {
            drain(&b, &rb).await
        });
        let ran = runner.ran.lock().unwrap().clone();
        assert_eq!(na + nb, ran.len());
        assert_eq!(ran.len(), 8 + 5, "day two has no brands tasks: {ran:?}");
        let mut sorted = ran.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ran.len(), "a task ran twice: {ran:?}");
        let pos = |l: &str| {
            ran.iter()
                .position(|r| r == l)
                .unwrap_or_else(|| panic!("{l} not in {ran:?}"))
        };
        for day in ["20", "21"] {
            let snap = pos(&format!("snapshot[behaviour]@{day}"));
            let fused = pos(&format!("train[behaviour/fused]@{day}"));
            let gbdt = pos(&format!("train[behaviour/buyers]@{day}"));
            let score = pos(&format!("score[behaviour]@{day}"));
            let publish = pos(&format!("publish[segments]@{day}"));
            assert!(
                snap < fused && snap < gbdt && fused < score && gbdt < score && score < publish,
                "{ran:?}"
            );
        }
        let counts = registry.task_counts().await.unwrap();
        assert_eq!(counts[&TaskState::Succeeded], 13);
        registry.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_task_is_taken_back_and_its_late_result_refused() {
    on_both(|url| async move {
        let registry = Registry::open(&url).await.unwrap();
        let scheduler = Scheduler::new(registry.clone(), config());
        scheduler.sync_pools().await.unwrap();
        let models = vec![model("solo", "fs", "logistic_regression", "0 6 * * *")];
        scheduler
            .tick(&models, utc("2026-11-20T07:00:00Z"))
            .await
            .unwrap();
        // A worker claims the snapshot task, then "dies" (never heartbeats nor completes).
        let ghost = registry
            .claim("ghost", Duration::from_millis(300), &ClaimLimits::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ghost.task.key.kind, "snapshot");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let report = scheduler
            .tick(&models, utc("2026-11-20T07:00:01Z"))
            .await
            .unwrap();
        assert_eq!(report.requeued, vec![ghost.task.task_id]);
        // Its retry waits out the backoff (1 s), then a live worker runs everything.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let runner = Recorder::default();
        let live = worker(&registry, "live", Duration::from_secs(30));
        assert_eq!(drain(&live, &runner).await, 4);
        // The ghost wakes up and reports: refused, and nothing changes.
        let late = registry
            .complete(
                ghost.task.task_id,
                ghost.token,
                Outcome::Succeeded {
                    output: json!({"ghost": true}),
                },
            )
            .await
            .unwrap_err();
        assert_eq!(late.kind(), spire_core::ErrorKind::Conflict, "{late}");
        let task = registry.get_task(ghost.task.task_id).await.unwrap();
        assert_eq!(task.state, TaskState::Succeeded);
        assert_eq!(task.output.unwrap()["ran"], "snapshot[fs]@20");
        let attempts = registry.task_attempts(ghost.task.task_id).await.unwrap();
        let results: Vec<(&str, &str)> = attempts
            .iter()
            .map(|a| (a.worker.as_str(), a.result.as_str()))
            .collect();
        assert_eq!(results, vec![("ghost", "lost"), ("live", "succeeded")]);
        registry.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_attempt_fails_and_is_retried() {
    on_both(|url| async move {
        let registry = Registry::open(&url).await.unwrap();
        let scheduler = Scheduler::new(registry.clone(), config());
        let mut m = model("slow", "fs", "logistic_regression", "0 6 * * *");
        m.schedule.timeout_secs = 1;
        scheduler
            .tick(&[m], utc("2026-11-20T07:00:00Z"))
            .await
            .unwrap();
        let runner = Recorder {
            sleep_first: Some(Duration::from_secs(3)),
            ..Recorder::default()
        };
        let w = worker(&registry, "w", Duration::from_secs(30));
        let first = w.run_once(&runner).await.unwrap().unwrap();
        assert_eq!(first.state, "queued");
        assert!(
            first
                .error
                .as_deref()
                .unwrap()
                .contains("timed out after 1 s"),
            "{first:?}"
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let second = w.run_once(&runner).await.unwrap().unwrap();
        assert_eq!(
            (second.task_id, second.state.as_str()),
            (first.task_id, "succeeded")
        );
        registry.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_scheduler_is_active_and_a_standby_waits() {
    on_both(|url| async move {
        let a = Registry::open(&url).await.unwrap();
        let b = Registry::open(&url).await.unwrap();
        let (sa, sb) = (
            Scheduler::new(a.clone(), config()),
            Scheduler::new(b.clone(), config()),
        );
        let models = fleet();
        let events = Arc::new(Mutex::new(Vec::new()));
        let (ea, eb) = (Arc::clone(&events), Arc::clone(&events));
        let stop_a = tokio::time::sleep(Duration::from_millis(900));
        let stop_b = tokio::time::sleep(Duration::from_millis(500));
        let ma = models.clone();
        let mb = models.clone();
        let (ra, rb) = tokio::join!(
            run(
                &sa,
                Duration::from_millis(100),
                || {
                    let m = ma.clone();
                    async move { Ok(m) }
                },
                move |e| ea
                    .lock()
                    .unwrap()
                    .push(("a", matches!(e, LoopEvent::Standby))),
                stop_a
            ),
            async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                run(
                    &sb,
                    Duration::from_millis(100),
                    || {
                        let m = mb.clone();
                        async move { Ok(m) }
                    },
                    move |e| {
                        eb.lock()
                            .unwrap()
                            .push(("b", matches!(e, LoopEvent::Standby)))
                    },
                    stop_b,
                )
                .await
            }
        );
        ra.unwrap();
        rb.unwrap();
        let events = events.lock().unwrap().clone();
        assert!(
            events
                .iter()
                .filter(|(w, _)| *w == "a")
                .all(|(_, standby)| !standby),
            "{events:?}"
        );
        assert!(
            events
                .iter()
                .filter(|(w, _)| *w == "b")
                .all(|(_, standby)| *standby),
            "{events:?}"
        );
        assert!(events.iter().any(|(w, _)| *w == "b"));
        // Only the active one scheduled: each run is queued once.
        let n = a
            .list_tasks(&TaskFilter {
                limit: 1000,
                ..TaskFilter::default()
            })
            .await
            .unwrap()
            .len();
        assert_eq!(n, 8);
        a.close().await;
        b.close().await;
    })
    .await;
}
