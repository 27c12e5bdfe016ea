//! Spire core: ids, time, error kinds, configuration and segment specs.
//!
//! Nothing here touches the lake, the registry or the network; loading a project reads its
//! config files and validates them (parse → validate → `Valid*` types).

pub mod config;
pub mod error;
pub mod gbdt;
pub mod schedule;
pub mod schema;
pub mod time;
pub mod tune;

pub use error::ErrorKind;
