//! Integration tests of spire-ml through its public API only.
#![allow(clippy::unwrap_used, missing_docs)]

mod artifact;
mod bank;
mod byom_lightgbm;
#[cfg(feature = "onnx")]
mod byom_onnx;
mod cv;
mod eval;
mod kmeans;
mod metrics;
mod split;
