//! The two backends and what they share.
//!
//! The SQL is written once, in `sql/`, with `$n` placeholders (which SQLite accepts too),
//! `ON CONFLICT`, `RETURNING` and window functions, and compiled once per backend: each
//! backend module (`sqlite`, `postgres`) defines the concrete types (`Db`, `Store`) and how
//! transactions begin, then includes the `sql/` files as its own submodules. This keeps the
//! queries identical on both databases without generic sqlx bounds, and lets the compiler
//! type-check each copy against its driver.

use std::ops::{Deref, DerefMut};

use sqlx::{Database, Transaction};
use tokio::sync::OwnedMutexGuard;

pub(crate) mod postgres;
pub(crate) mod sqlite;

/// A write transaction, holding the store's in-process write lock (SQLite) until it ends.
pub(crate) struct WriteTx<DB: Database> {
    tx: Transaction<'static, DB>,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl<DB: Database> WriteTx<DB> {
    /// Wraps a begun transaction and the write lock guard, if any.
    pub(crate) fn new(tx: Transaction<'static, DB>, guard: Option<OwnedMutexGuard<()>>) -> Self {
        WriteTx { tx, _guard: guard }
    }

    /// Commits, then releases the write lock.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    /// Rolls back (for calls that turn out to change nothing), then releases the lock.
    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl<DB: Database> Deref for WriteTx<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: Database> DerefMut for WriteTx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}

/// SQLite cannot store NaN (it reads back as NULL), so both backends store NaN as NULL in
/// `metrics.value`; ±infinity are stored natively. The same encoding on both keeps filters
/// alike: a NaN metric never satisfies a comparison.
pub(crate) fn encode_metric(value: f64) -> Option<f64> {
    (!value.is_nan()).then_some(value)
}

/// The inverse of [`encode_metric`].
pub(crate) fn decode_metric(value: Option<f64>) -> f64 {
    value.unwrap_or(f64::NAN)
}

/// `$first, $first+1, …` — `n` numbered placeholders.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, …, $w), ($w+1, …, $2w), …` — `rows` tuples of `width` placeholders, for
/// multi-row `INSERT … VALUES`.
pub(crate) fn value_rows(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(r * width + 1, width)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A new id: a UUID v4 as 32 lowercase hex digits.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered() {
        assert_eq!(placeholders(1, 3), "$1, $2, $3");
        assert_eq!(placeholders(4, 1), "$4");
        assert_eq!(value_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }

    #[test]
    fn nan_is_encoded_as_null() {
        assert_eq!(encode_metric(f64::NAN), None);
        assert!(decode_metric(None).is_nan());
        assert_eq!(decode_metric(encode_metric(f64::INFINITY)), f64::INFINITY);
        assert_eq!(decode_metric(encode_metric(-0.5)), -0.5);
    }

    #[test]
    fn ids_are_32_hex_digits() {
        let id = new_id();
        assert_eq!(id.len(), 32);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(id, new_id());
    }
}
