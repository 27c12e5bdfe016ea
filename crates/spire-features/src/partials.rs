//! Per-user daily partial aggregates, the building blocks of windowed features.
//!
//! `partials_<set>` holds, per (user, event date, arrival lateness in whole hours after the
//! event date ended), long-format counts: `dim = 'all'` rows carry event, dwell and session
//! totals and the last event time; `dim = 'category'` / `'brand'` rows carry counts per
//! value. `partials_<set>_content` holds the distinct content ids per (user, date, lateness).
//! Bot events are excluded. A date is rebuilt only when the set of `events` files of that
//! date changed (or the feature-set definition did): the fingerprint of each date is kept in
//! `partials_<set>_state`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use spire_core::config::{hex_sha256, FeatureSet};
use spire_core::time::{date_from_days, days_since_epoch, parse_date};
use spire_lake::arrow::array::{Date32Array, RecordBatch, StringArray};
use spire_lake::arrow::datatypes::{DataType, Field, Schema};
use spire_lake::columns;
use spire_lake::datafusion::prelude::{col, lit, Expr, SessionContext};
use spire_lake::datafusion::scalar::ScalarValue;
use spire_lake::tables::{self, EVENTS};
use spire_lake::Lake;

use crate::error::{FeatureError, Result};

/// What a refresh did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PartialsReport {
    /// Event dates in `events`.
    pub dates_total: usize,
    /// Dates whose partials were (re)built.
    pub dates_rebuilt: usize,
    /// `events` version read.
    pub events_version: Option<i64>,
}

/// Dates rebuilt per commit.
const DATES_PER_COMMIT: usize = 7;

fn state_table(fs: &str) -> String {
    format!("partials_{fs}_state")
}

/// Fingerprints of the `events` files of each event date (days since epoch → hash).
async fn event_fingerprints(lake: &Lake, definition_hash: &str) -> Result<BTreeMap<i32, String>> {
    let mut by_date: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for (value, files) in lake.files_by_partition(EVENTS, "event_date").await? {
        if let Ok(d) = parse_date(&value) {
            by_date.insert(days_since_epoch(d), files);
        }
    }
    Ok(by_date
        .into_iter()
        .map(|(d, mut files)| {
            files.sort();
            (
                d,
                hex_sha256(format!("{definition_hash}\n{}", files.join("\n")).as_bytes()),
            )
        })
        .collect())
}

async fn stored_fingerprints(
    lake: &Lake,
    ctx: &SessionContext,
    fs: &str,
) -> Result<BTreeMap<i32, String>> {
    let mut out = BTreeMap::new();
    if lake
        .register_as(ctx, &state_table(fs), "partials_state")
        .await?
        .is_none()
    {
        return Ok(out);
    }
    for b in Lake::query(
        ctx,
        "SELECT CAST(event_date AS INT) AS d, fingerprint FROM partials_state",
    )
    .await?
    {
        let d = columns::ints(&b, "d")?;
        let f = columns::strings(&b, "fingerprint")?;
        for i in 0..b.num_rows() {
            out.insert(d.value(i) as i32, f.value(i).to_string());
        }
    }
    Ok(out)
}

/// Brings `partials_<set>` up to date with `events`.
pub async fn refresh(
    lake: &Lake,
    fs: &FeatureSet,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PartialsReport> {
    let ctx = lake.session();
    let events_version = lake.register_as(&ctx, EVENTS, "events").await?;
    if events_version.is_none() {
        return Err(FeatureError::NotFound(
            "no `events` table yet: run `spire ingest` first".into(),
        ));
    }
    let current = event_fingerprints(lake, &fs.definition_hash).await?;
    let stored = stored_fingerprints(lake, &ctx, &fs.name).await?;
    let mut stale: Vec<i32> = current
        .iter()
        .filter(|(d, f)| stored.get(d) != Some(f))
        .map(|(d, _)| *d)
        .collect();
    stale.extend(stored.keys().filter(|d| !current.contains_key(d)));
    stale.sort_unstable();
    let report = PartialsReport {
        dates_total: current.len(),
        dates_rebuilt: stale.len(),
        events_version,
    };
    for (i, group) in stale.chunks(DATES_PER_COMMIT).enumerate() {
        rebuild(lake, &ctx, fs, group, &current).await?;
        progress(((i + 1) * DATES_PER_COMMIT).min(stale.len()), stale.len());
    }
    Ok(report)
}

fn date_predicate(column: &str, days: &[i32]) -> Expr {
    col(column).in_list(
        days.iter()
            .map(|d| lit(ScalarValue::Date32(Some(*d))))
            .collect(),
        false,
    )
}

async fn rebuild(
    lake: &Lake,
    ctx: &SessionContext,
    fs: &FeatureSet,
    days: &[i32],
    current: &BTreeMap<i32, String>,
) -> Result<()> {
    let list = days
        .iter()
        .map(|d| format!("DATE '{}'", date_from_days(*d)))
        .collect::<Vec<_>>()
        .join(", ");
    let gap = i64::from(fs.session_gap_secs) * 1_000_000;
    let base = format!(
        "WITH e AS (
           SELECT user_id, event_date, CAST(event_date AS INT) AS day_num, CAST(ts AS BIGINT) AS ts_us,
                  category, brand, content_id, dwell_ms,
                  CAST(GREATEST(0.0, CEIL((CAST(received_at AS BIGINT) - (CAST(event_date AS BIGINT) + 1) * 86400000000) / 3600000000.0)) AS INT) AS late_hours,
                  CASE WHEN CAST(ts AS BIGINT) - LAG(CAST(ts AS BIGINT)) OVER (PARTITION BY user_id, event_date ORDER BY ts, event_id) <= {gap}
                       THEN 0 ELSE 1 END AS session_start
           FROM events WHERE NOT is_bot AND event_date IN ({list}))"
    );
    let counts = format!(
        "{base}
         SELECT user_id, event_date, day_num, late_hours, 'all' AS dim, '' AS value, COUNT(*) AS n,
                SUM(dwell_ms) AS dwell_sum, COUNT(dwell_ms) AS dwell_n, SUM(session_start) AS sessions, MAX(ts_us) AS last_ts
         FROM e GROUP BY user_id, event_date, day_num, late_hours
         UNION ALL
         SELECT user_id, event_date, day_num, late_hours, 'category', category, COUNT(*),
                CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT)
         FROM e WHERE category IS NOT NULL GROUP BY user_id, event_date, day_num, late_hours, category
         UNION ALL
         SELECT user_id, event_date, day_num, late_hours, 'brand', brand, COUNT(*),
                CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT)
         FROM e WHERE brand IS NOT NULL GROUP BY user_id, event_date, day_num, late_hours, brand"
    );
    let content = format!(
        "{base}
         SELECT DISTINCT user_id, event_date, day_num, late_hours, content_id FROM e WHERE content_id IS NOT NULL"
    );
    let batches = Lake::query_for_write(ctx, &counts).await?;
    lake.overwrite(
        &tables::partials(&fs.name),
        batches,
        &["event_date"],
        Some(date_predicate("event_date", days)),
    )
    .await?;
    let batches = Lake::query_for_write(ctx, &content).await?;
    lake.overwrite(
        &tables::content_partials(&fs.name),
        batches,
        &["event_date"],
        Some(date_predicate("event_date", days)),
    )
    .await?;
    // Record the fingerprints last: a crash before this line only causes a rebuild.
    let kept: Vec<i32> = days
        .iter()
        .copied()
        .filter(|d| current.contains_key(d))
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("event_date", DataType::Date32, false),
        Field::new("fingerprint", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Date32Array::from(kept.clone())),
            Arc::new(StringArray::from(
                kept.iter()
                    .map(|d| current.get(d).cloned().unwrap_or_default())
                    .collect::<Vec<_>>(),
            )),
        ],
    )
    .map_err(|source| spire_lake::LakeError::Arrow {
        context: "partials state".into(),
        source,
    })?;
    lake.overwrite(
        &state_table(&fs.name),
        vec![batch],
        &[],
        Some(date_predicate("event_date", days)),
    )
    .await?;
    Ok(())
}
