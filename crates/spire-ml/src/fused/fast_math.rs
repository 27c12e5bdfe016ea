//! Branch-free `f32` exponential, `log1p`, sigmoid and softplus that the compiler vectorizes.
//!
//! The fused passes apply these to every (user, model) cell — a billion per pass for a
//! million users × a thousand models — so they must not call into libm one value at a time.
//! Each is accurate to a few `f32` ulps (tested against `f64` libm below), which is below the
//! noise of the `f32` matrix products they follow.

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split in two so that `k · ln 2` is exact for the `k` that occur (Cody–Waite).
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
/// Adding then subtracting `1.5 · 2^23` rounds an `f32` of magnitude < 2^22 to an integer.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `e^x` for `x <= 0`; inputs below `-87` give `e^-87` (about `1.6e-38`) instead of a
/// subnormal. Relative error below `3e-7`.
#[inline(always)]
pub(crate) fn exp_nonpos(x: f32) -> f32 {
    let x = x.clamp(-87.0, 0.0);
    let t = x * LOG2E + ROUND_MAGIC;
    let k = t - ROUND_MAGIC;
    let r = x - k * LN2_HI - k * LN2_LO;
    // Taylor polynomial of e^r on |r| <= ln2/2, truncation error < 1.3e-7 · e^r.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // k is an integer in [-126, 0], held in the low mantissa bits of t (two's complement
    // relative to the magic constant): build 2^k from them with integer ops only, which
    // vectorize (a float-to-int cast would not, for its saturation rules).
    let ki = t.to_bits().wrapping_sub(ROUND_MAGIC.to_bits());
    p * f32::from_bits(ki.wrapping_add(127) << 23)
}

/// `ln(1 + u)` for `u` in `[0, 1]`, via `2 · atanh(u / (2 + u))`. Relative error below `3e-7`.
#[inline(always)]
pub(crate) fn log1p_unit(u: f32) -> f32 {
    let s = u / (2.0 + u);
    let s2 = s * s;
    // s <= 1/3, so the series' remainder after s^13 is below 1e-8 relative.
    2.0 * s
        * (1.0
            + s2 * (1.0 / 3.0
                + s2 * (1.0 / 5.0
                    + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0 + s2 / 13.0))))))
}

/// Logistic loss terms for margin `z`: returns `(softplus(z), sigmoid(z))`, where
/// `softplus(z) = ln(1 + e^z)` and `sigmoid(z) = 1 / (1 + e^-z)`, without overflow.
#[inline(always)]
pub(crate) fn softplus_sigmoid(z: f32) -> (f32, f32) {
    let u = exp_nonpos(-z.abs());
    let inv = 1.0 / (1.0 + u);
    let sig = if z >= 0.0 { inv } else { u * inv };
    (z.max(0.0) + log1p_unit(u), sig)
}

/// The logistic function `1 / (1 + e^-z)`.
#[inline(always)]
pub(crate) fn sigmoid(z: f32) -> f32 {
    softplus_sigmoid(z).1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn exp_matches_libm() {
        let mut worst: f64 = 0.0;
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let got = f64::from(exp_nonpos(x));
            worst = worst.max(rel(got, f64::from(x).exp()));
        }
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert_eq!(exp_nonpos(0.0), 1.0);
        assert!(exp_nonpos(-1000.0) > 0.0 && exp_nonpos(-1000.0) < 1e-37);
    }

    #[test]
    fn log1p_matches_libm() {
        let mut worst: f64 = 0.0;
        for i in 1..=100_000 {
            let u = i as f32 * 1e-5;
            worst = worst.max(rel(f64::from(log1p_unit(u)), f64::from(u).ln_1p()));
        }
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert_eq!(log1p_unit(0.0), 0.0);
    }

    #[test]
    fn softplus_and_sigmoid_match_f64() {
        for i in -4000..=4000 {
            let z = i as f32 * 0.01;
            let (sp, sg) = softplus_sigmoid(z);
            let zd = f64::from(z);
            let sp_ref = zd.max(0.0) + (-zd.abs()).exp().ln_1p();
            let sg_ref = 1.0 / (1.0 + (-zd).exp());
            assert!(rel(f64::from(sp), sp_ref) < 5e-7, "softplus({z})");
            assert!(rel(f64::from(sg), sg_ref) < 5e-7, "sigmoid({z})");
        }
        assert_eq!(sigmoid(200.0), 1.0);
        assert!(sigmoid(-200.0) >= 0.0 && sigmoid(-200.0) < 1e-37);
        assert_eq!(softplus_sigmoid(200.0).0, 200.0);
    }
}
