//! Experiments, runs, params, metrics and tags: MLflow's tracking endpoints.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use spire_registry::{
    Experiment, LogBatch, Metric, NewRun, RegistryError, RunOutput, RunSearch, RunStatus,
    TrackingStore, ViewType, MAX_SEARCH_RESULTS,
};

use crate::error::{ApiError, ApiResult};
use crate::filter::{Field, Filter};
use crate::page::Page;
use crate::request::Params;
use crate::shape::{self, RUN_NAME_TAG, USER_TAG};
use crate::MlflowState;

/// MLflow's id of the default experiment, which Spire maps to the experiment `Default`.
const DEFAULT_EXPERIMENT_ID: &str = "0";
/// The experiment MLflow clients use when none is set.
const DEFAULT_EXPERIMENT_NAME: &str = "Default";
/// The run tag naming the Spire segment a run is about (default: the experiment's name).
const SEGMENT_TAG: &str = "spire.segment";

/// MLflow's limits on one `log-batch` call.
const MAX_BATCH_METRICS: usize = 1000;
const MAX_BATCH_PARAMS: usize = 100;
const MAX_BATCH_TAGS: usize = 100;
const MAX_BATCH_TOTAL: usize = 1000;

type JsonResult = ApiResult<Json<Value>>;

/// Reads an experiment by id, mapping MLflow's default id `0` to the `Default` experiment
/// (created on first use).
pub(crate) async fn experiment_by_id(state: &MlflowState, id: &str) -> ApiResult<Experiment> {
    if id != DEFAULT_EXPERIMENT_ID {
        return state
            .registry
            .get_experiment(id)
            .await
            .map_err(|e| match e {
                RegistryError::NotFound { .. } => {
                    ApiError::not_found(format!("No Experiment with id={id} exists"))
                }
                other => other.into(),
            });
    }
    match state
        .registry
        .get_experiment_by_name(DEFAULT_EXPERIMENT_NAME)
        .await
    {
        Ok(e) => Ok(e),
        Err(RegistryError::NotFound { .. }) => {
            match state
                .registry
                .create_experiment(DEFAULT_EXPERIMENT_NAME, &BTreeMap::new())
                .await
            {
                Ok(e) => Ok(e),
                // Another request created it meanwhile.
                Err(RegistryError::AlreadyExists { .. }) => Ok(state
                    .registry
                    .get_experiment_by_name(DEFAULT_EXPERIMENT_NAME)
                    .await?),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn view_type(p: &Params, name: &str) -> ApiResult<ViewType> {
    match p.opt_str(name)?.as_deref() {
        None | Some("") | Some("ACTIVE_ONLY") | Some("1") => Ok(ViewType::ActiveOnly),
        Some("DELETED_ONLY") | Some("2") => Ok(ViewType::DeletedOnly),
        Some("ALL") | Some("3") => Ok(ViewType::All),
        Some(other) => Err(ApiError::invalid(format!(
            "Invalid value {other:?} for parameter '{name}': expected ACTIVE_ONLY, DELETED_ONLY or ALL"
        ))),
    }
}

fn to_time(ms: i64, what: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| ApiError::invalid(format!("{what} {ms} is out of range")))
}

/// `POST experiments/create`.
pub(crate) async fn create_experiment(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let name = p.str("name")?;
    let tags: BTreeMap<String, String> = p.key_values("tags")?.into_iter().collect();
    let created = s
        .registry
        .create_experiment(&name, &tags)
        .await
        .map_err(|e| match e {
            RegistryError::AlreadyExists { .. } => ApiError::new(
                crate::error::ErrorCode::ResourceAlreadyExists,
                format!("Experiment(name={name}) already exists."),
            ),
            other => other.into(),
        })?;
    Ok(Json(json!({"experiment_id": created.experiment_id})))
}

/// `GET experiments/get`.
pub(crate) async fn get_experiment(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let e = experiment_by_id(&s, &p.str("experiment_id")?).await?;
    Ok(Json(json!({"experiment": shape::experiment(&e)})))
}

/// `GET experiments/get-by-name`.
pub(crate) async fn get_experiment_by_name(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let name = p.str("experiment_name")?;
    let e = s
        .registry
        .get_experiment_by_name(&name)
        .await
        .map_err(|e| match e {
            RegistryError::NotFound { .. } => {
                ApiError::not_found(format!("Could not find experiment with name '{name}'"))
            }
            other => other.into(),
        })?;
    Ok(Json(json!({"experiment": shape::experiment(&e)})))
}

/// An experiment id of a search: MLflow's `0` is the `Default` experiment; unknown ids
/// simply match nothing, as on MLflow's server.
pub(crate) async fn search_scope(s: &MlflowState, id: String) -> ApiResult<String> {
    if id == DEFAULT_EXPERIMENT_ID {
        Ok(experiment_by_id(s, &id).await?.experiment_id)
    } else {
        Ok(id)
    }
}

/// `POST experiments/search`.
pub(crate) async fn search_experiments(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let view = view_type(&p, "view_type")?;
    let filter = Filter::parse(&p.str_or_empty("filter")?)?;
    let page = Page::from_params(&p, 1000, 50_000)?;
    let mut found: Vec<Experiment> = s
        .registry
        .list_experiments(view)
        .await?
        .into_iter()
        .filter(|e| {
            filter.matches(|entity, key| match (entity, key) {
                (crate::filter::Entity::Attribute, "name") => Some(Field::Text(e.name.clone())),
                (crate::filter::Entity::Attribute, "experiment_id") => {
                    Some(Field::Text(e.experiment_id.clone()))
                }
                (crate::filter::Entity::Attribute, "creation_time") => {
                    Some(Field::Number(e.created_at.timestamp_millis() as f64))
                }
                (crate::filter::Entity::Attribute, "last_update_time") => {
                    Some(Field::Number(e.updated_at.timestamp_millis() as f64))
                }
                (crate::filter::Entity::Tag, key) => e.tags.get(key).cloned().map(Field::Text),
                _ => None,
            })
        })
        .collect();
    sort_experiments(&mut found, &p.str_list("order_by")?)?;
    let (items, next) = page.slice(found);
    let mut body = json!({});
    if !items.is_empty() {
        body["experiments"] = Value::Array(items.iter().map(shape::experiment).collect());
    }
    if let Some(token) = next {
        body["next_page_token"] = json!(token);
    }
    Ok(Json(body))
}

/// Orders experiments as MLflow does: by the given `name`, `experiment_id`,
/// `creation_time` or `last_update_time` terms, newest first by default.
fn sort_experiments(found: &mut [Experiment], order_by: &[String]) -> ApiResult<()> {
    let mut terms = Vec::new();
    for term in order_by {
        let mut words = term.split_whitespace();
        let field = words.next().unwrap_or_default();
        let field = field
            .strip_prefix("attributes.")
            .unwrap_or(field)
            .to_string();
        let desc = match words.next().map(str::to_ascii_uppercase).as_deref() {
            None | Some("ASC") => false,
            Some("DESC") => true,
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "Invalid order_by {term:?}: {other:?} is not ASC or DESC"
                )))
            }
        };
        if !matches!(
            field.as_str(),
            "name" | "experiment_id" | "creation_time" | "last_update_time"
        ) {
            return Err(ApiError::invalid(format!(
                "Invalid order_by {term:?}: expected name, experiment_id, creation_time or \
                 last_update_time"
            )));
        }
        terms.push((field, desc));
    }
    found.sort_by(|a, b| {
        for (field, desc) in &terms {
            let ord = match field.as_str() {
                "name" => a.name.cmp(&b.name),
                "experiment_id" => a.experiment_id.cmp(&b.experiment_id),
                "creation_time" => a.created_at.cmp(&b.created_at),
                _ => a.updated_at.cmp(&b.updated_at),
            };
            let ord = if *desc { ord.reverse() } else { ord };
            if ord.is_ne() {
                return ord;
            }
        }
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.name.cmp(&a.name))
    });
    Ok(())
}

/// `POST experiments/delete`.
pub(crate) async fn delete_experiment(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let e = experiment_by_id(&s, &p.str("experiment_id")?).await?;
    s.registry.delete_experiment(&e.experiment_id).await?;
    Ok(Json(json!({})))
}

/// `POST experiments/restore`.
pub(crate) async fn restore_experiment(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let e = experiment_by_id(&s, &p.str("experiment_id")?).await?;
    s.registry.restore_experiment(&e.experiment_id).await?;
    Ok(Json(json!({})))
}

/// `POST experiments/set-experiment-tag`.
pub(crate) async fn set_experiment_tag(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let e = experiment_by_id(&s, &p.str("experiment_id")?).await?;
    let key = p.str("key")?;
    let value = p.str_or_empty("value")?;
    s.registry
        .set_experiment_tag(&e.experiment_id, &key, &value)
        .await?;
    Ok(Json(json!({})))
}

/// `POST runs/create`.
pub(crate) async fn create_run(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let experiment_id = p
        .opt_str("experiment_id")?
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| DEFAULT_EXPERIMENT_ID.to_string());
    let experiment = experiment_by_id(&s, &experiment_id).await?;
    let mut tags: BTreeMap<String, String> = p.key_values("tags")?.into_iter().collect();
    if let Some(name) = p.opt_str("run_name")?.filter(|n| !n.is_empty()) {
        tags.insert(RUN_NAME_TAG.to_string(), name);
    }
    if !tags.contains_key(RUN_NAME_TAG) {
        tags.insert(RUN_NAME_TAG.to_string(), generated_run_name());
    }
    if let Some(user) = p.opt_str("user_id")?.filter(|u| !u.is_empty()) {
        tags.entry(USER_TAG.to_string()).or_insert(user);
    }
    let segment = tags
        .get(SEGMENT_TAG)
        .cloned()
        .unwrap_or_else(|| experiment.name.clone());
    let run_id = s
        .registry
        .create_run(NewRun {
            segment,
            experiment: experiment.name.clone(),
            tags,
            spire_version: env!("CARGO_PKG_VERSION").to_string(),
            ..NewRun::default()
        })
        .await?;
    let run = s.registry.get_run(&run_id).await?;
    Ok(Json(json!({"run": shape::run(&run)})))
}

/// A readable name for a run created without one (MLflow's server does the same).
fn generated_run_name() -> String {
    const ADJECTIVES: [&str; 8] = [
        "amber", "brisk", "calm", "deft", "eager", "fleet", "gentle", "hardy",
    ];
    const NOUNS: [&str; 8] = [
        "otter", "heron", "lynx", "finch", "marten", "ibis", "wren", "stoat",
    ];
    let nanos = Utc::now().timestamp_subsec_nanos() as usize;
    format!(
        "{}-{}-{}",
        ADJECTIVES[nanos % ADJECTIVES.len()],
        NOUNS[(nanos / 8) % NOUNS.len()],
        nanos % 1000
    )
}

/// Reads a run, answering MLflow's message when it does not exist.
async fn read_run(s: &MlflowState, run_id: &str) -> ApiResult<spire_registry::Run> {
    s.registry.get_run(run_id).await.map_err(|e| match e {
        RegistryError::NotFound { .. } => {
            ApiError::not_found(format!("Run with id={run_id} not found"))
        }
        other => other.into(),
    })
}

/// `GET runs/get`.
pub(crate) async fn get_run(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let run = read_run(&s, &p.run_id()?).await?;
    Ok(Json(json!({"run": shape::run(&run)})))
}

/// `POST runs/update`: ends a run (`FINISHED`, `FAILED`, `KILLED`) and/or renames it.
pub(crate) async fn update_run(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let run_id = p.run_id()?;
    let current = read_run(&s, &run_id).await?;
    if let Some(name) = p.opt_str("run_name")?.filter(|n| !n.is_empty()) {
        s.registry.set_tag(&run_id, RUN_NAME_TAG, &name).await?;
    }
    match p.opt_str("status")?.as_deref() {
        None | Some("") | Some("RUNNING") | Some("SCHEDULED") => {}
        Some("FINISHED") => {
            s.registry
                .finish_run(&run_id, RunStatus::Finished, None)
                .await?
        }
        Some("FAILED") => {
            s.registry
                .finish_run(&run_id, RunStatus::Failed, None)
                .await?
        }
        Some("KILLED") if current.status == RunStatus::Running => {
            s.registry
                .finish_run(
                    &run_id,
                    RunStatus::Failed,
                    Some("killed by the MLflow client"),
                )
                .await?
        }
        Some("KILLED") => {}
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Invalid run status {other:?}: expected RUNNING, SCHEDULED, FINISHED, FAILED or \
                 KILLED"
            )))
        }
    }
    let run = read_run(&s, &run_id).await?;
    Ok(Json(json!({"run_info": shape::run_info(&run)})))
}

/// `POST runs/delete`.
pub(crate) async fn delete_run(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let run_id = p.run_id()?;
    read_run(&s, &run_id).await?;
    s.registry.delete_run(&run_id).await?;
    Ok(Json(json!({})))
}

/// `POST runs/restore`.
pub(crate) async fn restore_run(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let run_id = p.run_id()?;
    read_run(&s, &run_id).await?;
    s.registry.restore_run(&run_id).await?;
    Ok(Json(json!({})))
}

/// One metric point of a request (`key`, `value`, `timestamp`, `step`).
fn metric_of(p: &Params) -> ApiResult<Metric> {
    let key = p.str("key")?;
    let value = p.f64("value")?;
    let timestamp = p
        .opt_i64("timestamp")?
        .unwrap_or_else(|| Utc::now().timestamp_millis());
    Ok(Metric {
        key,
        value,
        step: p.opt_i64("step")?.unwrap_or(0),
        timestamp: to_time(timestamp, "metric timestamp")?,
    })
}

/// MLflow's message for a registry error about a run: a missing run is
/// `RESOURCE_DOES_NOT_EXIST` worded as MLflow words it; the rest map as usual (a changed
/// param is `INVALID_PARAMETER_VALUE`).
fn run_error(run_id: &str) -> impl Fn(RegistryError) -> ApiError + '_ {
    move |e| match e {
        RegistryError::NotFound { .. } => {
            ApiError::not_found(format!("Run with id={run_id} not found"))
        }
        other => other.into(),
    }
}

/// Logs a batch in one registry call (which checks the run exists in the same
/// transaction, so the hot path of `log-metric` is a single write).
async fn log(s: &MlflowState, run_id: &str, batch: &LogBatch) -> ApiResult<()> {
    s.registry
        .log_batch(run_id, batch)
        .await
        .map_err(run_error(run_id))
}

/// Whether two metric points are the same measurement (MLflow stores such a point once).
fn same_point(a: &Metric, b: &Metric) -> bool {
    a.key == b.key
        && a.step == b.step
        && a.timestamp.timestamp_millis() == b.timestamp.timestamp_millis()
        && (a.value == b.value || (a.value.is_nan() && b.value.is_nan()))
}

/// Drops the points that repeat one already in the run's history. MLflow 3's `log_model`
/// re-logs the run's metrics with a `model_id` to link them to the model; MLflow's server
/// keeps each identical point once, and so does Spire for these linking points.
async fn without_repeats(
    s: &MlflowState,
    run_id: &str,
    linked: Vec<Metric>,
) -> ApiResult<Vec<Metric>> {
    let mut keys: Vec<&str> = linked.iter().map(|m| m.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut known = Vec::new();
    for key in keys {
        known.extend(
            s.registry
                .metric_history(run_id, key)
                .await
                .map_err(run_error(run_id))?,
        );
    }
    let mut fresh: Vec<Metric> = Vec::new();
    for m in linked {
        if !known.iter().chain(&fresh).any(|k| same_point(k, &m)) {
            fresh.push(m);
        }
    }
    Ok(fresh)
}

/// The metric points of a request, with the model-linking repeats dropped.
async fn metrics_to_log(s: &MlflowState, run_id: &str, items: &[Params]) -> ApiResult<Vec<Metric>> {
    let mut plain = Vec::new();
    let mut linked = Vec::new();
    for item in items {
        let metric = metric_of(item)?;
        if item.opt_str("model_id")?.is_some_and(|m| !m.is_empty()) {
            linked.push(metric);
        } else {
            plain.push(metric);
        }
    }
    if !linked.is_empty() {
        plain.extend(without_repeats(s, run_id, linked).await?);
    }
    Ok(plain)
}

/// `POST runs/log-metric`.
pub(crate) async fn log_metric(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let run_id = p.run_id()?;
    let metrics = metrics_to_log(&s, &run_id, std::slice::from_ref(&p)).await?;
    log(
        &s,
        &run_id,
        &LogBatch {
            metrics,
            ..LogBatch::default()
        },
    )
    .await?;
    Ok(Json(json!({})))
}

/// `POST runs/log-parameter`.
pub(crate) async fn log_param(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let run_id = p.run_id()?;
    let key = p.str("key")?;
    let value = p.str_or_empty("value")?;
    log(
        &s,
        &run_id,
        &LogBatch {
            params: BTreeMap::from([(key, value)]),
            ..LogBatch::default()
        },
    )
    .await?;
    Ok(Json(json!({})))
}

/// `POST runs/set-tag`.
pub(crate) async fn set_tag(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let run_id = p.run_id()?;
    let key = p.str("key")?;
    let value = p.str_or_empty("value")?;
    log(
        &s,
        &run_id,
        &LogBatch {
            tags: BTreeMap::from([(key, value)]),
            ..LogBatch::default()
        },
    )
    .await?;
    Ok(Json(json!({})))
}

/// `POST runs/delete-tag`.
pub(crate) async fn delete_tag(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let run_id = p.run_id()?;
    let key = p.str("key")?;
    read_run(&s, &run_id).await?;
    s.registry
        .delete_tag(&run_id, &key)
        .await
        .map_err(|e| match e {
            RegistryError::NotFound { .. } => {
                ApiError::not_found(format!("No tag with name: {key} in run with id {run_id}"))
            }
            other => other.into(),
        })?;
    Ok(Json(json!({})))
}

/// `POST runs/log-batch`: at most 1000 metrics, 100 params, 100 tags and 1000 entries in
/// all, as MLflow's server enforces; stored all or nothing.
pub(crate) async fn log_batch(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let run_id = p.run_id()?;
    let metrics = p.objects("metrics")?;
    let params = p.key_values("params")?;
    let tags = p.key_values("tags")?;
    for (what, n, max) in [
        ("metrics", metrics.len(), MAX_BATCH_METRICS),
        ("params", params.len(), MAX_BATCH_PARAMS),
        ("tags", tags.len(), MAX_BATCH_TAGS),
    ] {
        if n > max {
            return Err(ApiError::invalid(format!(
                "A batch logging request can contain at most {max} {what}. Got {n} {what}. \
                 Please split up {what} across multiple requests and try again."
            )));
        }
    }
    let total = metrics.len() + params.len() + tags.len();
    if total > MAX_BATCH_TOTAL {
        return Err(ApiError::invalid(format!(
            "A batch logging request can contain at most {MAX_BATCH_TOTAL} metrics, params and \
             tags in total. Got {total}. Please split up the batch and try again."
        )));
    }
    let mut batch = LogBatch {
        metrics: metrics_to_log(&s, &run_id, &metrics).await?,
        ..LogBatch::default()
    };
    for (key, value) in params {
        if let Some(old) = batch.params.get(&key).filter(|old| **old != value) {
            return Err(ApiError::invalid(format!(
                "Duplicate parameter keys have been submitted: param {key:?} is both {old:?} \
                 and {value:?} in one batch"
            )));
        }
        batch.params.insert(key, value);
    }
    batch.tags.extend(tags);
    log(&s, &run_id, &batch).await?;
    Ok(Json(json!({})))
}

/// `POST runs/search`.
pub(crate) async fn search_runs(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let mut experiment_ids = Vec::new();
    for id in p.str_list("experiment_ids")? {
        experiment_ids.push(search_scope(&s, id).await?);
    }
    let max_results = p.opt_i64("max_results")?.unwrap_or(1000);
    let max_results = usize::try_from(max_results)
        .ok()
        .filter(|n| (1..=MAX_SEARCH_RESULTS).contains(n))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid value {max_results} for parameter 'max_results': it must be between 1 \
                 and {MAX_SEARCH_RESULTS}"
            ))
        })?;
    let page = s
        .registry
        .search_runs(&RunSearch {
            experiment_ids,
            filter: p.str_or_empty("filter")?,
            order_by: p.str_list("order_by")?,
            view: view_type(&p, "run_view_type")?,
            max_results,
            page_token: p.opt_str("page_token")?.filter(|t| !t.is_empty()),
        })
        .await?;
    let mut body = json!({});
    if !page.runs.is_empty() {
        body["runs"] = Value::Array(page.runs.iter().map(shape::run).collect());
    }
    if let Some(token) = page.next_page_token {
        body["next_page_token"] = json!(token);
    }
    Ok(Json(body))
}

/// `GET metrics/get-history`.
pub(crate) async fn metric_history(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let run_id = p.run_id()?;
    let key = p.str("metric_key")?;
    let page = Page::from_params(&p, 25_000, 25_000)?;
    let points = s
        .registry
        .metric_history(&run_id, &key)
        .await
        .map_err(run_error(&run_id))?;
    let (items, next) = page.slice(points);
    let mut body = json!({});
    if !items.is_empty() {
        body["metrics"] = Value::Array(items.iter().map(shape::metric).collect());
    }
    if let Some(token) = next {
        body["next_page_token"] = json!(token);
    }
    Ok(Json(body))
}

/// `POST runs/outputs`: the logged models a run produced.
pub(crate) async fn log_outputs(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let run_id = p.run_id()?;
    let outputs = p
        .objects("models")?
        .iter()
        .map(|m| {
            Ok(RunOutput {
                model_id: m.str("model_id")?,
                step: m.opt_i64("step")?.unwrap_or(0),
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    read_run(&s, &run_id).await?;
    s.registry.log_run_outputs(&run_id, &outputs).await?;
    Ok(Json(json!({})))
}
