//! The AVX2 kernel: `vpmaddwd` then `vpaddd`, sixteen multiply-adds per pair
//! of instructions, eight columns to a vector.

use std::arch::x86_64::*;

use super::{step, Operands};

/// Output columns per packed group: one AVX2 vector of eight 32-bit sums.
const GROUP: usize = 8;

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
