//! The scheduler: each tick decides what is due, batches it into tasks and enqueues them
//! (idempotently, keyed by kind, key and logical time), records how far each segment was
//! scheduled, and takes back tasks whose worker died. One scheduler is active at a time;
//! another waits as a standby (see [`run`]).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::json;
use spire_core::config::SchedulerConfig;
use spire_registry::tasks::{NewTask, ScheduleState, TaskKey, TaskQueue};
use spire_registry::{Registry, RegistryError};

use crate::dag::{plan, Due, Plan, PlannedTask};
use crate::due::{backfill_times, due_runs, ModelState};
use crate::model::ScheduledModel;

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TickReport {
    /// (segment, logical time) runs found due.
    pub due_runs: usize,
    /// Batched tasks in the plan (already-queued ones are not added twice).
    pub planned_tasks: usize,
    /// Tasks whose lease expired or attempt timed out, taken back to the queue (or failed).
    pub requeued: Vec<i64>,
    /// Finished tasks deleted for being older than `keep_finished_days` (checked at most
    /// once an hour).
    pub purged: u64,
    /// How long deciding (due runs and plan, no I/O) took, in milliseconds.
    pub decide_ms: f64,
    /// How long the whole tick took, in milliseconds.
    pub total_ms: f64,
}

/// The queue form of a planned task; `depends_on` keys point at tasks of the same plan.
pub fn to_new_task(plan: &Plan, t: &PlannedTask) -> NewTask {
    let key = |t: &PlannedTask| TaskKey {
        kind: t.kind.as_str().to_string(),
        key: t.key.clone(),
        logical_time: t.logical_time,
    };
    NewTask {
        key: key(t),
        payload: json!({
            "segments": t.segments,
            "as_of": t.as_of,
            "stages": t.kind.stages(),
        }),
        depends_on: t.depends_on.iter().map(|&d| key(&plan.tasks[d])).collect(),
        pool: t.pool.clone(),
        priority: t.priority,
        max_attempts: t.max_attempts,
        retry_backoff: Duration::from_secs(t.retry_backoff_secs),
        timeout: Some(Duration::from_secs(t.timeout_secs)),
    }
}

/// Decides what is due at `now` (pure): the due runs and their batched plan.
pub fn decide(
    models: &[ScheduledModel],
    state: &HashMap<String, ModelState>,
    now: DateTime<Utc>,
) -> (Vec<(String, DateTime<Utc>)>, Plan) {
    let due = due_runs(models, state, now);
    let runs: Vec<Due> = due
        .iter()
        .map(|d| Due {
            model: &models[d.model],
            logical_time: d.logical_time,
        })
        .collect();
    let plan = plan(&runs);
    // How far each segment is now scheduled: its latest due logical time.
    let mut last: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
    for d in &due {
        let e = last
            .entry(models[d.model].name.as_str())
            .or_insert(d.logical_time);
        *e = (*e).max(d.logical_time);
    }
    let scheduled = last.into_iter().map(|(m, t)| (m.to_string(), t)).collect();
    (scheduled, plan)
}

/// The scheduler over one registry database.
#[derive(Debug, Clone)]
pub struct Scheduler {
    registry: Registry,
    config: SchedulerConfig,
    /// When this scheduler last purged finished tasks.
    last_purge: std::sync::Arc<std::sync::Mutex<Option<Instant>>>,
}

/// How often the scheduler deletes finished tasks past their retention.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

impl Scheduler {
    /// A scheduler enqueueing into `registry` with `config`'s pools.
    pub fn new(registry: Registry, config: SchedulerConfig) -> Scheduler {
        Scheduler {
            registry,
            config,
            last_purge: Default::default(),
        }
    }

    /// Stores the configured pool slots (run once at start, and after a config change).
    pub async fn sync_pools(&self) -> Result<(), RegistryError> {
        if self.config.pools.is_empty() {
            return Ok(());
        }
        self.registry.set_pools(&self.config.pools).await
    }

    /// One tick at `now`: takes back expired leases, then enqueues what is due and records
    /// how far each segment was scheduled. Enqueueing is idempotent, so a crash between the
    /// two writes only means the next tick finds the same tasks queued already.
    pub async fn tick(
        &self,
        models: &[ScheduledModel],
        now: DateTime<Utc>,
    ) -> Result<TickReport, RegistryError> {
        let started = Instant::now();
        let requeued = self.registry.requeue_expired().await?;
        let purged = match self.purge_due() {
            Some(keep) => self.registry.purge_finished(keep).await?,
            None => 0,
        };
        let state: HashMap<String, ModelState> = self
            .registry
            .list_schedule_states()
            .await?
            .into_iter()
            .map(|s| {
                (
                    s.model,
                    ModelState {
                        last_scheduled: s.last_logical_time,
                        paused: s.paused,
                    },
                )
            })
            .collect();
        let deciding = Instant::now();
        let (scheduled, plan) = decide(models, &state, now);
        let decide_ms = deciding.elapsed().as_secs_f64() * 1e3;
        let tasks: Vec<NewTask> = plan.tasks.iter().map(|t| to_new_task(&plan, t)).collect();
        if !tasks.is_empty() {
            self.registry.enqueue(&tasks).await?;
            self.registry.set_last_scheduled_many(&scheduled).await?;
        }
        let report = TickReport {
            due_runs: scheduled.len(),
            planned_tasks: tasks.len(),
            requeued,
            purged,
            decide_ms,
            total_ms: started.elapsed().as_secs_f64() * 1e3,
        };
        if report.planned_tasks > 0 || !report.requeued.is_empty() {
            tracing::info!(
                due = report.due_runs,
                tasks = report.planned_tasks,
                requeued = report.requeued.len(),
                "scheduler tick"
            );
        }
        Ok(report)
    }

    /// The retention to purge with, when a purge is due on this tick (the first tick,
    /// then hourly), and `None` when it is not or tasks are kept forever.
    fn purge_due(&self) -> Option<Duration> {
        let days = self.config.keep_finished_days?;
        let mut last = self
            .last_purge
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < PURGE_EVERY) {
            return None;
        }
        *last = Some(Instant::now());
        Some(Duration::from_secs(u64::from(days) * 86_400))
    }

    /// Enqueues every run of `segment` between two dates (inclusive), whatever its
    /// catch-up policy; already queued runs are not added twice. Returns the plan.
    pub async fn backfill(
        &self,
        models: &[ScheduledModel],
        segment: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Plan, RegistryError> {
        let Some(model) = models.iter().find(|m| m.name == segment) else {
            return Err(RegistryError::NotFound {
                what: format!("segment {segment:?}"),
            });
        };
        if from > to {
            return Err(RegistryError::InvalidInput(format!(
                "backfill of {segment:?}: --from {from} is after --to {to}"
            )));
        }
        let runs: Vec<Due> = backfill_times(model, from, to)
            .into_iter()
            .map(|t| Due {
                model,
                logical_time: t,
            })
            .collect();
        let plan = plan(&runs);
        let tasks: Vec<NewTask> = plan.tasks.iter().map(|t| to_new_task(&plan, t)).collect();
        if !tasks.is_empty() {
            self.registry.enqueue(&tasks).await?;
        }
        Ok(plan)
    }
}

/// What the loop in [`run`] reports each tick: whether this process is the active scheduler.
#[derive(Debug, Clone, PartialEq)]
pub enum LoopEvent {
    /// Another scheduler holds the lock; this one waits.
    Standby,
    /// This scheduler ticked.
    Ticked(TickReport),
}

/// Runs the scheduler until `shutdown` resolves: every `interval`, if it holds (or can take)
/// the single-scheduler lock, reloads the segments with `models` and ticks; otherwise it
/// waits as a standby and tries again next interval. `on_event` sees every tick.
pub async fn run<F, Fut>(
    scheduler: &Scheduler,
    interval: Duration,
    mut models: F,
    mut on_event: impl FnMut(&LoopEvent),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), RegistryError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<ScheduledModel>, RegistryError>>,
{
    tokio::pin!(shutdown);
    let mut lock: Option<spire_registry::tasks::SchedulerLock> = None;
    loop {
        if let Some(held) = lock.as_mut() {
            if let Err(e) = held.ensure_held().await {
                tracing::warn!(error = %e, "lost the scheduler lock; back to standby");
                lock = None;
            }
        }
        if lock.is_none() {
            lock = scheduler.registry.try_lock_scheduler().await?;
            if lock.is_some() {
                scheduler.sync_pools().await?;
            }
        }
        let event = if lock.is_some() {
            let list = models().await?;
            LoopEvent::Ticked(scheduler.tick(&list, Utc::now()).await?)
        } else {
            LoopEvent::Standby
        };
        on_event(&event);
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
