//! Integration tests for spire-mlflow: a real Spire MLflow server on a free port, driven by
//! HTTP requests, by the real `mlflow` Python client, and by the replay of a recorded
//! exchange with MLflow's own server.
//!
//! The client tests need `SPIRE_MLFLOW_PYTHON`: the python of the venv that
//! `scripts/mlflow-venv.sh` creates (CI sets it; they are never skipped).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod api;
mod client;
mod contract;
mod reliability;
mod security;

use std::net::SocketAddr;
use std::path::PathBuf;

use spire_mlflow::{router, Access, MlflowState};
use spire_registry::{ArtifactStore, Registry};

/// The admin token the test servers accept for the `champion` alias.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// A Spire MLflow server on a free loopback port, with its own SQLite registry and
/// artifact store; it stops when dropped.
pub struct TestServer {
    pub base_url: String,
    pub registry: Registry,
    /// The local artifact folder (unused when the store is S3).
    pub artifacts: PathBuf,
    pub store: ArtifactStore,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// A server without registry tokens (open to loopback callers), artifacts in a
    /// local folder, [`ADMIN_TOKEN`] as its admin token.
    pub async fn start() -> TestServer {
        TestServer::start_with(None, |_| async {}).await
    }

    /// A server on `registry_url` (default: a SQLite file in a temporary folder) whose
    /// registry is first prepared by `setup` (e.g. to create tokens), with artifacts in a
    /// local folder.
    pub async fn start_with<F, Fut>(registry_url: Option<String>, setup: F) -> TestServer
    where
        F: FnOnce(Registry) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = dir.path().join("artifacts");
        let store =
            ArtifactStore::open(&artifacts.display().to_string(), &Default::default()).unwrap();
        TestServer::start_on(dir, registry_url, store, setup).await
    }

    /// A server whose artifacts live in a fresh bucket of the S3-compatible test server.
    pub async fn start_s3() -> TestServer {
        let store = s3_store().await;
        TestServer::start_on(tempfile::tempdir().unwrap(), None, store, |_| async {}).await
    }

    async fn start_on<F, Fut>(
        dir: tempfile::TempDir,
        registry_url: Option<String>,
        store: ArtifactStore,
        setup: F,
    ) -> TestServer
    where
        F: FnOnce(Registry) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let url = registry_url
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("spire.db").display()));
        let registry = Registry::open(&url).await.unwrap();
        setup(registry.clone()).await;
        let artifacts = dir.path().join("artifacts");
        let access = Access::from_registry(registry.clone(), Some(ADMIN_TOKEN))
            .await
            .unwrap();
        let state = MlflowState::new(registry.clone(), store.clone()).with_access(access);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router(state)).await.unwrap();
        });
        TestServer {
            base_url: format!("http://{addr}"),
            registry,
            artifacts,
            store,
            _dir: dir,
            task,
        }
    }
}

/// A fresh bucket on the S3-compatible test server and an artifact store on it.
pub async fn s3_store() -> ArtifactStore {
    let bucket = spire_testkit::S3Bucket::create("spire-mlflow").await;
    ArtifactStore::open(&format!("s3://{}/mlflow", bucket.name), &bucket.options()).unwrap()
}

/// The python with `mlflow` installed, from `SPIRE_MLFLOW_PYTHON`.
pub fn mlflow_python() -> PathBuf {
    match std::env::var_os("SPIRE_MLFLOW_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "\n\nSPIRE_MLFLOW_PYTHON is not set. The MLflow compatibility tests drive the real \
             mlflow client and are never skipped: run `scripts/mlflow-venv.sh` (it prints the \
             venv's python) and export SPIRE_MLFLOW_PYTHON=<that path>, or run scripts/test, \
             which does both.\n"
        ),
    }
}

/// A file of this crate's `tests/` folder.
pub fn test_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(relative)
}
