//! Hyper-parameter tuning: random search and TPE over a declared search space, trials in
//! parallel, hopeless trials stopped early, every trial recorded.
//!
//! A trial is a set of params evaluated fold by fold by an [`Objective`] (typically the
//! mean validation AUC over cross-validation folds; higher is better). After each fold the
//! tuner compares the trial's running mean with the median of the completed trials'
//! running means at the same fold and stops it if it is worse (the median rule), so a
//! hopeless trial costs one or two fits instead of all of them.
//!
//! Trials run in batches of `parallel`; a batch is proposed from the trials completed
//! before it, so results do not depend on the thread count. A family warm-starts by
//! passing the trials of earlier members (one study each, see [`tune`]): TPE then proposes
//! from their good region from the first batch on. Scores of different members are not
//! comparable (one segment's best AUC may be another's worst), so TPE sees every study's
//! scores as rank quantiles within that study, and the pruning median uses the current
//! study's trials only.

mod tpe;

use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use spire_core::tune::{Dist, Sampler, SearchSpace, TuneParams};

use crate::error::MlError;

/// Params as a JSON object (what [`crate::algorithms::estimator`] takes).
pub type ParamMap = serde_json::Map<String, serde_json::Value>;

/// What is tuned: a score per fold for given params (higher is better).
///
/// Contract: `evaluate_fold` is deterministic for the same params and fold, may be called
/// from several threads at once, and returns an error (not a NaN) when the params cannot
/// be evaluated; such a trial is recorded as failed and the search goes on.
pub trait Objective: Sync {
    /// Number of folds a complete trial evaluates (`>= 1`).
    fn folds(&self) -> usize;
    /// The score of `params` on fold `fold`.
    fn evaluate_fold(&self, params: &ParamMap, fold: usize) -> Result<f64, MlError>;
}

/// How a trial ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum TrialState {
    /// Every fold was evaluated.
    Complete,
    /// Stopped early by the median rule after `folds` folds.
    Pruned,
    /// The objective failed.
    Failed {
        /// The error.
        error: String,
    },
}

/// One evaluated set of params.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// 0-based trial number.
    pub number: usize,
    /// The params tried.
    pub params: ParamMap,
    /// Per-fold scores evaluated.
    pub fold_values: Vec<f64>,
    /// Mean of `fold_values` (for a complete trial, its score).
    pub value: Option<f64>,
    /// How it ended.
    #[serde(flatten)]
    pub state: TrialState,
}

/// Every trial and the best complete one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneResult {
    /// All trials in order.
    pub trials: Vec<Trial>,
    /// Index of the best complete trial.
    pub best: usize,
}

impl TuneResult {
    /// The best complete trial.
    pub fn best(&self) -> &Trial {
        &self.trials[self.best]
    }

    /// The best score reached within the first `n` trials (for warm-start comparisons).
    pub fn best_within(&self, n: usize) -> Option<f64> {
        self.trials
            .iter()
            .take(n)
            .filter(|t| t.state == TrialState::Complete)
            .filter_map(|t| t.value)
            .max_by(f64::total_cmp)
    }
}

/// Runs the search. `warm_start` holds earlier studies (e.g. one per earlier family member):
/// their trials inform TPE, ranked within their own study, but are not re-evaluated,
/// returned or used for pruning.
///
/// Fails on invalid params or space, and when no trial completes (the last error is named).
pub fn tune(
    space: &SearchSpace,
    params: &TuneParams,
    objective: &dyn Objective,
    warm_start: &[&[Trial]],
) -> Result<TuneResult, MlError> {
    let bad = |message: String| MlError::Params {
        algorithm: "tuning".into(),
        message,
    };
    params.validate().map_err(bad)?;
    space.validate().map_err(bad)?;
    let folds = objective.folds().max(1);
    let mut trials: Vec<Trial> = Vec::with_capacity(params.trials);
    while trials.len() < params.trials {
        let start = trials.len();
        let batch = params.parallel.min(params.trials - start);
        // Proposals and the pruning reference come from trials completed before the batch.
        let completed: Vec<&Trial> = trials
            .iter()
            .filter(|t| t.state == TrialState::Complete && t.value.is_some())
            .collect();
        let mut observations: Vec<(&ParamMap, f64)> = Vec::new();
        for study in warm_start.iter().copied().chain([trials.as_slice()]) {
            observations.extend(rank_quantiles(study));
        }
        let candidates: Vec<ParamMap> = (start..start + batch)
            .map(|number| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(
                    params.seed ^ (number as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                );
                let use_tpe = params.sampler == Sampler::Tpe
                    && observations.len() >= params.startup_trials.min(params.trials);
                let proposed = if use_tpe {
                    tpe::propose(space, &observations, &mut rng)
                } else {
                    None
                };
                let _: u64 = rng.random(); // keep streams distinct from the uniform fallback
                proposed.unwrap_or_else(|| sample_uniform(space, &mut rng))
            })
            .collect();
        let medians: Vec<Option<f64>> = (0..folds)
            .map(|f| running_median(&completed, f, params.startup_trials))
            .collect();
        let evaluated: Vec<Trial> = candidates
            .into_par_iter()
            .enumerate()
            .map(|(i, p)| run_trial(start + i, p, objective, folds, params.prune, &medians))
            .collect();
        trials.extend(evaluated);
    }
    let best = trials
        .iter()
        .enumerate()
        .filter(|(_, t)| t.state == TrialState::Complete)
        .filter_map(|(i, t)| t.value.map(|v| (i, v)))
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(i, _)| i);
    match best {
        Some(best) => Ok(TuneResult { trials, best }),
        None => {
            let last = trials.iter().rev().find_map(|t| match &t.state {
                TrialState::Failed { error } => Some(error.clone()),
                _ => None,
            });
            Err(MlError::Degenerate(format!(
                "no tuning trial completed{}",
                last.map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            )))
        }
    }
}

/// A uniform draw of every parameter (log-uniform on the log scale; integers and choices
/// with equal probability).
fn sample_uniform(space: &SearchSpace, rng: &mut impl Rng) -> ParamMap {
    space
        .0
        .iter()
        .map(|(name, d)| {
            let (lo, hi) = d.internal_range();
            let x = match d {
                Dist::Int(_) | Dist::Choice(_) => rng.random_range(lo - 0.5..hi + 0.5),
                _ => rng.random_range(lo..=hi),
            };
            (name.clone(), d.from_internal(x))
        })
        .collect()
}

/// The median over `completed` of the mean of their first `fold + 1` fold values, once at
/// least `min_trials` trials have that many folds.
/// The complete trials of one study with their score's rank quantile in it: the best gets
/// 1, the worst `1/n` (ties keep trial order), so studies of different scales mix.
fn rank_quantiles(study: &[Trial]) -> Vec<(&ParamMap, f64)> {
    let mut done: Vec<(&ParamMap, f64)> = study
        .iter()
        .filter(|t| t.state == TrialState::Complete)
        .filter_map(|t| t.value.map(|v| (&t.params, v)))
        .collect();
    done.sort_by(|a, b| a.1.total_cmp(&b.1));
    let n = done.len() as f64;
    done.into_iter()
        .enumerate()
        .map(|(i, (p, _))| (p, (i + 1) as f64 / n))
        .collect()
}

fn running_median(completed: &[&Trial], fold: usize, min_trials: usize) -> Option<f64> {
    let mut means: Vec<f64> = completed
        .iter()
        .filter(|t| t.fold_values.len() > fold)
        .map(|t| t.fold_values[..=fold].iter().sum::<f64>() / (fold + 1) as f64)
        .collect();
    if means.len() < min_trials.max(1) {
        return None;
    }
    means.sort_by(f64::total_cmp);
    let n = means.len();
    Some(if n % 2 == 1 {
        means[n / 2]
    } else {
        0.5 * (means[n / 2 - 1] + means[n / 2])
    })
}

fn run_trial(
    number: usize,
    params: ParamMap,
    objective: &dyn Objective,
    folds: usize,
    prune: bool,
    medians: &[Option<f64>],
) -> Trial {
    let mut values = Vec::with_capacity(folds);
    for (f, median) in medians.iter().enumerate().take(folds) {
        match objective.evaluate_fold(&params, f) {
            Ok(v) if v.is_finite() => values.push(v),
            Ok(v) => {
                return Trial {
                    number,
                    params,
                    value: None,
                    fold_values: values,
                    state: TrialState::Failed {
                        error: format!("fold {f} scored {v}"),
                    },
                }
            }
            Err(e) => {
                return Trial {
                    number,
                    params,
                    value: None,
                    fold_values: values,
                    state: TrialState::Failed {
                        error: e.to_string(),
                    },
                }
            }
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let last = f + 1 == folds;
        if prune && !last && median.is_some_and(|m| mean < m) {
            return Trial {
                number,
                params,
                value: Some(mean),
                fold_values: values,
                state: TrialState::Pruned,
            };
        }
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    Trial {
        number,
        params,
        value: Some(mean),
        fold_values: values,
        state: TrialState::Complete,
    }
}

#[cfg(test)]
mod tests;
