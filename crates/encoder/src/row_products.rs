//! The query path's products: a few rows of activations against every row of a
//! weight matrix in its own `[n × k]` layout, read once and in place.
//!
//! A query is 5-60 word pieces. `gemm` would first repack the whole weight
//! matrix for them (a query of 30 pieces cost about 40 ms that way), and one
//! dot product at a time pays a horizontal sum per 384 multiply-adds. Here a
//! block of 4 activation rows meets 4 weight rows: 16 AVX-512 accumulators, 8
//! loads per 16 fused multiply-adds, one horizontal sum per accumulator at the
//! end. Weights stream from memory once; the activations stay in cache.

use crate::kernels;

/// Activation rows per block.
const ROWS: usize = 4;
/// Weight rows per block.
const COLS: usize = 4;

/// `out[r × cols + c] = rows[r] · weights[c]`, every row and weight of
/// length `k` (`cols = weights.len() / k`).
pub fn dot_rows(out: &mut [f32], rows: &[f32], weights: &[f32], k: usize) {
    assert!(
        k > 0 && rows.len().is_multiple_of(k) && weights.len().is_multiple_of(k),
        "rows and weights of whole length {k}"
    );
    assert_eq!(out.len(), rows.len() / k * (weights.len() / k));
    #[cfg(target_arch = "x86_64")]
    if k.is_multiple_of(16) && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; shapes were checked above.
        unsafe { avx512::dot_rows(out, rows, weights, k) };
        return;
    }
    kernels::dot_rows(out, rows, weights, k)
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{COLS, ROWS};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX-512F; `k` is a multiple of 16 and the slices are
    /// whole rows of `k` (`out` has one value per row and weight).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_rows(out: &mut [f32], rows: &[f32], weights: &[f32], k: usize) {
        let t = rows.len() / k;
        let cols = weights.len() / k;
        let mut c = 0;
        while c < cols {
            let nc = COLS.min(cols - c);
            let mut r = 0;
            while r < t {
                let nr = ROWS.min(t - r);
                // SAFETY: rows r..r+nr and weights c..c+nc exist, each k long.
                unsafe {
                    let x = rows.as_ptr().add(r * k);
                    let w = weights.as_ptr().add(c * k);
                    let sums = match (nr, nc) {
                        (4, 4) => block::<4, 4>(x, w, k),
                        _ => partial(x, nr, w, nc, k),
                    };
                    for (i, row) in sums.iter().enumerate().take(nr) {
                        out[(r + i) * cols + c..][..nc].copy_from_slice(&row[..nc]);
                    }
                }
                r += nr;
            }
            c += nc;
        }
    }

    /// A whole block: `R` rows of `x` against `C` rows of `w`, all `k` long.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn block<const R: usize, const C: usize>(
        x: *const f32,
        w: *const f32,
        k: usize,
    ) -> [[f32; COLS]; ROWS] {
        let mut acc = [[_mm512_setzero_ps(); C]; R];
        let mut j = 0;
        while j < k {
            // SAFETY: j + 16 <= k within every row (k is a multiple of 16).
            unsafe {
                let wv: [__m512; C] = std::array::from_fn(|c| _mm512_loadu_ps(w.add(c * k + j)));
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let xv = _mm512_loadu_ps(x.add(r * k + j));
                    for (a, wc) in acc_r.iter_mut().zip(&wv) {
                        *a = _mm512_fmadd_ps(xv, *wc, *a);
                    }
                }
            }
            j += 16;
        }
        let mut sums = [[0f32; COLS]; ROWS];
        for (s, a) in sums.iter_mut().zip(&acc) {
            for (v, lanes) in s.iter_mut().zip(a) {
                *v = _mm512_reduce_add_ps(*lanes);
            }
        }
        sums
    }

    /// The edge of the matrix: fewer rows or weights than a whole block.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn partial(
        x: *const f32,
        nr: usize,
        w: *const f32,
        nc: usize,
        k: usize,
    ) -> [[f32; COLS]; ROWS] {
        let mut sums = [[0f32; COLS]; ROWS];
        for (r, s) in sums.iter_mut().enumerate().take(nr) {
            for (c, v) in s.iter_mut().enumerate().take(nc) {
                // SAFETY: row r < nr and weight c < nc exist, each k long.
                *v = unsafe { block::<1, 1>(x.add(r * k), w.add(c * k), k)[0][0] };
            }
        }
        sums
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every block shape, edges included, against plain sums in f64.
    #[test]
    fn agrees_with_plain_dot_products_at_every_edge() {
        let k = 48;
        for (t, cols) in [(1, 1), (3, 5), (4, 4), (5, 9), (13, 7), (9, 64)] {
            let rows: Vec<f32> = (0..t * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 31.0)
                .collect();
            let weights: Vec<f32> = (0..cols * k)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 29.0)
                .collect();
            let mut out = vec![f32::NAN; t * cols];
            dot_rows(&mut out, &rows, &weights, k);
            for r in 0..t {
                for c in 0..cols {
                    let want: f64 = (0..k)
                        .map(|j| rows[r * k + j] as f64 * weights[c * k + j] as f64)
                        .sum();
                    let got = out[r * cols + c] as f64;
                    assert!(
                        (got - want).abs() < 1e-3 * (1.0 + want.abs()),
                        "{t}x{cols} ({r},{c}): {got} vs {want}"
                    );
                }
            }
        }
    }
}
