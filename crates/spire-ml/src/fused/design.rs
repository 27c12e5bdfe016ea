//! The shared design matrix of a family and the fused evaluation pass over it.
//!
//! One pass evaluates the mean logistic loss and its gradient for many models at once:
//! for each chunk of rows, `Z = X_c · W` (one `f32` matrix product for every model), the
//! loss and residuals elementwise, then `G += X_cᵀ · R` (a second product). Chunks run in
//! parallel with sequential products inside, and their sums are added in chunk order, so the
//! result does not depend on the thread count.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::fast_math::softplus_sigmoid;
use super::labels::LabelMatrix;
use crate::matrix::Matrix;
use crate::preprocess::Standardizer;

/// Rows per chunk of a pass: large enough for efficient products, small enough that the
/// chunk's `rows × models` block stays in cache-friendly sizes.
pub(crate) const CHUNK_ROWS: usize = 4096;

/// The training features as `f32`, standardized, with a trailing column of ones when the
/// family fits intercepts: `n × p`, row-major.
pub(crate) struct Design {
    pub n: usize,
    /// Columns: features, plus one for the intercept.
    pub p: usize,
    pub x: Vec<f32>,
}

impl Design {
    /// Converts `x` (already checked finite) through `standardizer` (if any).
    pub fn new(x: &Matrix, standardizer: Option<&Standardizer>, intercept: bool) -> Design {
        let d = x.n_cols();
        let p = d + usize::from(intercept);
        let mut out = vec![0f32; x.n_rows() * p];
        if p > 0 {
            out.par_chunks_mut(p * CHUNK_ROWS)
                .enumerate()
                .for_each(|(ci, block)| {
                    for (k, dst) in block.chunks_exact_mut(p).enumerate() {
                        let row = x.row(ci * CHUNK_ROWS + k);
                        write_row(row, standardizer, intercept, dst);
                    }
                });
        }
        Design {
            n: x.n_rows(),
            p,
            x: out,
        }
    }

    /// The largest eigenvalue of `Xᵀ X / n`, by power iteration on the `p × p` Gram matrix
    /// (an upper bound on the curvature of every member's mean loss, up to the factor 1/4).
    pub fn gram_max_eigenvalue(&self) -> f64 {
        let p = self.p;
        if p == 0 || self.n == 0 {
            return 0.0;
        }
        let partial: Vec<Vec<f64>> = self
            .x
            .par_chunks(p * CHUNK_ROWS)
            .map(|block| {
                let mut g = vec![0f64; p * p];
                for row in block.chunks_exact(p) {
                    for a in 0..p {
                        let va = f64::from(row[a]);
                        for b in a..p {
                            g[a * p + b] += va * f64::from(row[b]);
                        }
                    }
                }
                g
            })
            .collect();
        let mut gram = vec![0f64; p * p];
        for g in &partial {
            for (t, v) in gram.iter_mut().zip(g) {
                *t += v;
            }
        }
        for a in 0..p {
            for b in 0..a {
                gram[a * p + b] = gram[b * p + a];
            }
        }
        let n = self.n as f64;
        let mut v = vec![1.0 / (p as f64).sqrt(); p];
        let mut lambda = 0.0;
        for _ in 0..200 {
            let mut next = vec![0f64; p];
            for a in 0..p {
                next[a] = (0..p).map(|b| gram[a * p + b] * v[b]).sum::<f64>() / n;
            }
            let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm == 0.0 {
                return 0.0;
            }
            next.iter_mut().for_each(|x| *x /= norm);
            let converged = (norm - lambda).abs() <= 1e-10 * norm;
            lambda = norm;
            v = next;
            if converged {
                break;
            }
        }
        lambda
    }
}

/// Writes one standardized `f32` row (plus the intercept's 1) into `dst`.
pub(crate) fn write_row(
    row: &[f64],
    standardizer: Option<&Standardizer>,
    intercept: bool,
    dst: &mut [f32],
) {
    let d = row.len();
    match standardizer {
        Some(s) => {
            for (((o, v), m), sc) in dst.iter_mut().zip(row).zip(s.means()).zip(s.scales()) {
                *o = ((v - m) / sc) as f32;
            }
        }
        None => {
            for (o, v) in dst.iter_mut().zip(row) {
                *o = *v as f32;
            }
        }
    }
    if intercept {
        dst[d] = 1.0;
    }
}

/// The models evaluated in one pass: their label column, `1 / n_train` and parameters.
pub(crate) struct Batch<'a> {
    /// Label column of each model.
    pub cols: &'a [usize],
    /// `1 / (rows taking part)` of each model, so residuals give the mean loss's gradient.
    pub inv_n: &'a [f32],
    /// Parameters, `p × a` row-major (row `k` holds coefficient `k` of every model).
    pub w: &'a [f32],
}

/// Mean loss and its gradient for each model of a batch.
pub(crate) struct PassOutput {
    /// Mean logistic loss per model (without penalties).
    pub loss: Vec<f64>,
    /// Gradient of the mean loss, `a × p` (model-major).
    pub grad: Vec<f64>,
}

/// Per-chunk sums: loss per model and `p × a` gradient.
struct ChunkSums {
    loss: Vec<f64>,
    grad: Vec<f32>,
}

/// Reusable per-thread buffers.
#[derive(Default)]
struct Scratch {
    z: Vec<f32>,
    y: Vec<u8>,
}

/// Rows whose loss terms are summed in `f32` before being added to the `f64` totals.
const LOSS_BLOCK: usize = 32;

/// One row of the elementwise step: turns margins `z` into residuals `(σ(z) − y) / n` in
/// place (zero for excluded cells) and adds the loss terms to `loss`. Pure `f32` and
/// branch-free so that it vectorizes; called under [`pulp::Arch::dispatch`], which compiles it
/// for the widest instruction set the CPU has.
#[inline(always)]
fn residuals(z: &mut [f32], y: &[u8], inv_n: &[f32], loss: &mut [f32]) {
    for (((zj, &yj), lj), &inv) in z.iter_mut().zip(y).zip(loss.iter_mut()).zip(inv_n) {
        let m = if yj == LabelMatrix::EXCLUDED {
            0.0
        } else {
            1.0
        };
        let t = if yj == LabelMatrix::POSITIVE {
            1.0
        } else {
            0.0
        };
        let (sp, sg) = softplus_sigmoid(*zj);
        *lj += m * (sp - t * *zj);
        *zj = m * (sg - t) * inv;
    }
}

/// Evaluates every model of `batch` over all rows of `design`.
pub(crate) fn evaluate(design: &Design, labels: &LabelMatrix, batch: &Batch<'_>) -> PassOutput {
    let (n, p, a) = (design.n, design.p, batch.cols.len());
    let n_chunks = n.div_ceil(CHUNK_ROWS);
    let sums: Vec<ChunkSums> = (0..n_chunks)
        .into_par_iter()
        .map_init(Scratch::default, |scratch, ci| {
            let r0 = ci * CHUNK_ROWS;
            let r1 = (r0 + CHUNK_ROWS).min(n);
            chunk(design, labels, batch, r0, r1, scratch)
        })
        .collect();
    let mut loss = vec![0f64; a];
    let mut grad = vec![0f64; a * p];
    for s in &sums {
        for (t, v) in loss.iter_mut().zip(&s.loss) {
            *t += v;
        }
        for k in 0..p {
            let row = &s.grad[k * a..(k + 1) * a];
            for (j, v) in row.iter().enumerate() {
                grad[j * p + k] += f64::from(*v);
            }
        }
    }
    for (l, inv) in loss.iter_mut().zip(batch.inv_n) {
        *l *= f64::from(*inv);
    }
    PassOutput { loss, grad }
}

fn chunk(
    design: &Design,
    labels: &LabelMatrix,
    batch: &Batch<'_>,
    r0: usize,
    r1: usize,
    scratch: &mut Scratch,
) -> ChunkSums {
    let (p, a, c) = (design.p, batch.cols.len(), r1 - r0);
    let xc = MatRef::from_row_major_slice(&design.x[r0 * p..r1 * p], c, p);
    let w = MatRef::from_row_major_slice(batch.w, p, a);
    scratch.z.resize(c * a, 0.0);
    scratch.y.resize(a, 0);
    matmul(
        MatMut::from_row_major_slice_mut(&mut scratch.z, c, a),
        Accum::Replace,
        xc,
        w,
        1.0f32,
        Par::Seq,
    );
    let mut loss = vec![0f64; a];
    let mut block = vec![0f32; a];
    let n_cols = labels.n_cols();
    let cells = labels.cells();
    let identity = a == n_cols && batch.cols.iter().enumerate().all(|(j, &c)| j == c);
    let arch = pulp::Arch::new();
    for i in 0..c {
        let lab_row = &cells[(r0 + i) * n_cols..(r0 + i + 1) * n_cols];
        let y: &[u8] = if identity {
            lab_row
        } else {
            for (dst, &col) in scratch.y.iter_mut().zip(batch.cols) {
                *dst = lab_row[col];
            }
            &scratch.y
        };
        let z = &mut scratch.z[i * a..(i + 1) * a];
        arch.dispatch(|| residuals(z, y, batch.inv_n, &mut block));
        // Flush the f32 partial sums to f64 every LOSS_BLOCK rows, so they stay short.
        if (i + 1) % LOSS_BLOCK == 0 || i + 1 == c {
            for (l, b) in loss.iter_mut().zip(block.iter_mut()) {
                *l += f64::from(*b);
                *b = 0.0;
            }
        }
    }
    let mut grad = vec![0f32; p * a];
    matmul(
        MatMut::from_row_major_slice_mut(&mut grad, p, a),
        Accum::Replace,
        xc.transpose(),
        MatRef::from_row_major_slice(&scratch.z, c, a),
        1.0f32,
        Par::Seq,
    );
    ChunkSums { loss, grad }
}
