//! Offset pages for searches answered in memory (experiments, models, versions, logged
//! models, metric history). Tokens are opaque to clients: `o` and the offset in decimal.

use crate::error::{ApiError, ApiResult};
use crate::request::Params;

/// Which slice of a result a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    offset: usize,
    size: usize,
}

impl Page {
    /// Reads `max_results` (default `default`, at most `max`) and `page_token`.
    pub fn from_params(p: &Params, default: usize, max: usize) -> ApiResult<Page> {
        let size = match p.opt_i64("max_results")? {
            None => default,
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "Invalid value {n} for parameter 'max_results': it must be between 1 \
                         and {max}"
                    ))
                })?,
        };
        let offset = match p.opt_str("page_token")?.filter(|t| !t.is_empty()) {
            None => 0,
            Some(token) => token
                .strip_prefix('o')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| ApiError::invalid(format!("Invalid page token {token:?}")))?,
        };
        Ok(Page { offset, size })
    }

    /// This page of `all`, and the token of the next page if there is one.
    pub fn slice<T>(self, all: Vec<T>) -> (Vec<T>, Option<String>) {
        let total = all.len();
        let end = self.offset.saturating_add(self.size);
        let items: Vec<T> = all.into_iter().skip(self.offset).take(self.size).collect();
        let next = (end < total).then(|| format!("o{end}"));
        (items, next)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn params(v: serde_json::Value) -> Params {
        match v {
            serde_json::Value::Object(m) => Params(m),
            _ => Params::default(),
        }
    }

    #[test]
    fn pages_walk_the_whole_result() {
        let first = Page::from_params(&params(json!({"max_results": 2})), 10, 100).unwrap();
        let (items, next) = first.slice(vec![1, 2, 3]);
        assert_eq!(items, [1, 2]);
        let next = next.unwrap();
        let second = Page::from_params(
            &params(json!({"max_results": 2, "page_token": next})),
            10,
            100,
        )
        .unwrap();
        assert_eq!(second.slice(vec![1, 2, 3]), (vec![3], None));
        for bad in [json!({"max_results": 0}), json!({"page_token": "zz"})] {
            assert!(Page::from_params(&params(bad), 10, 100).is_err());
        }
    }
}
