//! Workers: claim a task with a lease, run it through a [`TaskRunner`] while heartbeating,
//! and report the outcome with the lease's fencing token, so a worker presumed dead can
//! never overwrite its successor's result.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use spire_registry::tasks::{ClaimLimits, Outcome, Task, TaskFilter, TaskQueue, TaskState};
use spire_registry::{Registry, RegistryError};

/// How a task run failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    /// What went wrong (kept as the task's `last_error` and in its attempt).
    pub message: String,
    /// Whether another attempt may succeed (a busy database, a lost broker) or not (a
    /// spec that cannot work, bad input).
    pub retryable: bool,
}

impl TaskFailure {
    /// A failure another attempt may fix.
    pub fn retryable(message: impl Into<String>) -> TaskFailure {
        TaskFailure {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure no retry will fix.
    pub fn permanent(message: impl Into<String>) -> TaskFailure {
        TaskFailure {
            message: message.into(),
            retryable: false,
        }
    }
}

/// Runs the stages of one task; the pipeline implements it.
///
/// # Contract
///
/// - **Idempotent per task.** A task may run more than once (a retry, a worker presumed dead
///   whose lease expired, a backfill): its outputs are keyed by the task and its logical
///   time (as-of date), so a second run replaces or repeats its rows and never duplicates
///   them.
/// - **Cancellable.** The worker drops the returned future when the lease is lost or the
///   timeout passes; a run must leave nothing half-visible when dropped (Delta commits are
///   atomic; registry writes are transactions).
/// - **Errors.** A failure says whether retrying may help ([`TaskFailure::retryable`]).
///   It never panics on bad input.
pub trait TaskRunner: Send + Sync {
    /// Runs `task` (its kind, key, logical time and payload say what to do) and returns its
    /// output, stored with the task. The future need not be `Send`: a worker drives one
    /// task at a time on its own task (the pipeline's stages hold non-`Send` state).
    fn run(&self, task: &Task) -> impl Future<Output = Result<serde_json::Value, TaskFailure>>;
}

/// How a worker claims and runs tasks.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The worker's name in leases and attempts (e.g. `host:pid`).
    pub id: String,
    /// Lease length; the worker heartbeats every third of it.
    pub lease: Duration,
    /// Global limit on running tasks.
    pub limits: ClaimLimits,
    /// How long to wait when nothing is claimable.
    pub idle_poll: Duration,
}

/// What happened to one claimed task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ran {
    /// The task's id.
    pub task_id: i64,
    /// `kind[key]`.
    pub label: String,
    /// The task's state after the attempt (queued again when a retry is due).
    pub state: String,
    /// The failure, if the attempt failed.
    pub error: Option<String>,
    /// Whether the result was refused because the lease had moved on.
    pub fenced: bool,
}

/// A worker over one registry database.
#[derive(Debug, Clone)]
pub struct Worker {
    registry: Registry,
    config: WorkerConfig,
}

impl Worker {
    /// A worker claiming from `registry`.
    pub fn new(registry: Registry, config: WorkerConfig) -> Worker {
        Worker { registry, config }
    }

    /// Claims one task and runs it to an outcome; `None` when nothing is claimable now.
    pub async fn run_once(&self, runner: &impl TaskRunner) -> Result<Option<Ran>, RegistryError> {
        let Some(lease) = self
            .registry
            .claim(&self.config.id, self.config.lease, &self.config.limits)
            .await?
        else {
            return Ok(None);
        };
        let task = lease.task;
        let token = lease.token;
        let label = format!("{}[{}]", task.key.kind, task.key.key);
        tracing::info!(task = task.task_id, %label, attempt = token, "running task");
        let timeout = task.timeout.unwrap_or(Duration::from_secs(365 * 24 * 3600));
        let beat = self.config.lease / 3;
        let heartbeat = async {
            loop {
                tokio::time::sleep(beat).await;
                if let Err(e) = self
                    .registry
                    .heartbeat(task.task_id, token, self.config.lease)
                    .await
                {
                    if e.kind() == spire_core::ErrorKind::Conflict {
                        return e.to_string();
                    }
                    tracing::warn!(task = task.task_id, error = %e, "heartbeat failed; retrying");
                }
            }
        };
        let outcome = tokio::select! {
            result = tokio::time::timeout(timeout, runner.run(&task)) => match result {
                Ok(Ok(output)) => Outcome::Succeeded { output },
                Ok(Err(f)) => Outcome::Failed { error: f.message, retryable: f.retryable },
                Err(_) => Outcome::Failed {
                    error: format!("timed out after {} s", timeout.as_secs()),
                    retryable: true,
                },
            },
            lost = heartbeat => {
                tracing::warn!(task = task.task_id, reason = %lost, "lease lost; run abandoned");
                return Ok(Some(Ran {
                    task_id: task.task_id,
                    label,
                    state: "abandoned".into(),
                    error: Some(lost),
                    fenced: true,
                }));
            }
        };
        let error = match &outcome {
            Outcome::Failed { error, .. } => Some(error.clone()),
            Outcome::Succeeded { .. } => None,
        };
        match self.registry.complete(task.task_id, token, outcome).await {
            Ok(after) => Ok(Some(Ran {
                task_id: task.task_id,
                label,
                state: after.state.as_str().to_string(),
                error,
                fenced: false,
            })),
            Err(e) if e.kind() == spire_core::ErrorKind::Conflict => {
                tracing::warn!(task = task.task_id, error = %e, "result refused: the lease moved on");
                Ok(Some(Ran {
                    task_id: task.task_id,
                    label,
                    state: "fenced".into(),
                    error: Some(e.to_string()),
                    fenced: true,
                }))
            }
            Err(e) => Err(e),
        }
    }

    /// Runs tasks until the queue holds nothing that could still run (`spire worker
    /// --drain`); `on_ran` sees every task it ran.
    ///
    /// While other workers' tasks run it waits, polling every `idle_poll`, since their
    /// dependents may become claimable; so it does while a retry backs off. It returns when
    /// nothing is running and nothing is claimable now or after a backoff (what is left
    /// waits on a pool with 0 slots, or nothing is left).
    pub async fn drain(
        &self,
        runner: &impl TaskRunner,
        mut on_ran: impl FnMut(&Ran),
    ) -> Result<(), RegistryError> {
        loop {
            if let Some(r) = self.run_once(runner).await? {
                on_ran(&r);
                continue;
            }
            let running = self
                .registry
                .task_counts()
                .await?
                .get(&TaskState::Running)
                .copied()
                .unwrap_or(0);
            if running == 0 && !self.retry_pending().await? {
                // The last running task may have ended just before the count: one more try.
                match self.run_once(runner).await? {
                    Some(r) => on_ran(&r),
                    None => return Ok(()),
                }
                continue;
            }
            tokio::time::sleep(self.config.idle_poll).await;
        }
    }

    /// Whether a queued task waits for its retry backoff to pass.
    async fn retry_pending(&self) -> Result<bool, RegistryError> {
        let queued = self
            .registry
            .list_tasks(&TaskFilter {
                state: Some(TaskState::Queued),
                limit: 100_000,
                ..TaskFilter::default()
            })
            .await?;
        let now = chrono::Utc::now();
        Ok(queued.iter().any(|t| t.not_before > now))
    }

    /// Runs tasks until `shutdown` turns true, finishing the task in hand first, waiting
    /// `idle_poll` whenever nothing is claimable; `on_ran` sees every task it ran.
    pub async fn run(
        &self,
        runner: &impl TaskRunner,
        mut on_ran: impl FnMut(&Ran),
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), RegistryError> {
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            match self.run_once(runner).await? {
                Some(r) => on_ran(&r),
                None => tokio::select! {
                    _ = shutdown.changed() => {}
                    _ = tokio::time::sleep(self.config.idle_poll) => {}
                },
            }
        }
    }
}

/// Whether a state name is final (succeeded or failed), for callers reading [`Ran::state`].
pub fn is_final(state: &str) -> bool {
    state
        .parse::<TaskState>()
        .map(|s| s.is_final())
        .unwrap_or(false)
}
