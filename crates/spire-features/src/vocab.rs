//! Feature-set versions and their frozen discovered values.
//!
//! The first build of a feature-set definition discovers its category and brand values (the
//! most frequent in human events, up to `max_discovered_values`) unless the config lists
//! them, and freezes them as a new version. Later builds of the same definition reuse them,
//! so training and scoring see the same columns; a changed definition gets a new version.
//! Versions live in `<lake>/_spire/feature_sets/<name>.json`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use spire_core::config::FeatureSet;
use spire_lake::datafusion::prelude::SessionContext;
use spire_lake::Lake;

use crate::error::{FeatureError, Result};

/// One frozen version of a feature set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeatureSetVersion {
    /// 1, 2, 3, ...
    pub version: u32,
    /// Hash of the definition it was frozen for.
    pub definition_hash: String,
    /// Category values that became columns.
    pub categories: Vec<String>,
    /// Brand values that became columns.
    pub brands: Vec<String>,
    /// When it was frozen.
    pub created_at: String,
}

fn state_path(lake: &Lake, name: &str) -> Result<PathBuf> {
    let root = lake.local_path("_spire").ok_or_else(|| {
        FeatureError::InvalidInput("feature-set versions need a local lake folder for now".into())
    })?;
    Ok(root.join("feature_sets").join(format!("{name}.json")))
}

/// All frozen versions of a feature set, oldest first.
pub fn versions(lake: &Lake, name: &str) -> Result<Vec<FeatureSetVersion>> {
    let path = state_path(lake, name)?;
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| FeatureError::State {
            path: path.display().to_string(),
            message: format!("corrupt feature-set versions ({e}); delete the file to rediscover"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(FeatureError::State {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
    }
}

/// The version for the current definition of `fs`, freezing a new one if needed.
/// `events_table` is the name `events` is registered under in `ctx`.
pub async fn current(
    lake: &Lake,
    ctx: &SessionContext,
    fs: &FeatureSet,
    events_table: &str,
) -> Result<FeatureSetVersion> {
    let mut all = versions(lake, &fs.name)?;
    if let Some(v) = all
        .iter()
        .rev()
        .find(|v| v.definition_hash == fs.definition_hash)
    {
        return Ok(v.clone());
    }
    let categories = match &fs.categories {
        Some(list) => list.clone(),
        None => discover(ctx, events_table, "category", fs.max_discovered_values).await?,
    };
    let brands = match &fs.brands {
        Some(list) => list.clone(),
        None => discover(ctx, events_table, "brand", fs.max_discovered_values).await?,
    };
    let v = FeatureSetVersion {
        version: all.last().map_or(1, |v| v.version + 1),
        definition_hash: fs.definition_hash.clone(),
        categories,
        brands,
        created_at: chrono::Utc::now().to_rfc3339(),
    };
    all.push(v.clone());
    let path = state_path(lake, &fs.name)?;
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&all).unwrap_or_default())?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| FeatureError::State {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(v)
}

async fn discover(
    ctx: &SessionContext,
    events: &str,
    column: &str,
    limit: usize,
) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT {column} FROM {events} WHERE NOT is_bot AND {column} IS NOT NULL
         GROUP BY {column} ORDER BY COUNT(*) DESC, {column} LIMIT {limit}"
    );
    let batches = Lake::query(ctx, &sql).await?;
    let mut out = Vec::new();
    for b in batches {
        let a = spire_lake::columns::strings(&b, column)?;
        out.extend(a.iter().flatten().map(str::to_string));
    }
    out.sort();
    Ok(out)
}
