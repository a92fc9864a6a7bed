//! CPU kernels for the encoder: matrix products (the `gemm` crate, which candle
//! uses too) and row-wise layer norm, softmax and GELU.
//!
//! The row-wise kernels are written so the compiler vectorises them, and are
//! compiled three times: plain, with AVX2, and with AVX-512, the widest the CPU
//! has chosen at run time (the default x86-64 target only assumes SSE2). Exact
//! `exp` and `erf` from libm do not vectorise and cost more than the matrix
//! products they sit between, so both are replaced by polynomial approximations
//! accurate to a few units in the last place of an f32.
//!
//! `gemm` is built with its `x86-v4` feature: its AVX-512 kernels (also chosen
//! at run time) run the encoder's products 2-4x faster than its AVX2 ones.

/// `dst[m×n] = (accumulate ? dst : 0) + scale · lhs[m×k] · rhs[k×n]`, every
/// matrix given as (pointer, row stride, column stride) in elements.
///
/// # Safety
/// Every pointer must be valid for the elements its shape and strides reach, and
/// `dst` must not overlap `lhs` or `rhs`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: (*mut f32, usize, usize),
    lhs: (*const f32, usize, usize),
    rhs: (*const f32, usize, usize),
    accumulate: bool,
    scale: f32,
    threads: usize,
) {
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    gemm::gemm(
        m,
        n,
        k,
        dst.0,
        dst.2 as isize,
        dst.1 as isize,
        accumulate,
        lhs.0,
        lhs.2 as isize,
        lhs.1 as isize,
        rhs.0,
        rhs.2 as isize,
        rhs.1 as isize,
        1.0,
        scale,
        false,
        false,
        false,
        parallelism,
    )
}

/// Runs `$body` (a call of `#[inline(always)]` kernels) with AVX-512, or AVX2
/// and FMA, code generation when the CPU has them.
macro_rules! dispatch {
    ($name:ident, ($($arg:ident: $ty:ty),*), $body:expr) => {
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn widest($($arg: $ty),*) {
                    $body
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn wide($($arg: $ty),*) {
                    $body
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports the features `widest` is compiled for.
                    return unsafe { widest($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU supports the features `wide` is compiled for.
                    return unsafe { wide($($arg),*) };
                }
            }
            $body
        }
    };
}

dispatch!(layer_norm, (rows: &mut [f32], width: usize, gamma: &[f32], beta: &[f32], eps: f32), {
    for row in rows.chunks_exact_mut(width) {
        layer_norm_row(row, gamma, beta, eps)
    }
});

dispatch!(softmax, (rows: &mut [f32], width: usize), {
    for row in rows.chunks_exact_mut(width) {
        softmax_row(row)
    }
});

dispatch!(gelu, (xs: &mut [f32]), {
    for x in xs.iter_mut() {
        *x = gelu_erf(*x)
    }
});

dispatch!(dot_rows, (out: &mut [f32], rows: &[f32], weights: &[f32], k: usize), {
    // out[r × cols + c] = rows[r] · weights[c], every row and weight of length k.
    let cols = weights.len() / k;
    for (c, w) in weights.chunks_exact(k).enumerate() {
        for (r, x) in rows.chunks_exact(k).enumerate() {
            out[r * cols + c] = dot(x, w);
        }
    }
});

/// Dot product in 32 lanes (four vectors of eight: the adds of one lane
/// do not wait on each other).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a_chunks, a_tail) = a.as_chunks::<32>();
    let (b_chunks, b_tail) = b.as_chunks::<32>();
    let mut acc = [0f32; 32];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for i in 0..32 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum::<f32>()
}

/// A weight matrix `w` (`[n × k]`, PyTorch's `[out × in]`) laid out for
/// products over pairs of inputs, as the narrow kernels read it: groups of
/// `group` output columns; within a group, for each pair of inputs
/// `(2p, 2p+1)`, one word per column, `word(w[c][2p], w[c][2p+1])`.
pub fn pack_pairs<T, W>(
    w: &[T],
    n: usize,
    k: usize,
    group: usize,
    word: impl Fn(T, T) -> W + Sync,
) -> Vec<W>
where
    T: Copy + Sync,
    W: Copy + Default + Send,
{
    use rayon::prelude::*;
    let pairs = k / 2;
    let mut words = vec![W::default(); n * pairs];
    words
        .par_chunks_mut(group * pairs)
        .enumerate()
        .for_each(|(g, out)| {
            for p in 0..pairs {
                for c in 0..group {
                    let row = &w[(g * group + c) * k..];
                    out[p * group + c] = word(row[2 * p], row[2 * p + 1]);
                }
            }
        });
    words
}

/// Adds `bias` to every row of `rows`.
pub fn add_rows(rows: &mut [f32], bias: &[f32]) {
    for row in rows.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(x, b)| *x += b);
    }
}

/// Sum of `xs`, in eight lanes so it vectorises.
#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let (chunks, tail) = xs.as_chunks::<8>();
    let mut acc = [0f32; 8];
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail.iter().sum::<f32>()
}

/// Sum of squares of `xs`, in eight lanes.
#[inline(always)]
fn sum_squares(xs: &[f32]) -> f32 {
    let (chunks, tail) = xs.as_chunks::<8>();
    let mut acc = [0f32; 8];
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x * x;
        }
    }
    acc.iter().sum::<f32>() + tail.iter().map(|x| x * x).sum::<f32>()
}

#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let (chunks, tail) = xs.as_chunks::<8>();
    let mut acc = [f32::NEG_INFINITY; 8];
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = if x > *a { x } else { *a };
        }
    }
    acc.iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b))
}

#[inline(always)]
fn layer_norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    row.iter_mut().for_each(|x| *x -= mean);
    let var = sum_squares(row) / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((x, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *x = *x * inv * g + b;
    }
}

#[inline(always)]
fn softmax_row(row: &mut [f32]) {
    let m = max(row);
    row.iter_mut().for_each(|x| *x = exp(*x - m));
    let inv = 1.0 / sum(row);
    row.iter_mut().for_each(|x| *x *= inv);
}

/// e^x for x ≤ 0 (softmax arguments), Cephes' single-precision polynomial.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2^23 rounds to the nearest integer, whose bits are then the
    // low bits of the sum: no float-to-int conversion, which would not vectorise.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    let pow2 = ((shifted.to_bits() as i32 - ROUND.to_bits() as i32 + 127) << 23) as u32;
    e * f32::from_bits(pow2)
}

/// erf(x) as a rational function on [-4, 4] (Eigen's and XLA's float erf);
/// outside it erf is ±1 to f32 precision.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 - 2.101_024e-6;
    p = p * x2 - 5.692_506_4e-5;
    p = p * x2 - 7.349_906_3e-4;
    p = p * x2 - 2.954_6e-3;
    p = p * x2 - 1.609_603_3e-2;
    let mut q = -1.456_607_2e-5;
    q = q * x2 - 2.133_740_6e-4;
    q = q * x2 - 1.682_827e-3;
    q = q * x2 - 7.373_329e-3;
    q = q * x2 - 1.426_474e-2;
    x * p / q
}

/// GELU as BERT defines it: x · Φ(x), with the exact normal CDF.
#[inline(always)]
fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Taylor series, in f64 (good to ~1e-11 on [-4, 4]).
    fn erf_ref(x: f64) -> f64 {
        let (mut term, mut total) = (x, x);
        for n in 1..200 {
            term *= -x * x / n as f64;
            total += term / (2 * n + 1) as f64;
        }
        total * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_is_accurate() {
        let mut worst: f64 = 0.0;
        for i in -5000..=5000 {
            let x = i as f32 * 0.001;
            let err = (erf(x) as f64 - erf_ref(x as f64)).abs();
            worst = worst.max(err);
        }
        assert!(worst < 1e-6, "worst erf error {worst}");
        assert!((erf(10.0) - 1.0).abs() < 1e-6);
        assert!((erf(-10.0) + 1.0).abs() < 1e-6);
    }

    #[test]
    fn exp_is_accurate() {
        let mut worst = (0.0f64, 0.0f32);
        for i in 0..=86_000 {
            let x = -(i as f32) * 0.001;
            let want = (x as f64).exp();
            let err = ((exp(x) as f64) - want).abs() / want;
            if err > worst.0 {
                worst = (err, x);
            }
        }
        assert!(worst.0 < 1e-6, "worst relative exp error {worst:?}");
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let mut rows: Vec<f32> = (0..3 * 37).map(|i| (i as f32 * 0.37).sin() * 9.0).collect();
        softmax(&mut rows, 37);
        for row in rows.chunks(37) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn layer_norm_matches_definition() {
        let mut row: Vec<f32> = (0..19).map(|i| i as f32 * 1.5 - 3.0).collect();
        let want: Vec<f32> = {
            let mean = row.iter().sum::<f32>() / 19.0;
            let var = row.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / 19.0;
            row.iter()
                .map(|x| (x - mean) / (var + 1e-12).sqrt() * 2.0 + 1.0)
                .collect()
        };
        layer_norm(&mut row, 19, &[2.0; 19], &[1.0; 19], 1e-12);
        for (a, b) in row.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn matmul_with_strides() {
        // a: 2×3, b given transposed (3×2 read through strides of a 2×3 buffer).
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let bt = [1.0f32, 0.0, 1.0, 0.5, 0.5, 0.5];
        let mut c = [10.0f32; 4];
        unsafe {
            matmul(
                2,
                2,
                3,
                (c.as_mut_ptr(), 2, 1),
                (a.as_ptr(), 3, 1),
                (bt.as_ptr(), 1, 3),
                true,
                2.0,
                1,
            )
        };
        // a · b = [[4, 3], [10, 7.5]]; doubled plus 10.
        assert_eq!(c, [18.0, 16.0, 30.0, 25.0]);
    }
}

#[cfg(test)]
mod speed {
    /// GFLOP/s of the shapes the encoder multiplies; run with
    /// `cargo test --release -p sift-encoder gemm_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn gemm_speed() {
        for (m, k, n) in [
            (6400, 384, 1536),
            (6400, 1536, 384),
            (6400, 384, 1152),
            (200, 32, 200),
            (200, 200, 32),
        ] {
            let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32).collect();
            let mut c = vec![0f32; m * n];
            let reps = if m > 1000 { 20 } else { 2000 };
            for threads in [1, 2] {
                let t = std::time::Instant::now();
                for _ in 0..reps {
                    unsafe {
                        super::matmul(
                            m,
                            n,
                            k,
                            (c.as_mut_ptr(), n, 1),
                            (a.as_ptr(), k, 1),
                            (b.as_ptr(), n, 1),
                            false,
                            1.0,
                            threads,
                        )
                    }
                }
                let dt = t.elapsed().as_secs_f64() / reps as f64;
                eprintln!(
                    "{m} {k} {n}: {:.1} GFLOP/s ({threads} threads)",
                    2.0 * (m * k * n) as f64 / dt / 1e9
                );
            }
        }
    }
}
