//! Spire features: feature sets as DataFusion plans over per-user daily partials, labels,
//! and the matrices models train and score on.
//!
//! - [`partials`] keeps, per feature set, per-user daily partial aggregates of `events`
//!   (bots excluded), rebuilt only for event dates whose `events` files changed, so a daily
//!   refresh reads one new day of events.
//! - [`snapshot`] sums partials into windowed features as of a date, point-in-time correct
//!   (only events with `ts < as_of` that arrived by `as_of + lateness_hours`), runs the
//!   feature set's SQL transforms, and writes `features_<set>`.
//! - [`vocab`] freezes discovered category/brand values per feature-set version.
//! - [`labels`] and [`dataset`] build labels and matrices for training and scoring.

pub mod dataset;
mod error;
pub mod labels;
pub mod partials;
pub mod snapshot;
pub mod vocab;

pub use error::{FeatureError, Result};

/// Escapes a value for a SQL string literal.
pub(crate) fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A column-name-safe version of a value (`[a-z0-9_]`).
pub fn column_slug(s: &str) -> String {
    let mut out: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'v');
    }
    out
}
