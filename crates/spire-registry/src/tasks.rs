//! The scheduler's durable state: a task queue with leases and fencing tokens, per-model
//! schedule state, and the single-active-scheduler lock.
//!
//! Spire's scheduler turns each model's schedule into tasks (snapshot, train, score,
//! publish…) keyed by the *logical time* they compute for, and workers on any number of
//! machines claim and run them. Everything they share lives in the registry database, so a
//! scheduler or a worker can die at any moment and another one carries on:
//!
//! - [`TaskQueue`]: tasks with dependencies, priorities, pools of limited slots, retries
//!   with exponential backoff, and leases that workers renew ([`TaskQueue::heartbeat`]) and
//!   that are taken back when they expire ([`TaskQueue::requeue_expired`]). Each lease has a
//!   fencing token: a worker presumed dead that finishes late cannot overwrite the work of
//!   the worker that took its task over.
//! - [`ScheduleState`]: per model, whether its schedule is paused and the last logical time
//!   it was scheduled for.
//! - [`Registry::try_lock_scheduler`](crate::Registry::try_lock_scheduler): at most one
//!   scheduler process is active; standbys poll the lock.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Connection;

use crate::error::DbContext;
use crate::RegistryError;

/// The identity of a task: what it does, to what, for which logical time.
///
/// Two tasks with the same key are the same task: [`TaskQueue::enqueue`] never stores a
/// key twice, so re-running a schedule or backfilling a range never duplicates work (and
/// outputs keyed by task and logical time are never written twice). `logical_time` is
/// stored to the millisecond; keys that differ only below a millisecond are the same.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaskKey {
    /// What the task does, e.g. `snapshot`, `train`, `score`, `publish` (opaque to the
    /// queue).
    pub kind: String,
    /// What it does it to, e.g. `behaviour` or a feature-set or model-group name.
    pub key: String,
    /// The point in time the task computes for (not when it runs).
    pub logical_time: DateTime<Utc>,
}

impl TaskKey {
    /// A key for `kind` of `key` at `logical_time`.
    pub fn new(
        kind: impl Into<String>,
        key: impl Into<String>,
        logical_time: DateTime<Utc>,
    ) -> TaskKey {
        TaskKey {
            kind: kind.into(),
            key: key.into(),
            logical_time,
        }
    }
}

impl fmt::Display for TaskKey {
    /// `kind/key@logical time` (RFC 3339, milliseconds), e.g.
    /// `train/churn@2024-05-01T00:00:00.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}@{}",
            self.kind,
            self.key,
            self.logical_time
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
    }
}

/// A task to add to the queue; see [`TaskQueue::enqueue`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    /// Its identity (kind and key non-empty, at most 256 bytes, no padding or control
    /// characters).
    pub key: TaskKey,
    /// What the worker needs to run it (opaque to the queue).
    pub payload: serde_json::Value,
    /// Tasks that must have succeeded before this one may be claimed: tasks of the same
    /// batch or tasks already stored.
    pub depends_on: Vec<TaskKey>,
    /// The pool whose slots limit how many tasks of it run at once (see
    /// [`TaskQueue::set_pools`]); `None` runs without a pool limit.
    pub pool: Option<String>,
    /// Higher runs first.
    pub priority: i32,
    /// How many times it may be claimed in all (≥ 1): 1 means no retry.
    pub max_attempts: u32,
    /// The delay before the first retry; each later retry waits twice as long as the one
    /// before (see [`TaskQueue::complete`]). Stored to the millisecond.
    pub retry_backoff: Duration,
    /// How long one attempt may run, for the worker to enforce (the queue stores it and
    /// only expires leases that are not renewed). Stored to the millisecond; at least 1 ms.
    pub timeout: Option<Duration>,
}

impl NewTask {
    /// A task with an empty payload, no dependencies and no pool, priority 0, 3 attempts,
    /// a 30 s retry backoff and no timeout.
    pub fn new(key: TaskKey) -> NewTask {
        NewTask {
            key,
            payload: serde_json::Value::Null,
            depends_on: Vec::new(),
            pool: None,
            priority: 0,
            max_attempts: 3,
            retry_backoff: Duration::from_secs(30),
            timeout: None,
        }
    }
}

/// Where a task is in its life.
///
/// ```text
/// queued ──claim──▶ running ──complete(succeeded)──▶ succeeded
///   ▲                  │ ──complete(failed), attempts left──▶ queued (after a backoff)
///   └──lease expired───┘ ──complete(failed), none left or not retryable──▶ failed
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Waiting to be claimed (perhaps for its dependencies, a pool slot or a backoff).
    Queued,
    /// Claimed by a worker that holds its lease.
    Running,
    /// Done; its output is stored.
    Succeeded,
    /// Given up on; its last error is stored.
    Failed,
}

impl TaskState {
    /// Every state, in lifecycle order.
    pub const ALL: [TaskState; 4] = [
        TaskState::Queued,
        TaskState::Running,
        TaskState::Succeeded,
        TaskState::Failed,
    ];

    /// The stored and displayed name: `queued`, `running`, `succeeded` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
        }
    }

    /// Whether the task will never change again (succeeded or failed).
    pub fn is_final(self) -> bool {
        matches!(self, TaskState::Succeeded | TaskState::Failed)
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskState {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "queued" => Ok(TaskState::Queued),
            "running" => Ok(TaskState::Running),
            "succeeded" => Ok(TaskState::Succeeded),
            "failed" => Ok(TaskState::Failed),
            other => Err(RegistryError::InvalidInput(format!(
                "unknown task state {other:?}; expected one of queued, running, succeeded, failed"
            ))),
        }
    }
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Its id, assigned by [`TaskQueue::enqueue`] (increasing in enqueue order).
    pub task_id: i64,
    /// Its identity.
    pub key: TaskKey,
    /// What the worker needs to run it.
    pub payload: serde_json::Value,
    /// The ids of the tasks it waits for, ascending.
    pub depends_on: Vec<i64>,
    /// Its pool, if any.
    pub pool: Option<String>,
    /// Higher runs first.
    pub priority: i32,
    /// Where it is in its life.
    pub state: TaskState,
    /// How many times it has been claimed.
    pub attempts: u32,
    /// How many times it may be claimed in all.
    pub max_attempts: u32,
    /// The base delay before a retry.
    pub retry_backoff: Duration,
    /// How long one attempt may run (for the worker to enforce).
    pub timeout: Option<Duration>,
    /// It is not claimed before this time (database clock): its enqueue time, or the end
    /// of its retry backoff.
    pub not_before: DateTime<Utc>,
    /// The worker holding its lease, while running.
    pub lease_owner: Option<String>,
    /// The fencing token of its current lease, while running.
    pub lease_token: Option<i64>,
    /// When its current lease expires unless renewed, while running (database clock).
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When it was first enqueued (database clock).
    pub created_at: DateTime<Utc>,
    /// When it last changed (database clock).
    pub updated_at: DateTime<Utc>,
    /// The error of its last failed or lost attempt, if any (kept when a retry succeeds).
    pub last_error: Option<String>,
    /// What it produced, once succeeded.
    pub output: Option<serde_json::Value>,
}

/// A claimed task and the lease on it; see [`TaskQueue::claim`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// The task, as it is now (running, with this lease).
    pub task: Task,
    /// The lease's fencing token, to pass to [`TaskQueue::heartbeat`] and
    /// [`TaskQueue::complete`].
    pub token: i64,
    /// When the lease expires unless renewed (database clock).
    pub expires_at: DateTime<Utc>,
}

/// How an attempt ended; see [`TaskQueue::complete`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Outcome {
    /// The task did its work; `output` is stored with it.
    Succeeded {
        /// What it produced (e.g. the Delta table version it wrote).
        output: serde_json::Value,
    },
    /// The attempt failed.
    Failed {
        /// Why, for people.
        error: String,
        /// Whether trying again may succeed (a timeout, an unavailable service); a
        /// non-retryable failure (bad configuration) fails the task at once.
        retryable: bool,
    },
}

/// One claim of a task and how it ended; see [`TaskQueue::task_attempts`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// The task.
    pub task_id: i64,
    /// 1 for the first claim, 2 for the second…
    pub attempt: u32,
    /// The worker that claimed it.
    pub worker: String,
    /// The lease's fencing token.
    pub token: i64,
    /// When it was claimed (database clock).
    pub started_at: DateTime<Utc>,
    /// When it ended (database clock), unless still running.
    pub ended_at: Option<DateTime<Utc>>,
    /// `running`, `succeeded`, `failed`, or `lost` (its lease expired and
    /// [`TaskQueue::requeue_expired`] took the task back).
    pub result: String,
    /// Why it failed or was lost.
    pub error: Option<String>,
}

/// Limits a worker passes to [`TaskQueue::claim`], on top of the pools' slots (which are
/// stored, see [`TaskQueue::set_pools`], so every worker sees the same ones).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimLimits {
    /// Claim nothing while this many tasks (of every worker, in every pool) are running.
    pub max_running: Option<u32>,
}

/// Which tasks [`TaskQueue::list_tasks`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFilter {
    /// Only tasks in this state.
    pub state: Option<TaskState>,
    /// Only tasks of this kind.
    pub kind: Option<String>,
    /// Only tasks whose key starts with this.
    pub key_prefix: Option<String>,
    /// Only tasks whose JSON payload lists this name in its `segments` array (how the
    /// scheduler records which segments a batched task serves).
    pub segment: Option<String>,
    /// At most this many tasks (≥ 1); defaults to 100.
    pub limit: usize,
}

impl Default for TaskFilter {
    fn default() -> Self {
        TaskFilter {
            state: None,
            kind: None,
            key_prefix: None,
            segment: None,
            limit: 100,
        }
    }
}

/// A model's schedule: whether it runs and how far it got; see [`ScheduleState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSchedule {
    /// The model (or model group) name.
    pub model: String,
    /// Whether its schedule is paused (the scheduler enqueues nothing for it).
    pub paused: bool,
    /// The latest logical time it was scheduled for, if ever.
    pub last_logical_time: Option<DateTime<Utc>>,
}

/// The durable task queue shared by the scheduler and its workers.
///
/// # Contract
///
/// - **Clock.** Every time the queue compares or stamps (`not_before`, lease expiry,
///   `created_at`, attempt times) comes from the *database* clock, read once per call, never
///   from the caller's, so workers with skewed clocks agree. Times are integer
///   milliseconds since the Unix epoch; durations are truncated to the millisecond.
/// - **Atomicity.** Every method is one transaction. `enqueue` stores the whole batch with
///   its dependencies or nothing.
/// - **Identity.** A [`TaskKey`] names one task forever: enqueueing a stored key returns the
///   stored task's id and changes nothing (its payload, dependencies and settings stay as
///   first enqueued), also when two schedulers enqueue it at once.
/// - **Claim order.** `claim` takes, among the queued tasks whose `not_before` has passed,
///   whose dependencies have all succeeded and whose pool has a free slot, the one with the
///   highest priority, then the oldest logical time, then the lowest id.
/// - **Pools.** A pool's slots (set by [`set_pools`](TaskQueue::set_pools), stored in the
///   database) bound how many of its tasks run at once, counted across all workers; the
///   bound holds exactly under concurrent claims (on PostgreSQL a claim locks the pool's
///   row before counting; on SQLite writes are serialised). `max_running` in
///   [`ClaimLimits`] bounds the running tasks of every pool together, as exactly.
///   Enqueueing a task whose pool is not configured is [`RegistryError::InvalidInput`]
///   naming the pool and the task.
/// - **Leases and fencing.** A claim gives the worker a lease for a duration and a fencing
///   token: the task's attempt number, so each lease of a task has a greater token than
///   every earlier one. `heartbeat` and `complete` act only under the current lease's token;
///   under any other they are [`RegistryError::Conflict`] saying where the task went
///   (another worker's lease, back to the queue, finished), and change nothing. A lease
///   past its expiry still counts until `requeue_expired` takes the task back (the
///   scheduler calls it periodically); then the attempt is `lost`.
/// - **Timeouts.** A task's `timeout` bounds each attempt, measured by the database clock
///   from the claim, whatever the worker does: past it `heartbeat` refuses to renew
///   ([`RegistryError::Conflict`] saying so) and `requeue_expired` ends the attempt as
///   `failed` (timed out, retryable) even while its lease is still valid. A worker whose
///   own timer never fires (a run stuck in a blocking call) cannot hold a task longer.
/// - **Retention.** `purge_finished` deletes finished tasks with their attempts and
///   dependency edges; a finished task that an unfinished one depends on is kept.
/// - **Retries.** A retryable failure or a lost lease with attempts left puts the task back
///   in the queue with `not_before = now + retry_backoff × 2^(attempts − 1)` (the doubling
///   stops after 16 steps); otherwise the task fails with its last error, and so do its
///   queued dependents, transitively (they could never run), with a `last_error` naming
///   the failed task.
/// - **Idempotency.** `complete` repeated with the token and the kind of outcome of the
///   attempt it already ended (a retry after an unknown outcome) returns the task and
///   changes nothing.
/// - **Concurrency.** Any number of workers on any number of handles and machines may
///   claim at once: each queued task is claimed by exactly one of them. On PostgreSQL a
///   claim skips rows other claims have locked (`FOR UPDATE SKIP LOCKED`) instead of
///   waiting for them; claims of one pool, and all claims when `max_running` is given,
///   queue briefly on that limit's lock. On SQLite claims are serialised by the write lock.
/// - **Errors.** An unknown task id is [`RegistryError::NotFound`]; empty or malformed
///   names, `max_attempts: 0`, a zero lease, an unknown dependency, a dependency cycle or
///   `limit: 0` are [`RegistryError::InvalidInput`] naming the task, rejected before
///   anything is written. Bad input never panics.
pub trait TaskQueue: Send + Sync {
    /// Sets the slots of the listed pools (creating pools that are new); pools not listed
    /// keep their slots. A pool is never removed, since tasks refer to it: 0 slots stops
    /// its tasks from being claimed. Names follow the task key rules.
    fn set_pools(
        &self,
        pools: &BTreeMap<String, u32>,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Every configured pool and its slots.
    fn pools(&self) -> impl Future<Output = Result<BTreeMap<String, u32>, RegistryError>> + Send;

    /// Adds tasks to the queue, all or nothing, and returns their ids in the order given.
    ///
    /// A task whose key is stored already is not added again: its stored id is returned
    /// (as it is for a key repeated in the batch). `depends_on` may name tasks of the batch
    /// or stored tasks; an unknown dependency, a cycle, an unconfigured pool, an empty kind
    /// or key, `max_attempts: 0` or a zero timeout is [`RegistryError::InvalidInput`]
    /// naming the task. New tasks are queued with `not_before` = now.
    fn enqueue(
        &self,
        tasks: &[NewTask],
    ) -> impl Future<Output = Result<Vec<i64>, RegistryError>> + Send;

    /// Claims the next task (see the claim order in the trait docs) for `worker`, or
    /// `None` if no task may run now.
    ///
    /// The task becomes running under a new lease that expires `lease` from now (database
    /// clock); its attempt count goes up by one and is the lease's fencing token; an
    /// [`Attempt`] in state `running` is recorded.
    fn claim(
        &self,
        worker: &str,
        lease: Duration,
        limits: &ClaimLimits,
    ) -> impl Future<Output = Result<Option<Lease>, RegistryError>> + Send;

    /// Renews the lease `token` of task `task_id` to expire `lease` from now, and returns
    /// the new expiry. If the task no longer runs under that token it is
    /// [`RegistryError::Conflict`] saying where it went (to which worker).
    fn heartbeat(
        &self,
        task_id: i64,
        token: i64,
        lease: Duration,
    ) -> impl Future<Output = Result<DateTime<Utc>, RegistryError>> + Send;

    /// Ends the attempt holding lease `token` and returns the task after it.
    ///
    /// [`Outcome::Succeeded`] stores the output and the task succeeds. [`Outcome::Failed`]
    /// puts a retryable failure with attempts left back in the queue after a backoff (see
    /// the trait docs), and fails the task otherwise; either way the error is its
    /// `last_error`. A token that is not the current lease's is [`RegistryError::Conflict`]
    /// and changes nothing (a worker presumed dead cannot overwrite its successor), unless
    /// it repeats how that token's attempt already ended (then it returns the task).
    fn complete(
        &self,
        task_id: i64,
        token: i64,
        outcome: Outcome,
    ) -> impl Future<Output = Result<Task, RegistryError>> + Send;

    /// Takes back every running task whose lease expired or whose attempt ran past its
    /// timeout (database clock): the attempt is marked `lost` (lease) or `failed` (timeout),
    /// and the task goes back to the queue after a backoff, or fails when it has no attempts
    /// left. Returns the ids of the tasks taken back, ascending.
    fn requeue_expired(&self) -> impl Future<Output = Result<Vec<i64>, RegistryError>> + Send;

    /// Reads a task; an unknown id is [`RegistryError::NotFound`].
    fn get_task(&self, task_id: i64) -> impl Future<Output = Result<Task, RegistryError>> + Send;

    /// The task with this key, if stored.
    fn find_task(
        &self,
        key: &TaskKey,
    ) -> impl Future<Output = Result<Option<Task>, RegistryError>> + Send;

    /// The tasks matching `filter`: newest logical time first, then by id (enqueue order),
    /// at most `filter.limit` of them.
    fn list_tasks(
        &self,
        filter: &TaskFilter,
    ) -> impl Future<Output = Result<Vec<Task>, RegistryError>> + Send;

    /// How many tasks are in each state (every state is present, 0 if none).
    fn task_counts(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<TaskState, u64>, RegistryError>> + Send;

    /// Deletes the tasks that finished (succeeded or failed) more than `older_than` ago
    /// (database clock), with their attempts and dependency edges, except those a task
    /// still queued or running depends on; returns how many were deleted. Their keys become
    /// free: enqueueing one again makes a new task (the scheduler never does, since each
    /// model's schedule state only moves forward).
    fn purge_finished(
        &self,
        older_than: Duration,
    ) -> impl Future<Output = Result<u64, RegistryError>> + Send;

    /// Every attempt of a task, oldest first; an unknown id is [`RegistryError::NotFound`].
    fn task_attempts(
        &self,
        task_id: i64,
    ) -> impl Future<Output = Result<Vec<Attempt>, RegistryError>> + Send;
}

/// Per-model schedule state: paused or not, and the last logical time scheduled.
///
/// # Contract
///
/// - A model with no stored state is `None` from `schedule_state` and absent from
///   `list_schedule_states`; either setter creates its state (unpaused, never scheduled).
/// - `set_last_scheduled` only moves forward: an earlier or equal time changes nothing and
///   succeeds (so a scheduler that crashed and replays is harmless), and concurrent calls
///   leave the latest time.
/// - `set_paused` is idempotent; pausing keeps the last logical time.
/// - Model names follow the registry's name rules; a malformed one is
///   [`RegistryError::InvalidInput`]. Times are stored to the millisecond.
pub trait ScheduleState: Send + Sync {
    /// The schedule state of `model`, if any was stored.
    fn schedule_state(
        &self,
        model: &str,
    ) -> impl Future<Output = Result<Option<ModelSchedule>, RegistryError>> + Send;

    /// Records that `model` was scheduled up to `logical_time` (only ever moving forward)
    /// and returns its state after the call.
    fn set_last_scheduled(
        &self,
        model: &str,
        logical_time: DateTime<Utc>,
    ) -> impl Future<Output = Result<ModelSchedule, RegistryError>> + Send;

    /// [`set_last_scheduled`](ScheduleState::set_last_scheduled) for many models in one
    /// transaction (what one scheduler tick records); same forward-only rule per model.
    fn set_last_scheduled_many(
        &self,
        scheduled: &[(String, DateTime<Utc>)],
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Pauses or resumes `model`'s schedule and returns its state after the call.
    fn set_paused(
        &self,
        model: &str,
        paused: bool,
    ) -> impl Future<Output = Result<ModelSchedule, RegistryError>> + Send;

    /// Every stored schedule state, by model name.
    fn list_schedule_states(
        &self,
    ) -> impl Future<Output = Result<Vec<ModelSchedule>, RegistryError>> + Send;
}

/// Proof that this process is the active scheduler; see
/// [`Registry::try_lock_scheduler`](crate::Registry::try_lock_scheduler).
///
/// Dropping it releases the lock (on PostgreSQL as soon as the server sees its connection
/// close, within milliseconds; [`release`](SchedulerLock::release) waits for that). If the
/// process dies the lock goes with it: the operating system drops the file lock, the
/// server drops the advisory lock with the session.
pub struct SchedulerLock {
    inner: LockInner,
}

/// How the lock is held, per backend.
enum LockInner {
    /// A session advisory lock, held by this dedicated connection (taken on drop).
    Postgres(Option<sqlx::PgConnection>),
    /// An exclusive lock on `<database file>.scheduler.lock`, held while the file is open.
    File {
        /// The open, locked file.
        _file: std::fs::File,
        /// Its path, for `Debug`.
        path: std::path::PathBuf,
    },
    /// The in-process flag of an in-memory SQLite database.
    Memory(Arc<AtomicBool>),
}

impl fmt::Debug for SchedulerLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held_by = match &self.inner {
            LockInner::Postgres(_) => "postgres advisory lock".to_string(),
            LockInner::File { path, .. } => format!("file lock on {}", path.display()),
            LockInner::Memory(_) => "in-process flag".to_string(),
        };
        f.debug_struct("SchedulerLock")
            .field("held_by", &held_by)
            .finish()
    }
}

impl SchedulerLock {
    /// A lock held by `conn`'s session advisory lock.
    pub(crate) fn postgres(conn: sqlx::PgConnection) -> SchedulerLock {
        SchedulerLock {
            inner: LockInner::Postgres(Some(conn)),
        }
    }

    /// A lock held by the exclusive lock on the open `file` at `path`.
    pub(crate) fn file(file: std::fs::File, path: std::path::PathBuf) -> SchedulerLock {
        SchedulerLock {
            inner: LockInner::File { _file: file, path },
        }
    }

    /// A lock held by setting `flag`; dropping the lock clears it.
    pub(crate) fn memory(flag: Arc<AtomicBool>) -> SchedulerLock {
        SchedulerLock {
            inner: LockInner::Memory(flag),
        }
    }

    /// Checks the lock is still held. On PostgreSQL the lock lives as long as its
    /// connection: if the connection was lost (server restart, network cut), another
    /// scheduler may have taken over, and this is [`RegistryError::Database`] of kind
    /// [`ErrorKind::Unavailable`](spire_core::ErrorKind::Unavailable): stop scheduling and
    /// try to take the lock again. File and in-process locks cannot be lost.
    pub async fn ensure_held(&mut self) -> Result<(), RegistryError> {
        match &mut self.inner {
            LockInner::Postgres(Some(conn)) => conn
                .ping()
                .await
                .db(|| "checking the scheduler lock's connection".to_string()),
            LockInner::Postgres(None) => Err(RegistryError::conflict(
                "the scheduler lock was released".to_string(),
            )),
            LockInner::File { .. } | LockInner::Memory(_) => Ok(()),
        }
    }

    /// Releases the lock now, waiting until another process can take it.
    pub async fn release(mut self) -> Result<(), RegistryError> {
        if let LockInner::Postgres(conn) = &mut self.inner {
            if let Some(conn) = conn.take() {
                conn.close()
                    .await
                    .db(|| "releasing the scheduler lock".to_string())?;
            }
        }
        Ok(())
    }
}

impl Drop for SchedulerLock {
    fn drop(&mut self) {
        match &mut self.inner {
            LockInner::Postgres(conn) => {
                if let Some(conn) = conn.take() {
                    // Closing politely needs the runtime; without one, dropping the socket
                    // makes the server end the session (and its lock) all the same.
                    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                        runtime.spawn(async move {
                            if let Err(e) = conn.close().await {
                                tracing::debug!(error = %e, "closing the scheduler lock's connection");
                            }
                        });
                    }
                }
            }
            LockInner::Memory(flag) => flag.store(false, Ordering::SeqCst),
            // Closing the file (dropping it) releases its lock.
            LockInner::File { .. } => {}
        }
    }
}

/// Converts a duration to whole milliseconds for storage; `what` names it for the error.
pub(crate) fn duration_ms(
    what: impl FnOnce() -> String,
    d: Duration,
) -> Result<i64, RegistryError> {
    i64::try_from(d.as_millis())
        .map_err(|_| RegistryError::InvalidInput(format!("{} of {d:?} is too long", what())))
}

/// How many times a retry backoff doubles at most.
pub(crate) const MAX_BACKOFF_DOUBLINGS: u32 = 16;

/// The delay before the retry that follows attempt `attempts` (≥ 1): `base_ms ×
/// 2^(attempts − 1)`, the exponent capped at [`MAX_BACKOFF_DOUBLINGS`], saturating.
pub(crate) fn backoff_ms(base_ms: i64, attempts: i64) -> i64 {
    let exponent = attempts
        .saturating_sub(1)
        .clamp(0, i64::from(MAX_BACKOFF_DOUBLINGS));
    base_ms.max(0).saturating_mul(1_i64 << exponent)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn states_round_trip() {
        for state in TaskState::ALL {
            assert_eq!(state.as_str().parse::<TaskState>().unwrap(), state);
        }
        assert!("done".parse::<TaskState>().is_err());
        assert!(TaskState::Failed.is_final() && !TaskState::Queued.is_final());
    }

    #[test]
    fn backoff_doubles_and_saturates() {
        assert_eq!(backoff_ms(100, 1), 100);
        assert_eq!(backoff_ms(100, 2), 200);
        assert_eq!(backoff_ms(100, 3), 400);
        assert_eq!(backoff_ms(100, 0), 100);
        assert_eq!(backoff_ms(1, 100), 1 << 16);
        assert_eq!(backoff_ms(i64::MAX, 5), i64::MAX);
        assert_eq!(backoff_ms(0, 5), 0);
    }

    #[test]
    fn keys_display_with_milliseconds() {
        let t = DateTime::from_timestamp_millis(1_714_521_600_000).unwrap();
        assert_eq!(
            TaskKey::new("train", "churn", t).to_string(),
            "train/churn@2024-05-01T00:00:00.000Z"
        );
    }

    #[test]
    fn durations_are_whole_milliseconds() {
        assert_eq!(
            duration_ms(String::new, Duration::from_micros(2500)).unwrap(),
            2
        );
        assert!(duration_ms(|| "lease".into(), Duration::MAX).is_err());
    }
}
