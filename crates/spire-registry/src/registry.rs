//! The [`Registry`] handle: opening a store from its URL, migrations, shared helpers.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;

use crate::sqlite::{self, Pool};
use crate::RegistryError;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The URL schemes [`Registry::open`] accepts, for error messages.
const SUPPORTED: &str = "sqlite://PATH (e.g. sqlite://spire-data/spire.db) or sqlite::memory:";

/// A handle on the tracking store and model registry.
///
/// Cheap to clone (clones share one connection pool) and safe to use from many tasks, and
/// several handles — in one process or many — may open the same database file.
///
/// # Contract
///
/// The PostgreSQL backend to come must keep every point below; the integration tests check
/// them.
///
/// - **Atomicity.** Every method is one transaction: it happens entirely or not at all.
///   `create_run` stores the run with its params, tags and inputs together; `log_metrics`
///   stores the whole batch or nothing; `set_alias`/`delete_alias` move the alias and append
///   its [`AliasEvent`](crate::AliasEvent) together.
/// - **Isolation.** Writes take the write lock when they begin (SQLite `BEGIN IMMEDIATE`),
///   so concurrent writers queue (up to a 5 s busy timeout, then
///   [`ErrorKind::Unavailable`](spire_core::ErrorKind::Unavailable)) rather than fail.
///   Reads see one consistent snapshot.
/// - **Version numbering.** `create_model_version` numbers each model's versions 1, 2, 3…
///   without gaps or duplicates, whatever the number of concurrent writers.
/// - **Ordering.** `list_runs` and `list_model_versions` are newest first; `list_models`
///   is by name; `metric_history` is by step, then timestamp, then logging order;
///   `alias_history` is oldest first; `Run::inputs` keeps the order given at creation.
/// - **Idempotency.** Re-logging a param with the same value, setting a tag to its current
///   value, finishing a run again with the status it ended with, and setting an alias to
///   the version it already points at all succeed and change nothing (no alias event is
///   written). `create_run`, `log_metrics` and `create_model_version` are not idempotent:
///   each call adds a run, metric points or a version.
/// - **Immutability.** Params never change: re-logging one with another value is
///   [`RegistryError::Conflict`] (MLflow semantics). A run's status changes once, from
///   `running` to `finished` or `failed`. Model versions never change; only aliases move.
/// - **Errors.** A missing run, model, version or alias is [`RegistryError::NotFound`]
///   naming it; empty or malformed names are [`RegistryError::InvalidInput`].
/// - **Time.** Timestamps are stored as integer milliseconds since the Unix epoch, so
///   values read back are truncated to the millisecond.
#[derive(Clone)]
pub struct Registry {
    pub(crate) pool: Pool,
    location: String,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Opens the registry at `url` and brings its schema up to date.
    ///
    /// `url` is `sqlite://PATH` (the file and its folder are created if missing) or
    /// `sqlite::memory:` (a private database that lives as long as this handle and its
    /// clones). Any other scheme is [`RegistryError::InvalidInput`] naming the URL (with
    /// any password hidden) and the supported schemes.
    pub async fn open(url: &str) -> Result<Registry, RegistryError> {
        let location = redact(url);
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        if !scheme.eq_ignore_ascii_case("sqlite") {
            return Err(RegistryError::InvalidInput(format!(
                "unsupported registry URL {location:?}: expected {SUPPORTED}"
            )));
        }
        let pool = sqlite::connect(url).await?;
        migrate(&pool).await?;
        tracing::debug!(registry = %location, "opened registry");
        Ok(Registry { pool, location })
    }

    /// Closes the connection pool, waiting for in-flight work; later calls on this handle
    /// or its clones fail with [`ErrorKind::Unavailable`](spire_core::ErrorKind::Unavailable).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Applies pending migrations. Two processes creating the same fresh database can race on
/// the first migration; the loser sees the winner's schema on a retry.
async fn migrate(pool: &Pool) -> Result<(), RegistryError> {
    const ATTEMPTS: u32 = 3;
    let mut attempt = 1;
    loop {
        match MIGRATOR.run(pool).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < ATTEMPTS => {
                tracing::debug!(attempt, error = %e, "registry migration failed; retrying");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(e) => return Err(RegistryError::Migrate(e)),
        }
    }
}

/// Hides the password in `scheme://user:password@host/...` URLs.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => url.to_string(),
    }
}

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
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://spire:s3cret@db:5432/spire"),
            "postgres://spire:***@db:5432/spire"
        );
        assert_eq!(redact("sqlite://a/b.db"), "sqlite://a/b.db");
        assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
    }

    #[tokio::test]
    async fn unknown_scheme_names_url_and_supported_schemes() {
        let err = Registry::open("postgres://u:pw@host/db").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let msg = err.to_string();
        assert!(msg.contains("postgres://u:***@host/db"), "{msg}");
        assert!(!msg.contains("pw"), "{msg}");
        assert!(
            msg.contains("sqlite://PATH") && msg.contains("sqlite::memory:"),
            "{msg}"
        );
    }

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
