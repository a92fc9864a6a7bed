//! The encoder's large matrix products in 16-bit fixed point, on CPUs with AVX2
//! and no AVX-512 (most laptops and desktops, AMD Zen 1-3), and on CPUs with
//! AVX-512 VNNI where the 8-bit products (`fixed8`) are turned off
//! (`SIFT_ENCODER_PRECISION=fixed16`) or a shape does not fit them.
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
//! into groups of output columns, one vector of 32-bit sums wide (8 for AVX2,
//! 16 for AVX-512); within a group, for each pair of inputs `(2p, 2p+1)`, one
//! word per column holds that pair as two 16-bit integers, the first in the
//! low half. Activations are rows of such pairs, so one broadcast word of a
//! row against one group's words is one `vpmaddwd` (AVX2) or `vpdpwssd`
//! (AVX-512 VNNI, which adds into the sums in the same instruction).

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

/// Rows of activations per task: converted to integers once, then multiplied
/// by every group of columns while they sit in L2.
const ROWS_PER_TASK: usize = 48;

/// The instructions a packed matrix is laid out for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kernel {
    /// `vpmaddwd` + `vpaddd` over 8 columns (AVX2).
    Avx2,
    /// `vpdpwssd` over 16 columns (AVX-512 VNNI: Ice Lake and later, Zen 4).
    Avx512Vnni,
}

impl Kernel {
    /// Output columns per packed group: one vector of 32-bit sums.
    fn group(self) -> usize {
        match self {
            Kernel::Avx2 => 8,
            Kernel::Avx512Vnni => 16,
        }
    }

    /// Whether this CPU has the kernel's instructions.
    fn runs_here(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = std::arch::is_x86_feature_detected!("avx2");
            match self {
                Kernel::Avx2 => avx2,
                Kernel::Avx512Vnni => {
                    avx2 && std::arch::is_x86_feature_detected!("avx512f")
                        && std::arch::is_x86_feature_detected!("avx512vnni")
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// The widest kernel this CPU runs; `SIFT_ENCODER_PRECISION=fixed16-avx2`
    /// keeps AVX2's on an AVX-512 machine, to compare the two.
    pub fn of_this_cpu() -> Option<Kernel> {
        static KERNEL: std::sync::OnceLock<Option<Kernel>> = std::sync::OnceLock::new();
        *KERNEL.get_or_init(|| {
            let avx2_asked = precision_asked().as_deref() == Some("fixed16-avx2");
            [Kernel::Avx512Vnni, Kernel::Avx2]
                .into_iter()
                .filter(|k| !avx2_asked || *k == Kernel::Avx2)
                .find(|k| k.runs_here())
        })
    }
}

fn precision_asked() -> Option<String> {
    std::env::var("SIFT_ENCODER_PRECISION").ok()
}

/// Whether this CPU takes the fixed-point products: AVX-512 VNNI, or AVX2
/// without AVX-512 (an AVX-512 machine without VNNI runs `gemm`'s `f32`
/// kernels at the same rate). The encoder prefers AMX tiles where a CPU has
/// them (`bf16`). `SIFT_ENCODER_PRECISION` overrides, to compare: `f32` and
/// `bf16-dots` turn these products off, `fixed16` (or `fixed16-avx2`) picks
/// them on any AVX2 machine.
pub fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| {
        let asked = precision_asked();
        let Some(kernel) = Kernel::of_this_cpu() else {
            return false;
        };
        match asked.as_deref() {
            Some("f32" | "bf16-dots") => false,
            Some("fixed16" | "fixed16-avx2") => true,
            _ => kernel == Kernel::Avx512Vnni || !cpu_has_avx512(),
        }
    })
}

fn cpu_has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
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
    /// The layout's kernel.
    kernel: Kernel,
    /// `n / group` groups of `k / 2` rows of `group` words.
    words: Vec<i32>,
    /// Per column: the value of one integer step.
    scales: Vec<f32>,
}

impl Packed {
    /// Packs `w` (`[n × k]`, row-major) for this CPU's widest kernel that
    /// covers the shape; `None` for shapes no kernel covers, or no kernel
    /// here (the caller keeps the `f32` product for those).
    pub fn pack(w: &[f32], n: usize, k: usize) -> Option<Packed> {
        let widest = Kernel::of_this_cpu()?;
        [widest, Kernel::Avx2]
            .into_iter()
            .find_map(|kernel| Packed::pack_for(w, n, k, kernel))
    }

    /// Packs `w` for `kernel`; `None` if the shape does not fit it.
    fn pack_for(w: &[f32], n: usize, k: usize, kernel: Kernel) -> Option<Packed> {
        if !fits(n, k, kernel) || w.len() != n * k {
            return None;
        }
        let q = limit(k);
        let scales: Vec<f32> = w.chunks_exact(k).map(|col| step(col, q)).collect();
        let ints: Vec<i16> = w
            .chunks_exact(k)
            .zip(&scales)
            .flat_map(|(col, &s)| col.iter().map(move |&x| to_int(x, s, q)))
            .collect();
        let words = crate::kernels::pack_pairs(&ints, n, k, kernel.group(), word);
        Some(Packed {
            n,
            k,
            kernel,
            words,
            scales,
        })
    }
}

/// Shapes a kernel covers: whole groups of columns, whole pairs of inputs.
fn fits(n: usize, k: usize, kernel: Kernel) -> bool {
    n > 0 && n.is_multiple_of(kernel.group()) && k > 0 && k.is_multiple_of(16)
}

/// One task's operands: `x` (rows of `kp` integer pairs) with each row's
/// step, and `words` (`n` columns packed) with each column's.
#[derive(Clone, Copy)]
struct Operands<'a> {
    n: usize,
    x: &'a [i32],
    steps: &'a [f32],
    kp: usize,
    words: &'a [i32],
    scales: &'a [f32],
    /// Added to every row; `n` values.
    bias: &'a [f32],
    /// Whether `dst` holds a residual to add to (else it is overwritten).
    residual: bool,
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
/// When the shapes disagree or the CPU lacks the packing's kernel.
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
    assert!(src.len() == t * k && dst.len() == t * n && bias.len() == n && w.kernel.runs_here());
    let kp = k / 2;
    let q = limit(k);
    ints.clear();
    ints.resize(t * kp, 0);
    let mut steps = vec![0f32; t];
    #[cfg(target_arch = "x86_64")]
    {
        let task = |((d, x), (rows, s)): Task| {
            // SAFETY: the assert checked the CPU (AVX2 is part of either
            // kernel); `rows` is whole rows of k (a multiple of 16) floats,
            // `x` as many rows of k/2 words, `d` as many rows of n floats,
            // `w` n × kp words in its kernel's groups and n scales.
            unsafe {
                avx2::to_ints(x, s, rows, k, q);
                let ops = Operands {
                    n,
                    x,
                    steps: s,
                    kp,
                    words: &w.words,
                    scales: &w.scales,
                    bias,
                    residual,
                };
                match w.kernel {
                    Kernel::Avx2 => avx2::rows_times_groups(d, &ops),
                    Kernel::Avx512Vnni => avx512::rows_times_groups(d, &ops),
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    pub(super) use crate::reference::{assert_within_rounding, sample, start};

    /// The kernels this CPU runs (none without AVX2: the products are not
    /// used there).
    pub(super) fn kernels_here() -> Vec<Kernel> {
        let kernels: Vec<Kernel> = [Kernel::Avx2, Kernel::Avx512Vnni]
            .into_iter()
            .filter(|k| k.runs_here())
            .collect();
        if kernels.is_empty() {
            eprintln!("no AVX2 on this machine: the fixed-point product is not used here");
        }
        kernels
    }

    /// `x · wᵀ` added to a `dst` of start values (`reference::start`).
    fn product(
        kernel: Kernel,
        (t, n, k): (usize, usize, usize),
        x: &[f32],
        w: &[f32],
        parallel: bool,
    ) -> Vec<f32> {
        product_with(kernel, (t, n, k), x, w, &vec![0.0; n], true, parallel).unwrap()
    }

    /// [`linear`] from a `dst` of start values (`reference::start`); `None` if the shape
    /// does not fit the kernel.
    fn product_with(
        kernel: Kernel,
        (t, n, k): (usize, usize, usize),
        x: &[f32],
        w: &[f32],
        bias: &[f32],
        residual: bool,
        parallel: bool,
    ) -> Option<Vec<f32>> {
        let packed = Packed::pack_for(w, n, k, kernel)?;
        let mut dst: Vec<f32> = (0..t * n).map(start).collect();
        linear(
            &mut dst,
            x,
            &packed,
            bias,
            residual,
            &mut Vec::new(),
            parallel,
        );
        Some(dst)
    }

    /// Against an `f64` product, on ragged row counts and group counts (every
    /// block shape of each kernel), one thread and several. The error bound is
    /// the rounding of both operands: half a step of each, times the other's
    /// magnitude.
    #[test]
    fn product_matches_reference_within_rounding() {
        for kernel in kernels_here() {
            product_matches_reference_with(kernel);
        }
    }

    fn product_matches_reference_with(kernel: Kernel) {
        for (t, n, k) in [
            (1, 8, 16),
            (3, 16, 32),
            (5, 24, 64),
            (7, 40, 384),
            (9, 48, 64),
            (17, 112, 384),
            (53, 64, 96),
            (101, 384, 1536),
        ] {
            if !fits(n, k, kernel) {
                continue;
            }
            let (w, x) = sample(t, n, k);
            let q = limit(k) as f64;
            let bias: Vec<f32> = (0..n).map(|c| (c % 3) as f32 - 1.25).collect();
            for (parallel, residual) in [(false, true), (true, true), (false, false), (true, false)]
            {
                let got =
                    product_with(kernel, (t, n, k), &x, &w, &bias, residual, parallel).unwrap();
                assert_within_rounding(
                    &format!("{kernel:?}"),
                    &got,
                    (&x, &w, &bias),
                    (t, n, k),
                    residual,
                    q,
                );
            }
        }
    }

    /// The largest integers in every product of a long row: with the limit
    /// the sums cannot wrap, so the answer is exact.
    #[test]
    fn extreme_values_do_not_wrap() {
        let (t, n, k) = (2, 16, 1536);
        let w = vec![-3.0f32; n * k];
        let x = vec![5.0f32; t * k];
        for kernel in kernels_here() {
            let got = product(kernel, (t, n, k), &x, &w, false);
            for (i, v) in got.iter().enumerate() {
                let want = start(i) - 15.0 * k as f32;
                assert!(
                    (v - want).abs() <= 1e-3 * want.abs(),
                    "{kernel:?} {i}: {v} vs {want}"
                );
            }
        }
    }

    /// Rows of zeros, NaN or infinity give finite output for the rows around
    /// them and never panic.
    #[test]
    fn zero_and_non_finite_rows_leave_other_rows_intact() {
        let (t, n, k) = (4, 16, 16);
        let w: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32 - 2.0).collect();
        let mut x: Vec<f32> = vec![1.0; t * k];
        x[..k].fill(0.0);
        x[k] = f32::NAN;
        x[2 * k] = f32::INFINITY;
        for kernel in kernels_here() {
            let got = product(kernel, (t, n, k), &x, &w, false);
            // Row 0 is all zeros: dst keeps its start values.
            for (c, v) in got[..n].iter().enumerate() {
                assert_eq!(*v, start(c), "{kernel:?}");
            }
            // Row 3 is untouched by its neighbours.
            for c in 0..n {
                let want = start(3 * n + c) + w[c * k..][..k].iter().sum::<f32>();
                assert!((got[3 * n + c] - want).abs() < 1e-2, "{kernel:?} {c}");
            }
        }
    }

    #[test]
    fn shapes_outside_the_kernel_are_declined() {
        let Some(widest) = Kernel::of_this_cpu() else {
            return;
        };
        assert!(Packed::pack(&[0.0; 12 * 16], 12, 16).is_none());
        assert!(Packed::pack(&[0.0; 8 * 24], 8, 24).is_none());
        assert_eq!(
            Packed::pack(&[0.0; 8 * 32], 8, 32).unwrap().kernel,
            Kernel::Avx2
        );
        // A width the widest kernel covers takes it; one only AVX2's groups
        // cover falls back to them.
        assert_eq!(
            Packed::pack(&[0.0; 48 * 32], 48, 32).unwrap().kernel,
            widest
        );
        assert_eq!(
            Packed::pack(&[0.0; 24 * 32], 24, 32).unwrap().kernel,
            Kernel::Avx2
        );
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
    use super::tests::{kernels_here, sample};
    use super::*;

    /// Best of five runs of `f`, in seconds.
    fn best_of_5(mut f: impl FnMut()) -> f64 {
        (0..5)
            .map(|_| {
                let s = std::time::Instant::now();
                f();
                s.elapsed().as_secs_f64()
            })
            .fold(f64::MAX, f64::min)
    }

    /// Multiply-adds per second of the encoder's two shapes, each kernel this
    /// CPU runs against `gemm`'s `f32` (and bfloat16's, where the CPU has it),
    /// one thread; run with
    /// `cargo test --release -p sift-encoder fixed16_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn fixed16_speed() {
        for (t, n, k) in [(6400, 1152, 384), (6400, 384, 1536)] {
            let (w, x) = sample(t, n, k);
            let macs = (t * n * k) as f64;
            let mut dst = vec![0f32; t * n];
            let mut line = format!("{t}x{n}x{k}:");
            for kernel in kernels_here() {
                let packed = Packed::pack_for(&w, n, k, kernel).unwrap();
                let mut ints = Vec::new();
                let best = best_of_5(|| {
                    linear(&mut dst, &x, &packed, &vec![0.0; n], true, &mut ints, false)
                });
                line += &format!(" fixed16 {kernel:?} {:.1} GMAC/s,", macs / best / 1e9);
            }
            if crate::bf16::enabled() {
                let packed = crate::bf16::Packed::pack(&w, n, k).unwrap();
                let mut pairs = Vec::new();
                let best =
                    best_of_5(|| crate::bf16::matmul_acc(&mut dst, &x, &packed, &mut pairs, false));
                line += &format!(" bf16 {:.1} GMAC/s,", macs / best / 1e9);
            }
            let best32 = best_of_5(|| {
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
                }
            });
            eprintln!("{line} f32 {:.1} GMAC/s", macs / best32 / 1e9);
        }
    }
}
