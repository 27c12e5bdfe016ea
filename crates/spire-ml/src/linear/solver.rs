//! Newton's method (IRLS) for the L2-penalised logistic loss.
//!
//! Parameters are laid out as `θ = [w_0, …, w_{d-1}, b]` (the intercept `b` only when fitted).
//! Gradient and Hessian are accumulated over fixed row chunks in parallel and summed in chunk
//! order, so a fit is bit-for-bit reproducible whatever the thread count.

use rayon::prelude::*;

use crate::error::MlError;
use crate::linalg::cholesky_solve;
use crate::matrix::Matrix;

/// Armijo sufficient-decrease constant of the backtracking line search.
const ARMIJO: f64 = 1e-4;
/// Step halvings before the line search gives up (step `2^-60`, below f64 resolution).
const MAX_HALVINGS: usize = 60;
/// At most this many chunks, so per-chunk Hessians stay bounded in memory.
const MAX_CHUNKS: usize = 256;
/// At least this many rows per chunk, so small inputs are not split needlessly.
const MIN_CHUNK_ROWS: usize = 2048;

/// `ln(1 + e^z)` without overflow.
pub(crate) fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// The logistic function `1 / (1 + e^-z)` without overflow.
pub(crate) fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// A fitting problem: standardized (or raw) features, labels and the penalty.
pub(crate) struct Problem<'a> {
    pub x: &'a Matrix,
    pub y: &'a [bool],
    pub l2: f64,
    pub fit_intercept: bool,
}

/// Objective, gradient and (optionally) Hessian at one point.
pub(crate) struct Eval {
    pub objective: f64,
    pub gradient: Vec<f64>,
    /// Full symmetric row-major `p × p` Hessian, empty when not requested.
    pub hessian: Vec<f64>,
}

/// The solver's result.
pub(crate) struct Solution {
    pub theta: Vec<f64>,
    pub iterations: usize,
    pub converged: bool,
    pub objective: f64,
}

/// Per-chunk sums of loss, gradient and Hessian (upper triangle).
struct Partial {
    loss: f64,
    grad: Vec<f64>,
    hess: Vec<f64>,
}

impl Problem<'_> {
    /// Number of parameters: features plus the intercept if fitted.
    pub fn n_params(&self) -> usize {
        self.x.n_cols() + usize::from(self.fit_intercept)
    }

    fn chunk_rows(&self) -> usize {
        self.x.n_rows().div_ceil(MAX_CHUNKS).max(MIN_CHUNK_ROWS)
    }

    fn margin(&self, row: &[f64], theta: &[f64]) -> f64 {
        let d = row.len();
        let dot: f64 = row.iter().zip(theta).map(|(x, w)| x * w).sum();
        if self.fit_intercept {
            dot + theta[d]
        } else {
            dot
        }
    }

    /// Sums over rows `start..end`.
    fn partial(&self, start: usize, end: usize, theta: &[f64], hessian: bool) -> Partial {
        let d = self.x.n_cols();
        let p = self.n_params();
        let mut out = Partial {
            loss: 0.0,
            grad: vec![0.0; p],
            hess: if hessian {
                vec![0.0; p * p]
            } else {
                Vec::new()
            },
        };
        let mut xt = vec![1.0; p]; // [x, 1]: the last entry stays 1 for the intercept.
        for i in start..end {
            let row = self.x.row(i);
            let z = self.margin(row, theta);
            let yi = if self.y[i] { 1.0 } else { 0.0 };
            out.loss += softplus(z) - yi * z;
            xt[..d].copy_from_slice(row);
            let s = sigmoid(z);
            let r = s - yi;
            for (g, v) in out.grad.iter_mut().zip(&xt) {
                *g += r * v;
            }
            if hessian {
                let w = s * (1.0 - s);
                for a in 0..p {
                    let wa = w * xt[a];
                    if wa != 0.0 {
                        let h = &mut out.hess[a * p..(a + 1) * p];
                        for (hb, xb) in h[a..].iter_mut().zip(&xt[a..]) {
                            *hb += wa * xb;
                        }
                    }
                }
            }
        }
        out
    }

    /// Objective, gradient and optionally Hessian at `theta`.
    pub fn evaluate(&self, theta: &[f64], hessian: bool) -> Eval {
        let n = self.x.n_rows();
        let d = self.x.n_cols();
        let p = self.n_params();
        let chunk = self.chunk_rows();
        let partials: Vec<Partial> = (0..n.div_ceil(chunk))
            .into_par_iter()
            .map(|c| self.partial(c * chunk, ((c + 1) * chunk).min(n), theta, hessian))
            .collect();
        let mut loss = 0.0;
        let mut gradient = vec![0.0; p];
        let mut h = if hessian {
            vec![0.0; p * p]
        } else {
            Vec::new()
        };
        for part in &partials {
            loss += part.loss;
            gradient
                .iter_mut()
                .zip(&part.grad)
                .for_each(|(a, b)| *a += b);
            h.iter_mut().zip(&part.hess).for_each(|(a, b)| *a += b);
        }
        let inv_n = 1.0 / n as f64;
        let w = &theta[..d];
        let penalty = 0.5 * self.l2 * w.iter().map(|v| v * v).sum::<f64>();
        gradient.iter_mut().for_each(|g| *g *= inv_n);
        gradient[..d]
            .iter_mut()
            .zip(w)
            .for_each(|(g, wj)| *g += self.l2 * wj);
        if hessian {
            for a in 0..p {
                for b in a..p {
                    let v = h[a * p + b] * inv_n + if a == b && a < d { self.l2 } else { 0.0 };
                    h[a * p + b] = v;
                    h[b * p + a] = v;
                }
            }
        }
        Eval {
            objective: loss * inv_n + penalty,
            gradient,
            hessian: h,
        }
    }

    /// The objective alone (line search trials).
    fn objective(&self, theta: &[f64]) -> f64 {
        self.evaluate(theta, false).objective
    }

    /// The starting point: zero coefficients, intercept at the log-odds of the base rate.
    fn initial_theta(&self) -> Vec<f64> {
        let mut theta = vec![0.0; self.n_params()];
        if self.fit_intercept {
            let pos = self.y.iter().filter(|&&v| v).count() as f64;
            let neg = self.y.len() as f64 - pos;
            if pos > 0.0 && neg > 0.0 {
                theta[self.x.n_cols()] = (pos / neg).ln();
            }
        }
        theta
    }

    /// Minimises the objective by damped Newton steps.
    ///
    /// Stops when the largest absolute gradient component is below `tol`, when a step changes
    /// the objective by less than `tol` relative to its value, when the line search can no
    /// longer decrease the objective in f64 (a relative change of zero), or after `max_iter`
    /// steps (then `converged` is false).
    pub fn solve(&self, max_iter: usize, tol: f64) -> Result<Solution, MlError> {
        let mut theta = self.initial_theta();
        let mut ev = self.evaluate(&theta, true);
        let mut iterations = 0;
        let converged = loop {
            let gmax = ev.gradient.iter().fold(0.0_f64, |m, g| m.max(g.abs()));
            if gmax < tol {
                break true;
            }
            if iterations >= max_iter {
                break false;
            }
            let step = newton_step(&ev, self.n_params())?;
            let slope: f64 = ev.gradient.iter().zip(&step).map(|(g, s)| g * s).sum();
            let Some((trial, f_new)) = self.line_search(&theta, &step, ev.objective, slope) else {
                break true;
            };
            iterations += 1;
            let change = (ev.objective - f_new).abs();
            theta = trial;
            if change < tol * ev.objective.abs().max(f64::MIN_POSITIVE) {
                ev.objective = f_new;
                break true;
            }
            ev = self.evaluate(&theta, true);
        };
        Ok(Solution {
            theta,
            iterations,
            converged,
            objective: ev.objective,
        })
    }

    /// Backtracking (Armijo) line search along `step`; `None` if no step length decreases
    /// the objective enough.
    fn line_search(
        &self,
        theta: &[f64],
        step: &[f64],
        f0: f64,
        slope: f64,
    ) -> Option<(Vec<f64>, f64)> {
        let mut t = 1.0;
        for _ in 0..MAX_HALVINGS {
            let trial: Vec<f64> = theta.iter().zip(step).map(|(a, s)| a + t * s).collect();
            let f = self.objective(&trial);
            if f <= f0 + ARMIJO * t * slope {
                return Some((trial, f));
            }
            t *= 0.5;
        }
        None
    }
}

/// Solves `H Δ = -g`; when `H` is not numerically positive definite (e.g. `l2 = 0` with
/// collinear features) a growing ridge is added to its diagonal.
fn newton_step(ev: &Eval, p: usize) -> Result<Vec<f64>, MlError> {
    let neg_g: Vec<f64> = ev.gradient.iter().map(|g| -g).collect();
    if let Some(step) = cholesky_solve(&ev.hessian, &neg_g, p) {
        return Ok(step);
    }
    let mean_diag = (0..p).map(|i| ev.hessian[i * p + i].abs()).sum::<f64>() / p.max(1) as f64;
    let mut ridge = 1e-10 * mean_diag.max(1e-12);
    let mut h = ev.hessian.clone();
    for _ in 0..16 {
        for i in 0..p {
            h[i * p + i] = ev.hessian[i * p + i] + ridge;
        }
        if let Some(step) = cholesky_solve(&h, &neg_g, p) {
            return Ok(step);
        }
        ridge *= 10.0;
    }
    Err(MlError::Numerical(
        "the Hessian of the logistic loss is not positive definite even after damping; \
         check for constant or duplicated features, or set l2 > 0"
            .into(),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stable_link_functions() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(-800.0) >= 0.0 && sigmoid(800.0) == 1.0);
        assert!((softplus(0.0) - 2f64.ln()).abs() < 1e-15);
        assert_eq!(softplus(800.0), 800.0);
        assert!(softplus(-800.0) >= 0.0);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x = Matrix::from_rows(&[[0.5, -1.0], [1.5, 0.2], [-0.3, 0.8], [2.0, -0.5]]).unwrap();
        let y = [true, false, true, false];
        let pb = Problem {
            x: &x,
            y: &y,
            l2: 0.3,
            fit_intercept: true,
        };
        let theta = [0.2, -0.4, 0.1];
        let ev = pb.evaluate(&theta, true);
        let h = 1e-6;
        for k in 0..3 {
            let mut up = theta;
            let mut dn = theta;
            up[k] += h;
            dn[k] -= h;
            let fd = (pb.objective(&up) - pb.objective(&dn)) / (2.0 * h);
            assert!((fd - ev.gradient[k]).abs() < 1e-8, "k={k}");
            let gu = pb.evaluate(&up, false).gradient;
            let gd = pb.evaluate(&dn, false).gradient;
            for j in 0..3 {
                let fdh = (gu[j] - gd[j]) / (2.0 * h);
                assert!((fdh - ev.hessian[j * 3 + k]).abs() < 1e-7, "h[{j},{k}]");
            }
        }
    }

    #[test]
    fn collinear_without_penalty_is_damped() {
        let x = Matrix::from_rows(&[[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]]).unwrap();
        let y = [false, true, false, true];
        let pb = Problem {
            x: &x,
            y: &y,
            l2: 0.0,
            fit_intercept: true,
        };
        let sol = pb.solve(100, 1e-10).unwrap();
        assert!(sol.converged);
        // The duplicated column shares the weight of the single-column fit.
        let x1 = Matrix::from_rows(&[[1.0], [2.0], [3.0], [4.0]]).unwrap();
        let single = Problem { x: &x1, ..pb }.solve(100, 1e-10).unwrap();
        assert!((sol.theta[0] + sol.theta[1] - single.theta[0]).abs() < 1e-6);
        assert!(
            (sol.theta[0] - sol.theta[1]).abs() < 1e-4,
            "{:?}",
            sol.theta
        );
    }
}
