//! Dates and instants as Spire uses them: UTC everywhere, dates as day boundaries.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};

/// Midnight UTC at the start of `date`: the instant an `as_of` date stands for.
pub fn start_of(date: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN))
}

/// Microseconds since the Unix epoch of midnight UTC at the start of `date`.
pub fn start_of_micros(date: NaiveDate) -> i64 {
    start_of(date).timestamp_micros()
}

/// Days since 1970-01-01 (the Arrow `Date32` encoding).
pub fn days_since_epoch(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    (date - epoch).num_days() as i32
}

/// The date for an Arrow `Date32` value.
pub fn date_from_days(days: i32) -> NaiveDate {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    epoch + chrono::Duration::days(i64::from(days))
}

/// Parses `YYYY-MM-DD`, naming the input in the error.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|e| format!("`{text}` is not a date (expected YYYY-MM-DD): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_round_trips_through_days() {
        let d = parse_date("2026-11-25").unwrap_or(NaiveDate::MIN);
        assert_eq!(date_from_days(days_since_epoch(d)), d);
        assert_eq!(start_of(d).to_rfc3339(), "2026-11-25T00:00:00+00:00");
        assert!(parse_date("25/11/2026").is_err());
    }
}
