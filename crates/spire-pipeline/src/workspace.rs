//! A [`Workspace`]: the validated project with its lake, registry and artifact store opened.

use std::path::Path;

use spire_core::config::{load_project, LoadOptions, Project};
use spire_lake::Lake;
use spire_registry::{ArtifactStore, Registry};

use crate::error::Result;

/// An opened project.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The validated configuration.
    pub project: Project,
    /// The lake.
    pub lake: Lake,
    /// The registry.
    pub registry: Registry,
    /// Where model files live (`storage.artifacts`).
    pub artifacts: ArtifactStore,
}

impl Workspace {
    /// Loads and validates the project in `dir`, then opens its lake, registry and
    /// artifact store.
    pub async fn open(dir: &Path, options: &LoadOptions) -> Result<Workspace> {
        let project = load_project(dir, options)?;
        let lake = Lake::open(&project.storage.lake)?;
        let registry = Registry::open(&project.storage.registry).await?;
        let artifacts = ArtifactStore::open(
            &project.storage.artifacts,
            &project.storage.artifact_options,
        )?;
        Ok(Workspace {
            project,
            lake,
            registry,
            artifacts,
        })
    }
}
