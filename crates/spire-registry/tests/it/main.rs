//! Integration tests for spire-registry against real SQLite files.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod concurrency;
mod models;
mod runs;

use std::collections::BTreeMap;

use spire_registry::{NewRun, Registry, TableInput};
use tempfile::TempDir;

/// A registry on a fresh database file in a temporary folder (kept alive by the `TempDir`).
pub async fn temp_registry() -> (TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(&db_url(&dir)).await.unwrap();
    (dir, registry)
}

/// The URL of the database file inside `dir` (in a subfolder, to check it is created).
pub fn db_url(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.path().join("data/spire.db").display())
}

/// A run of `segment` with one param, one tag and two inputs.
pub fn new_run(segment: &str) -> NewRun {
    NewRun {
        segment: segment.to_string(),
        experiment: "daily".to_string(),
        params: BTreeMap::from([("model".to_string(), "logistic".to_string())]),
        tags: BTreeMap::from([("trigger".to_string(), "schedule".to_string())]),
        inputs: vec![
            TableInput {
                table: "features".to_string(),
                version: 12,
            },
            TableInput {
                table: "events".to_string(),
                version: 3,
            },
        ],
        config_hash: "cafebabe".to_string(),
        spire_version: "0.1.0".to_string(),
    }
}
