//! Conformance: the scheduler's task queue (identity, dependencies, claim order, pools,
//! leases and fencing, retries), per-model schedule state and the scheduler lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use spire_core::ErrorKind;
use spire_registry::{
    ClaimLimits, Lease, NewTask, Outcome, Registry, ScheduleState, TaskFilter, TaskKey, TaskQueue,
    TaskState,
};

use crate::TestDb;

crate::conformance!(
    enqueue_is_idempotent_by_key,
    enqueue_rejects_bad_tasks_and_writes_nothing,
    claim_order_is_priority_then_logical_time,
    dependents_wait_for_their_dependencies,
    pool_slots_and_max_running_limit_claims,
    stale_token_cannot_complete_after_requeue,
    retries_back_off_exponentially,
    exhausted_attempts_fail_with_last_error,
    expired_leases_are_requeued_and_attempts_marked_lost,
    heartbeat_extends_until_lease_moves_on,
    counts_and_list_filters,
    queue_enforces_attempt_timeouts,
    a_failed_task_fails_its_queued_dependents,
    purge_keeps_what_unfinished_tasks_need,
    schedule_state_moves_forward_only,
    scheduler_lock_is_exclusive,
    concurrent_workers_claim_each_task_once,
);

/// A long lease: it does not expire during a test unless the test means it to.
const LEASE: Duration = Duration::from_secs(60);

/// `hours` after 2024-05-01T00:00:00Z.
fn at(hours: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_714_521_600 + hours * 3600, 0).unwrap()
}

fn key(kind: &str, key: &str, hours: i64) -> TaskKey {
    TaskKey::new(kind, key, at(hours))
}

/// A task retried at once (no backoff), 3 attempts.
fn task(kind: &str, name: &str, hours: i64) -> NewTask {
    NewTask {
        retry_backoff: Duration::ZERO,
        ..NewTask::new(key(kind, name, hours))
    }
}

fn after(deps: &[&TaskKey], mut task: NewTask) -> NewTask {
    task.depends_on = deps.iter().map(|k| (*k).clone()).collect();
    task
}

async fn claim(reg: &Registry, worker: &str) -> Option<Lease> {
    reg.claim(worker, LEASE, &ClaimLimits::default())
        .await
        .unwrap()
}

fn succeeded(output: serde_json::Value) -> Outcome {
    Outcome::Succeeded { output }
}

fn failed(error: &str, retryable: bool) -> Outcome {
    Outcome::Failed {
        error: error.to_string(),
        retryable,
    }
}

fn ms(n: i64) -> TimeDelta {
    TimeDelta::milliseconds(n)
}

/// Claims until a task comes (its backoff passes), for at most 5 s.
async fn claim_when_ready(reg: &Registry, worker: &str) -> Lease {
    for _ in 0..500 {
        if let Some(lease) = claim(reg, worker).await {
            return lease;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no task became claimable within 5 s");
}

pub async fn enqueue_is_idempotent_by_key(t: TestDb) {
    let reg = t.reg;
    let snapshot = key("snapshot", "behaviour", 0);
    let batch = vec![
        task("snapshot", "behaviour", 0),
        after(&[&snapshot], task("train", "churn", 0)),
    ];
    let ids = reg.enqueue(&batch).await.unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1], "ids follow enqueue order: {ids:?}");

    // Re-running the schedule (even with another payload) returns the stored tasks.
    let mut rerun = batch.clone();
    rerun[1].payload = json!({"changed": true});
    rerun[1].depends_on.clear();
    assert_eq!(reg.enqueue(&rerun).await.unwrap(), ids);
    // A key repeated in one batch is one task.
    assert_eq!(
        reg.enqueue(&[task("train", "churn", 0), task("train", "churn", 0)])
            .await
            .unwrap(),
        vec![ids[1], ids[1]]
    );
    let train = reg.get_task(ids[1]).await.unwrap();
    assert_eq!(train.key, key("train", "churn", 0));
    assert_eq!(train.payload, serde_json::Value::Null, "first enqueue wins");
    assert_eq!(train.depends_on, vec![ids[0]]);
    assert_eq!(train.state, TaskState::Queued);
    assert_eq!((train.attempts, train.max_attempts), (0, 3));
    assert_eq!(train.not_before, train.created_at);
    assert_eq!(train.updated_at, train.created_at);
    assert_eq!(
        (train.lease_owner, train.lease_token, train.lease_expires_at),
        (None, None, None)
    );

    // Found by key; sub-millisecond differences are the same key.
    let found = reg.find_task(&snapshot).await.unwrap().unwrap();
    assert_eq!(found.task_id, ids[0]);
    let mut close = snapshot.clone();
    close.logical_time += TimeDelta::microseconds(300);
    assert_eq!(
        reg.find_task(&close).await.unwrap().unwrap().task_id,
        ids[0]
    );
    assert!(reg
        .find_task(&key("snapshot", "behaviour", 1))
        .await
        .unwrap()
        .is_none());

    // A backfill depends on a stored task.
    let next = reg
        .enqueue(&[after(&[&snapshot], task("train", "churn", 1))])
        .await
        .unwrap();
    assert_eq!(
        reg.get_task(next[0]).await.unwrap().depends_on,
        vec![ids[0]]
    );

    // Schedulers racing to enqueue the same batch on two handles store it once.
    let other = Registry::open(&t.url).await.unwrap();
    let racing: Vec<NewTask> = (0..20)
        .map(|i| after(&[&snapshot], task("score", &format!("seg-{i}"), 0)))
        .collect();
    let mut joins = Vec::new();
    for i in 0..6 {
        let reg = if i % 2 == 0 {
            reg.clone()
        } else {
            other.clone()
        };
        let racing = racing.clone();
        joins.push(tokio::spawn(async move { reg.enqueue(&racing).await }));
    }
    let mut results = BTreeSet::new();
    for join in joins {
        results.insert(join.await.unwrap().unwrap());
    }
    assert_eq!(
        results.len(),
        1,
        "every racer got the same ids: {results:?}"
    );
    let counts = reg.task_counts().await.unwrap();
    assert_eq!(counts[&TaskState::Queued], 23);
    other.close().await;
}

pub async fn enqueue_rejects_bad_tasks_and_writes_nothing(t: TestDb) {
    let reg = t.reg;
    let good = task("snapshot", "behaviour", 0);
    let invalid = |err: spire_registry::RegistryError, needles: &[&str]| {
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let msg = err.to_string();
        for needle in needles {
            assert!(msg.contains(needle), "{needle:?} not in {msg}");
        }
    };

    let unknown = after(&[&key("snapshot", "missing", 0)], task("train", "churn", 0));
    let err = reg.enqueue(&[good.clone(), unknown]).await.unwrap_err();
    invalid(
        err,
        &[
            "train/churn@2024-05-01T00:00:00.000Z",
            "snapshot/missing@2024-05-01T00:00:00.000Z",
        ],
    );

    let (a, b, c) = (key("x", "a", 0), key("x", "b", 0), key("x", "c", 0));
    let cycle = vec![
        good.clone(),
        after(&[&c], task("x", "a", 0)),
        after(&[&a], task("x", "b", 0)),
        after(&[&b], task("x", "c", 0)),
    ];
    let err = reg.enqueue(&cycle).await.unwrap_err();
    invalid(err, &["cycle", "x/a@", "x/b@", "x/c@"]);
    let err = reg
        .enqueue(&[after(&[&a], task("x", "a", 0))])
        .await
        .unwrap_err();
    invalid(err, &["cycle", "x/a@"]);

    let mut pooled = task("train", "churn", 0);
    pooled.pool = Some("gpu".to_string());
    let err = reg.enqueue(&[good.clone(), pooled]).await.unwrap_err();
    invalid(err, &["\"gpu\"", "train/churn@"]);

    let mut once = task("train", "churn", 0);
    once.max_attempts = 0;
    invalid(
        reg.enqueue(&[good.clone(), once]).await.unwrap_err(),
        &["max_attempts", "train/churn@"],
    );
    let mut instant = task("train", "churn", 0);
    instant.timeout = Some(Duration::from_micros(10));
    invalid(
        reg.enqueue(&[instant]).await.unwrap_err(),
        &["timeout", "train/churn@"],
    );
    for (kind, name) in [("", "churn"), ("train", ""), (" train", "churn")] {
        let err = reg.enqueue(&[task(kind, name, 0)]).await.unwrap_err();
        invalid(err, &["task"]);
    }

    // Nothing of the rejected batches was written.
    assert!(reg
        .list_tasks(&TaskFilter::default())
        .await
        .unwrap()
        .is_empty());
    assert!(reg.enqueue(&[]).await.unwrap().is_empty());

    // Other bad calls.
    assert_eq!(
        reg.get_task(999).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        reg.task_attempts(999).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let err = reg
        .claim("", LEASE, &ClaimLimits::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let err = reg
        .claim("w", Duration::ZERO, &ClaimLimits::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let err = reg
        .complete(999, 1, succeeded(json!(null)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = reg
        .set_pools(&BTreeMap::from([(String::new(), 1)]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

pub async fn claim_order_is_priority_then_logical_time(t: TestDb) {
    let reg = t.reg;
    let mut urgent = task("publish", "urgent", 3);
    urgent.priority = 5;
    let ids = reg
        .enqueue(&[
            task("score", "late", 2),
            task("score", "early", 0),
            urgent,
            task("train", "early-too", 0),
        ])
        .await
        .unwrap();
    let mut order = Vec::new();
    while let Some(lease) = claim(&reg, "w1").await {
        assert_eq!(lease.token, 1);
        assert_eq!(lease.task.state, TaskState::Running);
        assert_eq!(lease.task.attempts, 1);
        assert_eq!(lease.task.lease_owner.as_deref(), Some("w1"));
        assert_eq!(lease.task.lease_token, Some(1));
        assert_eq!(lease.task.lease_expires_at, Some(lease.expires_at));
        assert_eq!(
            lease.expires_at - lease.task.updated_at,
            ms(60_000),
            "the lease runs from the database's now"
        );
        order.push(lease.task.task_id);
    }
    assert_eq!(
        order,
        vec![ids[2], ids[1], ids[3], ids[0]],
        "priority first, then the oldest logical time, then enqueue order"
    );
    let attempts = reg.task_attempts(ids[2]).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        (
            attempts[0].attempt,
            attempts[0].worker.as_str(),
            attempts[0].token,
            attempts[0].result.as_str(),
            attempts[0].ended_at
        ),
        (1, "w1", 1, "running", None)
    );
}

pub async fn dependents_wait_for_their_dependencies(t: TestDb) {
    let reg = t.reg;
    let snapshot = key("snapshot", "behaviour", 0);
    let train = key("train", "churn", 0);
    let mut t_train = after(&[&snapshot], task("train", "churn", 0));
    t_train.priority = 10;
    let mut t_score = after(&[&train, &snapshot], task("score", "churn", 0));
    t_score.priority = 10;
    let mut other = task("snapshot", "other", 0);
    other.priority = -1;
    let ids = reg
        .enqueue(&[t_score, t_train, task("snapshot", "behaviour", 0), other])
        .await
        .unwrap();
    let (score_id, train_id, snap_id, other_id) = (ids[0], ids[1], ids[2], ids[3]);
    assert!(
        train_id < score_id,
        "dependencies are stored before their dependents"
    );

    let first = claim(&reg, "w").await.unwrap();
    assert_eq!(first.task.task_id, snap_id, "higher priorities are blocked");
    assert_eq!(claim(&reg, "w").await.unwrap().task.task_id, other_id);
    assert!(
        claim(&reg, "w").await.is_none(),
        "a running dependency blocks"
    );

    reg.complete(snap_id, first.token, succeeded(json!({"version": 7})))
        .await
        .unwrap();
    let trained = claim(&reg, "w").await.unwrap();
    assert_eq!(trained.task.task_id, train_id);
    assert!(
        claim(&reg, "w").await.is_none(),
        "score waits for train too"
    );

    let done = reg
        .complete(train_id, trained.token, failed("bad config", false))
        .await
        .unwrap();
    assert_eq!(done.state, TaskState::Failed);
    assert!(
        claim(&reg, "w").await.is_none(),
        "a failed dependency blocks for good"
    );
    assert_eq!(
        reg.get_task(score_id).await.unwrap().state,
        TaskState::Failed,
        "and fails its dependents"
    );
}

pub async fn pool_slots_and_max_running_limit_claims(t: TestDb) {
    let reg = t.reg;
    reg.set_pools(&BTreeMap::from([
        ("gpu".to_string(), 2),
        ("cpu".to_string(), 0),
    ]))
    .await
    .unwrap();
    assert_eq!(
        reg.pools().await.unwrap(),
        BTreeMap::from([("cpu".to_string(), 0), ("gpu".to_string(), 2)])
    );
    let gpu: Vec<NewTask> = (0..5)
        .map(|i| NewTask {
            pool: Some("gpu".to_string()),
            ..task("train", &format!("model-{i}"), 0)
        })
        .collect();
    reg.enqueue(&gpu).await.unwrap();
    let a = claim(&reg, "w1").await.unwrap();
    let b = claim(&reg, "w2").await.unwrap();
    assert!(
        claim(&reg, "w3").await.is_none(),
        "gpu has 2 slots and both are taken"
    );
    reg.complete(a.task.task_id, a.token, succeeded(json!(1)))
        .await
        .unwrap();
    let c = claim(&reg, "w3").await.unwrap();
    assert_eq!(c.task.pool.as_deref(), Some("gpu"));
    assert!(claim(&reg, "w1").await.is_none());
    // A failure frees the slot too.
    reg.complete(b.task.task_id, b.token, failed("oom", false))
        .await
        .unwrap();
    let d = claim(&reg, "w2").await.unwrap();
    assert!(claim(&reg, "w1").await.is_none());

    // A pool with no slots holds its tasks until it gets some.
    reg.enqueue(&[NewTask {
        pool: Some("cpu".to_string()),
        ..task("snapshot", "behaviour", 0)
    }])
    .await
    .unwrap();
    assert!(claim(&reg, "w1").await.is_none());
    reg.set_pools(&BTreeMap::from([("cpu".to_string(), 1)]))
        .await
        .unwrap();
    assert_eq!(
        reg.pools().await.unwrap()["gpu"],
        2,
        "unlisted pools keep their slots"
    );
    let e = claim(&reg, "w1").await.unwrap();
    assert_eq!(e.task.pool.as_deref(), Some("cpu"));

    // max_running counts every running task, of every worker and pool: 3 now (c, d, e).
    reg.enqueue(&[
        task("score", "a", 0),
        task("score", "b", 0),
        task("score", "c", 0),
    ])
    .await
    .unwrap();
    let limit = |n| ClaimLimits {
        max_running: Some(n),
    };
    assert!(reg.claim("w4", LEASE, &limit(3)).await.unwrap().is_none());
    assert!(reg.claim("w4", LEASE, &limit(4)).await.unwrap().is_some());
    assert!(reg.claim("w4", LEASE, &limit(4)).await.unwrap().is_none());
    assert!(claim(&reg, "w4").await.is_some(), "no limit, no wait");
    let counts = reg.task_counts().await.unwrap();
    assert_eq!(counts[&TaskState::Running], 5);
    for lease in [c, d, e] {
        reg.complete(lease.task.task_id, lease.token, succeeded(json!(null)))
            .await
            .unwrap();
    }
    assert!(reg.claim("w4", LEASE, &limit(3)).await.unwrap().is_some());
}

pub async fn stale_token_cannot_complete_after_requeue(t: TestDb) {
    let reg = t.reg;
    let id = reg.enqueue(&[task("train", "churn", 0)]).await.unwrap()[0];
    let first = reg
        .claim(
            "worker-a",
            Duration::from_millis(100),
            &ClaimLimits::default(),
        )
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(reg.requeue_expired().await.unwrap(), vec![id]);
    let second = claim(&reg, "worker-b").await.unwrap();
    assert_eq!(second.task.task_id, id);
    assert_eq!((first.token, second.token), (1, 2), "tokens only grow");

    // The presumed-dead worker finishes late: refused, and nothing changes.
    let err = reg
        .complete(id, first.token, succeeded(json!("from a")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("worker-b"), "{err}");
    let err = reg.heartbeat(id, first.token, LEASE).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let now = reg.get_task(id).await.unwrap();
    assert_eq!(now.state, TaskState::Running);
    assert_eq!(
        (now.lease_owner.as_deref(), now.lease_token, now.output),
        (Some("worker-b"), Some(2), None)
    );

    // The current worker's completion wins; repeating it is harmless.
    let done = reg
        .complete(id, second.token, succeeded(json!("from b")))
        .await
        .unwrap();
    assert_eq!(done.state, TaskState::Succeeded);
    assert_eq!(done.output, Some(json!("from b")));
    assert_eq!(done.lease_token, None);
    let again = reg
        .complete(id, second.token, succeeded(json!("from b")))
        .await
        .unwrap();
    assert_eq!(again, done);
    for outcome in [succeeded(json!("from a")), failed("late", true)] {
        let err = reg.complete(id, first.token, outcome).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        assert!(err.to_string().contains("succeeded"), "{err}");
    }
    assert_eq!(reg.get_task(id).await.unwrap(), done);

    let attempts = reg.task_attempts(id).await.unwrap();
    let summary: Vec<(u32, &str, i64, &str)> = attempts
        .iter()
        .map(|a| (a.attempt, a.worker.as_str(), a.token, a.result.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![(1, "worker-a", 1, "lost"), (2, "worker-b", 2, "succeeded")]
    );
    assert!(attempts[0].error.as_deref().unwrap().contains("expired"));
    assert!(attempts.iter().all(|a| a.ended_at.is_some()));
}

pub async fn retries_back_off_exponentially(t: TestDb) {
    let reg = t.reg;
    let id = reg
        .enqueue(&[NewTask {
            retry_backoff: Duration::from_millis(150),
            ..task("train", "churn", 0)
        }])
        .await
        .unwrap()[0];

    let lease = claim(&reg, "w").await.unwrap();
    let after1 = reg
        .complete(id, lease.token, failed("boom 1", true))
        .await
        .unwrap();
    assert_eq!(after1.state, TaskState::Queued);
    assert_eq!(after1.attempts, 1);
    assert_eq!(after1.last_error.as_deref(), Some("boom 1"));
    assert_eq!(after1.lease_owner, None);
    assert_eq!(
        after1.not_before - after1.updated_at,
        ms(150),
        "base backoff"
    );
    assert!(claim(&reg, "w").await.is_none(), "still backing off");

    let lease = claim_when_ready(&reg, "w").await;
    assert!(
        lease.task.updated_at >= after1.not_before,
        "claimed only once the backoff passed (database clock)"
    );
    assert_eq!(lease.token, 2);
    let after2 = reg
        .complete(id, lease.token, failed("boom 2", true))
        .await
        .unwrap();
    assert_eq!(after2.state, TaskState::Queued);
    assert_eq!(
        after2.not_before - after2.updated_at,
        ms(300),
        "twice the base"
    );

    let lease = claim_when_ready(&reg, "w").await;
    assert!(lease.task.updated_at >= after2.not_before);
    let done = reg
        .complete(id, lease.token, succeeded(json!({"auc": 0.8})))
        .await
        .unwrap();
    assert_eq!((done.state, done.attempts), (TaskState::Succeeded, 3));
    assert_eq!(
        done.last_error.as_deref(),
        Some("boom 2"),
        "the last error is kept"
    );
    let results: Vec<String> = reg
        .task_attempts(id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| format!("{}:{}", a.result, a.error.unwrap_or_default()))
        .collect();
    assert_eq!(
        results,
        vec!["failed:boom 1", "failed:boom 2", "succeeded:"]
    );
}

pub async fn exhausted_attempts_fail_with_last_error(t: TestDb) {
    let reg = t.reg;
    let ids = reg
        .enqueue(&[
            NewTask {
                max_attempts: 2,
                ..task("train", "twice", 0)
            },
            task("train", "fatal", 1),
        ])
        .await
        .unwrap();
    let lease = claim(&reg, "w").await.unwrap();
    assert_eq!(lease.task.task_id, ids[0]);
    reg.complete(ids[0], lease.token, failed("timeout", true))
        .await
        .unwrap();
    let lease = claim(&reg, "w").await.unwrap();
    assert_eq!((lease.task.task_id, lease.token), (ids[0], 2));
    let failed_task = reg
        .complete(ids[0], lease.token, failed("timeout again", true))
        .await
        .unwrap();
    assert_eq!(failed_task.state, TaskState::Failed);
    assert_eq!(failed_task.attempts, 2);
    assert_eq!(failed_task.last_error.as_deref(), Some("timeout again"));
    // Repeating the failure is harmless; claiming it is impossible now.
    assert_eq!(
        reg.complete(ids[0], lease.token, failed("timeout again", true))
            .await
            .unwrap(),
        failed_task
    );
    let err = reg
        .complete(ids[0], lease.token, succeeded(json!(1)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("failed"), "{err}");

    // A failure that is not retryable fails at once, attempts left or not.
    let lease = claim(&reg, "w").await.unwrap();
    assert_eq!(lease.task.task_id, ids[1]);
    let fatal = reg
        .complete(ids[1], lease.token, failed("no such column", false))
        .await
        .unwrap();
    assert_eq!((fatal.state, fatal.attempts), (TaskState::Failed, 1));
    assert_eq!(fatal.last_error.as_deref(), Some("no such column"));
    assert!(claim(&reg, "w").await.is_none());
    assert_eq!(reg.task_counts().await.unwrap()[&TaskState::Failed], 2);
}

pub async fn expired_leases_are_requeued_and_attempts_marked_lost(t: TestDb) {
    let reg = t.reg;
    let ids = reg
        .enqueue(&[
            NewTask {
                max_attempts: 1,
                ..task("score", "once", 0)
            },
            NewTask {
                retry_backoff: Duration::from_millis(100),
                ..task("score", "retried", 1)
            },
            task("score", "healthy", 2),
        ])
        .await
        .unwrap();
    let short = Duration::from_millis(50);
    for id in &ids[..2] {
        let lease = reg
            .claim("flaky", short, &ClaimLimits::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(lease.task.task_id, *id);
    }
    let healthy = claim(&reg, "healthy").await.unwrap();
    assert!(reg.requeue_expired().await.unwrap().is_empty(), "not yet");
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert_eq!(reg.requeue_expired().await.unwrap(), ids[..2].to_vec());
    assert!(
        reg.requeue_expired().await.unwrap().is_empty(),
        "taken back once"
    );

    let once = reg.get_task(ids[0]).await.unwrap();
    assert_eq!(once.state, TaskState::Failed, "no attempts left");
    assert!(once.last_error.as_deref().unwrap().contains("expired"));
    let retried = reg.get_task(ids[1]).await.unwrap();
    assert_eq!(retried.state, TaskState::Queued);
    assert_eq!(retried.lease_owner, None);
    assert_eq!(retried.not_before - retried.updated_at, ms(100));
    assert!(retried.last_error.as_deref().unwrap().contains("\"flaky\""));
    for id in &ids[..2] {
        let attempts = reg.task_attempts(*id).await.unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].result, "lost");
        assert!(attempts[0].ended_at.is_some());
    }
    let still = reg.get_task(healthy.task.task_id).await.unwrap();
    assert_eq!(
        (still.state, still.lease_token),
        (TaskState::Running, Some(1))
    );
    let lease = claim_when_ready(&reg, "other").await;
    assert_eq!((lease.task.task_id, lease.token), (ids[1], 2));
}

pub async fn heartbeat_extends_until_lease_moves_on(t: TestDb) {
    let reg = t.reg;
    let id = reg.enqueue(&[task("train", "churn", 0)]).await.unwrap()[0];
    let lease = reg
        .claim("w", Duration::from_millis(200), &ClaimLimits::default())
        .await
        .unwrap()
        .unwrap();
    let renewed = reg.heartbeat(id, lease.token, LEASE).await.unwrap();
    assert!(renewed >= lease.expires_at + ms(59_000), "{renewed}");
    let task = reg.get_task(id).await.unwrap();
    assert_eq!(task.lease_expires_at, Some(renewed));
    assert_eq!(renewed - task.updated_at, ms(60_000));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        reg.requeue_expired().await.unwrap().is_empty(),
        "the renewed lease has not expired"
    );

    let err = reg.heartbeat(id, lease.token + 1, LEASE).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("\"w\""), "names the holder: {err}");
    assert_eq!(
        reg.heartbeat(999, 1, LEASE).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        reg.heartbeat(id, lease.token, Duration::ZERO)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );

    reg.complete(id, lease.token, succeeded(json!(null)))
        .await
        .unwrap();
    let err = reg.heartbeat(id, lease.token, LEASE).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("succeeded"), "{err}");
}

pub async fn counts_and_list_filters(t: TestDb) {
    let reg = t.reg;
    let ids = reg
        .enqueue(&[
            task("snapshot", "behaviour", 0),
            task("snapshot", "behaviour", 1),
            task("snapshot", "behaviour", 2),
            task("train", "churn-eu", 1),
            task("train", "churn-us", 2),
            task("score", "churn-eu", 2),
        ])
        .await
        .unwrap();
    let lease = claim(&reg, "w").await.unwrap();
    assert_eq!(lease.task.task_id, ids[0]);
    reg.complete(ids[0], lease.token, succeeded(json!(null)))
        .await
        .unwrap();
    let running = claim(&reg, "w").await.unwrap();
    assert_eq!(running.task.task_id, ids[1]);

    let counts = reg.task_counts().await.unwrap();
    assert_eq!(
        counts,
        BTreeMap::from([
            (TaskState::Queued, 4),
            (TaskState::Running, 1),
            (TaskState::Succeeded, 1),
            (TaskState::Failed, 0),
        ])
    );

    let listed = |filter: TaskFilter| {
        let reg = reg.clone();
        async move {
            reg.list_tasks(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|t| t.task_id)
                .collect::<Vec<i64>>()
        }
    };
    assert_eq!(
        listed(TaskFilter::default()).await,
        vec![ids[2], ids[4], ids[5], ids[1], ids[3], ids[0]],
        "newest logical time first, then by id"
    );
    assert_eq!(
        listed(TaskFilter {
            kind: Some("train".into()),
            ..TaskFilter::default()
        })
        .await,
        vec![ids[4], ids[3]]
    );
    assert_eq!(
        listed(TaskFilter {
            key_prefix: Some("churn-".into()),
            ..TaskFilter::default()
        })
        .await,
        vec![ids[4], ids[5], ids[3]]
    );
    assert_eq!(
        listed(TaskFilter {
            key_prefix: Some("churn-e".into()),
            kind: Some("score".into()),
            ..TaskFilter::default()
        })
        .await,
        vec![ids[5]]
    );
    assert_eq!(
        listed(TaskFilter {
            state: Some(TaskState::Running),
            ..TaskFilter::default()
        })
        .await,
        vec![ids[1]]
    );
    assert_eq!(
        listed(TaskFilter {
            state: Some(TaskState::Succeeded),
            ..TaskFilter::default()
        })
        .await,
        vec![ids[0]]
    );
    assert_eq!(
        listed(TaskFilter {
            limit: 2,
            ..TaskFilter::default()
        })
        .await,
        vec![ids[2], ids[4]]
    );
    assert!(listed(TaskFilter {
        key_prefix: Some("nothing".into()),
        ..TaskFilter::default()
    })
    .await
    .is_empty());
    let with_segments = reg
        .enqueue(&[
            NewTask {
                payload: json!({"segments": ["reads-tech", "reads-o'reilly"]}),
                ..task("train", "family", 3)
            },
            NewTask {
                payload: json!({"segments": ["reads-tech-news"], "other": "reads-tech"}),
                ..task("train", "family", 4)
            },
        ])
        .await
        .unwrap();
    for (segment, expected) in [
        ("reads-tech", vec![with_segments[0]]),
        ("reads-o'reilly", vec![with_segments[0]]),
        ("reads-tech-news", vec![with_segments[1]]),
        ("reads-te", vec![]),
    ] {
        assert_eq!(
            listed(TaskFilter {
                segment: Some(segment.into()),
                ..TaskFilter::default()
            })
            .await,
            expected,
            "{segment}"
        );
    }
    let err = reg
        .list_tasks(&TaskFilter {
            limit: 0,
            ..TaskFilter::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

pub async fn a_failed_task_fails_its_queued_dependents(t: TestDb) {
    let reg = t.reg;
    let snap = key("snapshot", "behaviour", 0);
    let train = key("train", "churn", 0);
    let other = key("snapshot", "other", 0);
    let ids = reg
        .enqueue(&[
            task("snapshot", "behaviour", 0),
            after(&[&snap], task("train", "churn", 0)),
            after(&[&train], task("score", "churn", 0)),
            task("snapshot", "other", 0),
            after(&[&other], task("score", "other", 0)),
        ])
        .await
        .unwrap();
    let lease = claim(&reg, "w").await.unwrap();
    assert_eq!(lease.task.task_id, ids[0]);
    reg.complete(ids[0], lease.token, failed("disk full\nat …", false))
        .await
        .unwrap();
    for id in [ids[1], ids[2]] {
        let t = reg.get_task(id).await.unwrap();
        assert_eq!(t.state, TaskState::Failed, "{t:?}");
        assert_eq!(
            t.last_error.as_deref(),
            Some(format!("upstream task {} failed: disk full", ids[0]).as_str())
        );
        assert_eq!(t.attempts, 0, "never ran");
    }
    // The unrelated branch still runs.
    let lease = claim(&reg, "w").await.unwrap();
    assert_eq!(lease.task.task_id, ids[3]);
    assert_eq!(reg.get_task(ids[4]).await.unwrap().state, TaskState::Queued);
}

pub async fn queue_enforces_attempt_timeouts(t: TestDb) {
    let reg = t.reg;
    let ids = reg
        .enqueue(&[
            NewTask {
                timeout: Some(Duration::from_millis(300)),
                max_attempts: 2,
                ..task("train", "slow", 0)
            },
            task("train", "untimed", 0),
        ])
        .await
        .unwrap();
    let slow = claim(&reg, "stuck").await.unwrap();
    let untimed = claim(&reg, "w").await.unwrap();
    assert_eq!((slow.task.task_id, untimed.task.task_id), (ids[0], ids[1]));
    // Within the timeout the lease renews; nothing is taken back.
    reg.heartbeat(ids[0], slow.token, LEASE).await.unwrap();
    assert!(reg.requeue_expired().await.unwrap().is_empty());

    tokio::time::sleep(Duration::from_millis(400)).await;
    // Past it, though the 60 s lease is valid: no renewal, and the sweep takes it back.
    let err = reg.heartbeat(ids[0], slow.token, LEASE).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("timeout of 0.3 s"), "{err}");
    assert_eq!(reg.requeue_expired().await.unwrap(), vec![ids[0]]);
    let after = reg.get_task(ids[0]).await.unwrap();
    assert_eq!(after.state, TaskState::Queued, "one attempt left");
    assert!(
        after
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("timed out"),
        "{after:?}"
    );
    let attempts = reg.task_attempts(ids[0]).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].result, "failed");
    assert!(attempts[0].error.as_deref().unwrap().contains("\"stuck\""));
    // The stuck worker's late result is fenced off.
    let err = reg
        .complete(ids[0], slow.token, succeeded(json!(1)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    // A task without a timeout keeps running under its lease.
    reg.heartbeat(ids[1], untimed.token, LEASE).await.unwrap();
    assert_eq!(
        reg.get_task(ids[1]).await.unwrap().state,
        TaskState::Running
    );

    // The second attempt times out too and the task fails.
    let again = claim_when_ready(&reg, "stuck").await;
    assert_eq!(again.task.task_id, ids[0]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(reg.requeue_expired().await.unwrap(), vec![ids[0]]);
    assert_eq!(reg.get_task(ids[0]).await.unwrap().state, TaskState::Failed);
}

pub async fn purge_keeps_what_unfinished_tasks_need(t: TestDb) {
    let reg = t.reg;
    let snap = key("snapshot", "behaviour", 0);
    let train = key("train", "churn", 0);
    let ids = reg
        .enqueue(&[
            task("snapshot", "behaviour", 0),
            after(&[&snap], task("train", "churn", 0)),
            after(&[&train], task("score", "churn", 0)),
            task("snapshot", "other", 0),
        ])
        .await
        .unwrap();
    for _ in 0..2 {
        let lease = claim(&reg, "w").await.unwrap();
        reg.complete(lease.task.task_id, lease.token, succeeded(json!(null)))
            .await
            .unwrap();
    }
    // snapshot and train (or other) are done; keep what finished less than an hour ago.
    assert_eq!(
        reg.purge_finished(Duration::from_secs(3600)).await.unwrap(),
        0
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let done: Vec<i64> = reg
        .list_tasks(&TaskFilter {
            state: Some(TaskState::Succeeded),
            ..TaskFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.task_id)
        .collect();
    assert_eq!(
        done,
        vec![ids[0], ids[1]],
        "claim order: snapshot, then train"
    );
    // train is still needed by the queued score; snapshot is needed by nothing unfinished.
    assert_eq!(reg.purge_finished(Duration::ZERO).await.unwrap(), 1);
    let err = reg.get_task(ids[0]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(
        reg.get_task(ids[1]).await.unwrap().depends_on,
        Vec::<i64>::new()
    );
    let err = reg.task_attempts(ids[0]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // The score runs; then everything finished can go, and the counts agree.
    let lease = claim(&reg, "w").await.unwrap();
    assert_eq!(lease.task.task_id, ids[2]);
    reg.complete(ids[2], lease.token, failed("bad", false))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(reg.purge_finished(Duration::ZERO).await.unwrap(), 2);
    let counts = reg.task_counts().await.unwrap();
    assert_eq!(counts[&TaskState::Queued], 1, "{counts:?}");
    assert_eq!(counts.values().sum::<u64>(), 1, "{counts:?}");
    // The key is free again.
    let again = reg
        .enqueue(&[task("snapshot", "behaviour", 0)])
        .await
        .unwrap();
    assert!(again[0] > ids[3]);
}

pub async fn schedule_state_moves_forward_only(t: TestDb) {
    let reg = t.reg;
    assert_eq!(reg.schedule_state("churn").await.unwrap(), None);
    assert!(reg.list_schedule_states().await.unwrap().is_empty());

    let s = reg.set_last_scheduled("churn", at(1)).await.unwrap();
    assert_eq!(
        (s.model.as_str(), s.paused, s.last_logical_time),
        ("churn", false, Some(at(1)))
    );
    for earlier_or_same in [at(0), at(1)] {
        let s = reg
            .set_last_scheduled("churn", earlier_or_same)
            .await
            .unwrap();
        assert_eq!(s.last_logical_time, Some(at(1)));
    }
    assert_eq!(
        reg.set_last_scheduled("churn", at(2))
            .await
            .unwrap()
            .last_logical_time,
        Some(at(2))
    );

    let paused = reg.set_paused("churn", true).await.unwrap();
    assert!(paused.paused);
    assert_eq!(
        paused.last_logical_time,
        Some(at(2)),
        "pausing keeps the time"
    );
    assert_eq!(reg.set_paused("churn", true).await.unwrap(), paused);
    let fresh = reg.set_paused("apps", true).await.unwrap();
    assert_eq!((fresh.paused, fresh.last_logical_time), (true, None));
    assert!(!reg.set_paused("apps", false).await.unwrap().paused);
    assert_eq!(
        reg.schedule_state("churn").await.unwrap(),
        Some(paused.clone())
    );
    let names: Vec<String> = reg
        .list_schedule_states()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.model)
        .collect();
    assert_eq!(names, vec!["apps", "churn"]);

    // Racing schedulers leave the latest time.
    let other = Registry::open(&t.url).await.unwrap();
    let mut joins = Vec::new();
    for h in [5, 9, 3, 8, 4, 7, 6] {
        let reg = if h % 2 == 0 {
            reg.clone()
        } else {
            other.clone()
        };
        joins.push(tokio::spawn(async move {
            reg.set_last_scheduled("churn", at(h)).await
        }));
    }
    for join in joins {
        join.await.unwrap().unwrap();
    }
    let s = reg.schedule_state("churn").await.unwrap().unwrap();
    assert_eq!((s.last_logical_time, s.paused), (Some(at(9)), true));
    other.close().await;

    for bad in ["", " churn"] {
        let err = reg.set_paused(bad, true).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
    }
    // Many at once, one transaction, the same forward-only rule per model.
    let many: Vec<(String, DateTime<Utc>)> = (0..1200)
        .map(|k| (format!("m{k}"), at(5)))
        .chain([("churn".to_string(), at(1))])
        .collect();
    reg.set_last_scheduled_many(&many).await.unwrap();
    assert_eq!(
        reg.schedule_state("m1199")
            .await
            .unwrap()
            .unwrap()
            .last_logical_time,
        Some(at(5))
    );
    assert_eq!(
        reg.schedule_state("churn")
            .await
            .unwrap()
            .unwrap()
            .last_logical_time,
        Some(at(9)),
        "an earlier time does not move it back"
    );
    assert!(reg
        .set_last_scheduled_many(&[(" bad".to_string(), at(9))])
        .await
        .is_err());
}

pub async fn scheduler_lock_is_exclusive(t: TestDb) {
    let reg = t.reg;
    let mut lock = reg
        .try_lock_scheduler()
        .await
        .unwrap()
        .expect("free at first");
    lock.ensure_held().await.unwrap();
    assert!(reg.try_lock_scheduler().await.unwrap().is_none());
    let standby = Registry::open(&t.url).await.unwrap();
    assert!(standby.try_lock_scheduler().await.unwrap().is_none());

    // Dropped: the standby takes over (on PostgreSQL once the server sees the connection
    // close, so poll as a standby does).
    drop(lock);
    let mut taken = None;
    for _ in 0..100 {
        taken = standby.try_lock_scheduler().await.unwrap();
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let taken = taken.expect("the standby takes the lock after it is dropped");
    assert!(reg.try_lock_scheduler().await.unwrap().is_none());

    // Released: free at once.
    taken.release().await.unwrap();
    let back = reg.try_lock_scheduler().await.unwrap();
    assert!(back.is_some());
    assert!(standby.try_lock_scheduler().await.unwrap().is_none());
    drop(back);
    standby.close().await;
}

/// Four workers on four handles drain 200 tasks (some with pools of 1 and 3 slots, some
/// depending on others): each task is claimed exactly once, succeeds on its first attempt,
/// after its dependency, and no pool ever runs more tasks than its slots.
pub async fn concurrent_workers_claim_each_task_once(t: TestDb) {
    const TASKS: usize = 200;
    let reg = t.reg;
    reg.set_pools(&BTreeMap::from([
        ("solo".to_string(), 1),
        ("trio".to_string(), 3),
    ]))
    .await
    .unwrap();
    let mut batch = Vec::new();
    for i in 0..TASKS {
        let mut new = task("score", &format!("segment-{i:03}"), 0);
        new.pool = match i % 10 {
            0 | 1 => Some("solo".to_string()),
            2..=4 => Some("trio".to_string()),
            _ => None,
        };
        new.priority = i32::try_from(i % 7).unwrap();
        if i >= 150 {
            new.depends_on = vec![key("score", &format!("segment-{:03}", i - 150), 0)];
        }
        batch.push(new);
    }
    let ids = reg.enqueue(&batch).await.unwrap();

    let slots = Arc::new(HashMap::from([("solo", 1_usize), ("trio", 3)]));
    let running: Arc<HashMap<&'static str, AtomicUsize>> = Arc::new(HashMap::from([
        ("solo", AtomicUsize::new(0)),
        ("trio", AtomicUsize::new(0)),
    ]));
    let claimed = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for w in 0..4 {
        let handle = Registry::open(&t.url).await.unwrap();
        let (slots, running, claimed) = (slots.clone(), running.clone(), claimed.clone());
        workers.push(tokio::spawn(async move {
            let name = format!("worker-{w}");
            loop {
                let Some(lease) = claim(&handle, &name).await else {
                    let counts = handle.task_counts().await.unwrap();
                    if counts[&TaskState::Succeeded] == TASKS as u64 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                };
                let id = lease.task.task_id;
                claimed.lock().unwrap().push(id);
                let pool = lease.task.pool.clone();
                if let Some(pool) = pool.as_deref() {
                    let now = running[pool].fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(
                        now <= slots[pool],
                        "pool {pool} runs {now} tasks, over its {} slots",
                        slots[pool]
                    );
                    // Hold the slot a moment so that overlaps would show.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    // Counted free before the database frees it: never an undercount.
                    running[pool].fetch_sub(1, Ordering::SeqCst);
                }
                handle
                    .complete(id, lease.token, succeeded(json!({ "worker": name })))
                    .await
                    .unwrap();
            }
            handle.close().await;
        }));
    }
    tokio::time::timeout(Duration::from_secs(120), async {
        for worker in workers {
            worker.await.unwrap();
        }
    })
    .await
    .expect("the workers drain the queue within 2 minutes");

    let mut claimed = claimed.lock().unwrap().clone();
    claimed.sort_unstable();
    let mut expected = ids.clone();
    expected.sort_unstable();
    assert_eq!(claimed, expected, "every task claimed exactly once");

    let all = reg
        .list_tasks(&TaskFilter {
            limit: TASKS,
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), TASKS);
    assert!(all
        .iter()
        .all(|t| t.state == TaskState::Succeeded && t.attempts == 1));
    for i in 150..TASKS {
        let dependent = reg.task_attempts(ids[i]).await.unwrap();
        let dependency = reg.task_attempts(ids[i - 150]).await.unwrap();
        assert_eq!((dependent.len(), dependency.len()), (1, 1));
        assert!(
            dependent[0].started_at >= dependency[0].ended_at.unwrap(),
            "task {i} started before its dependency ended"
        );
    }
}
