//! The Tree-structured Parzen Estimator sampler (Bergstra et al., 2011), per parameter.
//!
//! Observed trials are split into the best `γ` fraction ("good") and the rest ("bad"). For
//! each parameter, a Parzen density is fitted to each group in the parameter's internal
//! coordinate (log scale for `log_uniform`, index for `choice`), each with a broad prior
//! component; candidates are drawn from the good density and the one maximising
//! `Σ log l(x) − log g(x)` is proposed.

use rand::Rng;

use super::{Dist, SearchSpace};

/// Share of observations counted as good.
const GAMMA: f64 = 0.25;
/// At most this many good observations.
const MAX_GOOD: usize = 25;
/// Candidates drawn from the good density per proposal.
const CANDIDATES: usize = 24;

/// A Parzen estimator over one internal coordinate: Gaussian components plus a prior.
struct Parzen {
    mus: Vec<f64>,
    sigmas: Vec<f64>,
    lo: f64,
    hi: f64,
}

impl Parzen {
    fn new(mut points: Vec<f64>, lo: f64, hi: f64) -> Parzen {
        let range = (hi - lo).max(f64::MIN_POSITIVE);
        // The prior: a broad Gaussian over the middle of the range.
        points.sort_by(f64::total_cmp);
        let mut mus = vec![0.5 * (lo + hi)];
        let mut sigmas = vec![range];
        let n = points.len();
        let min_sigma = range / (100f64).min(1.0 + n as f64);
        for (i, &x) in points.iter().enumerate() {
            let left = if i > 0 { x - points[i - 1] } else { x - lo };
            let right = if i + 1 < n { points[i + 1] - x } else { hi - x };
            mus.push(x);
            sigmas.push(left.max(right).clamp(min_sigma, range));
        }
        Parzen {
            mus,
            sigmas,
            lo,
            hi,
        }
    }

    fn log_density(&self, x: f64) -> f64 {
        let k = self.mus.len() as f64;
        let p: f64 = self
            .mus
            .iter()
            .zip(&self.sigmas)
            .map(|(m, s)| {
                let z = (x - m) / s;
                (-0.5 * z * z).exp() / (s * (2.0 * std::f64::consts::PI).sqrt())
            })
            .sum::<f64>()
            / k;
        p.max(1e-300).ln()
    }

    fn sample(&self, rng: &mut impl Rng) -> f64 {
        let i = rng.random_range(0..self.mus.len());
        // Box–Muller: a standard normal from two uniforms.
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        (self.mus[i] + self.sigmas[i] * z).clamp(self.lo, self.hi)
    }
}

/// Category frequencies with a +1 prior.
struct Categorical {
    log_p: Vec<f64>,
}

impl Categorical {
    fn new(points: &[f64], k: usize) -> Categorical {
        let mut counts = vec![1.0; k];
        for &p in points {
            if let Some(c) = counts.get_mut(p.round() as usize) {
                *c += 1.0;
            }
        }
        let total: f64 = counts.iter().sum();
        Categorical {
            log_p: counts.iter().map(|c| (c / total).ln()).collect(),
        }
    }

    fn log_density(&self, x: f64) -> f64 {
        self.log_p
            .get(x.round() as usize)
            .copied()
            .unwrap_or(f64::NEG_INFINITY)
    }

    fn sample(&self, rng: &mut impl Rng) -> f64 {
        let u: f64 = rng.random();
        let mut acc = 0.0;
        for (i, lp) in self.log_p.iter().enumerate() {
            acc += lp.exp();
            if u < acc {
                return i as f64;
            }
        }
        (self.log_p.len() - 1) as f64
    }
}

enum Density {
    Numeric(Parzen),
    Categorical(Categorical),
}

impl Density {
    fn fit(d: &Dist, points: Vec<f64>) -> Density {
        match d {
            Dist::Choice(c) => Density::Categorical(Categorical::new(&points, c.len())),
            _ => {
                let (lo, hi) = d.internal_range();
                Density::Numeric(Parzen::new(points, lo, hi))
            }
        }
    }

    fn log_density(&self, x: f64) -> f64 {
        match self {
            Density::Numeric(p) => p.log_density(x),
            Density::Categorical(c) => c.log_density(x),
        }
    }

    fn sample(&self, rng: &mut impl Rng) -> f64 {
        match self {
            Density::Numeric(p) => p.sample(rng),
            Density::Categorical(c) => c.sample(rng),
        }
    }
}

/// Proposes the next point from `observations` (`(params, value)`, higher is better).
/// Returns `None` when there are too few observations to split (the caller samples
/// uniformly instead).
pub(crate) fn propose(
    space: &SearchSpace,
    observations: &[(&serde_json::Map<String, serde_json::Value>, f64)],
    rng: &mut impl Rng,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    if observations.len() < 2 {
        return None;
    }
    let mut sorted: Vec<&(&serde_json::Map<String, serde_json::Value>, f64)> =
        observations.iter().collect();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
    let n_good = ((GAMMA * sorted.len() as f64).ceil() as usize).clamp(1, MAX_GOOD);
    let (good, bad) = sorted.split_at(n_good.min(sorted.len() - 1));
    let mut densities = Vec::with_capacity(space.0.len());
    for (name, d) in &space.0 {
        let coords = |group: &[&(&serde_json::Map<String, serde_json::Value>, f64)]| -> Vec<f64> {
            group
                .iter()
                .filter_map(|(p, _)| p.get(name).and_then(|v| d.to_internal(v)))
                .collect()
        };
        densities.push((
            name,
            d,
            Density::fit(d, coords(good)),
            Density::fit(d, coords(bad)),
        ));
    }
    let mut best: Option<(f64, Vec<f64>)> = None;
    for _ in 0..CANDIDATES {
        let x: Vec<f64> = densities.iter().map(|(_, _, l, _)| l.sample(rng)).collect();
        let score: f64 = densities
            .iter()
            .zip(&x)
            .map(|((_, d, l, g), &xi)| {
                let xi = if d.is_categorical() { xi.round() } else { xi };
                l.log_density(xi) - g.log_density(xi)
            })
            .sum();
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, x));
        }
    }
    let (_, x) = best?;
    Some(
        densities
            .iter()
            .zip(x)
            .map(|((name, d, _, _), xi)| ((*name).clone(), d.from_internal(xi)))
            .collect(),
    )
}
