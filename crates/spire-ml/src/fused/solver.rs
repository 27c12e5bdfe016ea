//! Per-model optimiser state machines driven by shared passes.
//!
//! Every member of a family is an independent optimisation problem; what they share is the
//! expensive part, evaluating loss and gradient over all rows. So each member is a small
//! state machine that *asks* for the point it wants evaluated next and is *told* the
//! result; the driver gathers every member's point into one batch, runs one fused pass, and
//! hands the results back. Members that have converged stop asking and drop out of the
//! products; members whose line search backtracks simply ask again with a shorter step.
//!
//! - Smooth members (no L1 term) run L-BFGS with a backtracking Armijo line search
//!   (quadratic interpolation).
//! - Members with an L1 term run FISTA (accelerated proximal gradient) with a step of `1/L`,
//!   `L` the global curvature bound, and adaptive restart.

use std::collections::VecDeque;

/// Armijo sufficient-decrease constant.
const ARMIJO: f64 = 1e-4;
/// Backtracking steps before a line search gives up (the objective is then flat to the
/// precision of the pass: the member is reported as stalled).
const MAX_BACKTRACKS: usize = 25;

/// Why a member stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The largest gradient component (or prox-gradient mapping) fell below `tol`.
    Converged,
    /// The objective stopped decreasing measurably (relative change below `ftol`, or the
    /// line search could not decrease it at the precision of the `f32` pass).
    Stalled,
    /// `max_iter` iterations were used up.
    MaxIter,
}

impl StopReason {
    /// Whether the result is a (numerically) optimal solution.
    pub fn is_converged(self) -> bool {
        matches!(self, StopReason::Converged | StopReason::Stalled)
    }
}

/// Problem constants of one member.
#[derive(Clone, Debug)]
pub(crate) struct MemberProblem {
    /// Number of coefficients that are penalised (the features; the intercept is last and free).
    pub d: usize,
    /// Total parameters (`d` + intercept).
    pub p: usize,
    pub l2: f64,
    pub l1: f64,
    pub tol: f64,
    pub ftol: f64,
    pub max_iter: usize,
    pub history: usize,
    /// Step size bound for the proximal method: curvature bound of the smooth part.
    pub lipschitz: f64,
}

impl MemberProblem {
    /// Adds the L2 term to a mean loss and its gradient: returns the smooth objective.
    fn smooth(&self, w: &[f64], loss: f64, grad: &mut [f64]) -> f64 {
        let mut sq = 0.0;
        for k in 0..self.d {
            sq += w[k] * w[k];
            grad[k] += self.l2 * w[k];
        }
        loss + 0.5 * self.l2 * sq
    }

    fn l1_norm(&self, w: &[f64]) -> f64 {
        w[..self.d].iter().map(|v| v.abs()).sum()
    }
}

/// The outcome of one member.
#[derive(Clone, Debug)]
pub(crate) struct MemberResult {
    pub w: Vec<f64>,
    pub objective: f64,
    pub iterations: usize,
    pub stop: StopReason,
}

/// One member's optimiser.
pub(crate) enum MemberSolver {
    Lbfgs(Lbfgs),
    Prox(Prox),
}

impl MemberSolver {
    /// A solver for `problem` starting at `w0` (length `p`).
    pub fn new(problem: MemberProblem, w0: Vec<f64>) -> MemberSolver {
        if problem.l1 > 0.0 {
            MemberSolver::Prox(Prox::new(problem, w0))
        } else {
            MemberSolver::Lbfgs(Lbfgs::new(problem, w0))
        }
    }

    /// The point to evaluate next, or `None` once finished.
    pub fn ask(&self) -> Option<&[f64]> {
        match self {
            MemberSolver::Lbfgs(s) => s.ask(),
            MemberSolver::Prox(s) => s.ask(),
        }
    }

    /// Receives the mean loss and its gradient at the point last asked for.
    pub fn tell(&mut self, loss: f64, grad: &[f64]) {
        match self {
            MemberSolver::Lbfgs(s) => s.tell(loss, grad),
            MemberSolver::Prox(s) => s.tell(loss, grad),
        }
    }

    /// The final solution; for proximal members `needs_final_eval` says whether the
    /// objective at the solution still has to be computed.
    pub fn result(&self) -> MemberResult {
        match self {
            MemberSolver::Lbfgs(s) => s.result(),
            MemberSolver::Prox(s) => s.result(),
        }
    }

    /// The solution whose objective is not known yet (proximal members evaluate at the
    /// extrapolated point, not at the solution).
    pub fn needs_final_eval(&self) -> Option<&[f64]> {
        match self {
            MemberSolver::Lbfgs(_) => None,
            MemberSolver::Prox(s) => Some(&s.x),
        }
    }

    /// Records the objective at the solution from a final evaluation.
    pub fn set_final(&mut self, loss: f64, grad: &[f64]) {
        if let MemberSolver::Prox(s) = self {
            let mut g = grad.to_vec();
            let smooth = s.problem.smooth(&s.x, loss, &mut g);
            s.final_objective = Some(smooth + s.problem.l1 * s.problem.l1_norm(&s.x));
        }
    }
}

/// L-BFGS for a smooth (L2-only) member.
pub(crate) struct Lbfgs {
    problem: MemberProblem,
    /// Accepted iterate and its objective and gradient (after the first evaluation).
    w: Vec<f64>,
    f: f64,
    g: Vec<f64>,
    /// Search direction and current trial step.
    dir: Vec<f64>,
    alpha: f64,
    gd: f64,
    backtracks: usize,
    trial: Vec<f64>,
    started: bool,
    s_hist: VecDeque<Vec<f64>>,
    y_hist: VecDeque<Vec<f64>>,
    iterations: usize,
    stop: Option<StopReason>,
}

impl Lbfgs {
    fn new(problem: MemberProblem, w0: Vec<f64>) -> Lbfgs {
        let p = problem.p;
        Lbfgs {
            problem,
            w: w0.clone(),
            f: f64::INFINITY,
            g: vec![0.0; p],
            dir: vec![0.0; p],
            alpha: 1.0,
            gd: 0.0,
            backtracks: 0,
            trial: w0,
            started: false,
            s_hist: VecDeque::new(),
            y_hist: VecDeque::new(),
            iterations: 0,
            stop: None,
        }
    }

    fn ask(&self) -> Option<&[f64]> {
        if self.stop.is_some() {
            None
        } else {
            Some(&self.trial)
        }
    }

    fn tell(&mut self, loss: f64, grad: &[f64]) {
        let mut g = grad.to_vec();
        let f = self.problem.smooth(&self.trial, loss, &mut g);
        if !self.started {
            self.started = true;
            self.f = f;
            self.g = g;
            self.w.clone_from(&self.trial);
            if self.gradient_small() {
                self.stop = Some(StopReason::Converged);
            } else {
                self.new_direction();
            }
            return;
        }
        let accepted = f.is_finite() && f <= self.f + ARMIJO * self.alpha * self.gd;
        if !accepted {
            self.backtracks += 1;
            if self.backtracks > MAX_BACKTRACKS {
                self.stop = Some(StopReason::Stalled);
                return;
            }
            let next = if f.is_finite() {
                // Minimiser of the quadratic through f(0), f'(0) and f(alpha).
                let denom = 2.0 * (f - self.f - self.gd * self.alpha);
                let q = -self.gd * self.alpha * self.alpha / denom;
                q.clamp(0.1 * self.alpha, 0.5 * self.alpha)
            } else {
                0.1 * self.alpha
            };
            self.alpha = next;
            self.set_trial();
            return;
        }
        // Accept the step and update the curvature history.
        let s: Vec<f64> = self.trial.iter().zip(&self.w).map(|(t, w)| t - w).collect();
        let y: Vec<f64> = g.iter().zip(&self.g).map(|(a, b)| a - b).collect();
        let sy: f64 = s.iter().zip(&y).map(|(a, b)| a * b).sum();
        let yy: f64 = y.iter().map(|v| v * v).sum();
        if sy > 1e-12 * yy.max(f64::MIN_POSITIVE) && sy > 0.0 {
            if self.s_hist.len() == self.problem.history {
                self.s_hist.pop_front();
                self.y_hist.pop_front();
            }
            self.s_hist.push_back(s);
            self.y_hist.push_back(y);
        }
        let f_old = self.f;
        self.w.clone_from(&self.trial);
        self.f = f;
        self.g = g;
        self.iterations += 1;
        if self.gradient_small() {
            self.stop = Some(StopReason::Converged);
        } else if (f_old - f) <= self.problem.ftol * f_old.abs().max(f.abs()).max(1e-300) {
            self.stop = Some(StopReason::Stalled);
        } else if self.iterations >= self.problem.max_iter {
            self.stop = Some(StopReason::MaxIter);
        } else {
            self.new_direction();
        }
    }

    fn gradient_small(&self) -> bool {
        self.g.iter().all(|v| v.abs() <= self.problem.tol)
    }

    /// Two-loop recursion: `dir = -H g` with the stored curvature pairs.
    fn new_direction(&mut self) {
        let mut q = self.g.clone();
        let k = self.s_hist.len();
        let mut alphas = vec![0.0; k];
        for i in (0..k).rev() {
            let (s, y) = (&self.s_hist[i], &self.y_hist[i]);
            let rho = 1.0 / dot(s, y);
            alphas[i] = rho * dot(s, &q);
            axpy(-alphas[i], y, &mut q);
        }
        let gamma = match (self.s_hist.back(), self.y_hist.back()) {
            (Some(s), Some(y)) => dot(s, y) / dot(y, y),
            _ => {
                // First step: a unit-length move along the steepest descent.
                let norm = dot(&self.g, &self.g).sqrt();
                1.0 / norm.max(1.0)
            }
        };
        q.iter_mut().for_each(|v| *v *= gamma);
        for ((s, y), alpha) in self.s_hist.iter().zip(&self.y_hist).zip(&alphas) {
            let rho = 1.0 / dot(s, y);
            let beta = rho * dot(y, &q);
            axpy(alpha - beta, s, &mut q);
        }
        q.iter_mut().for_each(|v| *v = -*v);
        let mut gd = dot(&self.g, &q);
        if gd.is_nan() || gd >= 0.0 {
            // Not a descent direction (history gone stale): restart from steepest descent.
            self.s_hist.clear();
            self.y_hist.clear();
            let norm = dot(&self.g, &self.g).sqrt().max(1.0);
            q = self.g.iter().map(|v| -v / norm).collect();
            gd = dot(&self.g, &q);
        }
        self.dir = q;
        self.gd = gd;
        self.alpha = 1.0;
        self.backtracks = 0;
        self.set_trial();
    }

    fn set_trial(&mut self) {
        for ((t, w), d) in self.trial.iter_mut().zip(&self.w).zip(&self.dir) {
            *t = w + self.alpha * d;
        }
    }

    fn result(&self) -> MemberResult {
        MemberResult {
            w: self.w.clone(),
            objective: self.f,
            iterations: self.iterations,
            stop: self.stop.unwrap_or(StopReason::MaxIter),
        }
    }
}

/// FISTA with adaptive (gradient) restart for a member with an L1 term.
pub(crate) struct Prox {
    problem: MemberProblem,
    /// Current solution estimate and the extrapolated point evaluated next.
    x: Vec<f64>,
    y: Vec<f64>,
    t: f64,
    iterations: usize,
    stop: Option<StopReason>,
    final_objective: Option<f64>,
    /// Smallest gradient mapping seen, and the iteration it was seen at: when it has not
    /// improved for [`PROX_PATIENCE`] iterations the member sits at the `f32` noise floor.
    best_mapping: f64,
    best_at: usize,
}

/// Iterations without a 1% improvement of the gradient mapping before a proximal member is
/// declared stalled.
const PROX_PATIENCE: usize = 200;

impl Prox {
    fn new(problem: MemberProblem, w0: Vec<f64>) -> Prox {
        Prox {
            problem,
            x: w0.clone(),
            y: w0,
            t: 1.0,
            iterations: 0,
            stop: None,
            final_objective: None,
            best_mapping: f64::INFINITY,
            best_at: 0,
        }
    }

    fn ask(&self) -> Option<&[f64]> {
        if self.stop.is_some() {
            None
        } else {
            Some(&self.y)
        }
    }

    fn tell(&mut self, loss: f64, grad: &[f64]) {
        let pr = &self.problem;
        let mut g = grad.to_vec();
        pr.smooth(&self.y, loss, &mut g);
        let step = 1.0 / pr.lipschitz;
        let thresh = pr.l1 * step;
        let mut x_new = vec![0.0; pr.p];
        for k in 0..pr.p {
            let v = self.y[k] - step * g[k];
            x_new[k] = if k < pr.d {
                v.signum() * (v.abs() - thresh).max(0.0)
            } else {
                v
            };
        }
        // Gradient mapping L·(y − x⁺): zero exactly at the optimum.
        let mapping = self
            .y
            .iter()
            .zip(&x_new)
            .map(|(a, b)| ((a - b) * pr.lipschitz).abs())
            .fold(0.0, f64::max);
        // Restart momentum when it points uphill (O'Donoghue & Candès).
        let uphill: f64 = self
            .y
            .iter()
            .zip(&x_new)
            .zip(&self.x)
            .map(|((y, xn), x)| (y - xn) * (xn - x))
            .sum();
        let t_new = if uphill > 0.0 {
            1.0
        } else {
            0.5 * (1.0 + (1.0 + 4.0 * self.t * self.t).sqrt())
        };
        let momentum = if uphill > 0.0 {
            0.0
        } else {
            (self.t - 1.0) / t_new
        };
        for ((y, xn), x) in self.y.iter_mut().zip(&x_new).zip(&self.x) {
            *y = xn + momentum * (xn - x);
        }
        self.x = x_new;
        self.t = t_new;
        self.iterations += 1;
        if mapping < 0.99 * self.best_mapping {
            self.best_mapping = mapping;
            self.best_at = self.iterations;
        }
        if mapping <= pr.tol {
            self.stop = Some(StopReason::Converged);
        } else if self.iterations - self.best_at >= PROX_PATIENCE {
            self.stop = Some(StopReason::Stalled);
        } else if self.iterations >= pr.max_iter {
            self.stop = Some(StopReason::MaxIter);
        }
    }

    fn result(&self) -> MemberResult {
        MemberResult {
            w: self.x.clone(),
            objective: self.final_objective.unwrap_or(f64::NAN),
            iterations: self.iterations,
            stop: self.stop.unwrap_or(StopReason::MaxIter),
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}
