//! Hyper-parameters of gradient-boosted trees (the `gbdt` algorithm), and their validation.
//!
//! They live here, beside the configuration, so a segment spec with `algorithm = "gbdt"` is
//! validated when the project loads, before anything runs; the estimator that fits them is
//! `spire_ml::gbdt`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Largest accepted `n_estimators`.
pub const MAX_ESTIMATORS: usize = 100_000;

/// The keys [`GbdtParams`] accepts, aliases included (e.g. to list them in a message).
pub const PARAM_NAMES: [&str; 16] = [
    "n_estimators",
    "iterations",
    "learning_rate",
    "max_depth",
    "max_leaves",
    "growth",
    "min_leaf_weight",
    "l1",
    "l2",
    "gamma",
    "subsample",
    "colsample",
    "colsample_bytree",
    "max_bins",
    "seed",
    "nthreads",
];

/// How a tree is grown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Growth {
    /// Level by level, every node of a level before the next (XGBoost's `depthwise`): trees
    /// are balanced and bounded by `max_depth`. The default: on Spire's quality benchmarks it
    /// matches LightGBM's AUC with fewer knobs.
    #[default]
    LevelWise,
    /// Always the leaf with the largest gain next (LightGBM's and XGBoost's `lossguide`),
    /// bounded by `max_leaves` (and `max_depth`). Without a minimum row count per leaf it
    /// can overfit: on bank_marketing, 31 leaves scored 0.009 AUC below LightGBM's
    /// (bench/README.md, "quality").
    LeafWise,
}

impl fmt::Display for Growth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Growth::LevelWise => "level_wise",
            Growth::LeafWise => "leaf_wise",
        })
    }
}

/// Hyper-parameters of a gradient-boosted trees binary classifier (log loss), as written in a
/// segment spec (`[segment.model.params]`) or on the command line (`--params`).
///
/// Each of the `n_estimators` trees fits the gradient of the log loss of the ensemble so far
/// (second-order, as XGBoost and LightGBM do) on histogram bins of the features; a leaf's
/// value is `-G / (H + l2)` (soft-thresholded by `l1`) times `learning_rate`. Missing values
/// (NaN) are learned: each split sends them to the side that lowers the loss most.
///
/// Unset fields take their defaults when deserializing; unknown fields are rejected so a typo
/// in a spec fails loudly. Call [`GbdtParams::validate`] before fitting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GbdtParams {
    /// Number of trees (boosting rounds), `1..=100000`. Default `100`. Also accepted as
    /// `iterations`.
    #[serde(alias = "iterations")]
    pub n_estimators: usize,
    /// Shrinkage of every leaf value, in `(0, 1]`. Default `0.1`.
    pub learning_rate: f64,
    /// Maximum depth of a tree, `1..=64`. Default `5` (up to 32 leaves).
    pub max_depth: usize,
    /// Maximum leaves of a tree, `0` (no limit beyond `max_depth`) or `2..=131072`.
    /// Default `0`; set it with `growth = "leaf_wise"`.
    pub max_leaves: usize,
    /// How trees grow: `level_wise` (default) or `leaf_wise`.
    pub growth: Growth,
    /// Minimum sum of hessians (`p·(1-p)` per row) in a leaf, in `[0, 1e6]`. Default `1`.
    pub min_leaf_weight: f64,
    /// L1 penalty on leaf values, in `[0, 1e6]`. Default `0`.
    pub l1: f64,
    /// L2 penalty on leaf values, in `[0, 1e6]`. Default `1`.
    pub l2: f64,
    /// Minimum loss reduction to make a split, in `[0, 1e6]`. Default `0`.
    pub gamma: f64,
    /// Share of rows sampled (without replacement) for each tree, in `(0, 1]`. Default `1`.
    pub subsample: f64,
    /// Share of feature columns sampled for each tree, in `(0, 1]`. Default `1`. Also
    /// accepted as `colsample_bytree`.
    #[serde(alias = "colsample_bytree")]
    pub colsample: f64,
    /// Histogram bins per feature, `2..=4096`. Default `256`.
    pub max_bins: usize,
    /// Seed of the row and column sampling. Default `0`. Fits are deterministic for a seed.
    pub seed: u64,
    /// Threads, `0..=1024`; `0` uses every core. Default `0`. Results do not depend on it.
    pub nthreads: usize,
}

impl Default for GbdtParams {
    fn default() -> Self {
        GbdtParams {
            n_estimators: 100,
            learning_rate: 0.1,
            max_depth: 5,
            max_leaves: 0,
            growth: Growth::LevelWise,
            min_leaf_weight: 1.0,
            l1: 0.0,
            l2: 1.0,
            gamma: 0.0,
            subsample: 1.0,
            colsample: 1.0,
            max_bins: 256,
            seed: 0,
            nthreads: 0,
        }
    }
}

/// A hyper-parameter outside its allowed range: `param = value: must be allowed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamError {
    /// The parameter's name, as spelled in the params struct.
    pub param: &'static str,
    /// The rejected value, formatted for display.
    pub value: String,
    /// The allowed range, e.g. `"in (0, 1]"`.
    pub allowed: &'static str,
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = {}: must be {}",
            self.param, self.value, self.allowed
        )
    }
}

impl std::error::Error for ParamError {}

fn bad(param: &'static str, value: impl fmt::Display, allowed: &'static str) -> ParamError {
    ParamError {
        param,
        value: value.to_string(),
        allowed,
    }
}

/// `Ok` when `v` is in `(0, 1]`.
fn unit_interval(param: &'static str, v: f64) -> Result<(), ParamError> {
    if v > 0.0 && v <= 1.0 {
        Ok(())
    } else {
        Err(bad(param, v, "in (0, 1]"))
    }
}

/// `Ok` when `v` is in `[0, 1e6]`.
fn penalty(param: &'static str, v: f64) -> Result<(), ParamError> {
    if (0.0..=1e6).contains(&v) {
        Ok(())
    } else {
        Err(bad(param, v, "in [0, 1e6]"))
    }
}

impl GbdtParams {
    /// Checks every parameter and returns the checked params, or a [`ParamError`] naming the
    /// first invalid parameter (in field order) and its allowed range, e.g.
    /// `learning_rate = 0: must be in (0, 1]`.
    pub fn validate(&self) -> Result<ValidGbdtParams, ParamError> {
        if !(1..=MAX_ESTIMATORS).contains(&self.n_estimators) {
            return Err(bad("n_estimators", self.n_estimators, "in 1..=100000"));
        }
        unit_interval("learning_rate", self.learning_rate)?;
        if !(1..=64).contains(&self.max_depth) {
            return Err(bad("max_depth", self.max_depth, "in 1..=64"));
        }
        if self.max_leaves == 1 || self.max_leaves > 131_072 {
            return Err(bad(
                "max_leaves",
                self.max_leaves,
                "0 (no limit) or in 2..=131072",
            ));
        }
        penalty("min_leaf_weight", self.min_leaf_weight)?;
        penalty("l1", self.l1)?;
        penalty("l2", self.l2)?;
        penalty("gamma", self.gamma)?;
        unit_interval("subsample", self.subsample)?;
        unit_interval("colsample", self.colsample)?;
        if !(2..=4096).contains(&self.max_bins) {
            return Err(bad("max_bins", self.max_bins, "in 2..=4096"));
        }
        if self.nthreads > 1024 {
            return Err(bad(
                "nthreads",
                self.nthreads,
                "in 0..=1024 (0: every core)",
            ));
        }
        Ok(ValidGbdtParams(self.clone()))
    }
}

/// GBDT params that passed [`GbdtParams::validate`]; the only way to fit a GBDT model.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidGbdtParams(GbdtParams);

impl ValidGbdtParams {
    /// The validated params.
    pub fn params(&self) -> &GbdtParams {
        &self.0
    }
}

impl TryFrom<GbdtParams> for ValidGbdtParams {
    type Error = ParamError;

    fn try_from(p: GbdtParams) -> Result<Self, ParamError> {
        p.validate()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn msg(f: impl FnOnce(&mut GbdtParams)) -> String {
        let mut p = GbdtParams::default();
        f(&mut p);
        p.validate().unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_valid() {
        let v = GbdtParams::default().validate().unwrap();
        assert_eq!(v.params().n_estimators, 100);
        assert_eq!(v.params().growth, Growth::LevelWise);
    }

    #[test]
    fn messages_name_param_and_range() {
        assert_eq!(
            msg(|p| p.n_estimators = 0),
            "n_estimators = 0: must be in 1..=100000"
        );
        assert_eq!(
            msg(|p| p.learning_rate = 0.0),
            "learning_rate = 0: must be in (0, 1]"
        );
        assert_eq!(
            msg(|p| p.learning_rate = f64::NAN),
            "learning_rate = NaN: must be in (0, 1]"
        );
        assert_eq!(msg(|p| p.max_depth = 0), "max_depth = 0: must be in 1..=64");
        assert_eq!(
            msg(|p| p.max_leaves = 1),
            "max_leaves = 1: must be 0 (no limit) or in 2..=131072"
        );
        assert_eq!(
            msg(|p| p.min_leaf_weight = -1.0),
            "min_leaf_weight = -1: must be in [0, 1e6]"
        );
        assert_eq!(
            msg(|p| p.l2 = f64::INFINITY),
            "l2 = inf: must be in [0, 1e6]"
        );
        assert_eq!(
            msg(|p| p.subsample = 1.5),
            "subsample = 1.5: must be in (0, 1]"
        );
        assert_eq!(
            msg(|p| p.colsample = 0.0),
            "colsample = 0: must be in (0, 1]"
        );
        assert_eq!(msg(|p| p.max_bins = 1), "max_bins = 1: must be in 2..=4096");
        assert_eq!(
            msg(|p| p.nthreads = 5000),
            "nthreads = 5000: must be in 0..=1024 (0: every core)"
        );
        // The first invalid parameter (in field order) is reported.
        assert!(msg(|p| {
            p.learning_rate = 2.0;
            p.l2 = -1.0
        })
        .starts_with("learning_rate"));
    }

    #[test]
    fn param_names_cover_every_field() {
        let v = serde_json::to_value(GbdtParams::default()).unwrap();
        let fields: Vec<&String> = v.as_object().unwrap().keys().collect();
        for f in &fields {
            assert!(PARAM_NAMES.contains(&f.as_str()), "{f} is not listed");
        }
        assert_eq!(fields.len() + 2, PARAM_NAMES.len(), "two aliases");
    }

    #[test]
    fn serde_defaults_aliases_and_typos() {
        let p: GbdtParams = serde_json::from_str(
            r#"{"iterations": 50, "colsample_bytree": 0.5, "growth": "leaf_wise"}"#,
        )
        .unwrap();
        assert_eq!(p.n_estimators, 50);
        assert_eq!(p.colsample, 0.5);
        assert_eq!(p.growth, Growth::LeafWise);
        assert_eq!(p.learning_rate, 0.1);
        let typo = serde_json::from_str::<GbdtParams>(r#"{"learning_rat": 0.5}"#);
        assert!(typo.unwrap_err().to_string().contains("learning_rat"));
        let growth = serde_json::from_str::<GbdtParams>(r#"{"growth": "sideways"}"#);
        assert!(growth.unwrap_err().to_string().contains("level_wise"));
    }
}
