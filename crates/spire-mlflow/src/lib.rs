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
//! download, list, delete) over Spire's [`ArtifactStore`] (a local folder or S3-compatible
//! storage).
//!
//! Errors are MLflow's: `{"error_code": "INVALID_PARAMETER_VALUE" | "RESOURCE_DOES_NOT_EXIST"
//! | "RESOURCE_ALREADY_EXISTS" | "PERMISSION_DENIED" | …, "message": …}` with MLflow's
//! HTTP status for each code; malformed or oversized requests get a 4xx, never a 500.
//!
//! Access is checked per request ([`Access`], [`require_token`]): with tokens configured,
//! reads need a `read` token and writes a `write` token (`Authorization: Bearer …`, which
//! MLflow clients send from `MLFLOW_TRACKING_TOKEN`). The `champion` alias is protected:
//! setting or deleting it through this API needs an `admin` token, so no MLflow client
//! bypasses Spire's promotion gate.
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
use spire_registry::{ArtifactStore, Registry};

pub use artifacts::MAX_ARTIFACT_BYTES;
pub use auth::{needed_role, require_token, Access, Caller, PROTECTED_ALIAS};
pub use error::{ApiError, ErrorCode};
pub use request::MAX_JSON_BODY;

/// What the MLflow API serves: the registry, the artifact store, and who may call it.
#[derive(Clone, Debug)]
pub struct MlflowState {
    registry: Registry,
    artifacts: ArtifactStore,
    access: Access,
}

impl MlflowState {
    /// Serves `registry` with artifacts in `artifacts`, open to every caller
    /// ([`Access::open`]: for loopback only) until [`MlflowState::with_access`].
    pub fn new(registry: Registry, artifacts: ArtifactStore) -> MlflowState {
        MlflowState {
            registry,
            artifacts,
            access: Access::open(),
        }
    }

    /// Checks callers with `access`.
    pub fn with_access(mut self, access: Access) -> MlflowState {
        self.access = access;
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
    let access = state.access.clone();
    Router::new()
        .nest("/api/2.0", v2())
        .nest("/ajax-api/2.0", v2())
        .route("/api/3.0/mlflow/server-info", get(server_info))
        .route("/ajax-api/3.0/mlflow/server-info", get(server_info))
        .fallback(endpoint_not_found)
        .layer(axum::middleware::from_fn_with_state(access, require_token))
        .with_state(state)
}
