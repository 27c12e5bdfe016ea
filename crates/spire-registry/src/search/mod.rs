//! Run search with MLflow's filter grammar: parse and validate a [`RunSearch`] (pure), then
//! turn it into parameterised SQL for either backend (`sql.rs`).

mod lex;
mod parse;
mod sql;

use serde::{Deserialize, Serialize};

pub(crate) use sql::{search_sql, Bind, Dialect};

use crate::{RegistryError, Run, ViewType};
use parse::{Clause, OrderTerm, ParseError};

/// The most runs one [`TrackingStore::search_runs`] page may hold.
///
/// [`TrackingStore::search_runs`]: crate::TrackingStore::search_runs
pub const MAX_SEARCH_RESULTS: usize = 10_000;

/// A run search: which experiments, which runs (an MLflow filter), in which order, and
/// which page.
///
/// # Filter grammar
///
/// Clauses `entity.key op value` joined with `AND` (keywords in any case):
///
/// - `metrics.auc > 0.8` — the run's latest value of the metric (highest step, then
///   latest timestamp); `=`, `!=`, `>`, `>=`, `<`, `<=` with a number. Runs without the
///   metric, or whose latest value is NaN, never match.
/// - `params.algorithm = 'lr'`, `tags.segment LIKE 'reads-%'` — text; `=`, `!=`, `LIKE`
///   (case-sensitive), `ILIKE` (case-insensitive; ASCII letters only on SQLite), `IN
///   ('a', 'b')`, `NOT IN (…)`. Runs without the param or tag never match. In patterns `%`
///   matches any run of characters and `_` one character; there is no escape character.
/// - `attributes.status = 'FINISHED'` (`RUNNING`, `FINISHED`, `FAILED`; MLflow's
///   `SCHEDULED` and `KILLED` are accepted and match nothing; `=`, `!=`, `IN`, `NOT IN`),
///   `attributes.start_time >= 1700000000000` (alias `created`) and `attributes.end_time`
///   (milliseconds since the epoch; running runs have no end time), and the text attributes
///   `run_id`, `segment`, `experiment`, `experiment_id`, `config_hash`, `spire_version`,
///   `git_commit` and `run_name` (the run's `mlflow.runName` tag).
///
/// Entities may be written singular (`metric`, `param`, `tag`) and `attributes` as
/// `attribute`, `attr` or `run`. Keys holding characters other than letters, digits, `_`
/// and `.` are quoted: ``metrics.`f1-score` `` or `metrics."f1 score"`. Strings are quoted
/// with `'` or `"`; a doubled quote stands for itself.
///
/// # Ordering and pages
///
/// `order_by` terms are `entity.key [ASC|DESC]` (e.g. `metrics.auc DESC`); runs missing the
/// value sort last in either direction. Ties — and the whole order when `order_by` is
/// empty — are broken newest first. Text sorts by code point on both backends.
/// `next_page_token` continues the same search (same experiments, filter, order, view);
/// pages are offsets into the ordered result, so runs created meanwhile may shift a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSearch {
    /// Search only these experiments (by id); empty searches all.
    pub experiment_ids: Vec<String>,
    /// The filter; empty matches every run.
    pub filter: String,
    /// Ordering terms, most significant first.
    pub order_by: Vec<String>,
    /// Active runs (the default), deleted ones, or all; a run counts as deleted when it or
    /// its experiment is.
    pub view: ViewType,
    /// Page size, 1 to [`MAX_SEARCH_RESULTS`]; defaults to 100.
    pub max_results: usize,
    /// The `next_page_token` of the previous page, or `None` for the first page.
    pub page_token: Option<String>,
}

impl Default for RunSearch {
    fn default() -> Self {
        RunSearch {
            experiment_ids: Vec::new(),
            filter: String::new(),
            order_by: Vec::new(),
            view: ViewType::ActiveOnly,
            max_results: 100,
            page_token: None,
        }
    }
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPage {
    /// The runs of this page, in order, with everything they logged.
    pub runs: Vec<Run>,
    /// Pass it as [`RunSearch::page_token`] for the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// A parsed and checked search, ready for SQL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ValidSearch {
    pub(crate) experiment_ids: Vec<String>,
    pub(crate) clauses: Vec<Clause>,
    pub(crate) order: Vec<OrderTerm>,
    pub(crate) view: ViewType,
    pub(crate) page_size: usize,
    pub(crate) offset: usize,
    fingerprint: u64,
}

impl ValidSearch {
    /// Parses and checks `search`; every error names what was wrong and where.
    pub(crate) fn new(search: &RunSearch) -> Result<ValidSearch, RegistryError> {
        if search.max_results == 0 || search.max_results > MAX_SEARCH_RESULTS {
            return Err(RegistryError::InvalidInput(format!(
                "max_results is {}; it must be between 1 and {MAX_SEARCH_RESULTS}",
                search.max_results
            )));
        }
        let clauses = parse::parse_filter(&search.filter)
            .map_err(|e| invalid(format!("filter {:?}", search.filter), e))?;
        let order = search
            .order_by
            .iter()
            .map(|term| {
                parse::parse_order(term).map_err(|e| invalid(format!("order_by term {term:?}"), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let fingerprint = fingerprint(search);
        let offset = match &search.page_token {
            None => 0,
            Some(token) => decode_token(token, fingerprint)?,
        };
        Ok(ValidSearch {
            experiment_ids: search.experiment_ids.clone(),
            clauses,
            order,
            view: search.view,
            page_size: search.max_results,
            offset,
            fingerprint,
        })
    }

    /// The token of the page after this one.
    pub(crate) fn next_token(&self) -> String {
        format!(
            "{:x}-{:016x}",
            self.offset + self.page_size,
            self.fingerprint
        )
    }
}

fn invalid(what: String, e: ParseError) -> RegistryError {
    RegistryError::InvalidFilter {
        what,
        position: e.position,
        token: e.token,
        problem: e.problem,
    }
}

/// Reads a page token: the offset in hex, `-`, and the fingerprint of the search it
/// continues.
fn decode_token(token: &str, fingerprint: u64) -> Result<usize, RegistryError> {
    let bad = |why: &str| {
        RegistryError::InvalidInput(format!(
            "page token {token:?} {why}; pass the next_page_token of the previous page of the \
             same search, or none for the first page"
        ))
    };
    let (offset, print) = token.split_once('-').ok_or_else(|| bad("is malformed"))?;
    let offset = usize::from_str_radix(offset, 16).map_err(|_| bad("is malformed"))?;
    let print = u64::from_str_radix(print, 16).map_err(|_| bad("is malformed"))?;
    if print != fingerprint {
        return Err(bad(
            "belongs to another search (experiments, filter, order or view differ)",
        ));
    }
    Ok(offset)
}

/// A stable 64-bit FNV-1a hash of what a page token must not outlive.
fn fingerprint(search: &RunSearch) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes.iter().chain([&0xff_u8]) {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for id in &search.experiment_ids {
        eat(id.as_bytes());
    }
    eat(b"|");
    eat(search.filter.as_bytes());
    for term in &search.order_by {
        eat(term.as_bytes());
    }
    eat(format!("{:?}", search.view).as_bytes());
    hash
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use spire_core::ErrorKind;

    #[test]
    fn page_tokens_continue_only_their_search() {
        let search = RunSearch {
            filter: "metrics.auc > 0.5".into(),
            max_results: 10,
            ..RunSearch::default()
        };
        let first = ValidSearch::new(&search).unwrap();
        assert_eq!(first.offset, 0);
        let token = first.next_token();
        let second = ValidSearch::new(&RunSearch {
            page_token: Some(token.clone()),
            ..search.clone()
        })
        .unwrap();
        assert_eq!(second.offset, 10);

        let other = RunSearch {
            filter: "metrics.auc > 0.6".into(),
            page_token: Some(token),
            ..search.clone()
        };
        let err = ValidSearch::new(&other).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("another search"), "{err}");
        for bad in ["", "zz", "1-", "-1", "1-xyz"] {
            let err = ValidSearch::new(&RunSearch {
                page_token: Some(bad.into()),
                ..search.clone()
            })
            .unwrap_err();
            assert!(err.to_string().contains("malformed"), "{bad}: {err}");
        }
    }

    #[test]
    fn errors_name_the_input_position_and_token() {
        let err = ValidSearch::new(&RunSearch {
            filter: "metrics.auc >> 1".into(),
            ..RunSearch::default()
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let msg = err.to_string();
        assert!(
            msg.contains("position 14") && msg.contains("\">\"") && msg.contains("auc >> 1"),
            "{msg}"
        );
        let err = ValidSearch::new(&RunSearch {
            order_by: vec!["metrics.auc DOWN".into()],
            ..RunSearch::default()
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("order_by") && msg.contains("position 13") && msg.contains("DOWN"),
            "{msg}"
        );
        for max_results in [0, MAX_SEARCH_RESULTS + 1] {
            let err = ValidSearch::new(&RunSearch {
                max_results,
                ..RunSearch::default()
            })
            .unwrap_err();
            assert!(err.to_string().contains("max_results"), "{err}");
        }
    }
}
