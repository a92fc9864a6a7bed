//! The encoder's large matrix products in 16-bit fixed point, on CPUs with AVX2
//! but neither AVX-512 BF16 nor AVX-512 (most laptops and desktops, AMD Zen 1-3).
//!
//! One `vpmaddwd` multiplies sixteen pairs of 16-bit integers and adds each
//! pair into a 32-bit sum: sixteen multiply-adds, where an AVX2 `f32` FMA does
//! eight, and Zen 3 issues both at two a cycle. Weights are scaled per output
//! column and activations per row (each row's scale taken when the product
//! runs), rounded to integers of at most ±`limit(k)`, and summed exactly in
//! 32 bits: `limit` is the largest value for which a sum of `k` products of
//! two such integers cannot overflow (2,364 for the 384 inputs of MiniLM's
//! projections, 1,182 for the 1,536 of its feed-forward output: 11-12 bits,
//! more than bfloat16's 8-bit mantissa). Vectors stay within 1e-4 cosine of
//! the `f32` model (`tests/engine/embed_local.rs`).
//!
//! Layout: a weight matrix `[n × k]` (PyTorch's `[out × in]`) is packed once
//! into groups of 8 output columns; within a group, for each pair of inputs
//! `(2p, 2p+1)`, 8 words, one per column, hold that pair as two 16-bit
//! integers, the first in the low half. Activations are rows of such pairs, so
//! one broadcast word of a row against one group's 8 words is one `vpmaddwd`.

use rayon::prelude::*;

/// Output columns per packed group: one AVX2 vector of eight 32-bit sums.
const GROUP: usize = 8;

/// Rows of activations per task: converted to integers once, then multiplied
/// by every group of columns while they sit in L2.
const ROWS_PER_TASK: usize = 48;

/// Whether this CPU takes the fixed-point products: AVX2 without AVX-512 (an
/// AVX-512 machine runs `gemm`'s `f32` kernels at the same rate, or bfloat16),
/// unless the user asked for `f32` (`SIFT_ENCODER_PRECISION=f32`).
/// `SIFT_ENCODER_PRECISION=fixed16` picks them on any AVX2 machine, to compare.
pub fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| {
        let asked = std::env::var("SIFT_ENCODER_PRECISION").ok();
        if asked.as_deref() == Some("f32") {
            return false;
        }
        #[cfg(target_arch = "x86_64")]
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let avx512 = false;
        cpu_has_avx2() && (asked.as_deref() == Some("fixed16") || !avx512)
    })
}

/// Whether the instructions are there at all (tests run the kernel on any
/// AVX2 machine, whichever path the encoder takes).
fn cpu_has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The largest integer magnitude for inputs of length `k`: `k · limit²` fits
/// an `i32`, so no sum can wrap whatever the values.
fn limit(k: usize) -> f32 {
    let q = ((i32::MAX as f64) / k as f64).sqrt().floor();
    q.min(i16::MAX as f64) as f32
}

/// A weight matrix packed for [`linear`].
pub struct Packed {
    n: usize,
    k: usize,
    /// `n / GROUP` groups of `k / 2` rows of `GROUP` words.
    words: Vec<i32>,
    /// Per column: the value of one integer step.
    scales: Vec<f32>,
}

impl Packed {
    /// Packs `w` (`[n × k]`, row-major); `None` for shapes the kernel does not
    /// cover (the caller keeps the `f32` product for those).
    pub fn pack(w: &[f32], n: usize, k: usize) -> Option<Packed> {
        if !fits(n, k) || w.len() != n * k {
            return None;
        }
        let q = limit(k);
        let scales: Vec<f32> = w.chunks_exact(k).map(|col| step(col, q)).collect();
        let ints: Vec<i16> = w
            .chunks_exact(k)
            .zip(&scales)
            .flat_map(|(col, &s)| col.iter().map(move |&x| to_int(x, s, q)))
            .collect();
        let words = crate::kernels::pack_pairs(&ints, n, k, GROUP, word);
        Some(Packed {
            n,
            k,
            words,
            scales,
        })
    }
}

/// Shapes the kernel covers: whole groups of columns, whole pairs of inputs.
fn fits(n: usize, k: usize) -> bool {
    n > 0 && n.is_multiple_of(GROUP) && k > 0 && k.is_multiple_of(16)
}

/// The value of one integer step for `xs`: its largest magnitude maps to `q`.
/// Zero for all-zero (or non-finite) rows, whose integers are then all zero.
fn step(xs: &[f32], q: f32) -> f32 {
    let max = xs.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max.is_finite() && max > 0.0 {
        max / q
    } else {
        0.0
    }
}

/// `x` in steps of `s`, to nearest, clamped to ±q (`as` maps NaN to 0).
fn to_int(x: f32, s: f32, q: f32) -> i16 {
    if s == 0.0 {
        return 0;
    }
    (x / s).round_ties_even().clamp(-q, q) as i16
}

/// Two integers as one word: the first in the low half.
fn word(first: i16, second: i16) -> i32 {
    (first as u16 as u32 | ((second as u16 as u32) << 16)) as i32
}

/// One task's rows: (output, integers) and (input, steps).
type Task<'a> = ((&'a mut [f32], &'a mut [i32]), (&'a [f32], &'a mut [f32]));

/// `dst[t × n] = (residual ? dst : 0) + bias + src[t × k] · wᵀ`: the bias and
/// the residual are added where each output is stored, so `dst` is not
/// written once beforehand. `ints` is working memory (reused between calls
/// to save page faults on a fresh allocation each time).
///
/// # Panics
/// When the shapes disagree or the CPU lacks AVX2.
#[allow(clippy::too_many_arguments)]
pub fn linear(
    dst: &mut [f32],
    src: &[f32],
    w: &Packed,
    bias: &[f32],
    residual: bool,
    ints: &mut Vec<i32>,
    parallel: bool,
) {
    let (n, k) = (w.n, w.k);
    let t = src.len() / k;
    assert!(src.len() == t * k && dst.len() == t * n && bias.len() == n && cpu_has_avx2());
    let kp = k / 2;
    let q = limit(k);
    ints.clear();
    ints.resize(t * kp, 0);
    let mut steps = vec![0f32; t];
    #[cfg(target_arch = "x86_64")]
    {
        let task = |((d, x), (rows, s)): Task| {
            // SAFETY: the assert checked the CPU; `rows` is whole rows of k
            // (a multiple of 16) floats, `x` as many rows of k/2 words, `d`
            // as many rows of n floats, `w` n × kp words and n scales.
            unsafe {
                avx2::to_ints(x, s, rows, k, q);
                let ops = avx2::Operands {
                    n,
                    x,
                    steps: s,
                    kp,
                    words: &w.words,
                    scales: &w.scales,
                    bias,
                    residual,
                };
                avx2::rows_times_groups(d, &ops);
            }
        };
        let tasks = dst
            .par_chunks_mut(n * ROWS_PER_TASK)
            .zip(ints.par_chunks_mut(kp * ROWS_PER_TASK))
            .zip(
                src.par_chunks(k * ROWS_PER_TASK)
                    .zip(steps.par_chunks_mut(ROWS_PER_TASK)),
            );
        if parallel {
            tasks.for_each(task);
        } else {
            // One task: never split, so it runs on the calling thread (a
            // worker of the index's pool, where document batches run).
            tasks.with_min_len(usize::MAX).for_each(task);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{step, GROUP};

    /// One task's operands: `x` (rows of `kp` integer pairs) with each row's
    /// step, and `words` (`n` columns packed) with each column's.
    #[derive(Clone, Copy)]
    pub struct Operands<'a> {
        pub n: usize,
        pub x: &'a [i32],
        pub steps: &'a [f32],
        pub kp: usize,
        pub words: &'a [i32],
        pub scales: &'a [f32],
        /// Added to every row; `n` values.
        pub bias: &'a [f32],
        /// Whether `dst` holds a residual to add to (else it is overwritten).
        pub residual: bool,
    }

    const BLOCK_ROWS: usize = 6;
    const BLOCK_GROUPS: usize = 2;

    /// Rows of `f32` to rows of integer pairs, and each row's step.
    #[target_feature(enable = "avx2")]
    pub unsafe fn to_ints(out: &mut [i32], steps: &mut [f32], rows: &[f32], k: usize, q: f32) {
        for ((o, s), x) in out
            .chunks_exact_mut(k / 2)
            .zip(steps.iter_mut())
            .zip(rows.chunks_exact(k))
        {
            *s = step(x, q);
            let inv = if *s == 0.0 { 0.0 } else { 1.0 / *s };
            let scale = _mm256_set1_ps(inv);
            let (lo_q, hi_q) = (_mm256_set1_ps(-q), _mm256_set1_ps(q));
            for (o, x) in o.chunks_exact_mut(8).zip(x.chunks_exact(16)) {
                let clamp = |v: __m256| _mm256_min_ps(_mm256_max_ps(v, lo_q), hi_q);
                let a = clamp(_mm256_mul_ps(_mm256_loadu_ps(x.as_ptr()), scale));
                let b = clamp(_mm256_mul_ps(_mm256_loadu_ps(x.as_ptr().add(8)), scale));
                // To nearest even (the default rounding mode). The clamp has
                // already turned NaN into -q (maxps returns its second operand
                // when one is NaN): garbage in, no panic and no wrap.
                let (a, b) = (_mm256_cvtps_epi32(a), _mm256_cvtps_epi32(b));
                // The pack interleaves the 128-bit halves: a0-3 b0-3 a4-7 b4-7;
                // the permute puts them back in order.
                let packed = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(a, b));
                _mm256_storeu_si256(o.as_mut_ptr().cast(), packed);
            }
        }
    }

    /// `dst[rows × n] = (residual ? dst : 0) + bias + x[rows × 2kp] · wᵀ` for
    /// every group of `words`, in
    /// blocks of 6 rows × 2 groups: 12 sums in registers, 2 of weights, 1
    /// broadcast, 15 of AVX2's 16. Measured on Zen 3, one thread, MiniLM's
    /// shapes: 59-62 G multiply-adds/s against 38-44 for 4×3 or 3×4 (which
    /// spill a sum), 51-57 for 4×2, and 34-36 for `gemm`'s `f32`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn rows_times_groups(dst: &mut [f32], ops: &Operands) {
        const BR: usize = BLOCK_ROWS;
        const BG: usize = BLOCK_GROUPS;
        let (n, x, steps, kp) = (ops.n, ops.x, ops.steps, ops.kp);
        let (words, scales) = (ops.words, ops.scales);
        let rows = steps.len();
        debug_assert!(dst.len() == rows * n && x.len() == rows * kp);
        debug_assert!(words.len() == n * kp && scales.len() == n);
        let groups = n / GROUP;
        let mut g = 0;
        while g < groups {
            let take = if groups - g >= BG { BG } else { 1 };
            let mut r = 0;
            while r < rows {
                let left = rows - r;
                let whole = left >= BR;
                match (whole, take == BG) {
                    (true, true) => block::<BR, BG>(dst, ops, r, g),
                    (true, false) => block::<BR, 1>(dst, ops, r, g),
                    (false, true) => block::<1, BG>(dst, ops, r, g),
                    (false, false) => block::<1, 1>(dst, ops, r, g),
                }
                r += if whole { BR } else { 1 };
            }
            g += take;
        }
    }

    /// Rows `r..r+R` times groups `g..g+G`, with the bias (and the residual
    /// in `dst`) added, into `dst`.
    #[inline(always)]
    unsafe fn block<const R: usize, const G: usize>(
        dst: &mut [f32],
        ops: &Operands,
        r: usize,
        g: usize,
    ) {
        let (n, x, steps, kp) = (ops.n, ops.x, ops.steps, ops.kp);
        let (words, scales, bias) = (ops.words, ops.scales, ops.bias);
        let mut sums = [[_mm256_setzero_si256(); G]; R];
        let w = words.as_ptr().add(g * kp * GROUP);
        let x = x.as_ptr().add(r * kp);
        for p in 0..kp {
            let mut wv = [_mm256_setzero_si256(); G];
            for (j, v) in wv.iter_mut().enumerate() {
                *v = _mm256_loadu_si256(w.add((j * kp + p) * GROUP).cast());
            }
            for (i, row) in sums.iter_mut().enumerate() {
                let a = _mm256_set1_epi32(*x.add(i * kp + p));
                for (s, v) in row.iter_mut().zip(&wv) {
                    *s = _mm256_add_epi32(*s, _mm256_madd_epi16(a, *v));
                }
            }
        }
        for (i, row) in sums.iter().enumerate() {
            let step = _mm256_set1_ps(steps[r + i]);
            for (j, s) in row.iter().enumerate() {
                let col = (g + j) * GROUP;
                let scale = _mm256_mul_ps(_mm256_loadu_ps(scales.as_ptr().add(col)), step);
                let out = dst.as_mut_ptr().add((r + i) * n + col);
                let v = _mm256_mul_ps(_mm256_cvtepi32_ps(*s), scale);
                let mut base = _mm256_loadu_ps(bias.as_ptr().add(col));
                if ops.residual {
                    base = _mm256_add_ps(_mm256_loadu_ps(out), base);
                }
                _mm256_storeu_ps(out, _mm256_add_ps(base, v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Weights `[n × k]` and activations `[t × k]` of mixed signs and sizes.
    pub(super) fn sample(t: usize, n: usize, k: usize) -> (Vec<f32>, Vec<f32>) {
        let w = (0..n * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 33.0)
            .collect();
        let x = (0..t * k)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 17.0)
            .collect();
        (w, x)
    }

    /// `x · wᵀ` added to a `dst` of start values `i % 7`.
    fn product(t: usize, n: usize, k: usize, x: &[f32], w: &[f32], parallel: bool) -> Vec<f32> {
        product_with(t, n, k, x, w, &vec![0.0; n], true, parallel)
    }

    /// [`linear`] from a `dst` of start values `i % 7`.
    #[allow(clippy::too_many_arguments)]
    fn product_with(
        t: usize,
        n: usize,
        k: usize,
        x: &[f32],
        w: &[f32],
        bias: &[f32],
        residual: bool,
        parallel: bool,
    ) -> Vec<f32> {
        let packed = Packed::pack(w, n, k).unwrap();
        let mut dst: Vec<f32> = (0..t * n).map(|i| (i % 7) as f32).collect();
        linear(
            &mut dst,
            x,
            &packed,
            bias,
            residual,
            &mut Vec::new(),
            parallel,
        );
        dst
    }

    /// Against an `f64` product, on ragged row counts and group counts (every
    /// block shape), one thread and several. The error bound is the rounding
    /// of both operands: half a step of each, times the other's magnitude.
    #[test]
    fn product_matches_reference_within_rounding() {
        if !cpu_has_avx2() {
            eprintln!("no AVX2 on this machine: the fixed-point product is not used here");
            return;
        }
        for (t, n, k) in [
            (1, 8, 16),
            (3, 16, 32),
            (5, 24, 64),
            (7, 40, 384),
            (53, 64, 96),
            (101, 384, 1536),
        ] {
            let (w, x) = sample(t, n, k);
            let q = limit(k) as f64;
            let bias: Vec<f32> = (0..n).map(|c| (c % 3) as f32 - 1.25).collect();
            for (parallel, residual) in [(false, true), (true, true), (false, false), (true, false)]
            {
                let got = product_with(t, n, k, &x, &w, &bias, residual, parallel);
                for r in 0..t {
                    let xr = &x[r * k..][..k];
                    let x_max = xr.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
                    for c in 0..n {
                        let wc = &w[c * k..][..k];
                        let w_max = wc.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
                        let exact: f64 =
                            xr.iter().zip(wc).map(|(a, b)| *a as f64 * *b as f64).sum();
                        let start = if residual {
                            ((r * n + c) % 7) as f64
                        } else {
                            0.0
                        };
                        let want = start + bias[c] as f64 + exact;
                        let bound = k as f64 * (x_max * w_max / q) + 1e-3 * want.abs().max(1.0);
                        let err = (got[r * n + c] as f64 - want).abs();
                        assert!(
                            err <= bound,
                            "{t}×{n}×{k} row {r} col {c}: {} vs {want}",
                            got[r * n + c]
                        );
                    }
                }
            }
        }
    }

    /// The largest integers in every product of a long row: with the limit
    /// the sums cannot wrap, so the answer is exact.
    #[test]
    fn extreme_values_do_not_wrap() {
        if !cpu_has_avx2() {
            return;
        }
        let (t, n, k) = (2, 8, 1536);
        let w = vec![-3.0f32; n * k];
        let x = vec![5.0f32; t * k];
        let got = product(t, n, k, &x, &w, false);
        for (i, v) in got.iter().enumerate() {
            let want = (i % 7) as f32 - 15.0 * k as f32;
            assert!((v - want).abs() <= 1e-3 * want.abs(), "{i}: {v} vs {want}");
        }
    }

    /// Rows of zeros, NaN or infinity give finite output for the rows around
    /// them and never panic.
    #[test]
    fn zero_and_non_finite_rows_leave_other_rows_intact() {
        if !cpu_has_avx2() {
            return;
        }
        let (t, n, k) = (4, 8, 16);
        let w: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32 - 2.0).collect();
        let mut x: Vec<f32> = vec![1.0; t * k];
        x[..k].fill(0.0);
        x[k] = f32::NAN;
        x[2 * k] = f32::INFINITY;
        let got = product(t, n, k, &x, &w, false);
        // Row 0 is all zeros: dst keeps its start values.
        for (c, v) in got[..n].iter().enumerate() {
            assert_eq!(*v, (c % 7) as f32);
        }
        // Row 3 is untouched by its neighbours.
        for c in 0..n {
            let want = ((3 * n + c) % 7) as f32 + w[c * k..][..k].iter().sum::<f32>();
            assert!((got[3 * n + c] - want).abs() < 1e-2, "{c}");
        }
    }

    #[test]
    fn shapes_outside_the_kernel_are_declined() {
        assert!(Packed::pack(&[0.0; 12 * 16], 12, 16).is_none());
        assert!(Packed::pack(&[0.0; 8 * 24], 8, 24).is_none());
        assert!(Packed::pack(&[0.0; 8 * 32], 8, 32).is_some());
    }

    #[test]
    fn the_limit_keeps_every_sum_inside_an_i32() {
        for k in [16, 384, 1536, 4096] {
            let q = limit(k) as f64;
            assert!(k as f64 * q * q <= i32::MAX as f64, "{k}");
            assert!(k as f64 * (q + 1.0) * (q + 1.0) > i32::MAX as f64 || q == i16::MAX as f64);
        }
        assert_eq!(limit(384), 2364.0);
        assert_eq!(limit(1536), 1182.0);
    }
}

#[cfg(test)]
mod speed {
    use super::tests::sample;
    use super::*;

    /// Multiply-adds per second of the encoder's two shapes, this kernel
    /// against `gemm`'s `f32`, one thread; run with
    /// `cargo test --release -p sift-encoder fixed16_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn fixed16_speed() {
        for (t, n, k) in [(6400, 1152, 384), (6400, 384, 1536)] {
            let (w, x) = sample(t, n, k);
            let packed = Packed::pack(&w, n, k).unwrap();
            let mut dst = vec![0f32; t * n];
            let mut ints = Vec::new();
            let mut best = f64::MAX;
            for _ in 0..5 {
                let s = std::time::Instant::now();
                linear(&mut dst, &x, &packed, &vec![0.0; n], true, &mut ints, false);
                best = best.min(s.elapsed().as_secs_f64());
            }
            let mut best32 = f64::MAX;
            for _ in 0..5 {
                let s = std::time::Instant::now();
                // SAFETY: shapes as allocated above; dst is distinct from x and w.
                unsafe {
                    crate::kernels::matmul(
                        t,
                        n,
                        k,
                        (dst.as_mut_ptr(), n, 1),
                        (x.as_ptr(), k, 1),
                        (w.as_ptr(), 1, k),
                        true,
                        1.0,
                        1,
                    )
                };
                best32 = best32.min(s.elapsed().as_secs_f64());
            }
            let macs = (t * n * k) as f64;
            eprintln!(
                "{t}x{n}x{k}: fixed16 {:.1} GMAC/s, f32 {:.1} GMAC/s",
                macs / best / 1e9,
                macs / best32 / 1e9
            );
        }
    }
}
