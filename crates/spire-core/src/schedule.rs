//! Schedules: a cron expression evaluated in an IANA time zone, with daylight-saving
//! changes handled so that every local time fires exactly once.
//!
//! The expression has five fields (minute, hour, day of month, month, day of week; POSIX
//! rules, `@daily`-style aliases) and is matched against *local* wall-clock times of the
//! zone. Each matching local time becomes one instant:
//!
//! - a local time that exists once fires at that instant;
//! - a local time that happens twice (clocks set back) fires once, at its first occurrence;
//! - a local time that does not exist (clocks set forward) fires once, at the first instant
//!   after the gap (several skipped times of one gap fire together, once).
//!
//! Schedules are pure: they take times and give times, with no clock of their own.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// A parsed, validated schedule.
#[derive(Clone)]
pub struct Schedule {
    expr: String,
    cron: Cron,
    tz: Tz,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?} in {})", self.expr, self.tz.name())
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        self.expr == other.expr && self.tz == other.tz
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expr, self.tz.name())
    }
}

/// The longest daylight-saving gap searched across (real gaps are at most 2 hours).
const MAX_GAP_MINUTES: i64 = 24 * 60;

impl Schedule {
    /// Parses `cron` (five fields, or an alias such as `@daily`) in time zone `timezone`
    /// (an IANA name such as `Europe/Berlin`, or `UTC`). The error says which part is wrong.
    pub fn parse(cron: &str, timezone: &str) -> Result<Schedule, String> {
        let expr = cron.trim();
        let fields = expr.split_whitespace().count();
        if !expr.starts_with('@') && fields != 5 {
            return Err(format!(
                "cron expression {cron:?} has {fields} fields; expected 5 (minute hour \
                 day-of-month month day-of-week), e.g. \"0 6 * * *\" for 06:00 daily"
            ));
        }
        let parsed =
            Cron::from_str(expr).map_err(|e| format!("invalid cron expression {cron:?}: {e}"))?;
        let tz: Tz = timezone.parse().map_err(|_| {
            format!(
                "unknown time zone {timezone:?}: use an IANA name such as \"Europe/Berlin\", \
                 \"America/New_York\" or \"UTC\""
            )
        })?;
        let schedule = Schedule {
            expr: expr.to_string(),
            cron: parsed,
            tz,
        };
        // A pattern that never matches (e.g. 30 February) is refused now, not at 3 a.m.
        let probe = DateTime::<Utc>::from_timestamp(0, 0).unwrap_or_default();
        if schedule.next_after(probe).is_none() {
            return Err(format!(
                "cron expression {cron:?} never matches a real date"
            ));
        }
        Ok(schedule)
    }

    /// The expression as written.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The time zone's IANA name.
    pub fn timezone(&self) -> &str {
        self.tz.name()
    }

    /// The date of instant `at` in the schedule's zone.
    pub fn local_date(&self, at: DateTime<Utc>) -> chrono::NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    /// The next matching local wall-clock time strictly after `naive`.
    fn next_local(&self, naive: NaiveDateTime) -> Option<NaiveDateTime> {
        let as_utc = Utc.from_utc_datetime(&naive);
        self.cron
            .find_next_occurrence(&as_utc, false)
            .ok()
            .map(|d| d.naive_utc())
    }

    /// The instant a local time fires at (see the module docs for the DST rules).
    fn instant_of(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
            LocalResult::None => (1..=MAX_GAP_MINUTES).find_map(|m| {
                match self.tz.from_local_datetime(&(local + Duration::minutes(m))) {
                    // The first valid minute after the gap: the transition itself.
                    LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                        Some(t.with_timezone(&Utc))
                    }
                    LocalResult::None => None,
                }
            }),
        }
    }

    /// The first firing strictly after `after`, or `None` if the pattern never matches
    /// again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut cursor = after.with_timezone(&self.tz).naive_local();
        // Far enough for any pattern that matches at least once every few years.
        for _ in 0..100_000 {
            let local = self.next_local(cursor)?;
            if let Some(at) = self.instant_of(local) {
                if at > after {
                    return Some(at);
                }
            }
            cursor = local;
        }
        None
    }

    /// Every firing in `(after, until]`, oldest first, at most `limit` of them.
    pub fn fires_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = after;
        while out.len() < limit {
            match self.next_after(cursor) {
                Some(at) if at <= until => {
                    out.push(at);
                    cursor = at;
                }
                _ => break,
            }
        }
        out
    }

    /// The latest firing at or before `at`, if any within about a year (what "run only the
    /// latest missed interval" catches up to).
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut from = at - Duration::days(1);
        let floor = at - Duration::days(400);
        while from > floor {
            let fired = self.fires_between(from, at, usize::MAX);
            if let Some(last) = fired.last() {
                return Some(*last);
            }
            from -= Duration::days(31);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn daily_in_a_zone_fires_at_local_time() {
        let s = Schedule::parse("0 6 * * *", "Europe/Berlin").unwrap();
        // Winter: UTC+1.
        assert_eq!(
            s.next_after(utc("2026-01-10T12:00:00Z")),
            Some(utc("2026-01-11T05:00:00Z"))
        );
        // Summer: UTC+2.
        assert_eq!(
            s.next_after(utc("2026-07-10T12:00:00Z")),
            Some(utc("2026-07-11T04:00:00Z"))
        );
    }

    #[test]
    fn a_skipped_local_time_fires_once_after_the_gap() {
        // Berlin springs forward on 2026-03-29: 02:00 → 03:00 local (01:00 UTC).
        let s = Schedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let fired = s.fires_between(utc("2026-03-27T12:00:00Z"), utc("2026-03-31T12:00:00Z"), 10);
        assert_eq!(
            fired,
            vec![
                utc("2026-03-28T01:30:00Z"), // 02:30 CET
                utc("2026-03-29T01:00:00Z"), // 02:30 does not exist: fires at 03:00 CEST
                utc("2026-03-30T00:30:00Z"), // 02:30 CEST
                utc("2026-03-31T00:30:00Z"),
            ]
        );
        // Every 15 minutes: the four skipped quarter hours of the gap fire once, together.
        let q = Schedule::parse("*/15 2 * * *", "Europe/Berlin").unwrap();
        let fired = q.fires_between(utc("2026-03-29T00:00:00Z"), utc("2026-03-29T03:00:00Z"), 10);
        assert_eq!(fired, vec![utc("2026-03-29T01:00:00Z")]);
    }

    #[test]
    fn a_repeated_local_time_fires_once_at_its_first_occurrence() {
        // Berlin falls back on 2026-10-25: 03:00 CEST → 02:00 CET; 02:30 happens twice.
        let s = Schedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let fired = s.fires_between(utc("2026-10-24T12:00:00Z"), utc("2026-10-26T12:00:00Z"), 10);
        assert_eq!(
            fired,
            vec![utc("2026-10-25T00:30:00Z"), utc("2026-10-26T01:30:00Z")]
        );
        // Asked from inside the second pass of the repeated hour, it does not fire again.
        assert_eq!(
            s.next_after(utc("2026-10-25T01:10:00Z")),
            Some(utc("2026-10-26T01:30:00Z"))
        );
        // An hourly schedule fires once per distinct local hour of that 25-hour day: 24
        // times, not 25 (02:00 is not doubled).
        let h = Schedule::parse("0 * * * *", "Europe/Berlin").unwrap();
        let day = h.fires_between(
            utc("2026-10-24T21:59:00Z"),
            utc("2026-10-25T22:59:00Z"),
            100,
        );
        assert_eq!(day.len(), 24, "{day:?}");
    }

    #[test]
    fn bad_expressions_and_zones_are_named() {
        let err = Schedule::parse("0 6 * *", "UTC").unwrap_err();
        assert!(err.contains("4 fields"), "{err}");
        let err = Schedule::parse("0 25 * * *", "UTC").unwrap_err();
        assert!(err.contains("\"0 25 * * *\""), "{err}");
        let err = Schedule::parse("0 6 * * *", "Mars/Olympus").unwrap_err();
        assert!(err.contains("Mars/Olympus"), "{err}");
        let err = Schedule::parse("0 0 30 2 *", "UTC").unwrap_err();
        assert!(err.contains("never matches"), "{err}");
        assert!(Schedule::parse("@daily", "UTC").is_ok());
    }

    #[test]
    fn latest_missed_interval() {
        let s = Schedule::parse("0 6 * * *", "UTC").unwrap();
        assert_eq!(
            s.latest_at_or_before(utc("2026-05-10T05:59:00Z")),
            Some(utc("2026-05-09T06:00:00Z"))
        );
        assert_eq!(
            s.latest_at_or_before(utc("2026-05-10T06:00:00Z")),
            Some(utc("2026-05-10T06:00:00Z"))
        );
    }
}
