//! Spire's lake: Delta tables on `object_store` and the DataFusion session over them.
//!
//! Every table lives under one root (a local folder by default, an object-store URL in
//! production). Writes go through delta-rs; reads go through DataFusion with each table
//! registered under its own name, and every registration reports the Delta version read so
//! runs can record their inputs.

pub mod columns;
mod error;
mod lake;
pub mod maintenance;
pub mod tables;

pub use deltalake;
pub use deltalake::arrow;
pub use deltalake::datafusion;
pub use error::{LakeError, Result};
pub use lake::{CasOutcome, Lake, TableVersions, TxnAdvance};
