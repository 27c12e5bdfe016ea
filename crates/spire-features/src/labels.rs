//! Labels: who did the thing after `as_of` (future events), or who is on a seed list.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use chrono::NaiveDate;
use spire_core::time::{date_from_days, start_of_micros};
use spire_lake::columns;
use spire_lake::datafusion::prelude::SessionContext;
use spire_lake::Lake;

use crate::error::{FeatureError, Result};

/// A `future_events` label to compute.
#[derive(Debug, Clone, PartialEq)]
pub struct FutureEventsLabel {
    /// Segment name (for messages and the result map).
    pub segment: String,
    /// SQL predicate over events.
    pub predicate: String,
    /// Minimum matching events.
    pub min_count: u32,
    /// Horizon in days after `as_of`.
    pub horizon_days: u32,
}

/// The day after the last event date of human events: data is complete before it.
/// `ctx` must have `events` registered.
pub async fn data_end(ctx: &SessionContext) -> Result<NaiveDate> {
    let b = Lake::query(
        ctx,
        "SELECT CAST(MAX(event_date) AS INT) AS d FROM events WHERE NOT is_bot",
    )
    .await?;
    let d = b
        .first()
        .filter(|b| b.num_rows() > 0)
        .map(|b| columns::ints(b, "d"))
        .transpose()?
        .and_then(|a| (!a.is_null(0)).then(|| a.value(0)));
    match d {
        Some(d) => Ok(date_from_days(d as i32) + chrono::Duration::days(1)),
        None => Err(FeatureError::NotFound(
            "`events` holds no human events yet: run `spire ingest`".into(),
        )),
    }
}

use spire_lake::arrow::array::Array;

/// Positives of each label as of `as_of`, computed in one pass per horizon. Refuses an
/// `as_of` whose horizon is not complete in the data. `ctx` must have `events` registered.
pub async fn future_events(
    ctx: &SessionContext,
    as_of: NaiveDate,
    labels: &[FutureEventsLabel],
) -> Result<BTreeMap<String, HashSet<String>>> {
    let end = data_end(ctx).await?;
    let mut by_horizon: BTreeMap<u32, Vec<&FutureEventsLabel>> = BTreeMap::new();
    for l in labels {
        let needed = as_of + chrono::Duration::days(i64::from(l.horizon_days));
        if needed > end {
            return Err(FeatureError::InvalidInput(format!(
                "segment `{}`: the label horizon of {} days after {as_of} ends {needed}, but events are complete only before {end}; \
                 train as of {} or earlier",
                l.segment,
                l.horizon_days,
                end - chrono::Duration::days(i64::from(l.horizon_days))
            )));
        }
        by_horizon.entry(l.horizon_days).or_default().push(l);
    }
    let mut out = BTreeMap::new();
    let from = start_of_micros(as_of);
    for (h, group) in by_horizon {
        let to = from + i64::from(h) * 86_400_000_000;
        let sums: Vec<String> = group
            .iter()
            .enumerate()
            .map(|(i, l)| format!("SUM(CASE WHEN ({}) THEN 1 ELSE 0 END) AS l{i}", l.predicate))
            .collect();
        let sql = format!(
            "SELECT user_id, {} FROM events WHERE NOT is_bot AND event_date >= DATE '{as_of}' AND event_date <= DATE '{}'
             AND CAST(ts AS BIGINT) >= {from} AND CAST(ts AS BIGINT) < {to} GROUP BY user_id",
            sums.join(", "),
            as_of + chrono::Duration::days(i64::from(h))
        );
        let batches = Lake::query(ctx, &sql).await.map_err(|e| {
            let names: Vec<&str> = group.iter().map(|l| l.segment.as_str()).collect();
            FeatureError::InvalidInput(format!("label of segment(s) {}: {e}", names.join(", ")))
        })?;
        let mut sets: Vec<HashSet<String>> = vec![HashSet::new(); group.len()];
        for b in &batches {
            let users = columns::strings(b, "user_id")?;
            for (i, l) in group.iter().enumerate() {
                let counts = columns::ints(b, &format!("l{i}"))?;
                for r in 0..b.num_rows() {
                    if !counts.is_null(r) && counts.value(r) >= i64::from(l.min_count) {
                        sets[i].insert(users.value(r).to_string());
                    }
                }
            }
        }
        for (l, s) in group.iter().zip(sets) {
            out.insert(l.segment.clone(), s);
        }
    }
    Ok(out)
}

/// Reads a seed list: user ids in the first column of a CSV (a header row `user_id` is
/// skipped; blank lines are ignored).
pub fn seed_list(path: &Path) -> Result<HashSet<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| FeatureError::InvalidInput(format!("seed list {}: {e}", path.display())))?;
    let mut out = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let id = line
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        if id.is_empty() || (i == 0 && id.eq_ignore_ascii_case("user_id")) {
            continue;
        }
        out.insert(id.to_string());
    }
    if out.is_empty() {
        return Err(FeatureError::InvalidInput(format!(
            "seed list {} holds no user ids",
            path.display()
        )));
    }
    Ok(out)
}
