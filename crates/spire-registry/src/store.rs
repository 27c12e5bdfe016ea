//! The two store contracts: [`TrackingStore`] (experiments and runs) and [`ModelRegistry`]
//! (registered models, versions, aliases). Every backend implements both, and the
//! conformance suite (`tests/it/`) checks each point below against each backend.

use std::collections::BTreeMap;
use std::future::Future;

use crate::{
    AliasEvent, DeletedRun, Experiment, LogBatch, LoggedModel, LoggedModelStatus, Metric,
    ModelVersion, NewLoggedModel, NewRun, RegisteredModel, RegistryError, Run, RunFilter,
    RunOutput, RunPage, RunSearch, RunStatus, ViewType,
};

/// Experiments and runs: what each run read, the params it used, the metrics it measured.
///
/// # Contract
///
/// - **Atomicity.** Every method is one transaction: it happens entirely or not at all.
///   `create_run` stores the run with its params, tags and inputs together; `log_metrics`
///   and `log_batch` store the whole batch or nothing (a conflicting param in a batch
///   leaves its metrics and tags unwritten too).
/// - **Concurrency.** Any number of tasks, handles and processes may write at once; writers
///   wait for each other instead of failing. On SQLite a write takes the database's write
///   lock when it begins (`BEGIN IMMEDIATE`) and writers of one handle queue in-process, so
///   only a writer of *another process* that holds the lock longer than the 5 s busy timeout
///   makes a call fail, with [`ErrorKind::Unavailable`](spire_core::ErrorKind::Unavailable)
///   (retry it). On PostgreSQL writes run at READ COMMITTED and serialise on row locks and
///   unique keys, so racing calls give the same outcomes as some serial order: two
///   different values for one param give one success and one `Conflict`, two different end
///   states for one run give one success and one `Conflict`. Reads see one consistent
///   snapshot (SQLite WAL read transaction, PostgreSQL `REPEATABLE READ READ ONLY`).
/// - **Immutability.** Params never change: re-logging a key with the same value succeeds
///   and changes nothing; with another value it is [`RegistryError::Conflict`] naming the
///   run, the key, the stored value and the rejected one (MLflow semantics). A run's status
///   changes once, from `running` to `finished` or `failed`.
/// - **Idempotency.** Re-logging a param with its value, setting a tag to its current
///   value, finishing a run again with the status it ended with, deleting a deleted
///   experiment and restoring an active one all succeed and change nothing.
///   `create_run`, `log_metric(s)` and the metrics of `log_batch` are not idempotent: each
///   call adds a run or metric points (a retried call after an unknown outcome may
///   duplicate points; metric history keeps them all).
/// - **Ordering.** `list_runs` and `runs_reading` are newest first, and so are ties of
///   `search_runs`; `list_experiments` is
///   by name; `metric_history` is by step, then timestamp, then logging order, and a run's
///   latest metric value is the last of that order; `Run::inputs` keeps the order given at
///   creation.
/// - **Errors.** A missing run or experiment is [`RegistryError::NotFound`] naming it; an
///   empty, padded or over-long name or key, a negative table version, `limit: 0` or an
///   oversized batch is [`RegistryError::InvalidInput`] naming the offending value, and is
///   rejected before anything is written. Bad input never panics.
/// - **Time.** Timestamps are stored as integer milliseconds since the Unix epoch (UTC), so
///   values read back are truncated to the millisecond.
/// - **Numbers.** Metric values NaN, +∞ and −∞ are stored and read back as such.
pub trait TrackingStore: Send + Sync {
    /// Creates an experiment named `name` with `tags`, in state `active`.
    ///
    /// A name already taken (even by a deleted experiment) is
    /// [`RegistryError::AlreadyExists`].
    fn create_experiment(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<Experiment, RegistryError>> + Send;

    /// Reads an experiment by id; an unknown id is [`RegistryError::NotFound`].
    fn get_experiment(
        &self,
        experiment_id: &str,
    ) -> impl Future<Output = Result<Experiment, RegistryError>> + Send;

    /// Reads an experiment by name; an unknown name is [`RegistryError::NotFound`].
    fn get_experiment_by_name(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Experiment, RegistryError>> + Send;

    /// The experiments in `view`, by name.
    fn list_experiments(
        &self,
        view: ViewType,
    ) -> impl Future<Output = Result<Vec<Experiment>, RegistryError>> + Send;

    /// Sets a tag of an experiment (last write wins); an unknown id is
    /// [`RegistryError::NotFound`].
    fn set_experiment_tag(
        &self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Soft-deletes an experiment: it and its runs stay readable, it leaves the default
    /// listing, and creating a run in it is [`RegistryError::Conflict`] until it is
    /// restored. Idempotent; an unknown id is [`RegistryError::NotFound`].
    fn delete_experiment(
        &self,
        experiment_id: &str,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Makes a deleted experiment active again. Idempotent; an unknown id is
    /// [`RegistryError::NotFound`].
    fn restore_experiment(
        &self,
        experiment_id: &str,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Starts a run in state `running` and returns its id (32 hex digits).
    ///
    /// Creates the experiment `run.experiment` if it does not exist; a deleted experiment
    /// is [`RegistryError::Conflict`]. The run, its params, tags and inputs are stored in
    /// one transaction.
    fn create_run(&self, run: NewRun)
        -> impl Future<Output = Result<String, RegistryError>> + Send;

    /// Logs a param; see the immutability rule in the trait docs.
    fn log_param(
        &self,
        run_id: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Logs one metric point with its own step and timestamp.
    fn log_metric(
        &self,
        run_id: &str,
        metric: &Metric,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Logs a batch of values at `step`, all stamped with the current time.
    fn log_metrics(
        &self,
        run_id: &str,
        metrics: &[(String, f64)],
        step: i64,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Logs metrics (each with its own step and timestamp), params and tags together, all
    /// or nothing: a param that contradicts a stored one fails the whole batch with
    /// [`RegistryError::Conflict`]. More than [`MAX_BATCH`](crate::MAX_BATCH) entries is
    /// [`RegistryError::InvalidInput`]. An empty batch checks the run exists and writes
    /// nothing.
    fn log_batch(
        &self,
        run_id: &str,
        batch: &LogBatch,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Sets a tag of a run (last write wins).
    fn set_tag(
        &self,
        run_id: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Removes a tag of a run; a tag the run does not have is [`RegistryError::NotFound`]
    /// naming the run and the key.
    fn delete_tag(
        &self,
        run_id: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Ends a running run as `finished` or `failed` (with an optional error message) and
    /// stamps `ended_at`. Finishing again with the same status changes nothing; with the
    /// other status it is [`RegistryError::Conflict`]; `status: Running` is
    /// [`RegistryError::InvalidInput`].
    fn finish_run(
        &self,
        run_id: &str,
        status: RunStatus,
        error: Option<&str>,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Reads a run with its params, tags, latest metric values and inputs.
    fn get_run(&self, run_id: &str) -> impl Future<Output = Result<Run, RegistryError>> + Send;

    /// Lists runs matching `filter`, newest first, at most `filter.limit` of them.
    fn list_runs(
        &self,
        filter: &RunFilter,
    ) -> impl Future<Output = Result<Vec<Run>, RegistryError>> + Send;

    /// Searches runs with MLflow's filter grammar, ordering and page tokens (see
    /// [`RunSearch`]). A filter or order-by term that does not parse is
    /// [`RegistryError::InvalidFilter`] naming the position and the token; a page token of
    /// another search is [`RegistryError::InvalidInput`]. Both backends return the same
    /// runs in the same order for the same data.
    fn search_runs(
        &self,
        search: &RunSearch,
    ) -> impl Future<Output = Result<RunPage, RegistryError>> + Send;

    /// Every point logged for one metric of a run, in history order; a key never logged
    /// gives an empty list.
    fn metric_history(
        &self,
        run_id: &str,
        key: &str,
    ) -> impl Future<Output = Result<Vec<Metric>, RegistryError>> + Send;

    /// Lineage: the ids of the runs that read Delta table `table` (at `version`, or at any
    /// version when `None`), newest first. A table nobody read gives an empty list.
    fn runs_reading(
        &self,
        table: &str,
        version: Option<i64>,
    ) -> impl Future<Output = Result<Vec<String>, RegistryError>> + Send;

    /// Soft-deletes a run: it stays readable with [`Lifecycle::Deleted`](crate::Lifecycle),
    /// leaves searches of active runs ([`ViewType::ActiveOnly`]), and its deletion time is
    /// kept for garbage collection of its artifacts. Idempotent; an unknown run is
    /// [`RegistryError::NotFound`].
    fn delete_run(&self, run_id: &str) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Makes a deleted run active again. Idempotent; an unknown run is
    /// [`RegistryError::NotFound`].
    fn restore_run(&self, run_id: &str) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// The runs deleted before `before`, oldest deletion first: what garbage collection
    /// may remove.
    fn deleted_runs(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<Vec<DeletedRun>, RegistryError>> + Send;

    /// Removes a deleted run for good, with its params, metrics, tags, inputs and outputs,
    /// in one transaction (its artifacts are the caller's: see `spire gc`). Logged models
    /// it made stay, without a source run. A run that is not deleted, or that is the
    /// source of a model version, is [`RegistryError::Conflict`] saying so; an unknown run
    /// is [`RegistryError::NotFound`].
    fn purge_run(&self, run_id: &str) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Creates a logged model (MLflow 3) in status `pending` with its params and tags, in
    /// one transaction, and returns it with its new id (`m-` and 32 hex digits). An unknown
    /// experiment or source run is [`RegistryError::NotFound`]; a deleted experiment is
    /// [`RegistryError::Conflict`].
    fn create_logged_model(
        &self,
        model: NewLoggedModel,
    ) -> impl Future<Output = Result<LoggedModel, RegistryError>> + Send;

    /// Reads a logged model with its params and tags; an unknown id is
    /// [`RegistryError::NotFound`].
    fn get_logged_model(
        &self,
        model_id: &str,
    ) -> impl Future<Output = Result<LoggedModel, RegistryError>> + Send;

    /// Sets a logged model's status to `ready` or `failed` (last write wins; `pending` is
    /// [`RegistryError::InvalidInput`]) and returns the model.
    fn finalize_logged_model(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> impl Future<Output = Result<LoggedModel, RegistryError>> + Send;

    /// Sets tags of a logged model (last write wins), all or nothing.
    fn set_logged_model_tags(
        &self,
        model_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Removes a tag of a logged model; a tag it does not have is
    /// [`RegistryError::NotFound`].
    fn delete_logged_model_tag(
        &self,
        model_id: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Logs params of a logged model, all or nothing, with the immutability rule of run
    /// params (same value: nothing changes; another value: [`RegistryError::Conflict`]).
    fn log_logged_model_params(
        &self,
        model_id: &str,
        params: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// The logged models of the given experiments (of every experiment when empty), newest
    /// first.
    fn list_logged_models(
        &self,
        experiment_ids: &[String],
    ) -> impl Future<Output = Result<Vec<LoggedModel>, RegistryError>> + Send;

    /// Records that run `run_id` output these logged models (each at its step), all or
    /// nothing. Idempotent: recording the same model at the same step again changes
    /// nothing. An unknown run or model is [`RegistryError::NotFound`].
    fn log_run_outputs(
        &self,
        run_id: &str,
        outputs: &[RunOutput],
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;
}

/// Registered models, their immutable versions, and movable aliases with an audit log.
///
/// # Contract
///
/// - **Atomicity.** Every method is one transaction. `set_alias` and `delete_alias` move
///   the alias and append its [`AliasEvent`] together: the audit log never misses a move
///   and never records one that did not happen.
/// - **Version numbering.** `create_model_version` numbers each model's versions 1, 2, 3…
///   without gaps or duplicates, whatever the number of concurrent writers (the model's
///   version counter is bumped under its row lock); a failed call consumes no number.
/// - **Concurrency.** As for [`TrackingStore`]: writers wait rather than fail. Alias moves
///   of one model are serialised, so each event's `from_version` is the previous event's
///   `to_version`.
/// - **Immutability.** Model versions never change; only aliases move.
/// - **Idempotency.** Setting an alias to the version it already points at succeeds and
///   writes nothing (no event). `create_model_version` is not idempotent: each call adds a
///   version. A retried `delete_alias` reports NotFound: the alias is gone either way.
/// - **Ordering.** `list_models` is by name; `list_model_versions` newest first;
///   `alias_history` oldest first; a version's `aliases` are sorted by name.
/// - **Errors.** A missing model, version, run or alias is [`RegistryError::NotFound`]
///   naming it; a malformed name or alias, an empty actor or artifact URI is
///   [`RegistryError::InvalidInput`]; creating a model that exists is
///   [`RegistryError::AlreadyExists`].
pub trait ModelRegistry: Send + Sync {
    /// Registers a model with no versions yet. Registering a version also creates its
    /// model, so this is only needed to reserve a name.
    fn create_model(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<RegisteredModel, RegistryError>> + Send;

    /// Reads one registered model with its version counts and aliases.
    fn get_model(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<RegisteredModel, RegistryError>> + Send;

    /// Every registered model, by name.
    fn list_models(
        &self,
    ) -> impl Future<Output = Result<Vec<RegisteredModel>, RegistryError>> + Send;

    /// Registers a new version of `model` produced by run `run_id` (creating the model on
    /// its first version) with the artifact's URI and its signature.
    fn create_model_version(
        &self,
        model: &str,
        run_id: &str,
        artifact_uri: &str,
        signature: serde_json::Value,
    ) -> impl Future<Output = Result<ModelVersion, RegistryError>> + Send;

    /// Reads one version with the aliases pointing at it.
    fn get_model_version(
        &self,
        model: &str,
        version: i64,
    ) -> impl Future<Output = Result<ModelVersion, RegistryError>> + Send;

    /// Every version of `model`, newest first, each with its aliases.
    fn list_model_versions(
        &self,
        model: &str,
    ) -> impl Future<Output = Result<Vec<ModelVersion>, RegistryError>> + Send;

    /// Points `alias` of `model` at `version` (creating or moving it) and appends an
    /// [`AliasEvent`] saying who moved it and why. An alias starts with an ASCII letter and
    /// holds only ASCII letters, digits, `_`, `-` and `.`.
    fn set_alias(
        &self,
        model: &str,
        alias: &str,
        version: i64,
        actor: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Removes `alias` of `model` and appends an [`AliasEvent`] with `to_version: None`.
    fn delete_alias(
        &self,
        model: &str,
        alias: &str,
        actor: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// The version `alias` points at, or `None` if the model has no such alias; an unknown
    /// model is [`RegistryError::NotFound`].
    fn get_alias(
        &self,
        model: &str,
        alias: &str,
    ) -> impl Future<Output = Result<Option<ModelVersion>, RegistryError>> + Send;

    /// Every alias move of `model`, oldest first.
    fn alias_history(
        &self,
        model: &str,
    ) -> impl Future<Output = Result<Vec<AliasEvent>, RegistryError>> + Send;
}
