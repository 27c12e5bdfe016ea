//! Resolving segment specs: `for_each` fan-out and selection by name.

use std::collections::BTreeSet;

use spire_core::config::{ForEach, SegmentKind, SegmentSpec};
use spire_lake::columns;
use spire_lake::Lake;

use crate::error::{PipelineError, Result};
use crate::workspace::Workspace;

/// A concrete segment (after fan-out) and the family it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedSegment {
    /// The concrete spec.
    pub spec: SegmentSpec,
    /// The declaring spec's name (the template for a family; the segment itself otherwise).
    pub family: String,
    /// The `for_each` value, if any.
    pub value: Option<String>,
}

/// Expands every spec of the project.
pub async fn resolve(ws: &Workspace) -> Result<Vec<ResolvedSegment>> {
    let mut out = Vec::new();
    let mut ctx = None;
    for spec in &ws.project.segments {
        let values = match &spec.for_each {
            None => {
                out.push(ResolvedSegment {
                    spec: spec.clone(),
                    family: spec.name.clone(),
                    value: None,
                });
                continue;
            }
            Some(ForEach::Values(v)) => v.clone(),
            Some(ForEach::Sql(q)) => {
                if ctx.is_none() {
                    let c = ws.lake.session();
                    ws.lake.register_all(&c).await?;
                    ctx = Some(c);
                }
                let Some(c) = ctx.as_ref() else { continue };
                let batches = Lake::query(c, q).await.map_err(|e| {
                    PipelineError::InvalidInput(format!(
                        "{}: segment `{}`: for_each.sql: {e}",
                        spec.file.display(),
                        spec.name
                    ))
                })?;
                let mut values = Vec::new();
                for b in &batches {
                    let name = b.schema().field(0).name().clone();
                    values.extend(
                        columns::strings(b, &name)?
                            .iter()
                            .flatten()
                            .map(str::to_string),
                    );
                }
                values
            }
        };
        for (s, v) in spec.expand(&values).into_iter().zip(values) {
            out.push(ResolvedSegment {
                spec: s,
                family: spec.name.clone(),
                value: Some(v),
            });
        }
    }
    let mut seen = BTreeSet::new();
    for s in &out {
        if !seen.insert(s.spec.name.clone()) {
            return Err(PipelineError::InvalidInput(format!(
                "{}: segment name `{}` is produced twice (check for_each values)",
                s.spec.file.display(),
                s.spec.name
            )));
        }
    }
    Ok(out)
}

/// Picks segments by segment or family name (all when `names` is empty), adding the
/// segments that selected `combine` rules depend on.
pub fn select(all: &[ResolvedSegment], names: &[String]) -> Result<Vec<ResolvedSegment>> {
    if names.is_empty() {
        return Ok(all.to_vec());
    }
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for n in names {
        let hits: Vec<&ResolvedSegment> = all
            .iter()
            .filter(|s| &s.spec.name == n || &s.family == n)
            .collect();
        if hits.is_empty() {
            let known: Vec<&str> = all.iter().map(|s| s.spec.name.as_str()).take(20).collect();
            return Err(PipelineError::NotFound(format!(
                "no segment or family `{n}` (segments: {}…)",
                known.join(", ")
            )));
        }
        wanted.extend(hits.iter().map(|s| s.spec.name.clone()));
    }
    loop {
        let mut refs = Vec::new();
        for s in all.iter().filter(|s| wanted.contains(&s.spec.name)) {
            if let SegmentKind::RuleCombine { expr } = &s.spec.kind {
                expr.names(&mut refs);
            }
        }
        let before = wanted.len();
        wanted.extend(refs);
        if wanted.len() == before {
            break;
        }
    }
    Ok(all
        .iter()
        .filter(|s| wanted.contains(&s.spec.name))
        .cloned()
        .collect())
}
