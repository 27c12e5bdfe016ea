//! Source implementations. Register new kinds in [`crate::source::build_source`].

pub mod file;
pub mod kafka;
pub mod kinesis;
pub mod synthetic;
