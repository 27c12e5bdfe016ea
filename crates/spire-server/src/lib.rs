//! Spire's HTTP server: segment lookup for ad servers and apps, and (when given an
//! [`MlflowState`]) the MLflow-compatible tracking and registry API of `spire-mlflow` under
//! `/api/2.0/mlflow/...`, `/ajax-api/2.0/mlflow/...` and `/api/2.0/mlflow-artifacts/...`.
//!
//! Segment routes:
//! - `GET /healthz` — liveness plus what is loaded;
//! - `GET /v1/users/{user_id}/segments` — the user's segments with score and model version
//!   (an unknown user gets an empty list, not a 404: "no segments" is a valid answer);
//! - `GET /v1/segments` — segment sizes;
//! - `POST /v1/reload` — reload the latest segments snapshot from the lake.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use spire_core::ErrorKind;
use spire_lake::Lake;
use spire_pipeline::index::SegmentIndex;

pub use spire_mlflow::{Access, MlflowState};

/// Shared server state: the lake and the loaded index (swapped atomically on reload).
#[derive(Clone)]
pub struct AppState {
    lake: Lake,
    index: Arc<RwLock<Arc<SegmentIndex>>>,
}

impl AppState {
    /// Loads the latest segments snapshot from `lake`.
    pub async fn load(lake: Lake) -> Result<AppState, spire_pipeline::PipelineError> {
        let index = SegmentIndex::load(&lake).await?;
        Ok(AppState {
            lake,
            index: Arc::new(RwLock::new(Arc::new(index))),
        })
    }

    fn index(&self) -> Arc<SegmentIndex> {
        match self.index.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

/// The HTTP status for an error kind (the one place kinds map to statuses).
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists | ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

struct ApiError(spire_pipeline::PipelineError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = self.0.kind();
        (
            status_for(kind),
            Json(json!({"error": self.0.to_string(), "kind": kind.to_string()})),
        )
            .into_response()
    }
}

/// The router over `state`; callers are checked by `access` (`/healthz` is open to all).
pub fn router(state: AppState, access: Access) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/users/{user_id}/segments", get(user_segments))
        .route("/v1/segments", get(segments))
        .route("/v1/reload", post(reload))
        .layer(axum::middleware::from_fn_with_state(
            access,
            spire_mlflow::require_token,
        ))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let index = state.index();
    Json(json!({
        "status": "ok",
        "segments_version": index.version,
        "segments": index.sizes().len(),
        "users": index.users(),
    }))
}

async fn user_segments(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> impl IntoResponse {
    let index = state.index();
    Json(json!({"user_id": user_id, "segments": index.user(&user_id)}))
}

async fn segments(State(state): State<AppState>) -> impl IntoResponse {
    let index = state.index();
    Json(json!({"segments_version": index.version, "segments": index.sizes()}))
}

async fn reload(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let index = SegmentIndex::load(&state.lake).await.map_err(ApiError)?;
    let version = index.version;
    match state.index.write() {
        Ok(mut g) => *g = Arc::new(index),
        Err(poisoned) => *poisoned.into_inner() = Arc::new(index),
    }
    Ok(Json(json!({"reloaded": true, "segments_version": version})))
}

/// The segment API, plus the MLflow-compatible API when `mlflow` is given (unknown paths
/// then answer MLflow's `ENDPOINT_NOT_FOUND` error body); both check callers with `access`.
pub fn app(state: AppState, access: Access, mlflow: Option<MlflowState>) -> Router {
    let segments = router(state, access);
    match mlflow {
        Some(mlflow) => segments.merge(spire_mlflow::router(mlflow)),
        None => segments,
    }
}

/// Serves `app(state, access, mlflow)` on `addr` until Ctrl-C or SIGTERM.
pub async fn serve(
    addr: SocketAddr,
    state: AppState,
    access: Access,
    mlflow: Option<MlflowState>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, mlflow = mlflow.is_some(), tokens = access.enforced(), "spire serve listening");
    axum::serve(listener, app(state, access, mlflow))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
