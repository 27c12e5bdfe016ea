//! Artifact storage through `object_store`: a local folder by default, or S3-compatible
//! storage by URL (`s3://BUCKET/PREFIX`). Model files written by `spire run`, files
//! uploaded through the MLflow artifact API, and `spire gc` all go through one
//! [`ArtifactStore`].
//!
//! Layout (MLflow's, so MLflow clients can list and download Spire's own model files):
//! a run keeps its files under `EXPERIMENT_ID/RUN_ID/artifacts/`; a logged model under
//! `EXPERIMENT_ID/models/MODEL_ID/artifacts/`. [`run_prefix`] names a run's folder.
//!
//! S3 settings come from the usual `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, …) and may
//! be given or overridden per project (`[storage.artifact_options]` in `spire.toml`, keys as
//! `object_store` names them: `endpoint`, `region`, `allow_http`, `access_key_id`, …).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::RegistryError;

/// Uploads larger than this go to the store in parts (S3 multipart upload) instead of
/// being held in memory whole.
const SINGLE_PUT_BYTES: usize = 8 * 1024 * 1024;

/// One entry of a folder listing ([`ArtifactStore::list_dir`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactEntry {
    /// The entry's path relative to the listed folder's root (see `list_dir`).
    pub path: String,
    /// Whether it is a folder (a common prefix) rather than a file.
    pub is_dir: bool,
    /// The file's size in bytes (`None` for folders).
    pub size: Option<u64>,
}

/// A file being read: its size and its bytes as a stream.
pub struct ArtifactRead {
    /// The file's size in bytes.
    pub size: u64,
    /// The file's bytes, in chunks.
    pub stream: BoxStream<'static, Result<Bytes, RegistryError>>,
}

impl fmt::Debug for ArtifactRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArtifactRead")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Where artifacts live: a local folder or an S3-compatible bucket and prefix.
///
/// Cheap to clone. Paths given to its methods are relative (`1/abc/artifacts/model.json`)
/// and checked by [`ArtifactStore::path`]: no `..`, `.`, empty segments, backslashes or
/// NUL bytes, so no caller escapes the root.
#[derive(Clone)]
pub struct ArtifactStore {
    store: Arc<dyn ObjectStore>,
    /// The root as a URL (`file:///abs/folder` or `s3://bucket/prefix`), no trailing `/`.
    root_url: String,
}

impl fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArtifactStore")
            .field("root", &self.root_url)
            .finish_non_exhaustive()
    }
}

/// The folder of a run's artifacts, relative to the store's root.
pub fn run_prefix(experiment_id: &str, run_id: &str) -> String {
    format!("{experiment_id}/{run_id}")
}

impl ArtifactStore {
    /// Opens the store at `location`: a folder path (absolute, or relative to the current
    /// folder; created if missing), `file:///ABS/PATH`, or `s3://BUCKET[/PREFIX]` with
    /// `options` (S3 settings as `object_store` names them; they override the `AWS_*`
    /// environment variables). Another scheme, an unknown option or a folder that cannot
    /// be created is [`RegistryError::InvalidInput`] naming it.
    pub fn open(
        location: &str,
        options: &BTreeMap<String, String>,
    ) -> Result<ArtifactStore, RegistryError> {
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(RegistryError::InvalidInput(format!(
                    "artifact location {location:?} names no bucket: expected s3://BUCKET[/PREFIX]"
                )));
            }
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            for (key, value) in options {
                let parsed: AmazonS3ConfigKey = key.to_ascii_lowercase().parse().map_err(|_| {
                    RegistryError::InvalidInput(format!(
                        "unknown S3 artifact option {key:?} (storage.artifact_options): use \
                         object_store's names, e.g. endpoint, region, allow_http, \
                         access_key_id, secret_access_key"
                    ))
                })?;
                builder = builder.with_config(parsed, value.clone());
            }
            let s3 = builder.build().map_err(|source| RegistryError::Artifact {
                what: format!("configuring S3 artifact storage {location:?}"),
                source,
            })?;
            let prefix = prefix.trim_matches('/');
            let root_url = if prefix.is_empty() {
                format!("s3://{bucket}")
            } else {
                format!("s3://{bucket}/{prefix}")
            };
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(PrefixStore::new(s3, Path::from(prefix)))
            };
            return Ok(ArtifactStore { store, root_url });
        }
        if let Some((scheme, _)) = location.split_once("://") {
            if scheme != "file" {
                return Err(RegistryError::InvalidInput(format!(
                    "unsupported artifact location {location:?}: expected a folder, \
                     file:///PATH or s3://BUCKET[/PREFIX]"
                )));
            }
        }
        let folder = PathBuf::from(location.strip_prefix("file://").unwrap_or(location));
        std::fs::create_dir_all(&folder).map_err(|e| {
            RegistryError::InvalidInput(format!(
                "cannot create the artifact folder {}: {e}",
                folder.display()
            ))
        })?;
        let local = LocalFileSystem::new_with_prefix(&folder)
            .map_err(|source| RegistryError::Artifact {
                what: format!("opening the artifact folder {}", folder.display()),
                source,
            })?
            .with_automatic_cleanup(true);
        let absolute = std::fs::canonicalize(&folder).unwrap_or(folder);
        Ok(ArtifactStore {
            store: Arc::new(local),
            root_url: format!("file://{}", absolute.display()),
        })
    }

    /// The root as a URL: `file:///ABS/FOLDER` or `s3://BUCKET[/PREFIX]`.
    pub fn root_url(&self) -> &str {
        &self.root_url
    }

    /// The URL of a relative artifact path (what model versions record).
    pub fn url_of(&self, relative: &str) -> Result<String, RegistryError> {
        let path = self.path(relative)?;
        Ok(if path.as_ref().is_empty() {
            self.root_url.clone()
        } else {
            format!("{}/{}", self.root_url, path)
        })
    }

    /// The relative path of an artifact URL under this store's root; `None` when the URL
    /// points elsewhere.
    pub fn relative_of<'a>(&self, url: &'a str) -> Option<&'a str> {
        url.strip_prefix(self.root_url.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
    }

    /// Checks a relative path and turns it into the store's path type; `..`, `.`, empty
    /// segments, backslashes and NUL bytes are [`RegistryError::InvalidInput`].
    pub fn path(&self, relative: &str) -> Result<Path, RegistryError> {
        let trimmed = relative.trim_matches('/');
        if trimmed.is_empty() {
            return Ok(Path::default());
        }
        for segment in trimmed.split('/') {
            if segment.is_empty()
                || segment == "."
                || segment == ".."
                || segment.contains(['\\', '\0'])
            {
                return Err(RegistryError::InvalidInput(format!(
                    "invalid artifact path {relative:?}: it must be relative, without '.', \
                     '..', empty segments or backslashes"
                )));
            }
        }
        Path::parse(trimmed).map_err(|e| {
            RegistryError::InvalidInput(format!("invalid artifact path {relative:?}: {e}"))
        })
    }

    fn error(&self, doing: &str, relative: &str, source: object_store::Error) -> RegistryError {
        if matches!(source, object_store::Error::NotFound { .. }) {
            return RegistryError::not_found(format!("artifact {relative:?} in {}", self.root_url));
        }
        RegistryError::Artifact {
            what: format!("{doing} artifact {relative:?} in {}", self.root_url),
            source,
        }
    }

    /// Stores `bytes` at `relative`, replacing any file there. Readers never see half a
    /// file (local writes go to a temporary file renamed into place; S3 puts are atomic).
    pub async fn put(&self, relative: &str, bytes: impl Into<Bytes>) -> Result<(), RegistryError> {
        let path = self.writable(relative)?;
        self.store
            .put(&path, PutPayload::from(bytes.into()))
            .await
            .map_err(|e| self.error("writing", relative, e))?;
        Ok(())
    }

    /// Stores a stream of chunks at `relative`: small files in one put, larger ones in
    /// parts. More than `max_bytes` in all is [`RegistryError::InvalidInput`] and stores
    /// nothing; a failing chunk aborts the upload with that chunk's error.
    pub async fn put_stream<E: fmt::Display>(
        &self,
        relative: &str,
        mut chunks: impl futures::Stream<Item = Result<Bytes, E>> + Unpin,
        max_bytes: u64,
    ) -> Result<u64, RegistryError> {
        let path = self.writable(relative)?;
        let too_big = || {
            RegistryError::InvalidInput(format!(
                "artifact {relative:?} is larger than the {max_bytes}-byte upload limit"
            ))
        };
        let read_err =
            |e: E| RegistryError::InvalidInput(format!("reading the upload of {relative:?}: {e}"));
        let mut head: Vec<Bytes> = Vec::new();
        let mut total: u64 = 0;
        while total <= SINGLE_PUT_BYTES as u64 {
            match chunks.next().await {
                None => {
                    let payload: PutPayload = head.into_iter().collect();
                    self.store
                        .put(&path, payload)
                        .await
                        .map_err(|e| self.error("writing", relative, e))?;
                    return Ok(total);
                }
                Some(chunk) => {
                    let chunk = chunk.map_err(read_err)?;
                    total += chunk.len() as u64;
                    if total > max_bytes {
                        return Err(too_big());
                    }
                    head.push(chunk);
                }
            }
        }
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| self.error("starting the upload of", relative, e))?;
        let mut writer = WriteMultipart::new(upload);
        for chunk in head {
            writer.put(chunk);
        }
        let streamed = async {
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(read_err)?;
                total += chunk.len() as u64;
                if total > max_bytes {
                    return Err(too_big());
                }
                writer
                    .wait_for_capacity(4)
                    .await
                    .map_err(|e| self.error("uploading", relative, e))?;
                writer.put(chunk);
            }
            Ok(())
        }
        .await;
        match streamed {
            Ok(()) => {
                writer
                    .finish()
                    .await
                    .map_err(|e| self.error("finishing the upload of", relative, e))?;
                Ok(total)
            }
            Err(e) => {
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }

    /// A path that names a file (not the root).
    fn writable(&self, relative: &str) -> Result<Path, RegistryError> {
        let path = self.path(relative)?;
        if path.as_ref().is_empty() {
            return Err(RegistryError::InvalidInput(
                "an artifact needs a file path, not the root".into(),
            ));
        }
        Ok(path)
    }

    /// Reads a whole file; a missing one is [`RegistryError::NotFound`].
    pub async fn get(&self, relative: &str) -> Result<Bytes, RegistryError> {
        let path = self.writable(relative)?;
        self.store
            .get(&path)
            .await
            .map_err(|e| self.error("reading", relative, e))?
            .bytes()
            .await
            .map_err(|e| self.error("reading", relative, e))
    }

    /// Opens a file for streaming; a missing one is [`RegistryError::NotFound`].
    pub async fn read(&self, relative: &str) -> Result<ArtifactRead, RegistryError> {
        let path = self.writable(relative)?;
        let got = self
            .store
            .get(&path)
            .await
            .map_err(|e| self.error("reading", relative, e))?;
        let size = got.meta.size;
        let this = self.clone();
        let name = relative.to_string();
        let stream = got
            .into_stream()
            .map_err(move |e| this.error("reading", &name, e))
            .boxed();
        Ok(ArtifactRead { size, stream })
    }

    /// The files and folders directly inside `relative`, by path; entry paths are
    /// `relative` joined with each name, minus `strip` (a leading part of `relative` the
    /// caller's paths are relative to). A missing folder lists nothing.
    pub async fn list_dir(
        &self,
        relative: &str,
        strip: &str,
    ) -> Result<Vec<ArtifactEntry>, RegistryError> {
        let path = self.path(relative)?;
        let prefix = (!path.as_ref().is_empty()).then_some(&path);
        let listed = self
            .store
            .list_with_delimiter(prefix)
            .await
            .map_err(|e| self.error("listing", relative, e))?;
        let strip = strip.trim_matches('/');
        let shown = |p: &Path| -> String {
            let full = p.as_ref();
            if strip.is_empty() {
                return full.to_string();
            }
            full.strip_prefix(strip)
                .map(|rest| rest.trim_start_matches('/'))
                .unwrap_or(full)
                .to_string()
        };
        let mut entries: Vec<ArtifactEntry> = listed
            .common_prefixes
            .iter()
            .map(|p| ArtifactEntry {
                path: shown(p),
                is_dir: true,
                size: None,
            })
            .chain(listed.objects.iter().map(|o| ArtifactEntry {
                path: shown(&o.location),
                is_dir: false,
                size: Some(o.size),
            }))
            .collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }

    /// Deletes a file, or every file under a folder; returns how many files went. Deleting
    /// what is not there deletes nothing and succeeds.
    pub async fn delete(&self, relative: &str) -> Result<usize, RegistryError> {
        let path = self.writable(relative)?;
        let mut deleted = 0;
        // S3 answers success for deleting a missing key, so look first: is it a file?
        match self.store.head(&path).await {
            Ok(_) => {
                self.store
                    .delete(&path)
                    .await
                    .map_err(|e| self.error("deleting", relative, e))?;
                deleted += 1;
            }
            Err(object_store::Error::NotFound { .. }) => {}
            // A local folder is not a file: go on to delete its contents.
            Err(_) if self.root_url.starts_with("file://") => {}
            Err(e) => return Err(self.error("deleting", relative, e)),
        }
        let locations = self
            .store
            .list(Some(&path))
            .map_ok(|meta| meta.location)
            .boxed();
        let mut gone = self.store.delete_stream(locations);
        while let Some(result) = gone.next().await {
            match result {
                Ok(_) => deleted += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.error("deleting", relative, e)),
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn local_files_round_trip_and_paths_never_escape() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            ArtifactStore::open(&dir.path().display().to_string(), &BTreeMap::new()).unwrap();
        store.put("1/r/artifacts/a.txt", "alpha").await.unwrap();
        store.put("1/r/artifacts/sub/b.txt", "beta!").await.unwrap();
        assert_eq!(store.get("1/r/artifacts/a.txt").await.unwrap(), "alpha");
        let listed = store
            .list_dir("1/r/artifacts", "1/r/artifacts")
            .await
            .unwrap();
        assert_eq!(
            listed,
            vec![
                ArtifactEntry {
                    path: "a.txt".into(),
                    is_dir: false,
                    size: Some(5)
                },
                ArtifactEntry {
                    path: "sub".into(),
                    is_dir: true,
                    size: None
                },
            ]
        );
        let url = store.url_of("1/r/artifacts/a.txt").unwrap();
        assert!(
            url.starts_with("file:///") && url.ends_with("/1/r/artifacts/a.txt"),
            "{url}"
        );
        assert_eq!(store.relative_of(&url), Some("1/r/artifacts/a.txt"));
        assert_eq!(store.relative_of("s3://elsewhere/x"), None);
        for bad in [
            "../etc/passwd",
            "1/../../x",
            "a//b",
            "a/./b",
            "a\\b",
            "a\0b",
        ] {
            assert!(
                matches!(store.path(bad), Err(RegistryError::InvalidInput(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            store.get("1/r/artifacts/missing").await,
            Err(RegistryError::NotFound { .. })
        ));
        assert_eq!(store.delete("1/r").await.unwrap(), 2);
        assert!(store.list_dir("1", "").await.unwrap().is_empty());
        assert!(
            !dir.path().join("1/r").exists(),
            "empty folders are cleaned up"
        );
        assert_eq!(store.delete("1/r").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn large_streams_are_uploaded_in_parts_and_limits_hold() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            ArtifactStore::open(&dir.path().display().to_string(), &BTreeMap::new()).unwrap();
        let chunk = Bytes::from(vec![7u8; 1024 * 1024]);
        let chunks = (0..12).map(|_| Ok::<_, std::io::Error>(chunk.clone()));
        let written = store
            .put_stream("x/big.bin", futures::stream::iter(chunks), u64::MAX)
            .await
            .unwrap();
        assert_eq!(written, 12 * 1024 * 1024);
        let read = store.get("x/big.bin").await.unwrap();
        assert_eq!(read.len(), 12 * 1024 * 1024);
        assert!(read.iter().all(|b| *b == 7));
        let chunks = (0..3).map(|_| Ok::<_, std::io::Error>(chunk.clone()));
        let err = store
            .put_stream(
                "x/capped.bin",
                futures::stream::iter(chunks),
                2 * 1024 * 1024,
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("upload limit"), "{err}");
        assert!(matches!(
            store.get("x/capped.bin").await,
            Err(RegistryError::NotFound { .. })
        ));
    }

    #[test]
    fn bad_locations_and_options_are_named() {
        let err = ArtifactStore::open("gs://bucket/x", &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("gs://bucket/x"), "{err}");
        let options = BTreeMap::from([("endpiont".to_string(), "http://x".to_string())]);
        let err = ArtifactStore::open("s3://bucket/x", &options).unwrap_err();
        assert!(err.to_string().contains("endpiont"), "{err}");
        let err = ArtifactStore::open("s3:///x", &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("no bucket"), "{err}");
    }
}
