//! Artifacts served with MLflow's artifact-proxy protocol
//! (`/api/2.0/mlflow-artifacts/artifacts/...`): upload (`PUT`), download (`GET`), list
//! (`GET ?path=`) and delete, over Spire's [`ArtifactStore`] (a local folder or
//! S3-compatible storage). Runs keep theirs under `EXPERIMENT/RUN/artifacts/`, logged
//! models under `EXPERIMENT/models/MODEL/artifacts/`, the layout MLflow's server uses.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde_json::{json, Value};
use spire_registry::artifacts::ArtifactEntry;
use spire_registry::{ArtifactStore, RegistryError, TrackingStore};

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::Params;
use crate::MlflowState;

/// The largest artifact file accepted in one upload.
pub const MAX_ARTIFACT_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// An artifact error in MLflow's terms: a bad path is `INVALID_PARAMETER_VALUE`, a
/// missing file `RESOURCE_DOES_NOT_EXIST`, an oversized upload `REQUEST_LIMIT_EXCEEDED`.
fn artifact_error(e: RegistryError) -> ApiError {
    match &e {
        RegistryError::InvalidInput(m) if m.contains("upload limit") => {
            ApiError::new(ErrorCode::RequestLimitExceeded, m.clone())
        }
        _ => e.into(),
    }
}

/// `PUT mlflow-artifacts/artifacts/{path}`: stores the body, streamed (in parts when
/// large); readers never see half a file.
pub(crate) async fn upload(
    State(s): State<MlflowState>,
    Path(relative): Path<String>,
    req: Request,
) -> ApiResult<Json<Value>> {
    let chunks = req.into_body().into_data_stream();
    s.artifacts
        .put_stream(&relative, chunks, MAX_ARTIFACT_BYTES)
        .await
        .map_err(artifact_error)?;
    Ok(Json(json!({})))
}

/// `GET mlflow-artifacts/artifacts/{path}`: the file's bytes, streamed.
pub(crate) async fn download(
    State(s): State<MlflowState>,
    Path(relative): Path<String>,
) -> ApiResult<Response> {
    let read = match s.artifacts.read(&relative).await {
        Ok(read) => read,
        Err(RegistryError::NotFound { .. }) => {
            let listed = s.artifacts.list_dir(&relative, "").await;
            let message = if listed.is_ok_and(|l| !l.is_empty()) {
                format!("artifact {relative:?} is a folder, not a file")
            } else {
                format!("no artifact at {relative:?}")
            };
            return Err(ApiError::not_found(message));
        }
        Err(e) => return Err(artifact_error(e)),
    };
    let stream = read
        .stream
        .map(|chunk| chunk.map_err(std::io::Error::other));
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, read.size.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `DELETE mlflow-artifacts/artifacts/{path}`: removes a file or a folder.
pub(crate) async fn delete(
    State(s): State<MlflowState>,
    Path(relative): Path<String>,
) -> ApiResult<Json<Value>> {
    let deleted = s
        .artifacts
        .delete(&relative)
        .await
        .map_err(artifact_error)?;
    if deleted == 0 {
        return Err(ApiError::not_found(format!("no artifact at {relative:?}")));
    }
    Ok(Json(json!({})))
}

/// MLflow's `FileInfo`s for a listing.
fn file_infos(entries: Vec<ArtifactEntry>) -> Vec<Value> {
    entries
        .into_iter()
        .map(|e| match e.size {
            Some(size) if !e.is_dir => json!({"path": e.path, "is_dir": false, "file_size": size}),
            _ => json!({"path": e.path, "is_dir": true}),
        })
        .collect()
}

/// The entries of folder `relative`, named relative to `strip`.
async fn list_folder(store: &ArtifactStore, relative: &str, strip: &str) -> ApiResult<Vec<Value>> {
    let entries = store
        .list_dir(relative, strip)
        .await
        .map_err(artifact_error)?;
    Ok(file_infos(entries))
}

/// `GET mlflow-artifacts/artifacts?path=…`: the entries of a folder, named relative to it.
pub(crate) async fn list(State(s): State<MlflowState>, p: Params) -> ApiResult<Json<Value>> {
    let relative = p.str_or_empty("path")?;
    let files = list_folder(&s.artifacts, &relative, &relative).await?;
    Ok(Json(if files.is_empty() {
        json!({})
    } else {
        json!({"files": files})
    }))
}

/// `GET mlflow/artifacts/list?run_id=…&path=…`: a run's artifacts, named relative to the
/// run's artifact root.
pub(crate) async fn list_run(State(s): State<MlflowState>, p: Params) -> ApiResult<Json<Value>> {
    let run = s.registry.get_run(&p.run_id()?).await?;
    let sub = p.str_or_empty("path")?;
    let sub = sub.trim_matches('/');
    let base = format!("{}/{}/artifacts", run.experiment_id, run.run_id);
    let files = list_folder(&s.artifacts, &format!("{base}/{sub}"), &base).await?;
    let mut body =
        json!({"root_uri": crate::shape::run_artifacts(&run.experiment_id, &run.run_id)});
    if !files.is_empty() {
        body["files"] = Value::Array(files);
    }
    Ok(Json(body))
}
