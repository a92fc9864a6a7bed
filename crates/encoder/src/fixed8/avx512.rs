//! The 8-bit product on 512-bit vectors (AVX-512 VNNI: Ice Lake and later
//! Xeons, Zen 4): 16 sums of a group of columns in one register.

use std::arch::x86_64::*;

use super::{Operands, GROUP};

const BLOCK_ROWS: usize = 8;
const BLOCK_GROUPS: usize = 3;

/// Rows of `f32` (times `smoothing`) to rows of bytes, and each row's
/// step and zero point: x = (byte - zero) · step, to the nearest step.
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn to_bytes(
    out: &mut [i32],
    scales: (&mut [f32], &mut [i32]),
    rows: &[f32],
    smoothing: &[f32],
) {
    let row_range = |x: &[f32]| range(x, smoothing);
    let row_bytes = |o: &mut [i32], x: &[f32], inv: f32, zero: f32| {
        let (inv, zero) = (_mm512_set1_ps(inv), _mm512_set1_ps(zero));
        let (least, most) = (_mm512_setzero_ps(), _mm512_set1_ps(255.0));
        for ((o, x), m) in o
            .chunks_exact_mut(4)
            .zip(x.chunks_exact(16))
            .zip(smoothing.chunks_exact(16))
        {
            let v = _mm512_mul_ps(_mm512_loadu_ps(x.as_ptr()), _mm512_loadu_ps(m.as_ptr()));
            // x / step + zero, rounded to nearest even: the zero point
            // is whole, so this is zero + round(x / step), as the sums'
            // correction assumes.
            let v = _mm512_fmadd_ps(v, inv, zero);
            let v = _mm512_min_ps(_mm512_max_ps(v, least), most);
            let v = _mm512_cvtps_epi32(v);
            _mm_storeu_si128(o.as_mut_ptr().cast(), _mm512_cvtepi32_epi8(v));
        }
    };
    super::rows_to_bytes(out, scales, rows, smoothing.len(), row_range, row_bytes);
}

/// The least and the largest value of `x` · `smoothing` (a multiple of
/// 16 long), zero included; NaN is skipped.
#[target_feature(enable = "avx512f")]
unsafe fn range(x: &[f32], smoothing: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    for (v, s) in x.chunks_exact(16).zip(smoothing.chunks_exact(16)) {
        let v = _mm512_mul_ps(_mm512_loadu_ps(v.as_ptr()), _mm512_loadu_ps(s.as_ptr()));
        lo = _mm512_min_ps(v, lo);
        hi = _mm512_max_ps(v, hi);
    }
    (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi))
}

/// `dst[rows × n] = (residual ? dst : 0) + bias + x · wᵀ`, in blocks of 8
/// rows × 3 groups (48 columns): 24 sums and 3 weight vectors in registers.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub unsafe fn rows_times_groups(dst: &mut [f32], ops: &Operands) {
    const BR: usize = BLOCK_ROWS;
    const BG: usize = BLOCK_GROUPS;
    let rows = ops.steps.len();
    debug_assert!(dst.len() == rows * ops.n && ops.x.len() == rows * ops.kq);
    let groups = ops.n / GROUP;
    let mut g = 0;
    while g < groups {
        let take = if groups - g >= BG { BG } else { 1 };
        let mut r = 0;
        while r < rows {
            let whole = rows - r >= BR;
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

/// Rows `r..r+R` times groups `g..g+G`, the zero points' share taken off, scaled, with
/// the bias (and the residual in `dst`) added, into `dst`.
#[inline(always)]
unsafe fn block<const R: usize, const G: usize>(
    dst: &mut [f32],
    ops: &Operands,
    r: usize,
    g: usize,
) {
    let (n, kq, steps) = (ops.n, ops.kq, ops.steps);
    let mut sums = [[_mm512_setzero_si512(); G]; R];
    let w = ops.words.as_ptr().add(g * kq * GROUP);
    let x = ops.x.as_ptr().add(r * kq);
    for q in 0..kq {
        let mut wv = [_mm512_setzero_si512(); G];
        for (j, v) in wv.iter_mut().enumerate() {
            *v = _mm512_loadu_si512(w.add((j * kq + q) * GROUP).cast());
        }
        for (i, row) in sums.iter_mut().enumerate() {
            let a = _mm512_set1_epi32(*x.add(i * kq + q));
            for (s, v) in row.iter_mut().zip(&wv) {
                *s = _mm512_dpbusd_epi32(*s, a, *v);
            }
        }
    }
    let (scales, col_sums, bias) = (ops.scales, ops.sums, ops.bias);
    for (i, row) in sums.iter().enumerate() {
        let step = _mm512_set1_ps(steps[r + i]);
        let zero = _mm512_set1_epi32(ops.zeros[r + i]);
        for (j, s) in row.iter().enumerate() {
            let col = (g + j) * GROUP;
            let share =
                _mm512_mullo_epi32(zero, _mm512_loadu_si512(col_sums.as_ptr().add(col).cast()));
            let exact = _mm512_sub_epi32(*s, share);
            let scale = _mm512_mul_ps(_mm512_loadu_ps(scales.as_ptr().add(col)), step);
            let out = dst.as_mut_ptr().add((r + i) * n + col);
            let v = _mm512_mul_ps(_mm512_cvtepi32_ps(exact), scale);
            let mut base = _mm512_loadu_ps(bias.as_ptr().add(col));
            if ops.residual {
                base = _mm512_add_ps(_mm512_loadu_ps(out), base);
            }
            _mm512_storeu_ps(out, _mm512_add_ps(base, v));
        }
    }
}
