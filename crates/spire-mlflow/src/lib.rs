//! An MLflow-compatible REST API over Spire's registry, so MLflow clients (`mlflow`
//! Python package, notebooks calling `mlflow.log_metric`, `mlflow.sklearn.log_model`,
//! `MlflowClient().set_registered_model_alias`…) work against a Spire server unchanged.
//!
//! [`router`] answers MLflow's REST protocol under `/api/2.0/mlflow/...` and
//! `/ajax-api/2.0/mlflow/...`:
//!
//! - experiments: create, get, get-by-name, search, delete, restore, set-experiment-tag;
//! - runs: create, get, update, delete, restore, search, log-metric, log-parameter,
//!   set-tag, delete-tag, log-batch, outputs; metrics get-history; artifacts list;
//! - MLflow 3 logged models (what `log_model` makes): create, get, finalize, search,
//!   tags, params;
//! - registry: registered-models create/get/search/get-latest-versions, model-versions
//!   create/get/search/get-download-uri, aliases set/get/delete;
//!
//! and MLflow's artifact proxy under `/api/2.0/mlflow-artifacts/artifacts/...` (upload,
//! download, list, delete) over a local folder ([`ArtifactRoot`]).
//!
//! Errors are MLflow's: `{"error_code": "INVALID_PARAMETER_VALUE" | "RESOURCE_DOES_NOT_EXIST"
//! | "RESOURCE_ALREADY_EXISTS" | "PERMISSION_DENIED" | …, "message": …}` with MLflow's
//! HTTP status for each code; malformed or oversized requests get a 4xx, never a 500.
//!
//! The `champion` alias is protected: setting or deleting it through this API needs the
//! admin token ([`MlflowState::with_admin_token`], sent as `Authorization: Bearer …`), so
//! no MLflow client bypasses Spire's promotion gate.
//!
//! Spire-specific mapping: MLflow's default experiment id `0` is the experiment named
//! `Default`; a run's segment is its `spire.segment` tag, else its experiment's name; run
//! names and users live in the `mlflow.runName` and `mlflow.user` tags, as MLflow keeps
//! them; a `KILLED` run is stored as failed.

mod artifacts;
mod auth;
mod error;
mod filter;
mod logged;
mod models;
mod page;
mod request;
mod shape;
mod tracking;

use axum::http::Uri;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use spire_registry::Registry;

pub use artifacts::{ArtifactRoot, MAX_ARTIFACT_BYTES};
pub use auth::{AliasGuard, PROTECTED_ALIAS};
pub use error::{ApiError, ErrorCode};
pub use request::MAX_JSON_BODY;

/// What the MLflow API serves: the registry, the artifact folder, and who may move the
/// protected alias.
#[derive(Clone, Debug)]
pub struct MlflowState {
    registry: Registry,
    artifacts: ArtifactRoot,
    auth: AliasGuard,
}

impl MlflowState {
    /// Serves `registry` with artifacts under `artifact_root`; without an admin token
    /// nobody may move `champion` through the API.
    pub fn new(registry: Registry, artifact_root: ArtifactRoot) -> MlflowState {
        MlflowState {
            registry,
            artifacts: artifact_root,
            auth: AliasGuard::default(),
        }
    }

    /// Lets requests bearing `token` move the protected `champion` alias (`None` or an
    /// empty token: nobody may).
    pub fn with_admin_token(mut self, token: Option<&str>) -> MlflowState {
        self.auth = AliasGuard::new(token);
        self
    }
}

/// The MLflow routes below one prefix (`/api/2.0` or `/ajax-api/2.0`).
fn v2() -> Router<MlflowState> {
    use tracking as t;
    Router::new()
        .route("/mlflow/experiments/create", post(t::create_experiment))
        .route("/mlflow/experiments/get", get(t::get_experiment))
        .route(
            "/mlflow/experiments/get-by-name",
            get(t::get_experiment_by_name),
        )
        .route(
            "/mlflow/experiments/search",
            post(t::search_experiments).get(t::search_experiments),
        )
        .route("/mlflow/experiments/delete", post(t::delete_experiment))
        .route("/mlflow/experiments/restore", post(t::restore_experiment))
        .route(
            "/mlflow/experiments/set-experiment-tag",
            post(t::set_experiment_tag),
        )
        .route("/mlflow/runs/create", post(t::create_run))
        .route("/mlflow/runs/get", get(t::get_run))
        .route("/mlflow/runs/update", post(t::update_run))
        .route("/mlflow/runs/delete", post(t::delete_run))
        .route("/mlflow/runs/restore", post(t::restore_run))
        .route("/mlflow/runs/log-metric", post(t::log_metric))
        .route("/mlflow/runs/log-parameter", post(t::log_param))
        .route("/mlflow/runs/set-tag", post(t::set_tag))
        .route("/mlflow/runs/delete-tag", post(t::delete_tag))
        .route("/mlflow/runs/log-batch", post(t::log_batch))
        .route("/mlflow/runs/search", post(t::search_runs))
        .route("/mlflow/runs/outputs", post(t::log_outputs))
        .route("/mlflow/metrics/get-history", get(t::metric_history))
        .route("/mlflow/artifacts/list", get(artifacts::list_run))
        .route("/mlflow/logged-models", post(logged::create))
        .route("/mlflow/logged-models/search", post(logged::search))
        .route(
            "/mlflow/logged-models/{model_id}",
            get(logged::get).patch(logged::finalize),
        )
        .route(
            "/mlflow/logged-models/{model_id}/tags",
            axum::routing::patch(logged::set_tags),
        )
        .route(
            "/mlflow/logged-models/{model_id}/tags/{key}",
            axum::routing::delete(logged::delete_tag),
        )
        .route(
            "/mlflow/logged-models/{model_id}/params",
            post(logged::log_params),
        )
        .route(
            "/mlflow/registered-models/create",
            post(models::create_model),
        )
        .route("/mlflow/registered-models/get", get(models::get_model))
        .route(
            "/mlflow/registered-models/search",
            get(models::search_models),
        )
        .route(
            "/mlflow/registered-models/get-latest-versions",
            post(models::latest_versions).get(models::latest_versions),
        )
        .route(
            "/mlflow/registered-models/alias",
            post(models::set_alias)
                .get(models::get_alias)
                .delete(models::delete_alias),
        )
        .route(
            "/mlflow/model-versions/create",
            post(models::create_version),
        )
        .route("/mlflow/model-versions/get", get(models::get_version))
        .route(
            "/mlflow/model-versions/search",
            get(models::search_versions),
        )
        .route(
            "/mlflow/model-versions/get-download-uri",
            get(models::download_uri),
        )
        .route("/mlflow-artifacts/artifacts", get(artifacts::list))
        .route(
            "/mlflow-artifacts/artifacts/{*path}",
            get(artifacts::download)
                .put(artifacts::upload)
                .delete(artifacts::delete),
        )
}

/// `GET /api/3.0/mlflow/server-info`: what MLflow 3 clients ask before downloading.
async fn server_info() -> Json<serde_json::Value> {
    Json(json!({
        "store_type": "SqlStore",
        "workspaces_enabled": false,
        "trace_archival_enabled": false,
        "multipart_uploads_enabled": false,
        "multipart_downloads_enabled": false,
        "presigned_upload_run_id_supported": false,
        "presigned_upload_model_id_supported": false,
        "features_enabled": {"gateway": false},
    }))
}

/// Unknown paths answer MLflow's `ENDPOINT_NOT_FOUND` (404) in MLflow's error format.
async fn endpoint_not_found(uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::EndpointNotFound,
        format!("no endpoint at {}", uri.path()),
    )
}

/// The MLflow-compatible API over `state`, with a fallback answering `ENDPOINT_NOT_FOUND`
/// for every other path (merge it with other routers that have no fallback).
pub fn router(state: MlflowState) -> Router {
    Router::new()
        .nest("/api/2.0", v2())
        .nest("/ajax-api/2.0", v2())
        .route("/api/3.0/mlflow/server-info", get(server_info))
        .route("/ajax-api/3.0/mlflow/server-info", get(server_info))
        .fallback(endpoint_not_found)
        .with_state(state)
}
