//! Artifacts in a local folder, served with MLflow's artifact-proxy protocol
//! (`/api/2.0/mlflow-artifacts/artifacts/...`): upload (`PUT`), download (`GET`) and list
//! (`GET ?path=`). Runs store theirs under `EXPERIMENT/RUN/artifacts/`, logged models under
//! `EXPERIMENT/models/MODEL/artifacts/`, the layout MLflow's server uses.

use std::path::{Path as FsPath, PathBuf};

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde_json::{json, Value};
use spire_registry::TrackingStore;
use tokio::io::AsyncWriteExt;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::request::Params;
use crate::MlflowState;

/// The largest artifact file accepted in one upload.
pub const MAX_ARTIFACT_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// A local folder holding every artifact.
#[derive(Debug, Clone)]
pub struct ArtifactRoot {
    root: PathBuf,
}

impl ArtifactRoot {
    /// Artifacts under `root` (created on first upload).
    pub fn new(root: impl Into<PathBuf>) -> ArtifactRoot {
        ArtifactRoot { root: root.into() }
    }

    /// The folder itself.
    pub fn path(&self) -> &FsPath {
        &self.root
    }

    /// The file or folder of a relative artifact path; `..`, `.`, empty segments,
    /// backslashes and NUL bytes are `INVALID_PARAMETER_VALUE`, so no request escapes the
    /// root.
    pub fn resolve(&self, relative: &str) -> ApiResult<PathBuf> {
        let trimmed = relative.trim_matches('/');
        let mut path = self.root.clone();
        if trimmed.is_empty() {
            return Ok(path);
        }
        for segment in trimmed.split('/') {
            if segment.is_empty()
                || segment == "."
                || segment == ".."
                || segment.contains(['\\', '\0'])
            {
                return Err(ApiError::invalid(format!(
                    "Invalid artifact path {relative:?}: it must be relative, without '.', '..', \
                     empty segments or backslashes"
                )));
            }
            path.push(segment);
        }
        Ok(path)
    }
}

fn io_error(what: &str, path: &FsPath, e: std::io::Error) -> ApiError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ApiError::not_found(format!("{what}: no artifact at {}", path.display()))
    } else {
        tracing::error!(path = %path.display(), error = %e, "artifact I/O failed");
        ApiError::new(
            ErrorCode::InternalError,
            format!("{what} {}: {e}", path.display()),
        )
    }
}

/// `PUT mlflow-artifacts/artifacts/{path}`: stores the body (streamed to a temporary file,
/// then renamed into place so readers never see half a file).
pub(crate) async fn upload(
    State(s): State<MlflowState>,
    Path(relative): Path<String>,
    req: Request,
) -> ApiResult<Json<Value>> {
    let target = s.artifacts.resolve(&relative)?;
    if target == s.artifacts.root {
        return Err(ApiError::invalid("an artifact upload needs a file path"));
    }
    let parent = target
        .parent()
        .ok_or_else(|| ApiError::invalid("an artifact upload needs a file path"))?;
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| io_error("creating folder", parent, e))?;
    let tmp = parent.join(format!(
        ".upload-{}.tmp",
        uuid_like(
            &relative,
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
        )
    ));
    let written = write_stream(&tmp, req.into_body()).await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    tokio::fs::rename(&tmp, &target)
        .await
        .map_err(|e| io_error("storing artifact", &target, e))?;
    Ok(Json(json!({})))
}

/// A unique-enough temporary name for concurrent uploads of one path.
fn uuid_like(relative: &str, nanos: i64) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(format!(
        "{relative}{nanos}{:?}",
        std::thread::current().id()
    ));
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

async fn write_stream(path: &FsPath, body: Body) -> ApiResult<()> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| io_error("creating", path, e))?;
    let mut stream = body.into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid(format!("reading upload: {e}")))?;
        total += chunk.len() as u64;
        if total > MAX_ARTIFACT_BYTES {
            return Err(ApiError::new(
                ErrorCode::RequestLimitExceeded,
                format!("artifact larger than {MAX_ARTIFACT_BYTES} bytes"),
            ));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| io_error("writing", path, e))?;
    }
    file.flush()
        .await
        .map_err(|e| io_error("writing", path, e))?;
    file.sync_all()
        .await
        .map_err(|e| io_error("syncing", path, e))
}

/// `GET mlflow-artifacts/artifacts/{path}`: the file's bytes, streamed.
pub(crate) async fn download(
    State(s): State<MlflowState>,
    Path(relative): Path<String>,
) -> ApiResult<Response> {
    let path = s.artifacts.resolve(&relative)?;
    let meta = tokio::fs::metadata(&path)
        .await
        .map_err(|e| io_error("reading", &path, e))?;
    if !meta.is_file() {
        return Err(ApiError::not_found(format!(
            "artifact {relative:?} is a folder, not a file"
        )));
    }
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| io_error("opening", &path, e))?;
    let stream = futures::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, meta.len().to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `DELETE mlflow-artifacts/artifacts/{path}`: removes a file or folder.
pub(crate) async fn delete(
    State(s): State<MlflowState>,
    Path(relative): Path<String>,
) -> ApiResult<Json<Value>> {
    let path = s.artifacts.resolve(&relative)?;
    if path == s.artifacts.root {
        return Err(ApiError::invalid("refusing to delete the artifact root"));
    }
    let meta = tokio::fs::metadata(&path)
        .await
        .map_err(|e| io_error("deleting", &path, e))?;
    let removed = if meta.is_dir() {
        tokio::fs::remove_dir_all(&path).await
    } else {
        tokio::fs::remove_file(&path).await
    };
    removed.map_err(|e| io_error("deleting", &path, e))?;
    Ok(Json(json!({})))
}

/// The entries of a folder as MLflow's `FileInfo`s, by name; paths are `prefix` joined
/// with each name. A missing folder or a file lists nothing.
async fn list_folder(dir: &FsPath, prefix: &str) -> ApiResult<Vec<Value>> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Vec::new())
        }
        Err(e) => return Err(io_error("listing", dir, e)),
    };
    let mut files = Vec::new();
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|e| io_error("listing", dir, e))?
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".upload-") {
            continue;
        }
        let meta = entry
            .metadata()
            .await
            .map_err(|e| io_error("listing", dir, e))?;
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        files.push(if meta.is_dir() {
            json!({"path": path, "is_dir": true})
        } else {
            json!({"path": path, "is_dir": false, "file_size": meta.len()})
        });
    }
    files.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    Ok(files)
}

/// `GET mlflow-artifacts/artifacts?path=…`: the entries of a folder, named relative to it.
pub(crate) async fn list(State(s): State<MlflowState>, p: Params) -> ApiResult<Json<Value>> {
    let relative = p.str_or_empty("path")?;
    let dir = s.artifacts.resolve(&relative)?;
    let files = list_folder(&dir, "").await?;
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
    let dir = s.artifacts.resolve(&format!("{base}/{sub}"))?;
    let files = list_folder(&dir, sub).await?;
    let mut body =
        json!({"root_uri": crate::shape::run_artifacts(&run.experiment_id, &run.run_id)});
    if !files.is_empty() {
        body["files"] = Value::Array(files);
    }
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_never_escape_the_root() {
        let root = ArtifactRoot::new("/srv/a");
        assert_eq!(
            root.resolve("1/r/artifacts/x.txt").unwrap(),
            PathBuf::from("/srv/a/1/r/artifacts/x.txt")
        );
        assert_eq!(root.resolve("/").unwrap(), PathBuf::from("/srv/a"));
        for bad in [
            "../etc/passwd",
            "1/../../x",
            "a//b",
            "a/./b",
            "a\\b",
            "a\0b",
        ] {
            let err = root.resolve(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidParameterValue, "{bad}");
        }
    }
}
