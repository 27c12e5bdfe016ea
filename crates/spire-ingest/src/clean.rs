//! The clean stage: rebuild whole event-date partitions of `events` from `events_raw`.
//!
//! For each event date: keep the first row of each `event_id` (ordered by ingest time, then
//! source position — deterministic, so a replay gives the same table; a re-delivered event
//! has the same `ts` and so the same date), then flag bots: a user agent matching a
//! configured pattern flags the event; a user with more than the configured events in any
//! one minute of the day has all that day's events flagged. Bot events stay in `events`
//! (`is_bot`, `bot_reason`) and are excluded downstream. `received_at` falls back to
//! `ingested_at` when the source did not carry it.

use chrono::NaiveDate;
use serde::Serialize;
use spire_core::config::Cleaning;
use spire_core::time::{date_from_days, days_since_epoch};
use spire_lake::arrow::array::{Array, Int64Array};
use spire_lake::datafusion::prelude::{col, lit, Expr};
use spire_lake::datafusion::scalar::ScalarValue;
use spire_lake::tables::{EVENTS, EVENTS_RAW};
use spire_lake::Lake;

use crate::error::{IngestError, Result};

/// What a clean run did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CleanReport {
    /// Event dates rebuilt.
    pub dates: usize,
    /// Rows read from `events_raw`.
    pub raw_rows: u64,
    /// Rows written to `events` (bot-flagged included).
    pub events: u64,
    /// Of those, bot-flagged.
    pub bot_events: u64,
    /// Raw rows dropped as duplicates.
    pub duplicates: u64,
    /// `events` version after the run.
    pub version: Option<i64>,
}

/// Dates rebuilt per commit: bounds memory while keeping commits few.
const DATES_PER_COMMIT: usize = 8;

/// Rebuilds `dates` of `events` (all dates in `events_raw` when `None`).
pub async fn clean(
    lake: &Lake,
    rules: &Cleaning,
    dates: Option<Vec<NaiveDate>>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<CleanReport> {
    let ctx = lake.session();
    if lake
        .register_as(&ctx, EVENTS_RAW, "events_raw")
        .await?
        .is_none()
    {
        return Ok(CleanReport::default());
    }
    let dates = match dates {
        Some(d) => d,
        None => all_dates(&ctx).await?,
    };
    let mut report = CleanReport {
        dates: dates.len(),
        ..Default::default()
    };
    let existing = lake.files_by_partition(EVENTS, "event_date").await?;
    let ua_pattern = rules
        .bot_user_agent_patterns
        .iter()
        .map(|p| format!("regexp_like(user_agent, '{}')", p.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(" OR ");
    let ua_pattern = if ua_pattern.is_empty() {
        "false".to_string()
    } else {
        format!("COALESCE({ua_pattern}, false)")
    };
    for (i, group) in dates.chunks(DATES_PER_COMMIT).enumerate() {
        let list = group
            .iter()
            .map(|d| format!("DATE '{d}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let raw_rows = count(
            &ctx,
            &format!("SELECT COUNT(*) FROM events_raw WHERE event_date IN ({list})"),
        )
        .await?;
        let sql = format!(
            "WITH ranked AS (
               SELECT *, ROW_NUMBER() OVER (PARTITION BY event_date, event_id
                         ORDER BY ingested_at, source, source_partition, source_offset) AS rn
               FROM events_raw WHERE event_date IN ({list})),
             kept AS (SELECT * FROM ranked WHERE rn = 1),
             rates AS (
               SELECT user_id, event_date, MAX(n) AS peak FROM (
                 SELECT user_id, event_date, date_trunc('minute', ts) AS m, COUNT(*) AS n
                 FROM kept GROUP BY user_id, event_date, date_trunc('minute', ts)) per_minute
               GROUP BY user_id, event_date)
             SELECT k.event_id, k.user_id, k.ts, k.event_type, k.brand, k.category, k.content_id, k.url,
                    k.referrer, k.user_agent, k.device, k.country, k.dwell_ms,
                    COALESCE(k.received_at, k.ingested_at) AS received_at,
                    ({ua}) OR COALESCE(r.peak > {max}, false) AS is_bot,
                    CASE WHEN {ua} THEN 'user_agent' WHEN r.peak > {max} THEN 'rate' END AS bot_reason,
                    k.source, k.source_partition, k.source_offset, k.ingest_id, k.ingested_at, k.event_date
             FROM kept k LEFT JOIN rates r ON k.user_id = r.user_id AND k.event_date = r.event_date",
            ua = ua_pattern,
            max = rules.max_events_per_user_per_minute,
        );
        let batches = Lake::query(&ctx, &sql).await?;
        let events: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        let bots: u64 = batches
            .iter()
            .filter_map(|b| {
                let c = b.column_by_name("is_bot")?;
                let c = c
                    .as_any()
                    .downcast_ref::<spire_lake::arrow::array::BooleanArray>()?;
                Some(c.true_count() as u64)
            })
            .sum();
        let predicate: Expr = col("event_date").in_list(
            group
                .iter()
                .map(|d| lit(ScalarValue::Date32(Some(days_since_epoch(*d)))))
                .collect(),
            false,
        );
        // Dates `events` has never held are appended (the first load); dates it holds are
        // replaced in the same commit that writes their new rows.
        report.version = if group.iter().any(|d| existing.contains_key(&d.to_string())) {
            lake.overwrite(EVENTS, batches, &["event_date"], Some(predicate))
                .await?
        } else {
            lake.append(EVENTS, batches, &["event_date"]).await?
        };
        report.raw_rows += raw_rows;
        report.events += events;
        report.bot_events += bots;
        report.duplicates += raw_rows - events.min(raw_rows);
        progress((i + 1) * DATES_PER_COMMIT.min(group.len()), dates.len());
    }
    Ok(report)
}

async fn all_dates(
    ctx: &spire_lake::datafusion::prelude::SessionContext,
) -> Result<Vec<NaiveDate>> {
    dates_of(
        ctx,
        "SELECT DISTINCT event_date FROM events_raw ORDER BY event_date",
    )
    .await
}

/// The event dates whose `events` lags `events_raw`: dates where `events_raw` holds more
/// distinct event ids than `events` holds rows (clean keeps one row per event id and date),
/// or that `events` lacks. An intake that stopped between a commit and its clean (a crash,
/// a SIGKILL) leaves such dates; a follow loop cleans them when it starts. (Ingest times
/// cannot tell: every row of one intake session carries the session's start.)
pub async fn stale_dates(lake: &Lake) -> Result<Vec<NaiveDate>> {
    let ctx = lake.session();
    if lake
        .register_as(&ctx, EVENTS_RAW, "events_raw")
        .await?
        .is_none()
    {
        return Ok(Vec::new());
    }
    if lake.register_as(&ctx, EVENTS, "events").await?.is_none() {
        return all_dates(&ctx).await;
    }
    dates_of(
        &ctx,
        "SELECT r.d FROM \
           (SELECT event_date AS d, count(DISTINCT event_id) AS n FROM events_raw \
            GROUP BY event_date) r \
         LEFT JOIN (SELECT event_date AS d, count(*) AS n FROM events GROUP BY event_date) e \
         ON r.d = e.d WHERE e.n IS NULL OR r.n <> e.n ORDER BY r.d",
    )
    .await
}

/// The dates in the first column of a query's result.
async fn dates_of(
    ctx: &spire_lake::datafusion::prelude::SessionContext,
    sql: &str,
) -> Result<Vec<NaiveDate>> {
    let batches = Lake::query(ctx, sql).await?;
    let mut out = Vec::new();
    for b in batches {
        let c = b
            .column(0)
            .as_any()
            .downcast_ref::<spire_lake::arrow::array::Date32Array>()
            .ok_or_else(|| IngestError::InvalidInput(format!("not a date column: {sql}")))?;
        out.extend(c.iter().flatten().map(date_from_days));
    }
    Ok(out)
}

/// Runs a `SELECT COUNT(*)`-shaped query.
pub(crate) async fn count(
    ctx: &spire_lake::datafusion::prelude::SessionContext,
    sql: &str,
) -> Result<u64> {
    let batches = Lake::query(ctx, sql).await?;
    let n = batches
        .first()
        .filter(|b| b.num_rows() > 0)
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(0);
    Ok(n.max(0) as u64)
}

/// How one intake run's rows fared in `events`: the exact reconciliation
/// `read = accepted (bot-flagged included) + dead_lettered + duplicates`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Reconciliation {
    /// Records read.
    pub read: u64,
    /// Kept in `events` (bots included).
    pub accepted: u64,
    /// Of the accepted, bot-flagged.
    pub bot_flagged: u64,
    /// Dead-lettered.
    pub dead_lettered: u64,
    /// Dropped as duplicates of an event already kept.
    pub duplicates: u64,
}

/// Reconciles an intake run after cleaning.
pub async fn reconcile(
    lake: &Lake,
    ingest_id: &str,
    read: u64,
    dead_lettered: u64,
) -> Result<Reconciliation> {
    let ctx = lake.session();
    let id = ingest_id.replace('\'', "''");
    let (accepted, bot_flagged) = if lake.register_as(&ctx, EVENTS, "events").await?.is_some() {
        (
            count(
                &ctx,
                &format!("SELECT COUNT(*) FROM events WHERE ingest_id = '{id}'"),
            )
            .await?,
            count(
                &ctx,
                &format!("SELECT COUNT(*) FROM events WHERE ingest_id = '{id}' AND is_bot"),
            )
            .await?,
        )
    } else {
        (0, 0)
    };
    let raw = read.saturating_sub(dead_lettered);
    Ok(Reconciliation {
        read,
        accepted,
        bot_flagged,
        dead_lettered,
        duplicates: raw.saturating_sub(accepted),
    })
}
