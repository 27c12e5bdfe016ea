//! MLflow 3 logged models: what `log_model` creates, finalizes, tags and searches.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use spire_registry::{
    LoggedModel, LoggedModelStatus, NewLoggedModel, RegistryError, TrackingStore,
};

use crate::error::{ApiError, ApiResult};
use crate::filter::{Entity, Field, Filter};
use crate::page::Page;
use crate::request::Params;
use crate::shape;
use crate::tracking::{experiment_by_id, search_scope};
use crate::MlflowState;

type JsonResult = ApiResult<Json<Value>>;

/// A logged model in MLflow's shape, with its source run's latest metrics.
async fn model_json(s: &MlflowState, m: &LoggedModel) -> ApiResult<Value> {
    let metrics = match &m.source_run_id {
        Some(run_id) => match s.registry.get_run(run_id).await {
            Ok(run) => run.latest_metrics.into_values().collect(),
            Err(RegistryError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        },
        None => Vec::new(),
    };
    Ok(shape::logged_model(m, &metrics))
}

async fn read(s: &MlflowState, model_id: &str) -> ApiResult<LoggedModel> {
    s.registry
        .get_logged_model(model_id)
        .await
        .map_err(|e| match e {
            RegistryError::NotFound { .. } => {
                ApiError::not_found(format!("Logged model with ID '{model_id}' not found."))
            }
            other => other.into(),
        })
}

/// `POST logged-models`.
pub(crate) async fn create(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let experiment = experiment_by_id(&s, &p.str("experiment_id")?).await?;
    let name = match p.opt_str("name")?.filter(|n| !n.is_empty()) {
        Some(name) => name,
        None => "model".to_string(),
    };
    let model = s
        .registry
        .create_logged_model(NewLoggedModel {
            experiment_id: experiment.experiment_id,
            name,
            source_run_id: p.opt_str("source_run_id")?.filter(|r| !r.is_empty()),
            model_type: p.str_or_empty("model_type")?,
            params: p.key_values("params")?.into_iter().collect(),
            tags: p.key_values("tags")?.into_iter().collect(),
        })
        .await?;
    Ok(Json(json!({"model": model_json(&s, &model).await?})))
}

/// `GET logged-models/{model_id}`.
pub(crate) async fn get(State(s): State<MlflowState>, Path(model_id): Path<String>) -> JsonResult {
    let model = read(&s, &model_id).await?;
    Ok(Json(json!({"model": model_json(&s, &model).await?})))
}

/// `PATCH logged-models/{model_id}`: finalizes the model as ready or upload-failed.
pub(crate) async fn finalize(
    State(s): State<MlflowState>,
    Path(model_id): Path<String>,
    p: Params,
) -> JsonResult {
    let status = match p.str("status")?.as_str() {
        "LOGGED_MODEL_READY" | "2" => LoggedModelStatus::Ready,
        "LOGGED_MODEL_UPLOAD_FAILED" | "3" => LoggedModelStatus::Failed,
        other => {
            return Err(ApiError::invalid(format!(
                "Invalid logged model status {other:?}: expected LOGGED_MODEL_READY or \
                 LOGGED_MODEL_UPLOAD_FAILED"
            )))
        }
    };
    read(&s, &model_id).await?;
    let model = s.registry.finalize_logged_model(&model_id, status).await?;
    Ok(Json(json!({"model": model_json(&s, &model).await?})))
}

/// `PATCH logged-models/{model_id}/tags`.
pub(crate) async fn set_tags(
    State(s): State<MlflowState>,
    Path(model_id): Path<String>,
    p: Params,
) -> JsonResult {
    let tags: BTreeMap<String, String> = p.key_values("tags")?.into_iter().collect();
    read(&s, &model_id).await?;
    s.registry.set_logged_model_tags(&model_id, &tags).await?;
    Ok(Json(json!({})))
}

/// `DELETE logged-models/{model_id}/tags/{key}`.
pub(crate) async fn delete_tag(
    State(s): State<MlflowState>,
    Path((model_id, key)): Path<(String, String)>,
) -> JsonResult {
    read(&s, &model_id).await?;
    s.registry.delete_logged_model_tag(&model_id, &key).await?;
    Ok(Json(json!({})))
}

/// `POST logged-models/{model_id}/params`.
pub(crate) async fn log_params(
    State(s): State<MlflowState>,
    Path(model_id): Path<String>,
    p: Params,
) -> JsonResult {
    let params: BTreeMap<String, String> = p.key_values("params")?.into_iter().collect();
    read(&s, &model_id).await?;
    s.registry
        .log_logged_model_params(&model_id, &params)
        .await?;
    Ok(Json(json!({})))
}

/// `POST logged-models/search`: newest first, filtered on `name`, `model_id`,
/// `source_run_id`, `model_type`, `status`, `tags.*` and `params.*`.
pub(crate) async fn search(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let mut experiment_ids = Vec::new();
    for id in p.str_list("experiment_ids")? {
        experiment_ids.push(search_scope(&s, id).await?);
    }
    let filter = Filter::parse(&p.str_or_empty("filter")?)?;
    let page = Page::from_params(&p, 100, 10_000)?;
    let found: Vec<LoggedModel> = s
        .registry
        .list_logged_models(&experiment_ids)
        .await?
        .into_iter()
        .filter(|m| {
            filter.matches(|entity, key| match (entity, key) {
                (Entity::Attribute, "name") => Some(Field::Text(m.name.clone())),
                (Entity::Attribute, "model_id") => Some(Field::Text(m.model_id.clone())),
                (Entity::Attribute, "source_run_id") => m.source_run_id.clone().map(Field::Text),
                (Entity::Attribute, "model_type") => Some(Field::Text(m.model_type.clone())),
                (Entity::Attribute, "status") => {
                    Some(Field::Text(shape::logged_model_status(m.status).into()))
                }
                (Entity::Tag, key) => m.tags.get(key).cloned().map(Field::Text),
                (Entity::Param, key) => m.params.get(key).cloned().map(Field::Text),
                _ => None,
            })
        })
        .collect();
    let (items, next) = page.slice(found);
    let mut models = Vec::new();
    for m in &items {
        models.push(model_json(&s, m).await?);
    }
    let mut body = json!({});
    if !models.is_empty() {
        body["models"] = Value::Array(models);
    }
    if let Some(token) = next {
        body["next_page_token"] = json!(token);
    }
    Ok(Json(body))
}
