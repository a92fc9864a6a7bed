//! The 8-bit product on 256-bit vectors, for CPUs with VNNI but no AVX-512:
//! AVX-VNNI (Alder Lake and later Intel cores). The packing is the 512-bit
//! kernel's; a group of 16 columns is two registers of 8 sums. The same code
//! is also compiled for AVX-512 VNNI's encoding of the instruction, so that
//! it is tested, and can be timed, on CPUs that have AVX-512 instead.

use std::arch::x86_64::*;

use super::{Operands, GROUP};

/// Rows per block: 6 rows × 2 registers of sums, 2 of weights and one
/// broadcast row fit AVX-VNNI's 16 registers.
const BLOCK_ROWS: usize = 6;

/// Rows of `f32` (times `smoothing`) to rows of bytes, and each row's step
/// and zero point, as the 512-bit kernel's `to_bytes` does, in AVX2.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn to_bytes(
    out: &mut [i32],
    scales: (&mut [f32], &mut [i32]),
    rows: &[f32],
    smoothing: &[f32],
) {
    // The low byte of each of a lane's four integers, into its first word.
    let low_bytes = _mm256_setr_epi8(
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, //
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    );
    let row_range = |x: &[f32]| range(x, smoothing);
    let row_bytes = |o: &mut [i32], x: &[f32], inv: f32, zero: f32| {
        let (inv, zero) = (_mm256_set1_ps(inv), _mm256_set1_ps(zero));
        let (least, most) = (_mm256_setzero_ps(), _mm256_set1_ps(255.0));
        for ((o, x), m) in o
            .chunks_exact_mut(2)
            .zip(x.chunks_exact(8))
            .zip(smoothing.chunks_exact(8))
        {
            let v = _mm256_mul_ps(_mm256_loadu_ps(x.as_ptr()), _mm256_loadu_ps(m.as_ptr()));
            // As in the 512-bit kernel: zero + round(x / step), clamped.
            let v = _mm256_fmadd_ps(v, inv, zero);
            let v = _mm256_min_ps(_mm256_max_ps(v, least), most);
            let v = _mm256_shuffle_epi8(_mm256_cvtps_epi32(v), low_bytes);
            o[0] = _mm256_extract_epi32::<0>(v);
            o[1] = _mm256_extract_epi32::<4>(v);
        }
    };
    super::rows_to_bytes(out, scales, rows, smoothing.len(), row_range, row_bytes);
}

/// The least and the largest value of `x` · `smoothing` (a multiple of 8
/// long), zero included; NaN is skipped.
#[target_feature(enable = "avx2")]
unsafe fn range(x: &[f32], smoothing: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for (v, s) in x.chunks_exact(8).zip(smoothing.chunks_exact(8)) {
        let v = _mm256_mul_ps(_mm256_loadu_ps(v.as_ptr()), _mm256_loadu_ps(s.as_ptr()));
        lo = _mm256_min_ps(v, lo);
        hi = _mm256_max_ps(v, hi);
    }
    let (mut los, mut his) = ([0f32; 8], [0f32; 8]);
    _mm256_storeu_ps(los.as_mut_ptr(), lo);
    _mm256_storeu_ps(his.as_mut_ptr(), hi);
    (
        los.iter().fold(0f32, |m, v| m.min(*v)),
        his.iter().fold(0f32, |m, v| m.max(*v)),
    )
}

/// `dst[rows × n] = (residual ? dst : 0) + bias + x · wᵀ` through `$dpbusd`,
/// a group of 16 columns at a time, in blocks of [`BLOCK_ROWS`] rows.
macro_rules! rows_times_groups {
    ($(#[$doc:meta])* $name:ident, $features:literal, $dpbusd:ident) => {
        $(#[$doc])*
        #[target_feature(enable = $features)]
        pub unsafe fn $name(dst: &mut [f32], ops: &Operands) {
            let rows = ops.steps.len();
            debug_assert!(dst.len() == rows * ops.n && ops.x.len() == rows * ops.kq);
            for g in 0..ops.n / GROUP {
                let mut r = 0;
                while r + BLOCK_ROWS <= rows {
                    block::<BLOCK_ROWS>(dst, ops, r, g);
                    r += BLOCK_ROWS;
                }
                while r < rows {
                    block::<1>(dst, ops, r, g);
                    r += 1;
                }
            }

            /// Rows `r..r+R` times group `g`, the zero points' share taken
            /// off, scaled, with the bias (and the residual in `dst`) added.
            #[inline(always)]
            unsafe fn block<const R: usize>(
                dst: &mut [f32],
                ops: &Operands,
                r: usize,
                g: usize,
            ) {
                let (n, kq) = (ops.n, ops.kq);
                let mut sums = [[_mm256_setzero_si256(); 2]; R];
                let w = ops.words.as_ptr().add(g * kq * GROUP);
                let x = ops.x.as_ptr().add(r * kq);
                for q in 0..kq {
                    let lo = _mm256_loadu_si256(w.add(q * GROUP).cast());
                    let hi = _mm256_loadu_si256(w.add(q * GROUP + 8).cast());
                    for (i, row) in sums.iter_mut().enumerate() {
                        let a = _mm256_set1_epi32(*x.add(i * kq + q));
                        row[0] = $dpbusd(row[0], a, lo);
                        row[1] = $dpbusd(row[1], a, hi);
                    }
                }
                for (i, row) in sums.iter().enumerate() {
                    let step = _mm256_set1_ps(ops.steps[r + i]);
                    let zero = _mm256_set1_epi32(ops.zeros[r + i]);
                    for (h, s) in row.iter().enumerate() {
                        let col = g * GROUP + 8 * h;
                        let col_sums = _mm256_loadu_si256(ops.sums.as_ptr().add(col).cast());
                        let exact = _mm256_sub_epi32(*s, _mm256_mullo_epi32(zero, col_sums));
                        let scale =
                            _mm256_mul_ps(_mm256_loadu_ps(ops.scales.as_ptr().add(col)), step);
                        let out = dst.as_mut_ptr().add((r + i) * n + col);
                        let v = _mm256_mul_ps(_mm256_cvtepi32_ps(exact), scale);
                        let mut base = _mm256_loadu_ps(ops.bias.as_ptr().add(col));
                        if ops.residual {
                            base = _mm256_add_ps(_mm256_loadu_ps(out), base);
                        }
                        _mm256_storeu_ps(out, _mm256_add_ps(base, v));
                    }
                }
            }
        }
    };
}

rows_times_groups!(
    /// Through AVX-VNNI (VEX-encoded `vpdpbusd`).
    avx_vnni,
    "avx2,fma,avxvnni",
    _mm256_dpbusd_avx_epi32
);

rows_times_groups!(
    /// Through AVX-512 VNNI's encoding of the same instruction on 256 bits.
    avx512_vnni,
    "avx2,fma,avx512vnni,avx512vl",
    _mm256_dpbusd_epi32
);
