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

use std::net::SocketAddr;
use std::path::PathBuf;

use spire_mlflow::{router, ArtifactRoot, MlflowState};
use spire_registry::Registry;

/// The admin token the test servers accept for the `champion` alias.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// A Spire MLflow server on a free loopback port, with its own SQLite registry and
/// artifact folder; it stops when dropped.
pub struct TestServer {
    pub base_url: String,
    pub registry: Registry,
    pub artifacts: PathBuf,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("spire.db").display());
        let registry = Registry::open(&url).await.unwrap();
        let artifacts = dir.path().join("artifacts");
        let state = MlflowState::new(registry.clone(), ArtifactRoot::new(&artifacts))
            .with_admin_token(Some(ADMIN_TOKEN));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router(state)).await.unwrap();
        });
        TestServer {
            base_url: format!("http://{addr}"),
            registry,
            artifacts,
            _dir: dir,
            task,
        }
    }
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
