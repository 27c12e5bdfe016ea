//! Which segments are due, and at which logical times: schedules against what was already
//! scheduled, with pause and the catch-up policy.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use spire_core::config::Catchup;

use crate::model::ScheduledModel;

/// Most intervals one model catches up in one tick (`catchup = "all"` after a long outage);
/// the rest follow on the next ticks.
pub const MAX_CATCHUP: usize = 1000;

/// What the scheduler remembers of one segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelState {
    /// The latest logical time already scheduled.
    pub last_scheduled: Option<DateTime<Utc>>,
    /// Paused segments are never due; their missed intervals follow the catch-up policy
    /// when they resume.
    pub paused: bool,
}

/// A segment due at a logical time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueRun {
    /// Index into the models given to [`due_runs`].
    pub model: usize,
    /// The logical time.
    pub logical_time: DateTime<Utc>,
}

/// The runs due at `now`: for each scheduled, unpaused segment, the firings after its last
/// scheduled time up to `now` (all of them with `catchup = "all"`, else the latest). A
/// segment never scheduled before starts with its latest firing (no history is backfilled
/// on its own; see [`backfill_times`]). Firings are computed once per distinct schedule and
/// last time, so ten thousand segments on a few schedules cost a few evaluations.
pub fn due_runs(
    models: &[ScheduledModel],
    state: &HashMap<String, ModelState>,
    now: DateTime<Utc>,
) -> Vec<DueRun> {
    type Key = (String, String, Option<DateTime<Utc>>, bool);
    let mut cache: HashMap<Key, Vec<DateTime<Utc>>> = HashMap::new();
    let mut out = Vec::new();
    for (i, m) in models.iter().enumerate() {
        let Some(schedule) = &m.schedule.schedule else {
            continue;
        };
        let st = state.get(&m.name).copied().unwrap_or_default();
        if st.paused {
            continue;
        }
        let all = m.schedule.catchup == Catchup::All && st.last_scheduled.is_some();
        let key = (
            schedule.expr().to_string(),
            schedule.timezone().to_string(),
            st.last_scheduled,
            all,
        );
        let fires = cache.entry(key).or_insert_with(|| match st.last_scheduled {
            None => schedule.latest_at_or_before(now).into_iter().collect(),
            Some(last) => {
                let fired =
                    schedule.fires_between(last, now, if all { MAX_CATCHUP } else { usize::MAX });
                if all {
                    fired
                } else {
                    fired.last().copied().into_iter().collect()
                }
            }
        });
        out.extend(fires.iter().map(|&t| DueRun {
            model: i,
            logical_time: t,
        }));
    }
    out
}

/// The logical times `spire backfill` runs for a segment between two dates (inclusive, in
/// the schedule's zone): every firing of its schedule in that range, or one run per day at
/// midnight UTC for a segment without a schedule.
pub fn backfill_times(
    model: &ScheduledModel,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<DateTime<Utc>> {
    match &model.schedule.schedule {
        Some(s) => {
            let start = from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() - Duration::days(1);
            let end = to.and_hms_opt(23, 59, 59).unwrap_or_default().and_utc() + Duration::days(1);
            s.fires_between(start, end, usize::MAX)
                .into_iter()
                .filter(|t| {
                    let d = s.local_date(*t);
                    d >= from && d <= to
                })
                .collect()
        }
        None => from
            .iter_days()
            .take_while(|d| *d <= to)
            .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
            .collect(),
    }
}
