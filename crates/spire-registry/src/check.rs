//! Validation of names and keys, and the millisecond time encoding.

use chrono::{DateTime, Utc};

use crate::RegistryError;

/// The current time in integer milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Decodes a stored millisecond timestamp; `what` names the column for the error.
pub(crate) fn to_time(
    ms: i64,
    what: impl FnOnce() -> String,
) -> Result<DateTime<Utc>, RegistryError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| RegistryError::corrupt(format!("{}: {ms} ms is out of range", what())))
}

/// Decodes an optional stored millisecond timestamp.
pub(crate) fn to_time_opt(
    ms: Option<i64>,
    what: impl FnOnce() -> String,
) -> Result<Option<DateTime<Utc>>, RegistryError> {
    ms.map(|ms| to_time(ms, what)).transpose()
}

/// Longest accepted name (experiment, model, alias, key…), in bytes.
const MAX_NAME_BYTES: usize = 256;

/// Checks that a name is non-empty, not padded with spaces, short, and free of control
/// characters. `what` says which name it is ("model name", "param key"…).
pub(crate) fn check_name(what: &str, value: &str) -> Result<(), RegistryError> {
    let problem = if value.is_empty() {
        Some("must not be empty")
    } else if value.trim() != value {
        Some("must not start or end with whitespace")
    } else if value.len() > MAX_NAME_BYTES {
        Some("is longer than 256 bytes")
    } else if value.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(RegistryError::InvalidInput(format!(
            "{what} {value:?} {problem}"
        ))),
        None => Ok(()),
    }
}

/// Checks an alias: a name made of ASCII letters, digits, `_`, `-` and `.`, starting with a
/// letter (so `model@alias` never reads as a version number).
pub(crate) fn check_alias(alias: &str) -> Result<(), RegistryError> {
    check_name("alias", alias)?;
    let starts_with_letter = alias
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic());
    let allowed = alias
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if starts_with_letter && allowed {
        Ok(())
    } else {
        Err(RegistryError::InvalidInput(format!(
            "alias {alias:?} must start with a letter and contain only ASCII letters, digits, '_', '-' and '.'"
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use spire_core::ErrorKind;

    #[test]
    fn validates_names_and_aliases() {
        assert!(check_name("model name", "churn-sports").is_ok());
        for bad in ["", " x", "a\nb"] {
            let err = check_name("model name", bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
        }
        assert!(check_name("k", &"x".repeat(257)).is_err());
        assert!(check_alias("champion").is_ok());
        assert!(check_alias("prod.eu-1_b").is_ok());
        for bad in ["3", "v 1", "é", "-x", ""] {
            assert!(check_alias(bad).is_err(), "{bad}");
        }
    }
}
