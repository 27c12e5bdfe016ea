//! Names of the tables Spire keeps in the lake.

/// Every parsed record, with its source position (partitioned by `event_date`).
pub const EVENTS_RAW: &str = "events_raw";
/// Cleaned events: deduplicated, bot-flagged (partitioned by `event_date`).
pub const EVENTS: &str = "events";
/// Records intake could not parse, with payload, position and reason.
pub const DEAD_LETTERS: &str = "dead_letters";
/// Segment memberships (user_id, segment, score, model_version, as_of).
pub const SEGMENTS: &str = "segments";
/// Full per-user scores, only for specs that ask for them.
pub const SCORES: &str = "scores";

/// The features table of a feature set.
pub fn features(feature_set: &str) -> String {
    format!("features_{feature_set}")
}

/// The per-user daily partial aggregates of a feature set.
pub fn partials(feature_set: &str) -> String {
    format!("partials_{feature_set}")
}

/// The per-user daily distinct-content partials of a feature set.
pub fn content_partials(feature_set: &str) -> String {
    format!("partials_{feature_set}_content")
}

/// Every table the pipeline writes for a project with these feature sets (whether or not
/// it exists yet): what `spire lake optimize|vacuum` act on when the lake cannot be listed.
pub fn all<'a>(feature_sets: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = [EVENTS_RAW, EVENTS, DEAD_LETTERS, SEGMENTS, SCORES]
        .into_iter()
        .map(str::to_string)
        .collect();
    for fs in feature_sets {
        out.extend([features(fs), partials(fs), content_partials(fs)]);
    }
    out
}
