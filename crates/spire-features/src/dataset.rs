//! Feature matrices read back from `features_<set>` for training and scoring.

use std::collections::HashSet;

use chrono::NaiveDate;
use spire_lake::columns;
use spire_lake::datafusion::prelude::SessionContext;
use spire_lake::tables;
use spire_lake::Lake;

use crate::error::{FeatureError, Result};

/// A feature snapshot as a dense row-major matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    /// Feature set.
    pub feature_set: String,
    /// Snapshot date.
    pub as_of: NaiveDate,
    /// Feature-set version of the snapshot.
    pub feature_set_version: u32,
    /// `features_<set>` version read.
    pub table_version: i64,
    /// Row keys, sorted.
    pub user_ids: Vec<String>,
    /// Column names.
    pub columns: Vec<String>,
    /// `user_ids.len() × columns.len()` values, row-major.
    pub values: Vec<f64>,
}

impl FeatureMatrix {
    /// The column index of each of `names`, in that order; `Err` lists the names the
    /// snapshot lacks, in that order.
    pub fn column_indices(&self, names: &[String]) -> std::result::Result<Vec<usize>, Vec<String>> {
        let index: std::collections::HashMap<&str, usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let missing: Vec<String> = names
            .iter()
            .filter(|n| !index.contains_key(n.as_str()))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(missing);
        }
        Ok(names
            .iter()
            .filter_map(|n| index.get(n.as_str()).copied())
            .collect())
    }
}

/// A session with `features` registered for `feature_set`; returns the version read.
pub async fn features_session(lake: &Lake, feature_set: &str) -> Result<(SessionContext, i64)> {
    let ctx = lake.session();
    let v = lake
        .register_as(&ctx, &tables::features(feature_set), "features")
        .await?
        .ok_or_else(|| {
            FeatureError::NotFound(format!(
                "no snapshot of feature set `{feature_set}` yet: run `spire features build`"
            ))
        })?;
    Ok((ctx, v))
}

/// The latest snapshot date of a feature set.
pub async fn latest_as_of(ctx: &SessionContext) -> Result<Option<NaiveDate>> {
    let b = Lake::query(ctx, "SELECT CAST(MAX(as_of) AS INT) AS d FROM features").await?;
    let v = b
        .first()
        .filter(|b| b.num_rows() > 0)
        .map(|b| columns::ints(b, "d"))
        .transpose()?;
    Ok(v.and_then(|a| {
        use spire_lake::arrow::array::Array;
        (!a.is_null(0)).then(|| spire_core::time::date_from_days(a.value(0) as i32))
    }))
}

/// Loads the snapshot as of `as_of` (from a session made by [`features_session`]).
pub async fn load(
    ctx: &SessionContext,
    feature_set: &str,
    table_version: i64,
    as_of: NaiveDate,
) -> Result<FeatureMatrix> {
    let batches = Lake::query(
        ctx,
        &format!("SELECT * FROM features WHERE as_of = DATE '{as_of}' ORDER BY user_id"),
    )
    .await?;
    let Some(first) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Err(FeatureError::NotFound(format!(
            "feature set `{feature_set}` has no snapshot as of {as_of}: run `spire features build --as-of {as_of}`"
        )));
    };
    let columns: Vec<String> = first
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| !["user_id", "as_of", "feature_set_version"].contains(&n.as_str()))
        .collect();
    let mut user_ids = Vec::new();
    let mut values = Vec::new();
    let mut version = 0;
    for b in batches.iter().filter(|b| b.num_rows() > 0) {
        let ids = columns::strings(b, "user_id")?;
        version = columns::ints(b, "feature_set_version")?.value(0) as u32;
        let cols = columns
            .iter()
            .map(|c| columns::floats(b, c))
            .collect::<Result<Vec<_>, _>>()?;
        for r in 0..b.num_rows() {
            user_ids.push(ids.value(r).to_string());
            values.extend(cols.iter().map(|c| c.value(r)));
        }
    }
    Ok(FeatureMatrix {
        feature_set: feature_set.into(),
        as_of,
        feature_set_version: version,
        table_version,
        user_ids,
        columns,
        values,
    })
}

/// The users of the snapshot matching an eligibility predicate.
pub async fn eligible(
    ctx: &SessionContext,
    as_of: NaiveDate,
    predicate: &str,
    segment: &str,
) -> Result<HashSet<String>> {
    let sql =
        format!("SELECT user_id FROM features WHERE as_of = DATE '{as_of}' AND ({predicate})");
    let batches = Lake::query(ctx, &sql).await.map_err(|e| {
        FeatureError::InvalidInput(format!(
            "segment `{segment}`: eligibility `{predicate}`: {e}"
        ))
    })?;
    let mut out = HashSet::new();
    for b in &batches {
        let ids = columns::strings(b, "user_id")?;
        out.extend(ids.iter().flatten().map(str::to_string));
    }
    Ok(out)
}
