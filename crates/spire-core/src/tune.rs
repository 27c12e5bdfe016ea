//! Tuning declarations: search spaces (the distribution each tuned parameter is drawn
//! from) and tuning settings, as written in segment specs. They live here, beside the
//! configuration, so a spec is validated before anything runs; the tuner that reads them is
//! `spire_ml::tune`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One parameter's distribution, as written in a segment spec, e.g.
/// `l2 = { log_uniform = [1e-6, 1e-1] }` or `max_iter = { int = [50, 300] }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Dist {
    /// Uniform on `[low, high]`.
    Uniform([f64; 2]),
    /// Log-uniform on `[low, high]`, `0 < low < high` (for strengths and rates).
    LogUniform([f64; 2]),
    /// Uniform over the integers `low..=high`.
    Int([i64; 2]),
    /// One of the listed values (numbers, strings or booleans).
    Choice(Vec<serde_json::Value>),
}

impl Dist {
    fn validate(&self, name: &str) -> Result<(), String> {
        let bad = |why: String| format!("{name}: {why}");
        match self {
            Dist::Uniform([lo, hi]) if !(lo.is_finite() && hi.is_finite() && lo < hi) => Err(bad(
                format!("uniform needs finite low < high, got [{lo}, {hi}]"),
            )),
            Dist::LogUniform([lo, hi])
                if !(lo.is_finite() && hi.is_finite() && *lo > 0.0 && lo < hi) =>
            {
                Err(bad(format!(
                    "log_uniform needs 0 < low < high, got [{lo}, {hi}]"
                )))
            }
            Dist::Int([lo, hi]) if lo > hi => {
                Err(bad(format!("int needs low <= high, got [{lo}, {hi}]")))
            }
            Dist::Choice(v) if v.is_empty() => Err(bad("choice needs at least one value".into())),
            _ => Ok(()),
        }
    }

    /// Maps a value to the tuner's internal coordinate: the value itself, its log, or the
    /// index of a choice.
    pub fn to_internal(&self, v: &serde_json::Value) -> Option<f64> {
        match self {
            Dist::Uniform(_) => v.as_f64(),
            Dist::LogUniform(_) => v.as_f64().filter(|x| *x > 0.0).map(f64::ln),
            Dist::Int(_) => v.as_f64(),
            Dist::Choice(c) => c.iter().position(|x| x == v).map(|i| i as f64),
        }
    }

    /// The internal coordinate's range (inclusive).
    pub fn internal_range(&self) -> (f64, f64) {
        match self {
            Dist::Uniform([lo, hi]) => (*lo, *hi),
            Dist::LogUniform([lo, hi]) => (lo.ln(), hi.ln()),
            Dist::Int([lo, hi]) => (*lo as f64, *hi as f64),
            Dist::Choice(c) => (0.0, (c.len() - 1) as f64),
        }
    }

    /// The value for an internal coordinate (clamped into range; integers and choices rounded).
    pub fn from_internal(&self, x: f64) -> serde_json::Value {
        let (lo, hi) = self.internal_range();
        let x = x.clamp(lo, hi);
        match self {
            Dist::Uniform(_) => serde_json::json!(x),
            Dist::LogUniform(_) => serde_json::json!(x.exp()),
            Dist::Int(_) => serde_json::json!(x.round() as i64),
            Dist::Choice(c) => c[(x.round() as usize).min(c.len() - 1)].clone(),
        }
    }

    /// Whether the internal coordinate is a category index (no notion of distance).
    pub fn is_categorical(&self) -> bool {
        matches!(self, Dist::Choice(_))
    }
}

/// Named distributions, one per tuned parameter (kept sorted by name).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SearchSpace(pub BTreeMap<String, Dist>);

impl SearchSpace {
    /// Checks every distribution, naming the first bad parameter.
    pub fn validate(&self) -> Result<(), String> {
        if self.0.is_empty() {
            return Err("no parameter to tune".into());
        }
        for (name, d) in &self.0 {
            d.validate(name)?;
        }
        Ok(())
    }

    /// Parses the command-line form `name=kind:low:high,...` (`kind` one of `uniform`,
    /// `log_uniform`, `int`) or `name=choice:a|b|c`.
    pub fn parse(text: &str) -> Result<SearchSpace, String> {
        let bad = |m: String| m;
        let mut space = BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, spec) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("{part:?} is not name=kind:...")))?;
            let mut it = spec.split(':');
            let kind = it.next().unwrap_or_default();
            let rest: Vec<&str> = it.collect();
            let nums = |what: &str| -> Result<[f64; 2], String> {
                match rest.as_slice() {
                    [a, b] => Ok([
                        a.parse()
                            .map_err(|_| bad(format!("{name}: {a:?} is not a number")))?,
                        b.parse()
                            .map_err(|_| bad(format!("{name}: {b:?} is not a number")))?,
                    ]),
                    _ => Err(bad(format!("{name}: {what} needs low:high"))),
                }
            };
            let d = match kind {
                "uniform" => Dist::Uniform(nums("uniform")?),
                "log_uniform" | "loguniform" => Dist::LogUniform(nums("log_uniform")?),
                "int" => {
                    let [a, b] = nums("int")?;
                    Dist::Int([a as i64, b as i64])
                }
                "choice" => Dist::Choice(
                    rest.join(":")
                        .split('|')
                        .map(|v| match serde_json::from_str::<serde_json::Value>(v) {
                            Ok(j @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                                j
                            }
                            _ => serde_json::Value::String(v.to_string()),
                        })
                        .collect(),
                ),
                other => {
                    return Err(bad(format!(
                        "{name}: unknown distribution {other:?} (uniform, log_uniform, int, choice)"
                    )))
                }
            };
            space.insert(name.trim().to_string(), d);
        }
        let s = SearchSpace(space);
        s.validate()?;
        Ok(s)
    }
}

/// How candidates are proposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampler {
    /// Independent uniform draws.
    Random,
    /// Tree-structured Parzen Estimator after `startup_trials` random ones.
    Tpe,
}

/// Tuning settings, as written in a spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TuneParams {
    /// Trials to run, `1..=10000`. Default `20`.
    pub trials: usize,
    /// Sampler. Default `tpe`.
    pub sampler: Sampler,
    /// Random trials before TPE takes over, `>= 1`. Default `6`.
    pub startup_trials: usize,
    /// Trials evaluated at once, `1..=64`. Default `2`.
    pub parallel: usize,
    /// Stop trials whose running mean falls below the median of completed ones. Default
    /// `true`.
    pub prune: bool,
    /// Seed of the proposals.
    pub seed: u64,
}

impl Default for TuneParams {
    fn default() -> Self {
        TuneParams {
            trials: 20,
            sampler: Sampler::Tpe,
            startup_trials: 6,
            parallel: 2,
            prune: true,
            seed: 0,
        }
    }
}

impl TuneParams {
    /// Checks the ranges, naming the first bad field, e.g. `trials = 0: must be in 1..=10000`.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=10_000).contains(&self.trials) {
            return Err(format!("trials = {}: must be in 1..=10000", self.trials));
        }
        if self.startup_trials == 0 {
            return Err("startup_trials = 0: must be >= 1".into());
        }
        if !(1..=64).contains(&self.parallel) {
            return Err(format!("parallel = {}: must be in 1..=64", self.parallel));
        }
        Ok(())
    }
}
