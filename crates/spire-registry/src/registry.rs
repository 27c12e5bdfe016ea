//! The [`Registry`] handle: picks the backend from the URL, applies migrations, and
//! forwards every [`TrackingStore`], [`ModelRegistry`], [`TokenStore`], [`TaskQueue`] and
//! [`ScheduleState`] call to that backend.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use sqlx::migrate::{Migrate, Migrator};
use sqlx::{Database, Pool};

use crate::backend::{postgres, sqlite};
use crate::tasks::{
    Attempt, ClaimLimits, Lease, ModelSchedule, NewTask, Outcome, ScheduleState, SchedulerLock,
    Task, TaskFilter, TaskKey, TaskQueue, TaskState,
};
use crate::tokens::{ApiToken, NewToken, Role, TokenStore};
use crate::{
    AliasEvent, DeletedRun, Experiment, LogBatch, LoggedModel, LoggedModelStatus, Metric,
    ModelRegistry, ModelVersion, NewLoggedModel, NewRun, RegisteredModel, RegistryError, Run,
    RunFilter, RunOutput, RunPage, RunSearch, RunStatus, TrackingStore, ViewType,
};

/// The URL schemes [`Registry::open`] accepts, for error messages.
const SUPPORTED: &str = "sqlite://PATH (e.g. sqlite://spire-data/spire.db), sqlite::memory: \
                         or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE";

/// Which database a [`Registry`] stores its data in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// A SQLite file (or in-memory database): the embedded default.
    Sqlite,
    /// A PostgreSQL database: for many workers on many machines.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A handle on the tracking store and model registry, on SQLite or PostgreSQL.
///
/// It implements [`TrackingStore`], [`ModelRegistry`], [`TokenStore`], [`TaskQueue`] and
/// [`ScheduleState`] (import those traits to call their methods); every contract holds on
/// either backend. Cheap to clone (clones share one connection pool) and safe to use from
/// many tasks; several handles — in one process or many — may open the same database.
#[derive(Clone)]
pub struct Registry {
    inner: Inner,
    location: String,
}

#[derive(Clone)]
enum Inner {
    Sqlite(sqlite::Store),
    Postgres(postgres::Store),
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("backend", &self.backend())
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Opens the registry at `url` and brings its schema up to date.
    ///
    /// - `sqlite://PATH` (the file and its folder are created if missing; WAL journaling)
    ///   or `sqlite::memory:` (a private database that lives as long as this handle and
    ///   its clones);
    /// - `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (or `postgresql://`): the
    ///   database must exist; the schema is created in it.
    ///
    /// Any other scheme is [`RegistryError::InvalidInput`] naming the URL (with any
    /// password hidden) and the supported schemes. An unreachable server is a
    /// [`RegistryError::Database`] of kind
    /// [`ErrorKind::Unavailable`](spire_core::ErrorKind::Unavailable) naming the URL.
    pub async fn open(url: &str) -> Result<Registry, RegistryError> {
        let location = redact(url);
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        let inner = if scheme.eq_ignore_ascii_case("sqlite") {
            Inner::Sqlite(sqlite::Store::open(url).await?)
        } else if scheme.eq_ignore_ascii_case("postgres")
            || scheme.eq_ignore_ascii_case("postgresql")
        {
            Inner::Postgres(postgres::Store::open(url, &location).await?)
        } else {
            return Err(RegistryError::InvalidInput(format!(
                "unsupported registry URL {location:?}: expected {SUPPORTED}"
            )));
        };
        let registry = Registry { inner, location };
        tracing::debug!(registry = %registry.location, backend = %registry.backend(), "opened registry");
        Ok(registry)
    }

    /// Which database this handle talks to.
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Sqlite(_) => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URL this handle was opened with, password hidden.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Takes the single-active-scheduler lock, or returns `None` while another scheduler
    /// (in this process or any other) holds it.
    ///
    /// Exactly one scheduler should enqueue tasks and sweep expired leases at a time; the
    /// others stand by, calling this every few seconds, and the first to get the lock after
    /// the active one stops (or dies) takes over. The lock is held as long as the returned
    /// [`SchedulerLock`] lives, and released when it is dropped or the process dies:
    ///
    /// - PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) on a dedicated
    ///   connection, detached from the pool. If that connection is lost the lock is too:
    ///   call [`SchedulerLock::ensure_held`] before each scheduling round.
    /// - SQLite file: an exclusive lock on `<database file>.scheduler.lock` (works between
    ///   processes on one machine, like the database itself).
    /// - SQLite in memory: an in-process flag shared by this handle's clones.
    pub async fn try_lock_scheduler(&self) -> Result<Option<SchedulerLock>, RegistryError> {
        let lock = match &self.inner {
            Inner::Sqlite(s) => s.try_lock_scheduler().await?,
            Inner::Postgres(s) => s.try_lock_scheduler().await?,
        };
        if lock.is_some() {
            tracing::info!(registry = %self.location, "took the scheduler lock");
        }
        Ok(lock)
    }

    /// Closes the connection pool, waiting for in-flight work; later calls on this handle
    /// or its clones fail with [`ErrorKind::Unavailable`](spire_core::ErrorKind::Unavailable).
    pub async fn close(&self) {
        match &self.inner {
            Inner::Sqlite(s) => s.close().await,
            Inner::Postgres(s) => s.close().await,
        }
    }
}

/// Forwards one call to the backend's implementation.
macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match &$self.inner {
            Inner::Sqlite($store) => $call.await,
            Inner::Postgres($store) => $call.await,
        }
    };
}

impl TrackingStore for Registry {
    async fn create_experiment(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Experiment, RegistryError> {
        dispatch!(self, s => s.create_experiment(name, tags))
    }

    async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment, RegistryError> {
        dispatch!(self, s => s.get_experiment(experiment_id))
    }

    async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment, RegistryError> {
        dispatch!(self, s => s.get_experiment_by_name(name))
    }

    async fn list_experiments(&self, view: ViewType) -> Result<Vec<Experiment>, RegistryError> {
        dispatch!(self, s => s.list_experiments(view))
    }

    async fn set_experiment_tag(
        &self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), RegistryError> {
        dispatch!(self, s => s.set_experiment_tag(experiment_id, key, value))
    }

    async fn delete_experiment(&self, experiment_id: &str) -> Result<(), RegistryError> {
        dispatch!(self, s => s.delete_experiment(experiment_id))
    }

    async fn restore_experiment(&self, experiment_id: &str) -> Result<(), RegistryError> {
        dispatch!(self, s => s.restore_experiment(experiment_id))
    }

    async fn create_run(&self, run: NewRun) -> Result<String, RegistryError> {
        dispatch!(self, s => s.create_run(run))
    }

    async fn log_param(&self, run_id: &str, key: &str, value: &str) -> Result<(), RegistryError> {
        dispatch!(self, s => s.log_param(run_id, key, value))
    }

    async fn log_metric(&self, run_id: &str, metric: &Metric) -> Result<(), RegistryError> {
        dispatch!(self, s => s.log_metric(run_id, metric))
    }

    async fn log_metrics(
        &self,
        run_id: &str,
        metrics: &[(String, f64)],
        step: i64,
    ) -> Result<(), RegistryError> {
        dispatch!(self, s => s.log_metrics(run_id, metrics, step))
    }

    async fn log_batch(&self, run_id: &str, batch: &LogBatch) -> Result<(), RegistryError> {
        dispatch!(self, s => s.log_batch(run_id, batch))
    }

    async fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<(), RegistryError> {
        dispatch!(self, s => s.set_tag(run_id, key, value))
    }

    async fn delete_tag(&self, run_id: &str, key: &str) -> Result<(), RegistryError> {
        dispatch!(self, s => s.delete_tag(run_id, key))
    }

    async fn finish_run(
        &self,
        run_id: &str,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<(), RegistryError> {
        dispatch!(self, s => s.finish_run(run_id, status, error))
    }

    async fn get_run(&self, run_id: &str) -> Result<Run, RegistryError> {
        dispatch!(self, s => s.get_run(run_id))
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, RegistryError> {
        dispatch!(self, s => s.list_runs(filter))
    }

    async fn search_runs(&self, search: &RunSearch) -> Result<RunPage, RegistryError> {
        dispatch!(self, s => s.search_runs(search))
    }

    async fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>, RegistryError> {
        dispatch!(self, s => s.metric_history(run_id, key))
    }

    async fn runs_reading(
        &self,
        table: &str,
        version: Option<i64>,
    ) -> Result<Vec<String>, RegistryError> {
        dispatch!(self, s => s.runs_reading(table, version))
    }

    async fn delete_run(&self, run_id: &str) -> Result<(), RegistryError> {
        dispatch!(self, s => s.delete_run(run_id))
    }

    async fn restore_run(&self, run_id: &str) -> Result<(), RegistryError> {
        dispatch!(self, s => s.restore_run(run_id))
    }

    async fn deleted_runs(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<DeletedRun>, RegistryError> {
        dispatch!(self, s => s.deleted_runs(before))
    }

    async fn purge_run(&self, run_id: &str) -> Result<(), RegistryError> {
        dispatch!(self, s => s.purge_run(run_id))
    }

    async fn create_logged_model(
        &self,
        model: NewLoggedModel,
    ) -> Result<LoggedModel, RegistryError> {
        dispatch!(self, s => s.create_logged_model(model))
    }

    async fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel, RegistryError> {
        dispatch!(self, s => s.get_logged_model(model_id))
    }

    async fn finalize_logged_model(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> Result<LoggedModel, RegistryError> {
        dispatch!(self, s => s.finalize_logged_model(model_id, status))
    }

    async fn set_logged_model_tags(
        &self,
        model_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), RegistryError> {
        dispatch!(self, s => s.set_logged_model_tags(model_id, tags))
    }

    async fn delete_logged_model_tag(
        &self,
        model_id: &str,
        key: &str,
    ) -> Result<(), RegistryError> {
        dispatch!(self, s => s.delete_logged_model_tag(model_id, key))
    }

    async fn log_logged_model_params(
        &self,
        model_id: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<(), RegistryError> {
        dispatch!(self, s => s.log_logged_model_params(model_id, params))
    }

    async fn list_logged_models(
        &self,
        experiment_ids: &[String],
    ) -> Result<Vec<LoggedModel>, RegistryError> {
        dispatch!(self, s => s.list_logged_models(experiment_ids))
    }

    async fn log_run_outputs(
        &self,
        run_id: &str,
        outputs: &[RunOutput],
    ) -> Result<(), RegistryError> {
        dispatch!(self, s => s.log_run_outputs(run_id, outputs))
    }
}

impl TokenStore for Registry {
    async fn create_token(&self, name: &str, role: Role) -> Result<NewToken, RegistryError> {
        dispatch!(self, s => s.create_token(name, role))
    }

    async fn verify_token(&self, secret: &str) -> Result<Option<ApiToken>, RegistryError> {
        dispatch!(self, s => s.verify_token(secret))
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, RegistryError> {
        dispatch!(self, s => s.list_tokens())
    }

    async fn revoke_token(&self, name_or_id: &str) -> Result<ApiToken, RegistryError> {
        dispatch!(self, s => s.revoke_token(name_or_id))
    }

    async fn has_live_tokens(&self) -> Result<bool, RegistryError> {
        dispatch!(self, s => s.has_live_tokens())
    }
}

impl TaskQueue for Registry {
    async fn set_pools(&self, pools: &BTreeMap<String, u32>) -> Result<(), RegistryError> {
        dispatch!(self, s => s.set_pools(pools))
    }

    async fn pools(&self) -> Result<BTreeMap<String, u32>, RegistryError> {
        dispatch!(self, s => s.pools())
    }

    async fn enqueue(&self, tasks: &[NewTask]) -> Result<Vec<i64>, RegistryError> {
        dispatch!(self, s => s.enqueue(tasks))
    }

    async fn claim(
        &self,
        worker: &str,
        lease: Duration,
        limits: &ClaimLimits,
    ) -> Result<Option<Lease>, RegistryError> {
        dispatch!(self, s => s.claim(worker, lease, limits))
    }

    async fn heartbeat(
        &self,
        task_id: i64,
        token: i64,
        lease: Duration,
    ) -> Result<chrono::DateTime<chrono::Utc>, RegistryError> {
        dispatch!(self, s => s.heartbeat(task_id, token, lease))
    }

    async fn complete(
        &self,
        task_id: i64,
        token: i64,
        outcome: Outcome,
    ) -> Result<Task, RegistryError> {
        dispatch!(self, s => s.complete(task_id, token, outcome))
    }

    async fn requeue_expired(&self) -> Result<Vec<i64>, RegistryError> {
        dispatch!(self, s => s.requeue_expired())
    }

    async fn purge_finished(&self, older_than: Duration) -> Result<u64, RegistryError> {
        dispatch!(self, s => s.purge_finished(older_than))
    }

    async fn get_task(&self, task_id: i64) -> Result<Task, RegistryError> {
        dispatch!(self, s => s.get_task(task_id))
    }

    async fn find_task(&self, key: &TaskKey) -> Result<Option<Task>, RegistryError> {
        dispatch!(self, s => s.find_task(key))
    }

    async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>, RegistryError> {
        dispatch!(self, s => s.list_tasks(filter))
    }

    async fn task_counts(&self) -> Result<BTreeMap<TaskState, u64>, RegistryError> {
        dispatch!(self, s => s.task_counts())
    }

    async fn task_attempts(&self, task_id: i64) -> Result<Vec<Attempt>, RegistryError> {
        dispatch!(self, s => s.task_attempts(task_id))
    }
}

impl ScheduleState for Registry {
    async fn schedule_state(&self, model: &str) -> Result<Option<ModelSchedule>, RegistryError> {
        dispatch!(self, s => s.schedule_state(model))
    }

    async fn set_last_scheduled(
        &self,
        model: &str,
        logical_time: chrono::DateTime<chrono::Utc>,
    ) -> Result<ModelSchedule, RegistryError> {
        dispatch!(self, s => s.set_last_scheduled(model, logical_time))
    }

    async fn set_paused(&self, model: &str, paused: bool) -> Result<ModelSchedule, RegistryError> {
        dispatch!(self, s => s.set_paused(model, paused))
    }

    async fn set_last_scheduled_many(
        &self,
        scheduled: &[(String, chrono::DateTime<chrono::Utc>)],
    ) -> Result<(), RegistryError> {
        dispatch!(self, s => s.set_last_scheduled_many(scheduled))
    }

    async fn list_schedule_states(&self) -> Result<Vec<ModelSchedule>, RegistryError> {
        dispatch!(self, s => s.list_schedule_states())
    }
}

impl ModelRegistry for Registry {
    async fn create_model(&self, name: &str) -> Result<RegisteredModel, RegistryError> {
        dispatch!(self, s => s.create_model(name))
    }

    async fn get_model(&self, name: &str) -> Result<RegisteredModel, RegistryError> {
        dispatch!(self, s => s.get_model(name))
    }

    async fn list_models(&self) -> Result<Vec<RegisteredModel>, RegistryError> {
        dispatch!(self, s => s.list_models())
    }

    async fn create_model_version(
        &self,
        model: &str,
        run_id: &str,
        artifact_uri: &str,
        signature: serde_json::Value,
    ) -> Result<ModelVersion, RegistryError> {
        dispatch!(self, s => s.create_model_version(model, run_id, artifact_uri, signature))
    }

    async fn get_model_version(
        &self,
        model: &str,
        version: i64,
    ) -> Result<ModelVersion, RegistryError> {
        dispatch!(self, s => s.get_model_version(model, version))
    }

    async fn list_model_versions(&self, model: &str) -> Result<Vec<ModelVersion>, RegistryError> {
        dispatch!(self, s => s.list_model_versions(model))
    }

    async fn set_alias(
        &self,
        model: &str,
        alias: &str,
        version: i64,
        actor: &str,
        reason: &str,
    ) -> Result<(), RegistryError> {
        dispatch!(self, s => s.set_alias(model, alias, version, actor, reason))
    }

    async fn delete_alias(
        &self,
        model: &str,
        alias: &str,
        actor: &str,
        reason: &str,
    ) -> Result<(), RegistryError> {
        dispatch!(self, s => s.delete_alias(model, alias, actor, reason))
    }

    async fn get_alias(
        &self,
        model: &str,
        alias: &str,
    ) -> Result<Option<ModelVersion>, RegistryError> {
        dispatch!(self, s => s.get_alias(model, alias))
    }

    async fn alias_history(&self, model: &str) -> Result<Vec<AliasEvent>, RegistryError> {
        dispatch!(self, s => s.alias_history(model))
    }
}

/// Applies pending migrations. Two processes creating the same fresh SQLite database can
/// race on the first migration; the loser sees the winner's schema on a retry.
/// (PostgreSQL migrators hold an advisory lock and do not race.)
pub(crate) async fn migrate<DB>(migrator: &Migrator, pool: &Pool<DB>) -> Result<(), RegistryError>
where
    DB: Database,
    DB::Connection: Migrate,
{
    const ATTEMPTS: u32 = 3;
    let mut attempt = 1;
    loop {
        match migrator.run(pool).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < ATTEMPTS => {
                tracing::debug!(attempt, error = %e, "registry migration failed; retrying");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(e) => return Err(RegistryError::Migrate(e)),
        }
    }
}

/// Hides the password in `scheme://user:password@host/...` URLs.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if rest[..at].contains(':') => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use spire_core::ErrorKind;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://spire:s3cret@db:5432/spire"),
            "postgres://spire:***@db:5432/spire"
        );
        assert_eq!(
            redact("postgres://spire@db:5432/spire"),
            "postgres://spire@db:5432/spire",
            "no password, nothing to hide"
        );
        assert_eq!(redact("sqlite://a/b.db"), "sqlite://a/b.db");
        assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
    }

    #[tokio::test]
    async fn unknown_scheme_names_url_and_supported_schemes() {
        let err = Registry::open("mysql://u:pw@host/db").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let msg = err.to_string();
        assert!(msg.contains("mysql://u:***@host/db"), "{msg}");
        assert!(!msg.contains("pw"), "{msg}");
        assert!(
            msg.contains("sqlite://PATH")
                && msg.contains("sqlite::memory:")
                && msg.contains("postgres://"),
            "{msg}"
        );
    }
}
