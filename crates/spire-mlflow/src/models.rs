//! Registered models, model versions and aliases: MLflow's model registry endpoints.
//! Moving the protected `champion` alias needs an admin token (see [`crate::auth`]).

use axum::extract::State;
use axum::Extension;
use axum::Json;
use serde_json::{json, Value};
use spire_registry::{ModelRegistry, ModelVersion, RegisteredModel, RegistryError, TrackingStore};

use crate::auth::{alias_actor, Caller};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::filter::{Entity, Field, Filter};
use crate::page::Page;
use crate::request::Params;
use crate::shape;
use crate::MlflowState;

type JsonResult = ApiResult<Json<Value>>;

async fn read_model(s: &MlflowState, name: &str) -> ApiResult<RegisteredModel> {
    s.registry.get_model(name).await.map_err(|e| match e {
        RegistryError::NotFound { .. } => {
            ApiError::not_found(format!("Registered Model with name={name} not found"))
        }
        other => other.into(),
    })
}

fn version_number(p: &Params) -> ApiResult<i64> {
    let text = p.str("version")?;
    text.trim()
        .parse()
        .map_err(|_| ApiError::invalid(format!("Model version must be an integer, got {text:?}")))
}

async fn read_version(s: &MlflowState, name: &str, version: i64) -> ApiResult<ModelVersion> {
    s.registry
        .get_model_version(name, version)
        .await
        .map_err(|e| match e {
            RegistryError::NotFound { .. } => ApiError::not_found(format!(
                "Model Version (name={name}, version={version}) not found"
            )),
            other => other.into(),
        })
}

/// A registered model with its latest version, in MLflow's shape.
async fn model_json(s: &MlflowState, m: &RegisteredModel) -> ApiResult<Value> {
    let latest = if m.latest_version > 0 {
        Some(read_version(s, &m.name, m.latest_version).await?)
    } else {
        None
    };
    Ok(shape::registered_model(m, latest.as_ref()))
}

/// `POST registered-models/create`.
pub(crate) async fn create_model(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let name = p.str("name")?;
    let m = s.registry.create_model(&name).await.map_err(|e| match e {
        RegistryError::AlreadyExists { .. } => ApiError::new(
            ErrorCode::ResourceAlreadyExists,
            format!("Registered Model (name={name}) already exists."),
        ),
        other => other.into(),
    })?;
    Ok(Json(
        json!({"registered_model": shape::registered_model(&m, None)}),
    ))
}

/// `GET registered-models/get`.
pub(crate) async fn get_model(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let m = read_model(&s, &p.str("name")?).await?;
    Ok(Json(json!({"registered_model": model_json(&s, &m).await?})))
}

/// `GET registered-models/search`.
pub(crate) async fn search_models(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let filter = Filter::parse(&p.str_or_empty("filter")?)?;
    let page = Page::from_params(&p, 100, 1000)?;
    let mut found: Vec<RegisteredModel> = s
        .registry
        .list_models()
        .await?
        .into_iter()
        .filter(|m| {
            filter.matches(|entity, key| match (entity, key) {
                (Entity::Attribute, "name") => Some(Field::Text(m.name.clone())),
                _ => None,
            })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    let (items, next) = page.slice(found);
    let mut models = Vec::new();
    for m in &items {
        models.push(model_json(&s, m).await?);
    }
    let mut body = json!({});
    if !models.is_empty() {
        body["registered_models"] = Value::Array(models);
    }
    if let Some(token) = next {
        body["next_page_token"] = json!(token);
    }
    Ok(Json(body))
}

/// `POST registered-models/get-latest-versions`.
pub(crate) async fn latest_versions(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let m = read_model(&s, &p.str("name")?).await?;
    let mut versions = Vec::new();
    if m.latest_version > 0 {
        versions.push(shape::model_version(
            &read_version(&s, &m.name, m.latest_version).await?,
        ));
    }
    Ok(Json(json!({"model_versions": versions})))
}

/// The run a new version comes from: `run_id`, else the source run of the logged model
/// (`model_id`, or a `models:/m-…` source), else a `runs:/RUN/…` source.
async fn producing_run(s: &MlflowState, p: &Params, source: &str) -> ApiResult<String> {
    if let Some(run_id) = p.opt_str("run_id")?.filter(|r| !r.is_empty()) {
        return Ok(run_id);
    }
    if let Some(model_id) = logged_model_id(p, source)? {
        let model = s.registry.get_logged_model(&model_id).await?;
        if let Some(run_id) = model.source_run_id {
            return Ok(run_id);
        }
    }
    if let Some(rest) = source.strip_prefix("runs:/") {
        if let Some(run_id) = rest.split('/').next().filter(|r| !r.is_empty()) {
            return Ok(run_id.to_string());
        }
    }
    Err(ApiError::invalid(format!(
        "Spire registers model versions produced by a run: pass run_id, or a source of the \
         form runs:/RUN_ID/PATH or models:/MODEL_ID (got source {source:?})"
    )))
}

/// `POST model-versions/create`.
pub(crate) async fn create_version(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let name = p.str("name")?;
    let source = p.str("source")?;
    read_model(&s, &name).await?;
    let run_id = producing_run(&s, &p, &source).await?;
    s.registry.get_run(&run_id).await?;
    let v = s
        .registry
        .create_model_version(&name, &run_id, &source, json!({}))
        .await?;
    if let Some(model_id) = logged_model_id(&p, &source)? {
        note_version_on_logged_model(&s, &model_id, &v).await?;
    }
    Ok(Json(json!({"model_version": shape::model_version(&v)})))
}

/// The logged model a version registers: `model_id`, or a `models:/m-…` source.
fn logged_model_id(p: &Params, source: &str) -> ApiResult<Option<String>> {
    Ok(p.opt_str("model_id")?
        .filter(|m| !m.is_empty())
        .or_else(|| {
            source
                .strip_prefix("models:/")
                .filter(|rest| rest.starts_with("m-") && !rest.contains('/'))
                .map(str::to_string)
        }))
}

/// Appends the version to the logged model's `mlflow.modelVersions` tag, as MLflow's
/// server does.
async fn note_version_on_logged_model(
    s: &MlflowState,
    model_id: &str,
    v: &ModelVersion,
) -> ApiResult<()> {
    const TAG: &str = "mlflow.modelVersions";
    let model = s.registry.get_logged_model(model_id).await?;
    let mut list: Vec<Value> = model
        .tags
        .get(TAG)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    list.push(json!({"name": v.model, "version": v.version}));
    let tags =
        std::collections::BTreeMap::from([(TAG.to_string(), Value::Array(list).to_string())]);
    s.registry.set_logged_model_tags(model_id, &tags).await?;
    Ok(())
}

/// `GET model-versions/get`.
pub(crate) async fn get_version(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let name = p.str("name")?;
    let v = read_version(&s, &name, version_number(&p)?).await?;
    Ok(Json(json!({"model_version": shape::model_version(&v)})))
}

/// `GET model-versions/get-download-uri`: where the version's files are.
pub(crate) async fn download_uri(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let name = p.str("name")?;
    let v = read_version(&s, &name, version_number(&p)?).await?;
    Ok(Json(
        json!({"artifact_uri": artifact_location(&s, &v).await?}),
    ))
}

/// Resolves `models:/m-…` and `runs:/RUN/PATH` sources to artifact URIs.
async fn artifact_location(s: &MlflowState, v: &ModelVersion) -> ApiResult<String> {
    let source = v.artifact_uri.as_str();
    if let Some(model_id) = source
        .strip_prefix("models:/")
        .filter(|m| m.starts_with("m-"))
    {
        let model = s.registry.get_logged_model(model_id).await?;
        return Ok(shape::model_artifacts(
            &model.experiment_id,
            &model.model_id,
        ));
    }
    if let Some(rest) = source.strip_prefix("runs:/") {
        let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
        let run = s.registry.get_run(run_id).await?;
        let root = shape::run_artifacts(&run.experiment_id, &run.run_id);
        return Ok(if path.is_empty() {
            root
        } else {
            format!("{root}/{path}")
        });
    }
    Ok(source.to_string())
}

/// `GET model-versions/search`.
pub(crate) async fn search_versions(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let filter = Filter::parse(&p.str_or_empty("filter")?)?;
    let page = Page::from_params(&p, 10_000, 200_000)?;
    let mut found = Vec::new();
    for m in s.registry.list_models().await? {
        for v in s.registry.list_model_versions(&m.name).await? {
            let keep = filter.matches(|entity, key| match (entity, key) {
                (Entity::Attribute, "name") => Some(Field::Text(v.model.clone())),
                (Entity::Attribute, "run_id") => Some(Field::Text(v.run_id.clone())),
                (Entity::Attribute, "source" | "source_path") => {
                    Some(Field::Text(v.artifact_uri.clone()))
                }
                (Entity::Attribute, "version" | "version_number") => {
                    Some(Field::Number(v.version as f64))
                }
                _ => None,
            });
            if keep {
                found.push(v);
            }
        }
    }
    let (items, next) = page.slice(found);
    let mut body = json!({});
    if !items.is_empty() {
        body["model_versions"] = Value::Array(items.iter().map(shape::model_version).collect());
    }
    if let Some(token) = next {
        body["next_page_token"] = json!(token);
    }
    Ok(Json(body))
}

/// `POST registered-models/alias`: points an alias at a version. `champion` needs the
/// admin token.
pub(crate) async fn set_alias(
    State(s): State<MlflowState>,
    Extension(caller): Extension<Caller>,
    p: Params,
) -> JsonResult {
    let name = p.str("name")?;
    let alias = p.str("alias")?;
    let version = version_number(&p)?;
    let actor = alias_actor(&caller, &name, &alias)?;
    read_model(&s, &name).await?;
    read_version(&s, &name, version).await?;
    s.registry
        .set_alias(&name, &alias, version, &actor, "set through the MLflow API")
        .await?;
    Ok(Json(json!({})))
}

/// `DELETE registered-models/alias`. `champion` needs the admin token.
pub(crate) async fn delete_alias(
    State(s): State<MlflowState>,
    Extension(caller): Extension<Caller>,
    p: Params,
) -> JsonResult {
    let name = p.str("name")?;
    let alias = p.str("alias")?;
    let actor = alias_actor(&caller, &name, &alias)?;
    read_model(&s, &name).await?;
    match s
        .registry
        .delete_alias(&name, &alias, &actor, "deleted through the MLflow API")
        .await
    {
        // MLflow's server answers success for an alias that is already gone.
        Ok(()) | Err(RegistryError::NotFound { .. }) => Ok(Json(json!({}))),
        Err(e) => Err(e.into()),
    }
}

/// `GET registered-models/alias`: the version an alias points at.
pub(crate) async fn get_alias(State(s): State<MlflowState>, p: Params) -> JsonResult {
    let name = p.str("name")?;
    let alias = p.str("alias")?;
    read_model(&s, &name).await?;
    match s.registry.get_alias(&name, &alias).await? {
        Some(v) => Ok(Json(json!({"model_version": shape::model_version(&v)}))),
        // MLflow answers INVALID_PARAMETER_VALUE (not RESOURCE_DOES_NOT_EXIST) here.
        None => Err(ApiError::invalid(format!(
            "Registered model alias {alias} not found."
        ))),
    }
}
