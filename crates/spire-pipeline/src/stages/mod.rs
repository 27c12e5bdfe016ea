//! The pipeline stages, in lifecycle order.

pub mod features;
pub mod ingest;
pub mod score;
pub mod train;
