//! Scheduling settings: the project's `[schedule]` default and `[scheduler]` limits in
//! `spire.toml`, and each segment's `[segment.schedule]`, which inherits every key it does
//! not set from the project default.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Issues;
use crate::schedule::Schedule;

/// `[schedule]` in spire.toml, or `[segment.schedule]` in a segment file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// Cron expression (5 fields), e.g. `"0 6 * * *"`.
    pub cron: Option<String>,
    /// IANA time zone of the cron expression (default `UTC`).
    pub timezone: Option<String>,
    /// Missed intervals: `latest` (default: run only the most recent) or `all`.
    pub catchup: Option<String>,
    /// Retries after a failed attempt (default 2).
    pub retries: Option<u32>,
    /// First retry delay; doubles on each further retry (default 60).
    pub retry_backoff_secs: Option<u64>,
    /// An attempt running longer than this fails (default 7200).
    pub timeout_secs: Option<u64>,
    /// Higher runs first when workers are scarce (default 0).
    pub priority: Option<i32>,
    /// Concurrency pool (declared in `[scheduler.pools]`), e.g. `gbdt`.
    pub pool: Option<String>,
}

/// `[scheduler]` in spire.toml.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawScheduler {
    /// Most tasks running at once across all workers (default: no limit).
    pub max_running: Option<u32>,
    /// How long a worker's claim on a task lasts without a heartbeat (default 60).
    pub lease_secs: Option<u64>,
    /// Pools and their slots, e.g. `{ gbdt = 2 }`: at most 2 tasks of pool `gbdt` at once.
    #[serde(default)]
    pub pools: BTreeMap<String, u32>,
    /// Days a finished task (and its attempts) is kept before `spire scheduler` deletes it
    /// (default 30; 0 keeps every task).
    pub keep_finished_days: Option<u32>,
}

/// What to run when intervals were missed (the scheduler was down, or a model was paused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Catchup {
    /// Only the most recent missed interval.
    #[default]
    Latest,
    /// Every missed interval, oldest first.
    All,
}

/// A segment's resolved schedule and retry policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSpec {
    /// When it runs; `None`: only on demand (`spire run`, `spire backfill`).
    pub schedule: Option<Schedule>,
    /// Missed intervals.
    pub catchup: Catchup,
    /// Retries after a failed attempt.
    pub retries: u32,
    /// First retry delay in seconds (doubling).
    pub retry_backoff_secs: u64,
    /// Attempt timeout in seconds.
    pub timeout_secs: u64,
    /// Priority (higher first).
    pub priority: i32,
    /// Concurrency pool.
    pub pool: Option<String>,
}

impl Default for ScheduleSpec {
    fn default() -> ScheduleSpec {
        ScheduleSpec {
            schedule: None,
            catchup: Catchup::Latest,
            retries: 2,
            retry_backoff_secs: 60,
            timeout_secs: 7200,
            priority: 0,
            pool: None,
        }
    }
}

/// Validated `[scheduler]` limits.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    /// Most tasks running at once (`None`: no limit).
    pub max_running: Option<u32>,
    /// Lease length in seconds.
    pub lease_secs: u64,
    /// Pools and their slots.
    pub pools: BTreeMap<String, u32>,
    /// Days finished tasks are kept (`None`: forever).
    pub keep_finished_days: Option<u32>,
}

/// Validates `[scheduler]`.
pub(super) fn validate_scheduler(
    raw: &RawScheduler,
    file: &Path,
    issues: &mut Issues,
) -> SchedulerConfig {
    for (name, slots) in &raw.pools {
        if *slots == 0 {
            issues.push(
                file,
                format!("scheduler.pools.{name}"),
                "a pool needs at least 1 slot",
            );
        }
    }
    if raw.max_running == Some(0) {
        issues.push(file, "scheduler.max_running", "must be at least 1");
    }
    let lease_secs = raw.lease_secs.unwrap_or(60);
    if lease_secs < 5 {
        issues.push(
            file,
            "scheduler.lease_secs",
            "must be at least 5 (workers heartbeat at a third of it)",
        );
    }
    SchedulerConfig {
        max_running: raw.max_running,
        lease_secs,
        pools: raw.pools.clone(),
        keep_finished_days: match raw.keep_finished_days {
            Some(0) => None,
            Some(days) => Some(days),
            None => Some(30),
        },
    }
}

/// `raw` without its invalid keys (what segments may inherit).
pub(super) fn valid_keys(raw: &RawSchedule, pools: &BTreeSet<String>) -> RawSchedule {
    let mut clean = raw.clone();
    if let Some(cron) = &raw.cron {
        let tz = raw.timezone.as_deref().unwrap_or("UTC");
        if Schedule::parse(cron, tz).is_err() {
            clean.cron = None;
            clean.timezone = None;
        }
    } else if raw
        .timezone
        .as_deref()
        .is_some_and(|tz| tz.parse::<chrono_tz::Tz>().is_err())
    {
        clean.timezone = None;
    }
    if !matches!(raw.catchup.as_deref(), None | Some("latest") | Some("all")) {
        clean.catchup = None;
    }
    if raw.pool.as_ref().is_some_and(|p| !pools.contains(p)) {
        clean.pool = None;
    }
    if raw.timeout_secs == Some(0) {
        clean.timeout_secs = None;
    }
    clean
}

/// Resolves a schedule: `own` keys over `default` keys over built-in defaults. `prefix`
/// names the table in messages (`schedule` or `segment[3].schedule`), `file` its file.
pub(super) fn resolve_schedule(
    own: Option<&RawSchedule>,
    default: &RawSchedule,
    pools: &BTreeSet<String>,
    file: &Path,
    prefix: &str,
    issues: &mut Issues,
) -> ScheduleSpec {
    let own = own.cloned().unwrap_or_default();
    let base = ScheduleSpec::default();
    let key = |k: &str| format!("{prefix}.{k}");
    let cron = own.cron.as_ref().or(default.cron.as_ref());
    let timezone = own
        .timezone
        .as_deref()
        .or(default.timezone.as_deref())
        .unwrap_or("UTC");
    let schedule = match cron {
        None => None,
        Some(c) => match Schedule::parse(c, timezone) {
            Ok(s) => Some(s),
            Err(message) => {
                let k = if message.contains("time zone") {
                    "timezone"
                } else {
                    "cron"
                };
                issues.push(file, key(k), message);
                None
            }
        },
    };
    let catchup = match own.catchup.as_deref().or(default.catchup.as_deref()) {
        None | Some("latest") => Catchup::Latest,
        Some("all") => Catchup::All,
        Some(other) => {
            issues.push(
                file,
                key("catchup"),
                format!("unknown catch-up policy {other:?}: use \"latest\" or \"all\""),
            );
            Catchup::Latest
        }
    };
    let pool = own.pool.clone().or(default.pool.clone());
    if let Some(p) = &pool {
        if !pools.contains(p) {
            let declared = if pools.is_empty() {
                "none is declared".to_string()
            } else {
                format!(
                    "declared: {}",
                    pools.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            issues.push(
                file,
                key("pool"),
                format!(
                    "pool {p:?} does not exist: declare it in [scheduler.pools] of spire.toml \
                     ({declared})"
                ),
            );
        }
    }
    let timeout_secs = own
        .timeout_secs
        .or(default.timeout_secs)
        .unwrap_or(base.timeout_secs);
    if timeout_secs == 0 {
        issues.push(file, key("timeout_secs"), "must be at least 1");
    }
    ScheduleSpec {
        schedule,
        catchup,
        retries: own.retries.or(default.retries).unwrap_or(base.retries),
        retry_backoff_secs: own
            .retry_backoff_secs
            .or(default.retry_backoff_secs)
            .unwrap_or(base.retry_backoff_secs),
        timeout_secs,
        priority: own.priority.or(default.priority).unwrap_or(base.priority),
        pool,
    }
}
