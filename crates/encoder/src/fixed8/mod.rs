//! The encoder's matrix products in 8-bit integers, on CPUs with VNNI:
//! AVX-512 VNNI (Ice Lake and later Xeons, Zen 4; `avx512.rs`) or AVX-VNNI
//! (Alder Lake and later Intel cores; `vnni256.rs`).
//!
//! One `vpdpbusd` multiplies 64 pairs of an unsigned and a signed byte and
//! adds each four into one of 16 32-bit sums: twice the multiply-adds of
//! `vpdpwssd` over 16-bit integers (`fixed16`) at the same rate. Weights are
//! scaled per output column to ±127. Activations take unsigned bytes (the
//! instruction wants them on one side): each row's range, zero included, is
//! cut into 255 steps from its least value, whose byte is the row's zero
//! point (a row after GELU, nearly all positive, gets all 8 bits where a
//! symmetric scale would leave it 7). The zero point's share, zero point
//! times each column's sum of weights, is taken off the sums afterwards, so
//! they are exact: at most k · 255 · 127, far inside an `i32`.
//!
//! Layout: a weight matrix `[n × k]` is packed once into groups of 16 output
//! columns; within a group, for each four inputs `4q..4q+4`, 16 words (one per
//! column) hold those four weights as bytes, the first in the lowest.
//! Activations are rows of such words, so one broadcast word of a row against
//! one group's 16 words is one `vpdpbusd` (two on 256-bit vectors).

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use crate::column_groups::{by_column_groups, Merge};

#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod vnni256;

/// Output columns per packed group: one AVX-512 vector of 16 sums, or two
/// 256-bit vectors.
const GROUP: usize = 16;

/// Rows of activations per task.
const ROWS_PER_TASK: usize = 48;

/// The largest magnitude of a weight or an activation before the shift.
const Q: f32 = 127.0;

/// The instructions an 8-bit product runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// AVX-512 VNNI on 512-bit vectors.
    Avx512,
    /// AVX-VNNI on 256-bit vectors (CPUs without AVX-512).
    AvxVnni,
    /// The 256-bit kernel through AVX-512 VNNI's encoding: what `AvxVnni`
    /// computes, on CPUs with AVX-512 (tests, and
    /// `SIFT_ENCODER_PRECISION=fixed8-256` to time it).
    Vnni256,
}

impl Kernel {
    /// The kernel the encoder uses here: the widest this CPU runs, unless
    /// the user asked for the 256-bit one; `None` without VNNI.
    pub fn of_this_cpu() -> Option<Kernel> {
        static CHOSEN: std::sync::OnceLock<Option<Kernel>> = std::sync::OnceLock::new();
        *CHOSEN.get_or_init(|| {
            let narrow_asked =
                std::env::var("SIFT_ENCODER_PRECISION").as_deref() == Ok("fixed8-256");
            let mut here = Kernel::available();
            if narrow_asked {
                here.retain(|k| *k != Kernel::Avx512);
            }
            here.first().copied()
        })
    }

    /// Every kernel this CPU runs, widest first.
    pub fn available() -> Vec<Kernel> {
        [Kernel::Avx512, Kernel::AvxVnni, Kernel::Vnni256]
            .into_iter()
            .filter(|k| k.runs_here())
            .collect()
    }

    fn runs_here(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx512 = has!("avx512f") && has!("avx512bw") && has!("avx512vnni");
            match self {
                Kernel::Avx512 => avx512,
                Kernel::AvxVnni => has!("avx2") && has!("fma") && has!("avxvnni"),
                Kernel::Vnni256 => avx512 && has!("avx512vl") && has!("avx2") && has!("fma"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

/// Whether this CPU has the instructions (and the user did not turn them off).
pub fn cpu_has_kernel() -> bool {
    Kernel::of_this_cpu().is_some()
}

/// A weight matrix packed for [`linear`].
pub struct Packed {
    kernel: Kernel,
    n: usize,
    k: usize,
    /// `n / GROUP` groups of `k / 4` rows of `GROUP` words.
    words: Vec<i32>,
    /// Per column: the value of one integer step.
    scales: Vec<f32>,
    /// Per column: the sum of its integer weights (times a row's zero point,
    /// that point's share of the row's sums).
    sums: Vec<i32>,
    /// Per input channel: what activations are multiplied by before rounding
    /// (the weights were multiplied by its inverse).
    smoothing: Vec<f32>,
}

impl Packed {
    /// Packs `w` (`[n × k]`, row-major), smoothed by `ranges`, its inputs'
    /// largest magnitude per channel (`k` values; SmoothQuant, Xiao et al.
    /// 2023): a channel whose activations run large (a transformer has a few)
    /// would otherwise set every row's step and leave the rest of the row a
    /// few levels; its share of the range moves into the weights, each
    /// channel scaled by √(activation range / weight range). `None` for
    /// shapes the kernel does not cover, or without the instructions.
    pub fn pack(w: &[f32], n: usize, k: usize, ranges: &[f32]) -> Option<Packed> {
        Packed::pack_for(Kernel::of_this_cpu()?, w, n, k, ranges)
    }

    /// [`Packed::pack`] for `kernel` (which must run here).
    fn pack_for(kernel: Kernel, w: &[f32], n: usize, k: usize, ranges: &[f32]) -> Option<Packed> {
        if !fits(n, k) || w.len() != n * k || !kernel.runs_here() {
            return None;
        }
        let smoothing = smoothing(w, k, ranges);
        let w: Vec<f32> = w
            .chunks_exact(k)
            .flat_map(|col| col.iter().zip(&smoothing).map(|(v, s)| v / s))
            .collect();
        let scales: Vec<f32> = w.chunks_exact(k).map(step).collect();
        let ints: Vec<i8> = w
            .chunks_exact(k)
            .zip(&scales)
            .flat_map(|(col, &s)| col.iter().map(move |&x| to_int(x, s) as i8))
            .collect();
        let sums = ints
            .chunks_exact(k)
            .map(|col| col.iter().map(|&v| v as i32).sum::<i32>())
            .collect();
        let quads = k / 4;
        let mut words = vec![0i32; n * quads];
        words
            .par_chunks_mut(GROUP * quads)
            .enumerate()
            .for_each(|(g, out)| {
                for q in 0..quads {
                    for c in 0..GROUP {
                        let col = &ints[(g * GROUP + c) * k + 4 * q..];
                        out[q * GROUP + c] = i32::from_le_bytes([
                            col[0] as u8,
                            col[1] as u8,
                            col[2] as u8,
                            col[3] as u8,
                        ]);
                    }
                }
            });
        Some(Packed {
            kernel,
            n,
            k,
            words,
            scales,
            sums,
            smoothing,
        })
    }
}

/// Per input channel of `w` (`[n × k]`): the factor its activations are
/// multiplied by (and its weights divided by), 1 where either side is all
/// zero or `ranges` does not fit.
fn smoothing(w: &[f32], k: usize, ranges: &[f32]) -> Vec<f32> {
    if ranges.len() != k {
        return vec![1.0; k];
    }
    let mut w_max = vec![0f32; k];
    for col in w.chunks_exact(k) {
        w_max
            .iter_mut()
            .zip(col)
            .for_each(|(m, v)| *m = m.max(v.abs()));
    }
    ranges
        .iter()
        .zip(&w_max)
        .map(|(&x, &w)| {
            let s = (w / x).sqrt();
            if s.is_finite() && s > 0.0 {
                s.clamp(1e-4, 1e4)
            } else {
                1.0
            }
        })
        .collect()
}

/// Shapes the kernel covers: whole groups of columns, inputs in sixteens.
fn fits(n: usize, k: usize) -> bool {
    n > 0 && n.is_multiple_of(GROUP) && k > 0 && k.is_multiple_of(16)
}

/// The value of one integer step for `xs`: its largest magnitude maps to
/// [`Q`]. Zero for all-zero (or non-finite) rows, whose integers are then 0.
fn step(xs: &[f32]) -> f32 {
    let max = xs.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max.is_finite() && max > 0.0 {
        max / Q
    } else {
        0.0
    }
}

/// `x` in steps of `s`, to nearest, clamped to ±Q (`as` maps NaN to 0).
fn to_int(x: f32, s: f32) -> i32 {
    if s == 0.0 {
        return 0;
    }
    (x / s).round_ties_even().clamp(-Q, Q) as i32
}

/// A row's step and zero point from its least and largest value (zero
/// included): 255 steps from the least, whose byte is the zero point.
/// `None` for a row of zeros, or one with infinity in it.
fn step_and_zero(lo: f32, hi: f32) -> Option<(f32, i32)> {
    let step = (hi - lo) / 255.0;
    if !(step.is_finite() && step > 0.0) {
        return None;
    }
    Some((
        step,
        (-lo / step).round_ties_even().clamp(0.0, 255.0) as i32,
    ))
}

/// The row loop of every kernel's `to_bytes`: each row's range (`range`),
/// its step and zero point, then its values as bytes (`convert(words, row,
/// 1 / step, zero)`); a row of zeros, or with infinity in it, becomes zeros.
/// Inlined into each kernel's own, whose closures carry its instructions.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn rows_to_bytes(
    out: &mut [i32],
    (steps, zeros): (&mut [f32], &mut [i32]),
    rows: &[f32],
    k: usize,
    range: impl Fn(&[f32]) -> (f32, f32),
    convert: impl Fn(&mut [i32], &[f32], f32, f32),
) {
    for (((o, s), z), x) in out
        .chunks_exact_mut(k / 4)
        .zip(steps.iter_mut())
        .zip(zeros.iter_mut())
        .zip(rows.chunks_exact(k))
    {
        let (lo, hi) = range(x);
        if let Some((step, zero)) = step_and_zero(lo, hi) {
            (*s, *z) = (step, zero);
            convert(o, x, 1.0 / step, zero as f32);
        } else {
            (*s, *z) = (0.0, 0);
            o.fill(0);
        }
    }
}

/// One task's operands: `x` (rows of `kq` words of four bytes) with each
/// row's step, and the packed weights.
pub struct Operands<'a> {
    pub n: usize,
    pub x: &'a [i32],
    pub steps: &'a [f32],
    pub zeros: &'a [i32],
    pub kq: usize,
    /// The packed weights of the columns in `n` (groups of 16).
    pub words: &'a [i32],
    pub scales: &'a [f32],
    pub sums: &'a [i32],
    pub bias: &'a [f32],
    pub residual: bool,
}

/// Rows of `f32` (times `smoothing`) to rows of bytes, with each row's step
/// and zero point, on `kernel`'s instructions.
///
/// # Safety
/// `kernel` runs on this CPU; `out` holds as many rows of k/4 words as
/// `rows` holds rows of k floats (k = `smoothing.len()`, a multiple of 16).
#[cfg(target_arch = "x86_64")]
unsafe fn to_bytes(
    kernel: Kernel,
    out: &mut [i32],
    scales: (&mut [f32], &mut [i32]),
    rows: &[f32],
    smoothing: &[f32],
) {
    match kernel {
        Kernel::Avx512 => avx512::to_bytes(out, scales, rows, smoothing),
        Kernel::AvxVnni | Kernel::Vnni256 => vnni256::to_bytes(out, scales, rows, smoothing),
    }
}

/// `dst = (residual ? dst : 0) + bias + x · wᵀ` on `kernel`'s instructions.
///
/// # Safety
/// `kernel` runs on this CPU; `ops` is consistent (whole groups of
/// columns, `x` rows of `kq` words) and `dst` holds its rows × `n`.
#[cfg(target_arch = "x86_64")]
unsafe fn product(kernel: Kernel, dst: &mut [f32], ops: &Operands) {
    match kernel {
        Kernel::Avx512 => avx512::rows_times_groups(dst, ops),
        Kernel::AvxVnni => vnni256::avx_vnni(dst, ops),
        Kernel::Vnni256 => vnni256::avx512_vnni(dst, ops),
    }
}

/// One task's rows: (output, bytes) and (input, (steps, zero points)).
type Task<'a> = (
    (&'a mut [f32], &'a mut [i32]),
    (&'a [f32], (&'a mut [f32], &'a mut [i32])),
);

/// `dst[t × n] = (residual ? dst : 0) + bias + src[t × k] · wᵀ`. `bytes` is
/// working memory, reused between calls.
///
/// # Panics
/// When the shapes disagree or the CPU lacks the instructions.
#[allow(clippy::too_many_arguments)]
pub fn linear(
    dst: &mut [f32],
    src: &[f32],
    w: &Packed,
    bias: &[f32],
    residual: bool,
    bytes: &mut Vec<i32>,
    parallel: bool,
) {
    let (n, k) = (w.n, w.k);
    let t = src.len() / k;
    let kernel = w.kernel;
    assert!(src.len() == t * k && dst.len() == t * n && bias.len() == n && kernel.runs_here());
    let kq = k / 4;
    bytes.clear();
    bytes.resize(t * kq, 0);
    let mut steps = vec![0f32; t];
    let mut zeros = vec![0i32; t];
    #[cfg(target_arch = "x86_64")]
    {
        let task = |((d, x), (rows, (s, z))): Task| {
            // SAFETY: the assert checked the CPU; `rows` is whole rows of k
            // (a multiple of 16) floats, `x` as many rows of k/4 words, `d`
            // as many rows of n floats, `w` n × kq words and n scales.
            unsafe {
                to_bytes(kernel, x, (s, z), rows, &w.smoothing);
                let ops = Operands {
                    n,
                    x,
                    steps: s,
                    zeros: z,
                    kq,
                    words: &w.words,
                    scales: &w.scales,
                    sums: &w.sums,
                    bias,
                    residual,
                };
                product(kernel, d, &ops);
            }
        };
        if parallel && t <= ROWS_PER_TASK {
            // A query's few rows would be one task: split the columns instead.
            // SAFETY: as above, for all t rows at once.
            unsafe { to_bytes(kernel, bytes, (&mut steps, &mut zeros), src, &w.smoothing) };
            return few_rows(dst, w, bias, residual, (bytes, &steps, &zeros));
        }
        let tasks = dst
            .par_chunks_mut(n * ROWS_PER_TASK)
            .zip(bytes.par_chunks_mut(kq * ROWS_PER_TASK))
            .zip(
                src.par_chunks(k * ROWS_PER_TASK).zip(
                    steps
                        .par_chunks_mut(ROWS_PER_TASK)
                        .zip(zeros.par_chunks_mut(ROWS_PER_TASK)),
                ),
            );
        if parallel {
            tasks.for_each(task);
        } else {
            tasks.with_min_len(usize::MAX).for_each(task);
        }
    }
}

/// Columns per task when a product's few rows are split by columns.
const FEW_ROWS_COLUMNS: usize = 3 * GROUP;

/// [`linear`] for rows already in bytes, split by columns over the pool
/// (48 columns a task). The residual, where asked, is added when the
/// groups are merged.
#[cfg(target_arch = "x86_64")]
fn few_rows(
    dst: &mut [f32],
    w: &Packed,
    bias: &[f32],
    residual: bool,
    (bytes, steps, zeros): (&[i32], &[f32], &[i32]),
) {
    let (n, kq) = (w.n, w.k / 4);
    let merge = if residual { Merge::Add } else { Merge::Copy };
    by_column_groups(dst, n, FEW_ROWS_COLUMNS, true, merge, |c0, out| {
        let cw = out.len() / steps.len();
        let ops = Operands {
            n: cw,
            x: bytes,
            steps,
            zeros,
            kq,
            words: &w.words[c0 * kq..(c0 + cw) * kq],
            scales: &w.scales[c0..c0 + cw],
            sums: &w.sums[c0..c0 + cw],
            bias: &bias[c0..c0 + cw],
            residual: false,
        };
        // SAFETY: `linear` checked the CPU; the slices are whole groups of
        // 16 columns (n is a multiple of 16, and so is each c0).
        unsafe { product(w.kernel, out, &ops) };
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    pub(super) use crate::reference::{assert_within_rounding, sample, start};

    /// `x · wᵀ` through `kernel` (no bias, no residual, one thread).
    fn plain_product(
        kernel: Kernel,
        w: &[f32],
        x: &[f32],
        (n, k): (usize, usize),
        ranges: &[f32],
    ) -> Vec<f32> {
        let packed = Packed::pack_for(kernel, w, n, k, ranges).unwrap();
        let mut got = vec![0f32; x.len() / k * n];
        let bias = vec![0.0; n];
        linear(&mut got, x, &packed, &bias, false, &mut Vec::new(), false);
        got
    }

    /// Against an `f64` product, every block shape, one thread and several,
    /// with and without the residual: within the rounding of both operands.
    #[test]
    fn product_matches_reference_within_rounding() {
        if Kernel::available().is_empty() {
            eprintln!("no VNNI on this machine: the 8-bit product is not used here");
        }
        for kernel in Kernel::available() {
            for (t, n, k) in [(1, 16, 16), (9, 48, 64), (17, 112, 384), (101, 384, 1536)] {
                let (w, x) = sample(t, n, k);
                let packed = Packed::pack_for(kernel, &w, n, k, &[]).unwrap();
                let bias: Vec<f32> = (0..n).map(|c| (c % 3) as f32 - 1.25).collect();
                // Parallel with at most 48 rows: the few-rows path (split by columns).
                for (parallel, residual) in
                    [(false, true), (true, true), (false, false), (true, false)]
                {
                    let mut got: Vec<f32> = (0..t * n).map(start).collect();
                    linear(
                        &mut got,
                        &x,
                        &packed,
                        &bias,
                        residual,
                        &mut Vec::new(),
                        parallel,
                    );
                    assert_within_rounding(
                        &format!("{kernel:?}"),
                        &got,
                        (&x, &w, &bias),
                        (t, n, k),
                        residual,
                        Q as f64,
                    );
                }
            }
        }
    }

    /// The 256-bit kernel computes what the 512-bit one does, to the bit
    /// (the same bytes, integer sums and scaling), smoothed or not, on the
    /// rows path and the few-rows path.
    #[test]
    fn kernels_agree_to_the_bit() {
        let kernels = Kernel::available();
        for (t, n, k) in [(7, 48, 64), (53, 384, 1536)] {
            let (w, x) = sample(t, n, k);
            let ranges: Vec<f32> = (0..k).map(|c| 1.0 + (c % 5) as f32).collect();
            let bias: Vec<f32> = (0..n).map(|c| (c % 3) as f32 - 1.25).collect();
            for (smooth, parallel) in [(&ranges[..], true), (&[][..], false)] {
                let outs: Vec<Vec<u32>> = kernels
                    .iter()
                    .map(|&kernel| {
                        let packed = Packed::pack_for(kernel, &w, n, k, smooth).unwrap();
                        let mut got = vec![0.5f32; t * n];
                        linear(
                            &mut got,
                            &x,
                            &packed,
                            &bias,
                            true,
                            &mut Vec::new(),
                            parallel,
                        );
                        got.iter().map(|v| v.to_bits()).collect()
                    })
                    .collect();
                for (kernel, out) in kernels.iter().zip(&outs).skip(1) {
                    assert!(out == &outs[0], "{kernel:?} differs from {:?}", kernels[0]);
                }
            }
        }
    }

    /// A channel whose activations run 50 times larger than the rest (as a
    /// transformer's few outlier channels do): smoothed by the inputs'
    /// ranges, the product's error falls well below the unsmoothed one.
    #[test]
    fn smoothing_tames_an_outlier_channel() {
        for kernel in Kernel::available() {
            let (t, n, k) = (32, 48, 384);
            let (w, mut x) = sample(t, n, k);
            for row in x.chunks_exact_mut(k) {
                row[7] *= 50.0;
            }
            let mut ranges = vec![0f32; k];
            for row in x.chunks_exact(k) {
                ranges
                    .iter_mut()
                    .zip(row)
                    .for_each(|(m, v)| *m = m.max(v.abs()));
            }
            let error = |ranges: &[f32]| {
                let got = plain_product(kernel, &w, &x, (n, k), ranges);
                let mut worst = 0f64;
                for r in 0..t {
                    for c in 0..n {
                        let exact: f64 = x[r * k..][..k]
                            .iter()
                            .zip(&w[c * k..][..k])
                            .map(|(a, b)| *a as f64 * *b as f64)
                            .sum();
                        worst = worst.max((got[r * n + c] as f64 - exact).abs());
                    }
                }
                worst
            };
            let (plain, smoothed) = (error(&[]), error(&ranges));
            eprintln!("worst error: smoothed {smoothed:.4}, plain {plain:.4}");
            assert!(
                smoothed < plain / 2.0,
                "smoothed {smoothed} vs plain {plain}"
            );
        }
    }

    /// Rows that are all positive, or all negative, or a single value, keep
    /// 8 bits of their own range (zero included): exact to half a step.
    #[test]
    fn one_signed_rows_use_the_whole_byte() {
        for kernel in Kernel::available() {
            let (n, k) = (16, 64);
            let w: Vec<f32> = (0..n * k)
                .map(|i| if i % (k + 1) == 0 { 1.0 } else { 0.0 })
                .collect();
            // w picks input c for output c (an identity on the first 16 inputs).
            let rows: Vec<Vec<f32>> = vec![
                (0..k).map(|j| 1.0 + j as f32 / 7.0).collect(),
                (0..k).map(|j| -0.5 - j as f32 / 11.0).collect(),
                vec![3.25; k],
            ];
            for x in rows {
                let got = plain_product(kernel, &w, &x, (n, k), &[]);
                let (lo, hi) = x
                    .iter()
                    .fold((0f32, 0f32), |(l, h), v| (l.min(*v), h.max(*v)));
                let half_step = (hi - lo) / 255.0 / 2.0;
                for c in 0..n {
                    assert!(
                        (got[c] - x[c]).abs() <= half_step * 1.01,
                        "{c}: {} vs {}",
                        got[c],
                        x[c]
                    );
                }
            }
        }
    }

    /// Rows of zeros, NaN or infinity never panic and leave other rows intact.
    #[test]
    fn zero_and_non_finite_rows_leave_other_rows_intact() {
        for kernel in Kernel::available() {
            let (t, n, k) = (4, 16, 16);
            let w: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32 - 2.0).collect();
            let mut x: Vec<f32> = vec![1.0; t * k];
            x[..k].fill(0.0);
            x[k] = f32::NAN;
            x[2 * k] = f32::INFINITY;
            let packed = Packed::pack_for(kernel, &w, n, k, &[]).unwrap();
            let mut got: Vec<f32> = (0..t * n).map(start).collect();
            linear(
                &mut got,
                &x,
                &packed,
                &vec![0.0; n],
                true,
                &mut Vec::new(),
                false,
            );
            for (c, v) in got[..n].iter().enumerate() {
                assert_eq!(*v, start(c));
            }
            for c in 0..n {
                let want = start(3 * n + c) + w[c * k..][..k].iter().sum::<f32>();
                assert!((got[3 * n + c] - want).abs() < 1e-2, "{c}");
            }
        }
    }

    /// Multiply-adds per second of MiniLM's two shapes, one thread; run with
    /// `cargo test --release -p sift-encoder fixed8_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn fixed8_speed() {
        for kernel in Kernel::available() {
            for (t, n, k) in [(6400, 1152, 384), (6400, 384, 1536)] {
                let (w, x) = sample(t, n, k);
                let packed = Packed::pack_for(kernel, &w, n, k, &[]).unwrap();
                let mut dst = vec![0f32; t * n];
                let mut bytes = Vec::new();
                let best = (0..5)
                    .map(|_| {
                        let s = std::time::Instant::now();
                        linear(
                            &mut dst,
                            &x,
                            &packed,
                            &vec![0.0; n],
                            true,
                            &mut bytes,
                            false,
                        );
                        s.elapsed().as_secs_f64()
                    })
                    .fold(f64::MAX, f64::min);
                eprintln!(
                    "{t}x{n}x{k}: fixed8 {kernel:?} {:.1} GMAC/s",
                    (t * n * k) as f64 / best / 1e9
                );
            }
        }
    }
}
