//! Feature snapshots: windowed per-user features as of a date, written to `features_<set>`.
//!
//! Point-in-time rule: a snapshot as of `T` (midnight UTC) counts an event only if
//! `ts < T` and it arrived (`received_at`) by `T + lateness_hours`. Partials carry each
//! event's arrival lateness in whole hours after its event date ended, so the rule is
//! applied exactly: an event of day `d` counts iff `late_hours <= 24·(T − d − 1) + lateness`.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::Serialize;
use spire_core::config::FeatureSet;
use spire_core::time::{days_since_epoch, start_of_micros};
use spire_lake::datafusion::prelude::{col, lit, SessionContext};
use spire_lake::datafusion::scalar::ScalarValue;
use spire_lake::tables::{self, EVENTS};
use spire_lake::{Lake, TableVersions};

use crate::error::{FeatureError, Result};
use crate::vocab::{self, FeatureSetVersion};
use crate::{column_slug, sql_str};

/// What a snapshot build produced.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SnapshotReport {
    /// Feature set.
    pub feature_set: String,
    /// Snapshot date.
    pub as_of: NaiveDate,
    /// Feature-set version (frozen columns).
    pub feature_set_version: u32,
    /// Users in the snapshot (any human event in the longest window).
    pub users: u64,
    /// Feature columns.
    pub columns: Vec<String>,
    /// `features_<set>` version written.
    pub table_version: Option<i64>,
    /// Tables read, with versions.
    pub inputs: TableVersions,
}

/// The feature columns of a feature-set version, in table order.
pub fn feature_columns(fs: &FeatureSet, v: &FeatureSetVersion) -> Vec<String> {
    let mut out = Vec::new();
    for w in &fs.windows_days {
        for (agg, name) in [
            ("events", "events"),
            ("active_days", "active_days"),
            ("sessions", "sessions"),
            ("distinct_content", "distinct_content"),
            ("mean_dwell", "mean_dwell_s"),
        ] {
            if fs.has(agg) {
                out.push(format!("{name}_{w}d"));
            }
        }
        if fs.has("category_counts") {
            out.extend(
                v.categories
                    .iter()
                    .map(|c| format!("category_{}_{w}d", column_slug(c))),
            );
        }
        if fs.has("brand_counts") {
            out.extend(
                v.brands
                    .iter()
                    .map(|b| format!("brand_{}_{w}d", column_slug(b))),
            );
        }
    }
    if fs.has("days_since_last") {
        out.push("days_since_last".to_string());
    }
    out
}

/// Builds (or rebuilds) the snapshot of `fs` as of `as_of`. Partials must be fresh
/// ([`crate::partials::refresh`]).
pub async fn build(lake: &Lake, fs: &FeatureSet, as_of: NaiveDate) -> Result<SnapshotReport> {
    let ctx = lake.session();
    let mut inputs = TableVersions::new();
    let need = |name: &str, v: Option<i64>| {
        v.ok_or_else(|| {
            FeatureError::NotFound(format!(
                "no `{name}` table yet: run `spire ingest` and `spire features build`"
            ))
        })
    };
    inputs.insert(
        EVENTS.into(),
        need(EVENTS, lake.register_as(&ctx, EVENTS, "events_all").await?)?,
    );
    let p = tables::partials(&fs.name);
    inputs.insert(
        p.clone(),
        need(&p, lake.register_as(&ctx, &p, "partials").await?)?,
    );
    let c = tables::content_partials(&fs.name);
    inputs.insert(
        c.clone(),
        need(&c, lake.register_as(&ctx, &c, "content_partials").await?)?,
    );
    let version = vocab::current(lake, &ctx, fs, "events_all").await?;

    let t = days_since_epoch(as_of);
    let maxw = fs.max_window_days() as i32;
    let late = fs.lateness_hours;
    let window = format!(
        "day_num >= {} AND day_num < {t} AND late_hours <= 24 * ({t} - day_num - 1) + {late}",
        t - maxw
    );
    let mut selects = Vec::new();
    let mut content_selects = Vec::new();
    let mut day_selects = Vec::new();
    for w in &fs.windows_days {
        let from = t - *w as i32;
        let in_w = format!("dim = 'all' AND day_num >= {from}");
        if fs.has("events") {
            selects.push(format!(
                "CAST(COALESCE(SUM(CASE WHEN {in_w} THEN n END), 0) AS DOUBLE) AS events_{w}d"
            ));
        }
        if fs.has("active_days") {
            day_selects.push(format!("CAST(SUM(CASE WHEN day_num >= {from} THEN 1 ELSE 0 END) AS DOUBLE) AS active_days_{w}d"));
        }
        if fs.has("sessions") {
            selects.push(format!("CAST(COALESCE(SUM(CASE WHEN {in_w} THEN sessions END), 0) AS DOUBLE) AS sessions_{w}d"));
        }
        if fs.has("distinct_content") {
            // A content id is in window w iff the last day it was read is: counting those
            // avoids per-user hash sets (COUNT DISTINCT), which cost gigabytes at 100k users.
            content_selects.push(format!(
                "CAST(SUM(CASE WHEN last_day >= {from} THEN 1 ELSE 0 END) AS DOUBLE) AS distinct_content_{w}d"
            ));
        }
        if fs.has("mean_dwell") {
            selects.push(format!(
                "COALESCE(CAST(SUM(CASE WHEN {in_w} THEN dwell_sum END) AS DOUBLE) / NULLIF(CAST(SUM(CASE WHEN {in_w} THEN dwell_n END) AS DOUBLE), 0) / 1000.0, 0.0) AS mean_dwell_s_{w}d"
            ));
        }
        for (dim, values, on) in [
            ("category", &version.categories, "category_counts"),
            ("brand", &version.brands, "brand_counts"),
        ] {
            if fs.has(on) {
                for v in values {
                    selects.push(format!(
                        "CAST(COALESCE(SUM(CASE WHEN dim = '{dim}' AND value = {} AND day_num >= {from} THEN n END), 0) AS DOUBLE) AS {dim}_{}_{w}d",
                        sql_str(v),
                        column_slug(v)
                    ));
                }
            }
        }
    }
    if fs.has("days_since_last") {
        selects.push(format!(
            "COALESCE(({} - CAST(MAX(CASE WHEN dim = 'all' THEN last_ts END) AS DOUBLE)) / 86400000000.0, {maxw}.0) AS days_since_last",
            start_of_micros(as_of)
        ));
    }
    let main = format!(
        "SELECT user_id, {} FROM partials WHERE {window} GROUP BY user_id",
        selects.join(",\n ")
    );
    register_view(&ctx, "f_main", &main).await?;
    let mut joins = String::new();
    let mut extra_cols: Vec<String> = Vec::new();
    if !content_selects.is_empty() {
        let q = format!(
            "SELECT user_id, {} FROM (SELECT user_id, content_id, MAX(day_num) AS last_day FROM content_partials
             WHERE {window} GROUP BY user_id, content_id) per_content GROUP BY user_id",
            content_selects.join(", ")
        );
        register_view(&ctx, "f_content", &q).await?;
        joins.push_str(" LEFT JOIN f_content ON f_content.user_id = f_main.user_id");
    }
    if !day_selects.is_empty() {
        let q = format!(
            "SELECT user_id, {} FROM (SELECT DISTINCT user_id, day_num FROM partials WHERE dim = 'all' AND {window}) per_day
             GROUP BY user_id",
            day_selects.join(", ")
        );
        register_view(&ctx, "f_days", &q).await?;
        joins.push_str(" LEFT JOIN f_days ON f_days.user_id = f_main.user_id");
    }
    // SQL transforms see `events` restricted to the snapshot's point-in-time window.
    let cutoff = start_of_micros(as_of);
    let events_view = format!(
        "SELECT * FROM events_all WHERE NOT is_bot AND CAST(ts AS BIGINT) >= {} AND CAST(ts AS BIGINT) < {cutoff}
         AND CAST(received_at AS BIGINT) <= {}",
        cutoff - i64::from(maxw) * 86_400_000_000,
        cutoff + i64::from(late) * 3_600_000_000
    );
    register_view(&ctx, "events", &events_view).await?;
    let mut taken: BTreeSet<String> = feature_columns(fs, &version).into_iter().collect();
    for (i, (name, query)) in fs.sql.iter().enumerate() {
        let view = format!("f_sql_{i}");
        let df = ctx.sql(query).await.map_err(|e| {
            FeatureError::InvalidInput(format!(
                "feature set `{}`, SQL transform `{name}`: {e}",
                fs.name
            ))
        })?;
        let fields: Vec<String> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if !fields.iter().any(|f| f == "user_id") {
            return Err(FeatureError::InvalidInput(format!(
                "feature set `{}`, SQL transform `{name}`: the query must return a `user_id` column (it returns {})",
                fs.name,
                fields.join(", ")
            )));
        }
        for f in fields.iter().filter(|f| *f != "user_id") {
            if !taken.insert(f.clone()) {
                return Err(FeatureError::InvalidInput(format!(
                    "feature set `{}`, SQL transform `{name}`: column `{f}` already exists; rename it with AS",
                    fs.name
                )));
            }
            extra_cols.push(format!(
                "COALESCE(CAST({view}.\"{f}\" AS DOUBLE), 0.0) AS \"{f}\""
            ));
        }
        ctx.register_table(view.as_str(), df.into_view())
            .map_err(|e| FeatureError::InvalidInput(e.to_string()))?;
        joins.push_str(&format!(
            " LEFT JOIN {view} ON {view}.user_id = f_main.user_id"
        ));
    }
    let content_cols: Vec<String> = fs
        .windows_days
        .iter()
        .filter(|_| fs.has("distinct_content"))
        .map(|w| format!("COALESCE(f_content.distinct_content_{w}d, 0.0) AS distinct_content_{w}d"))
        .collect();
    let columns = feature_columns(fs, &version);
    let ordered: Vec<String> = columns
        .iter()
        .map(|c| {
            if c.starts_with("distinct_content_") {
                content_cols
                    .iter()
                    .find(|x| x.ends_with(&format!(" AS {c}")))
                    .cloned()
                    .unwrap_or_else(|| c.clone())
            } else if c.starts_with("active_days_") {
                format!("COALESCE(f_days.{c}, 0.0) AS {c}")
            } else {
                format!("f_main.{c}")
            }
        })
        .chain(extra_cols)
        .collect();
    let final_sql = format!(
        "SELECT f_main.user_id, CAST('{as_of}' AS DATE) AS as_of, CAST({} AS INT) AS feature_set_version, {}
         FROM f_main{joins} ORDER BY f_main.user_id",
        version.version,
        ordered.join(", ")
    );
    let batches = Lake::query_for_write(&ctx, &final_sql).await?;
    let users: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    let all_columns: Vec<String> = batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .skip(3)
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default();
    let predicate = col("as_of").eq(lit(ScalarValue::Date32(Some(t))));
    let table_version = lake
        .overwrite(
            &tables::features(&fs.name),
            batches,
            &["as_of"],
            Some(predicate),
        )
        .await?;
    Ok(SnapshotReport {
        feature_set: fs.name.clone(),
        as_of,
        feature_set_version: version.version,
        users,
        columns: all_columns,
        table_version,
        inputs,
    })
}

async fn register_view(ctx: &SessionContext, name: &str, sql: &str) -> Result<()> {
    let df = ctx
        .sql(sql)
        .await
        .map_err(|source| spire_lake::LakeError::query(format!("building `{name}`"), source))?;
    let _ = ctx.deregister_table(name);
    ctx.register_table(name, df.into_view())
        .map_err(|source| spire_lake::LakeError::query(format!("registering `{name}`"), source))?;
    Ok(())
}
