//! The AVX-512 VNNI kernel: one `vpdpwssd` multiplies 32 pairs of 16-bit
//! integers and adds them into 16 sums, the add included, so a block needs
//! half the instructions of AVX2's `vpmaddwd` + `vpaddd` per multiply-add, and
//! AVX-512's 32 registers hold a larger block of sums.

use std::arch::x86_64::*;

use super::Operands;

/// Output columns per packed group: one AVX-512 vector of 16 sums.
const GROUP: usize = 16;
const BLOCK_ROWS: usize = 8;
const BLOCK_GROUPS: usize = 3;

/// `dst[rows × n] = (residual ? dst : 0) + bias + x[rows × 2kp] · wᵀ` for
/// every group of `words`, in blocks of 8 rows × 3 groups (48 columns): 24
/// sums and 3 weight vectors in registers, each row's pair broadcast from
/// memory. MiniLM's widths (384, 1,152, 1,536) are whole numbers of blocks.
#[target_feature(enable = "avx2,avx512f,avx512vnni")]
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
    let mut sums = [[_mm512_setzero_si512(); G]; R];
    let w = words.as_ptr().add(g * kp * GROUP);
    let x = x.as_ptr().add(r * kp);
    for p in 0..kp {
        let mut wv = [_mm512_setzero_si512(); G];
        for (j, v) in wv.iter_mut().enumerate() {
            *v = _mm512_loadu_si512(w.add((j * kp + p) * GROUP).cast());
        }
        for (i, row) in sums.iter_mut().enumerate() {
            let a = _mm512_set1_epi32(*x.add(i * kp + p));
            for (s, v) in row.iter_mut().zip(&wv) {
                *s = _mm512_dpwssd_epi32(*s, a, *v);
            }
        }
    }
    for (i, row) in sums.iter().enumerate() {
        let step = _mm512_set1_ps(steps[r + i]);
        for (j, s) in row.iter().enumerate() {
            let col = (g + j) * GROUP;
            let scale = _mm512_mul_ps(_mm512_loadu_ps(scales.as_ptr().add(col)), step);
            let out = dst.as_mut_ptr().add((r + i) * n + col);
            let v = _mm512_mul_ps(_mm512_cvtepi32_ps(*s), scale);
            let mut base = _mm512_loadu_ps(bias.as_ptr().add(col));
            if ops.residual {
                base = _mm512_add_ps(_mm512_loadu_ps(out), base);
            }
            _mm512_storeu_ps(out, _mm512_add_ps(base, v));
        }
    }
}
