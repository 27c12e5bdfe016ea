//! A [`Workspace`]: the validated project with its lake and registry opened.

use std::path::Path;

use spire_core::config::{load_project, LoadOptions, Project};
use spire_lake::Lake;
use spire_registry::Registry;

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
}

impl Workspace {
    /// Loads and validates the project in `dir`, then opens its lake and registry.
    pub async fn open(dir: &Path, options: &LoadOptions) -> Result<Workspace> {
        let project = load_project(dir, options)?;
        let lake = Lake::open(&project.storage.lake)?;
        let registry = Registry::open(&project.storage.registry).await?;
        Ok(Workspace {
            project,
            lake,
            registry,
        })
    }
}
