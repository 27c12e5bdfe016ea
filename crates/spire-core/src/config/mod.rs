//! Project configuration: `spire.toml` plus `segments/*.toml`.
//!
//! Loading is parse → validate → build: [`load_project`] reads every file, merges the
//! selected `[env.NAME]` section and `SPIRE__SECTION__KEY` overrides, deserializes, then
//! validates everything at once, returning either a [`Project`] or every [`ConfigIssue`]
//! found, each with its file and key.

mod raw;
mod scheduling;
mod segments;
mod valid;

use std::fmt;
use std::path::{Path, PathBuf};

pub use raw::*;
pub use scheduling::{Catchup, ScheduleSpec, SchedulerConfig};
pub use segments::*;
pub use valid::*;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigIssue {
    /// The file (as given, relative to the project when possible).
    pub file: PathBuf,
    /// The key path, e.g. `feature_sets[0].windows_days`, or a line/column for syntax errors.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
    }
}

/// Every problem found while loading a project.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigErrors(pub Vec<ConfigIssue>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} problem(s) in the project configuration:",
            self.0.len()
        )?;
        for issue in &self.0 {
            writeln!(f, "  - {issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    /// Always [`crate::ErrorKind::InvalidInput`].
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::InvalidInput
    }
}

/// Collects issues during validation.
#[derive(Debug, Default)]
pub(crate) struct Issues {
    pub(crate) list: Vec<ConfigIssue>,
}

impl Issues {
    pub(crate) fn push(&mut self, file: &Path, key: impl Into<String>, message: impl Into<String>) {
        self.list.push(ConfigIssue {
            file: file.to_path_buf(),
            key: key.into(),
            message: message.into(),
        });
    }
}

/// Options for [`load_project`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Apply `[env.NAME]` from `spire.toml`.
    pub env: Option<String>,
    /// `SPIRE__SECTION__KEY=value` overrides (normally taken from the process environment).
    pub overrides: Vec<(String, String)>,
}

impl LoadOptions {
    /// Options with overrides read from the process environment.
    pub fn from_env(env: Option<String>) -> LoadOptions {
        let overrides = std::env::vars()
            .filter(|(k, _)| k.starts_with("SPIRE__"))
            .collect();
        LoadOptions { env, overrides }
    }
}

/// Reads, merges and validates the project in `dir`.
pub fn load_project(dir: &Path, options: &LoadOptions) -> Result<Project, ConfigErrors> {
    let mut issues = Issues::default();
    let config_path = dir.join("spire.toml");
    let raw = read_project_file(&config_path, options, &mut issues);
    let mut segment_files = Vec::new();
    let seg_dir = dir.join("segments");
    if seg_dir.is_dir() {
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(&seg_dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect(),
            Err(e) => {
                issues.push(&seg_dir, "-", format!("cannot list the folder: {e}"));
                Vec::new()
            }
        };
        paths.sort();
        for path in paths {
            if let Some(file) = read_toml::<RawSegmentFile>(&path, &mut issues, |_| Ok(())) {
                segment_files.push((path, file));
            }
        }
    }
    let project =
        raw.map(|raw| valid::validate(dir, &config_path, raw, segment_files, &mut issues));
    match project {
        Some(p) if issues.list.is_empty() => Ok(p),
        _ => Err(ConfigErrors(issues.list)),
    }
}

fn read_project_file(
    path: &Path,
    options: &LoadOptions,
    issues: &mut Issues,
) -> Option<RawProject> {
    read_toml::<RawProject>(path, issues, |value| {
        if let Some(env) = &options.env {
            let section = value
                .get("env")
                .and_then(|e| e.get(env.as_str()))
                .cloned()
                .ok_or_else(|| {
                    (
                        format!("env.{env}"),
                        format!("no `[env.{env}]` section: add one or drop `--env {env}`"),
                    )
                })?;
            merge(value, &section);
        }
        for (key, text) in &options.overrides {
            apply_override(value, key, text)?;
        }
        Ok(())
    })
}

type Patch<'a> = dyn Fn(&mut toml::Value) -> Result<(), (String, String)> + 'a;

fn read_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    issues: &mut Issues,
    patch: impl Fn(&mut toml::Value) -> Result<(), (String, String)>,
) -> Option<T> {
    let patch: &Patch<'_> = &patch;
    let text = match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                issues.push(path, "-", format!("not UTF-8 text: {e}"));
                return None;
            }
        },
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                " (run `spire init DIR` to create a project, or pass --project DIR)"
            } else {
                ""
            };
            issues.push(path, "-", format!("cannot read: {e}{hint}"));
            return None;
        }
    };
    let mut value: toml::Value = match text.parse::<toml::Table>() {
        Ok(t) => toml::Value::Table(t),
        Err(e) => {
            issues.push(path, location(&text, e.span()), e.message().to_string());
            return None;
        }
    };
    if let Err((key, message)) = patch(&mut value) {
        issues.push(path, key, message);
        return None;
    }
    match T::deserialize(value) {
        Ok(v) => Some(v),
        Err(e) => {
            // Re-deserialize from text to get a span for the message.
            let key = match toml::from_str::<T>(&text) {
                Err(e2) => location(&text, e2.span()),
                Ok(_) => "-".to_string(),
            };
            issues.push(path, key, e.message().to_string());
            None
        }
    }
}

fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {col}")
        }
        None => "-".to_string(),
    }
}

fn merge(base: &mut toml::Value, over: &toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn apply_override(value: &mut toml::Value, key: &str, text: &str) -> Result<(), (String, String)> {
    let path: Vec<String> = key
        .trim_start_matches("SPIRE__")
        .split("__")
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let parsed = format!("v = {text}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()));
    let mut cursor = value;
    for (i, part) in path.iter().enumerate() {
        let toml::Value::Table(table) = cursor else {
            return Err((key.to_string(), format!("`{part}` is not inside a table")));
        };
        if i + 1 == path.len() {
            table.insert(part.clone(), parsed);
            return Ok(());
        }
        cursor = table
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    Err((key.to_string(), "empty override key".to_string()))
}

#[cfg(test)]
mod tests;
