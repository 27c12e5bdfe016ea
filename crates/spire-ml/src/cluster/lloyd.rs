//! The k-means engine: greedy k-means++ seeding and Lloyd iterations (crate-private).
//!
//! Rows are processed in parallel over a fixed chunk layout that depends only on the data's
//! shape (never on the thread count), and per-chunk sums are added in chunk order, so every
//! result is bit-for-bit reproducible on any number of threads.

use rayon::prelude::*;

use crate::error::MlError;
use crate::matrix::Matrix;

/// At most this many chunks per pass.
const MAX_CHUNKS: usize = 256;
/// At least this many rows per chunk, so small inputs are not split needlessly.
const MIN_CHUNK_ROWS: usize = 2048;
/// Budget, in `f64`s, for all per-chunk center sums together (32 MiB): large `k × d` gets
/// fewer, longer chunks.
const PARTIAL_BUDGET: usize = 1 << 22;

/// splitmix64: a tiny generator with a fixed definition, so a seed gives the same clusters
/// in every Spire build (library generators may change their streams between versions).
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (multiply-shift; `n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// Squared Euclidean distance.
pub(crate) fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The nearest of the `centers` (row-major, `d` columns) to `row` and its squared distance;
/// the lowest index wins ties.
pub(crate) fn nearest(row: &[f64], centers: &[f64], d: usize) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (c, center) in centers.chunks_exact(d).enumerate() {
        let dist = sq_dist(row, center);
        if dist < best.1 {
            best = (c, dist);
        }
    }
    best
}

/// Row ranges of the chunk layout for `n` rows and `k × d` centers.
fn chunks(n: usize, k: usize, d: usize) -> Vec<(usize, usize)> {
    let by_budget = (PARTIAL_BUDGET / (k * (d + 1)).max(1)).max(1);
    let n_chunks = n
        .div_ceil(MIN_CHUNK_ROWS)
        .min(MAX_CHUNKS)
        .min(by_budget)
        .max(1);
    let len = n.div_ceil(n_chunks).max(1);
    (0..n).step_by(len).map(|s| (s, (s + len).min(n))).collect()
}

/// Sums `f(i)` over rows `0..n` in parallel, deterministically.
fn par_sum(n: usize, f: impl Fn(usize) -> f64 + Sync) -> f64 {
    let partials: Vec<f64> = chunks(n, 1, 1)
        .into_par_iter()
        .map(|(s, e)| (s..e).map(&f).sum::<f64>())
        .collect();
    partials.iter().sum()
}

/// The tolerance of scikit-learn's `_tolerance`: `tol ×` the mean of the per-column
/// population variances of `x`.
pub(crate) fn absolute_tolerance(x: &Matrix, tol: f64) -> f64 {
    if tol == 0.0 {
        return 0.0;
    }
    let (n, d) = (x.n_rows() as f64, x.n_cols());
    let mut mean = vec![0.0; d];
    for row in x.rows() {
        mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0; d];
    for row in x.rows() {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    var.iter().map(|s| s / n).sum::<f64>() / d as f64 * tol
}

/// Greedy k-means++ (as scikit-learn's `_kmeans_plusplus`): the first center is a uniformly
/// random row; each next one is the best, by resulting inertia, of `2 + ⌊ln k⌋` rows sampled
/// with probability proportional to their squared distance to the nearest chosen center.
pub(crate) fn kmeans_plus_plus(
    x: &Matrix,
    k: usize,
    rng: &mut SplitMix64,
) -> Result<Vec<f64>, MlError> {
    let (n, d) = (x.n_rows(), x.n_cols());
    let trials = 2 + (k as f64).ln().floor() as usize;
    let first = rng.below(n);
    let mut centers = x.row(first).to_vec();
    let mut closest: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| sq_dist(x.row(i), x.row(first)))
        .collect();
    let mut cumulative = vec![0.0; n];
    for _ in 1..k {
        let mut acc = 0.0;
        for (c, v) in cumulative.iter_mut().zip(&closest) {
            acc += v;
            *c = acc;
        }
        if !(acc > 0.0 && acc.is_finite()) {
            return Err(MlError::Numerical(format!(
                "k-means++ found no row apart from the {} centers chosen so far \
                 (total squared distance {acc}); the rows hold fewer than {k} \
                 numerically distinct points",
                centers.len() / d
            )));
        }
        let mut best: Option<(f64, usize)> = None;
        for _ in 0..trials {
            let r = rng.next_f64() * acc;
            // The first row whose cumulative weight exceeds r: it has a positive weight.
            let cand = cumulative.partition_point(|&c| c <= r).min(n - 1);
            let row = x.row(cand);
            let pot = par_sum(n, |i| closest[i].min(sq_dist(x.row(i), row)));
            if best.is_none_or(|(b, _)| pot < b) {
                best = Some((pot, cand));
            }
        }
        let chosen = best.map_or(0, |(_, c)| c);
        let row = x.row(chosen);
        closest
            .par_iter_mut()
            .enumerate()
            .for_each(|(i, c)| *c = c.min(sq_dist(x.row(i), row)));
        centers.extend_from_slice(row);
    }
    Ok(centers)
}

/// One k-means run's result.
pub(crate) struct Run {
    /// `k × d` centers, row-major.
    pub centers: Vec<f64>,
    /// The nearest center of every row under the final centers.
    pub labels: Vec<usize>,
    /// Sum of squared distances of rows to their centers.
    pub inertia: f64,
    /// Lloyd iterations run.
    pub iterations: usize,
    /// Whether labels stopped changing or centers moved less than the tolerance.
    pub converged: bool,
}

/// Per-chunk results of an assignment pass.
struct Partial {
    sums: Vec<f64>,
    counts: Vec<usize>,
    inertia: f64,
}

/// Assigns every row to its nearest center (writing `labels` and squared distances `dists`)
/// and, when `with_sums`, returns per-cluster sums and counts; always returns the inertia.
fn assign(
    x: &Matrix,
    centers: &[f64],
    k: usize,
    labels: &mut [usize],
    dists: &mut [f64],
    with_sums: bool,
) -> Partial {
    let (n, d) = (x.n_rows(), x.n_cols());
    let layout = chunks(n, k, d);
    let mut label_chunks = Vec::with_capacity(layout.len());
    let mut dist_chunks = Vec::with_capacity(layout.len());
    let (mut l_rest, mut d_rest) = (labels, dists);
    for &(s, e) in &layout {
        let (l, lr) = l_rest.split_at_mut(e - s);
        let (dd, dr) = d_rest.split_at_mut(e - s);
        label_chunks.push((s, l));
        dist_chunks.push(dd);
        (l_rest, d_rest) = (lr, dr);
    }
    let partials: Vec<Partial> = label_chunks
        .into_par_iter()
        .zip(dist_chunks)
        .map(|((start, labels), dists)| {
            let mut p = Partial {
                sums: if with_sums {
                    vec![0.0; k * d]
                } else {
                    Vec::new()
                },
                counts: vec![0; k],
                inertia: 0.0,
            };
            for (j, (label, dist)) in labels.iter_mut().zip(dists.iter_mut()).enumerate() {
                let row = x.row(start + j);
                let (c, dd) = nearest(row, centers, d);
                *label = c;
                *dist = dd;
                p.inertia += dd;
                p.counts[c] += 1;
                if with_sums {
                    p.sums[c * d..(c + 1) * d]
                        .iter_mut()
                        .zip(row)
                        .for_each(|(s, v)| *s += v);
                }
            }
            p
        })
        .collect();
    let mut total = Partial {
        sums: if with_sums {
            vec![0.0; k * d]
        } else {
            Vec::new()
        },
        counts: vec![0; k],
        inertia: 0.0,
    };
    for p in &partials {
        total.inertia += p.inertia;
        total
            .counts
            .iter_mut()
            .zip(&p.counts)
            .for_each(|(a, b)| *a += b);
        total
            .sums
            .iter_mut()
            .zip(&p.sums)
            .for_each(|(a, b)| *a += b);
    }
    total
}

/// Gives every empty cluster a row: the rows farthest from their current centers (ties: the
/// lowest row index), taken only from clusters that keep at least one row and only when the
/// distance is positive. A cluster that finds no such row stays empty this iteration and
/// keeps its center.
fn relocate_empty(
    x: &Matrix,
    labels: &mut [usize],
    dists: &[f64],
    sums: &mut [f64],
    counts: &mut [usize],
) {
    let d = x.n_cols();
    let empty: Vec<usize> = (0..counts.len()).filter(|&c| counts[c] == 0).collect();
    if empty.is_empty() {
        return;
    }
    let mut far: Vec<usize> = (0..labels.len()).filter(|&i| dists[i] > 0.0).collect();
    far.sort_by(|&a, &b| dists[b].total_cmp(&dists[a]).then(a.cmp(&b)));
    let mut candidates = far.into_iter();
    for c in empty {
        let Some(i) = candidates.by_ref().find(|&i| counts[labels[i]] >= 2) else {
            return;
        };
        let old = labels[i];
        let row = x.row(i);
        sums[old * d..(old + 1) * d]
            .iter_mut()
            .zip(row)
            .for_each(|(s, v)| *s -= v);
        counts[old] -= 1;
        sums[c * d..(c + 1) * d].copy_from_slice(row);
        counts[c] = 1;
        labels[i] = c;
    }
}

/// Lloyd iterations from `init` (`k × d`), as scikit-learn's `_kmeans_single_lloyd`: each
/// iteration assigns rows to the nearest center and moves centers to their rows' means;
/// stop when labels repeat (strict convergence) or the summed squared center shift is
/// `<= tol_abs`. A final assignment makes labels and inertia consistent with the final
/// centers.
pub(crate) fn lloyd(x: &Matrix, init: Vec<f64>, k: usize, max_iter: usize, tol_abs: f64) -> Run {
    let (n, d) = (x.n_rows(), x.n_cols());
    let mut centers = init;
    let mut labels = vec![usize::MAX; n];
    let mut previous = vec![usize::MAX; n];
    let mut dists = vec![0.0; n];
    let (mut iterations, mut converged) = (0, false);
    for it in 0..max_iter {
        iterations = it + 1;
        let mut p = assign(x, &centers, k, &mut labels, &mut dists, true);
        relocate_empty(x, &mut labels, &dists, &mut p.sums, &mut p.counts);
        let mut shift = 0.0;
        for c in 0..k {
            if p.counts[c] == 0 {
                continue;
            }
            let inv = 1.0 / p.counts[c] as f64;
            let center = &mut centers[c * d..(c + 1) * d];
            for (v, s) in center.iter_mut().zip(&p.sums[c * d..(c + 1) * d]) {
                let new = s * inv;
                shift += (new - *v) * (new - *v);
                *v = new;
            }
        }
        if labels == previous || shift <= tol_abs {
            converged = true;
            break;
        }
        previous.copy_from_slice(&labels);
    }
    let inertia = assign(x, &centers, k, &mut labels, &mut dists, false).inertia;
    Run {
        centers,
        labels,
        inertia,
        iterations,
        converged,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_pinned() {
        // Reference values of splitmix64 seeded with 1234567 (Vigna's test vector).
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
        let mut r = SplitMix64::new(0);
        for _ in 0..1000 {
            let u = r.next_f64();
            assert!((0.0..1.0).contains(&u));
            assert!(r.below(7) < 7);
        }
    }

    #[test]
    fn chunk_layout_covers_rows() {
        for (n, k, d) in [(1, 1, 1), (5000, 3, 2), (1_000_000, 1000, 100), (10, 1, 0)] {
            let c = chunks(n, k, d);
            assert_eq!(c.first().unwrap().0, 0);
            assert_eq!(c.last().unwrap().1, n);
            assert!(c.windows(2).all(|w| w[0].1 == w[1].0));
            assert!(c.len() <= MAX_CHUNKS);
        }
    }

    #[test]
    fn nearest_prefers_lowest_index_on_ties() {
        let centers = [0.0, 0.0, 2.0, 0.0];
        assert_eq!(nearest(&[1.0, 0.0], &centers, 2), (0, 1.0));
        assert_eq!(nearest(&[1.5, 0.0], &centers, 2), (1, 0.25));
    }

    #[test]
    fn relocation_fills_an_empty_cluster() {
        // Both centers far right: every row goes to center 0, center 1 gets the farthest row.
        let x = Matrix::from_rows(&[[0.0], [1.0], [10.0], [11.0]]).unwrap();
        let run = lloyd(&x, vec![10.5, 100.0], 2, 100, 0.0);
        assert!(run.converged);
        let mut c = run.centers.clone();
        c.sort_by(f64::total_cmp);
        assert_eq!(c, vec![0.5, 10.5]);
        assert!((run.inertia - 1.0).abs() < 1e-12);
    }
}
