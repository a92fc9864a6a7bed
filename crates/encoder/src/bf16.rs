//! The encoder's large matrix products in bfloat16, on CPUs with AVX-512 BF16:
//! through Intel AMX tiles (Advanced Matrix Extensions: Xeon since Sapphire
//! Rapids) when the CPU and the operating system allow it, else through
//! AVX-512 BF16 dot products (`vdpbf16ps`: AMD Zen 4 and later, Intel Cooper
//! Lake).
//!
//! One AMX instruction multiplies a 16×32 bfloat16 tile by a 32×16 one into a
//! 16×16 `f32` tile: 8,192 multiply-adds, where an AVX-512 FMA does 16. One
//! `vdpbf16ps` does 32, twice an `f32` FMA, at the same rate on Zen 4 (on
//! Sapphire Rapids it has one port where FMAs have two, so there it was slower
//! than `gemm`'s `f32` kernels, and AMX is used). Weights and activations are
//! rounded to bfloat16 (8 bits of mantissa, to nearest even) and the sums are
//! kept in `f32`; vectors stay within 1e-4 cosine of the `f32` model
//! (`tests/engine/embed_local.rs`). Queries never come here: they take the
//! `f32` row path, so a search process never packs the weights. Rust has no
//! stable AMX intrinsics, so the few tile instructions are inline assembly;
//! tile state is per thread, so every task loads the tile configuration.
//!
//! Layout: a weight matrix `[n × k]` (PyTorch's `[out × in]`) is packed once
//! into groups of 64 output columns; within a group, for each pair of inputs
//! `(2p, 2p+1)`, 64 words, one per column, hold that pair (AMX's "VNNI" layout
//! for the right-hand tile, read with a stride). Activations are rows of such
//! pairs, which is the left-hand tile's layout as they lie.

use rayon::prelude::*;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
use crate::column_groups::{by_column_groups, Merge};

/// Output columns per packed group: four AVX-512 vectors of sixteen `f32`.
const GROUP: usize = 64;

/// Rows of activations per task, and per block of tiles (two tiles of 16).
const ROWS_PER_TASK: usize = 32;

/// How the bfloat16 products run on this CPU.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kernel {
    /// AMX tiles.
    Tiles,
    /// AVX-512 BF16 dot products.
    Dots,
}

/// Whether this CPU has the instructions, the system lets this process use
/// them, and the user has not asked for `f32` (`SIFT_ENCODER_PRECISION=f32`,
/// for comparing the two).
pub fn enabled() -> bool {
    std::env::var("SIFT_ENCODER_PRECISION").as_deref() != Ok("f32") && kernel().is_some()
}

/// Whether the products run on AMX tiles (else on AVX-512 BF16's dots).
pub fn uses_tiles() -> bool {
    kernel() == Some(Kernel::Tiles)
}

/// `None` without AVX-512 BF16. `SIFT_ENCODER_PRECISION=bf16-dots` picks the
/// dot products on an AMX machine too (to compare them).
fn kernel() -> Option<Kernel> {
    static KERNEL: std::sync::OnceLock<Option<Kernel>> = std::sync::OnceLock::new();
    *KERNEL.get_or_init(|| {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            if !(std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bf16"))
            {
                return None;
            }
            let dots_asked = std::env::var("SIFT_ENCODER_PRECISION").as_deref() == Ok("bf16-dots");
            if !dots_asked && amx::cpu_has_tiles() && amx::request_permission() {
                return Some(Kernel::Tiles);
            }
            Some(Kernel::Dots)
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        {
            None
        }
    })
}

/// A weight matrix packed for [`matmul_acc`].
pub struct Packed {
    n: usize,
    k: usize,
    words: Vec<u32>,
}

impl Packed {
    /// Packs `w` (`[n × k]`, row-major); `None` for shapes the kernel does not
    /// cover (the caller keeps the `f32` product for those).
    pub fn pack(w: &[f32], n: usize, k: usize) -> Option<Packed> {
        if !fits(n, k) || w.len() != n * k {
            return None;
        }
        let words = crate::kernels::pack_pairs(w, n, k, GROUP, pair);
        Some(Packed { n, k, words })
    }
}

/// Shapes the kernel covers: whole groups of columns, inputs in whole tiles
/// of 32.
fn fits(n: usize, k: usize) -> bool {
    n > 0 && n.is_multiple_of(GROUP) && k > 0 && k.is_multiple_of(32)
}

/// `f32` to bfloat16, rounded to nearest even (as `vcvtne2ps2bf16` does).
fn bf16(x: f32) -> u32 {
    let bits = x.to_bits();
    if x.is_nan() {
        return (bits >> 16) | 0x40;
    }
    (bits + 0x7fff + ((bits >> 16) & 1)) >> 16
}

/// Two values as one word: the first in the low half.
fn pair(first: f32, second: f32) -> u32 {
    bf16(first) | (bf16(second) << 16)
}

/// `dst[t × n] += src[t × k] · wᵀ`. `pairs` is working memory (reused
/// between calls to save page faults on a fresh allocation each time).
///
/// # Panics
/// When the shapes disagree or the CPU lacks AVX-512 BF16.
pub fn matmul_acc(dst: &mut [f32], src: &[f32], w: &Packed, pairs: &mut Vec<u32>, parallel: bool) {
    let (n, k) = (w.n, w.k);
    let t = src.len() / k;
    let kernel = kernel();
    assert!(src.len() == t * k && dst.len() == t * n && kernel.is_some());
    let kp = k / 2;
    // Whole blocks of rows: the last block's extra rows are zeros.
    let padded = t.div_ceil(ROWS_PER_TASK) * ROWS_PER_TASK;
    pairs.clear();
    pairs.resize(padded * kp, 0);
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        // SAFETY (both kernels): the CPU has the instructions (checked above);
        // `d` is 32 rows of n floats, `x` 32 rows of kp words, `w` n × kp words.
        let times_groups = |d: &mut [f32], x: &[u32]| unsafe {
            if kernel == Some(Kernel::Tiles) {
                amx::block_times_groups(d, n, x, kp, &w.words)
            } else {
                dots::block_times_groups(d, n, x, kp, &w.words)
            }
        };
        let convert = |(out, rows): (&mut [u32], &[f32])| {
            // SAFETY: the assert checked the CPU; lengths are whole rows of
            // k (a multiple of 32) floats and k/2 words.
            unsafe { amx::to_pairs(out, rows) }
        };
        let block = |(d, x): (&mut [f32], &[u32])| {
            let rows = d.len() / n;
            if rows == ROWS_PER_TASK {
                times_groups(d, x)
            } else {
                // The last rows: through a whole block, then copied back.
                let mut whole = vec![0f32; ROWS_PER_TASK * n];
                whole[..d.len()].copy_from_slice(d);
                times_groups(&mut whole, x);
                d.copy_from_slice(&whole[..d.len()]);
            }
        };
        if parallel {
            pairs
                .par_chunks_mut(kp * ROWS_PER_TASK)
                .zip(src.par_chunks(k * ROWS_PER_TASK))
                .for_each(convert);
            dst.par_chunks_mut(n * ROWS_PER_TASK)
                .zip(pairs.par_chunks(kp * ROWS_PER_TASK))
                .for_each(block);
        } else {
            pairs
                .chunks_mut(kp * ROWS_PER_TASK)
                .zip(src.chunks(k * ROWS_PER_TASK))
                .for_each(convert);
            dst.chunks_mut(n * ROWS_PER_TASK)
                .zip(pairs.chunks(kp * ROWS_PER_TASK))
                .for_each(block);
        }
    }
}

/// [`matmul_acc`] for a few rows (a query's word pieces): the work is split
/// by groups of columns rather than blocks of rows, and rows are not padded
/// to a block. Against the `f32` row products it reads half the bytes of
/// weights and does half the instructions, which also leaves more of the
/// memory bus to an index run embedding beside it.
///
/// # Panics
/// When the shapes disagree or the CPU lacks AVX-512 BF16.
pub fn matmul_acc_few(dst: &mut [f32], src: &[f32], w: &Packed, parallel: bool) {
    let (n, k) = (w.n, w.k);
    let t = src.len() / k;
    assert!(src.len() == t * k && dst.len() == t * n && kernel().is_some());
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        let kp = k / 2;
        let mut pairs = vec![0u32; t * kp];
        // SAFETY: the assert checked the CPU; `src` is whole rows of k (a
        // multiple of 32) floats, `pairs` as many rows of k/2 words.
        unsafe { amx::to_pairs(&mut pairs, src) };
        by_column_groups(dst, n, GROUP, parallel, Merge::Add, |c0, out| {
            // SAFETY: the CPU has the instructions; `out` is t rows of one
            // group's 64 columns (n is a multiple of 64), `pairs` t rows of
            // kp words.
            unsafe { dots::rows_times_group(out, &pairs, kp, &w.words, c0 / GROUP) };
        });
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod amx {
    use std::arch::asm;
    use std::arch::x86_64::*;

    use super::{GROUP, ROWS_PER_TASK};

    /// CPUID leaf 7: AMX-BF16 (EDX bit 22) and AMX-TILE (bit 24). (Rust's
    /// `is_x86_feature_detected!` does not take these names on stable.)
    pub fn cpu_has_tiles() -> bool {
        // Leaf 7 exists on every CPU with AVX-512, checked first.
        let leaf = __cpuid_count(7, 0);
        leaf.edx & (1 << 22) != 0 && leaf.edx & (1 << 24) != 0
    }

    /// Linux hands out AMX's large register state only to processes that
    /// ask (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`).
    pub fn request_permission() -> bool {
        const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
        const XFEATURE_XTILEDATA: i64 = 18;
        const SYS_ARCH_PRCTL: i64 = 158;
        let ret: i64;
        // SAFETY: a plain system call that only changes this process's
        // permissions; it clobbers rcx and r11 as every syscall does.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") SYS_ARCH_PRCTL => ret,
                in("rdi") ARCH_REQ_XCOMP_PERM,
                in("rsi") XFEATURE_XTILEDATA,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret == 0
    }

    /// Rows of `f32` to rows of bfloat16 pairs.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn to_pairs(out: &mut [u32], rows: &[f32]) {
        for (o, x) in out.chunks_exact_mut(16).zip(rows.chunks_exact(32)) {
            let lo = _mm512_loadu_ps(x.as_ptr());
            let hi = _mm512_loadu_ps(x.as_ptr().add(16));
            // Lanes 0-15 from the second operand, 16-31 from the first: the
            // values stay in memory order, so a word is a consecutive pair.
            let packed: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            _mm512_storeu_si512(o.as_mut_ptr().cast(), packed);
        }
    }

    /// The tile configuration: palette 1, eight tiles of 16 rows × 64 bytes.
    #[repr(C, align(64))]
    struct TileConfig {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        bytes_per_row: [u16; 16],
        rows: [u8; 16],
    }

    const TILES: TileConfig = {
        let mut c = TileConfig {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            bytes_per_row: [0; 16],
            rows: [0; 16],
        };
        let mut t = 0;
        while t < 8 {
            c.bytes_per_row[t] = 64;
            c.rows[t] = 16;
            t += 1;
        }
        c
    };

    /// `dst[32 × n] += x[32 × 2kp] · wᵀ` for every group of `words`.
    ///
    /// Tiles: 0-3 the 32×32 block of `dst` being summed, 4-5 its two 16-row
    /// halves of `x`, 6-7 its two 16-column halves of the weights.
    pub unsafe fn block_times_groups(
        dst: &mut [f32],
        n: usize,
        x: &[u32],
        kp: usize,
        words: &[u32],
    ) {
        debug_assert!(dst.len() == ROWS_PER_TASK * n && x.len() == ROWS_PER_TASK * kp);
        debug_assert!(words.len() == n * kp && kp.is_multiple_of(16));
        let dst_stride = n * 4;
        let x_stride = kp * 4;
        let w_stride = GROUP * 4;
        asm!("ldtilecfg [{}]", in(reg) &TILES, options(nostack, readonly));
        for g in 0..n / GROUP {
            for half in 0..2 {
                let col = g * GROUP + half * 32;
                let c0 = dst.as_mut_ptr().add(col);
                let c1 = c0.add(16 * n);
                asm!(
                    "tileloadd tmm0, [{c0} + {s}*1]",
                    "tileloadd tmm1, [{c0} + {s}*1 + 64]",
                    "tileloadd tmm2, [{c1} + {s}*1]",
                    "tileloadd tmm3, [{c1} + {s}*1 + 64]",
                    c0 = in(reg) c0,
                    c1 = in(reg) c1,
                    s = in(reg) dst_stride,
                    options(nostack, readonly),
                );
                let w = words.as_ptr().add(g * GROUP * kp + half * 32);
                for step in 0..kp / 16 {
                    let a0 = x.as_ptr().add(step * 16);
                    let a1 = a0.add(16 * kp);
                    let b = w.add(step * 16 * GROUP);
                    asm!(
                        "tileloadd tmm4, [{a0} + {sa}*1]",
                        "tileloadd tmm5, [{a1} + {sa}*1]",
                        "tileloadd tmm6, [{b} + {sb}*1]",
                        "tileloadd tmm7, [{b} + {sb}*1 + 64]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tdpbf16ps tmm1, tmm4, tmm7",
                        "tdpbf16ps tmm2, tmm5, tmm6",
                        "tdpbf16ps tmm3, tmm5, tmm7",
                        a0 = in(reg) a0,
                        a1 = in(reg) a1,
                        b = in(reg) b,
                        sa = in(reg) x_stride,
                        sb = in(reg) w_stride,
                        options(nostack, readonly),
                    );
                }
                asm!(
                    "tilestored [{c0} + {s}*1], tmm0",
                    "tilestored [{c0} + {s}*1 + 64], tmm1",
                    "tilestored [{c1} + {s}*1], tmm2",
                    "tilestored [{c1} + {s}*1 + 64], tmm3",
                    c0 = in(reg) c0,
                    c1 = in(reg) c1,
                    s = in(reg) dst_stride,
                    options(nostack),
                );
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}

/// The same product through AVX-512 BF16 dot products.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod dots {
    use std::arch::x86_64::*;

    use super::{GROUP, ROWS_PER_TASK};

    /// Rows summed at once: 6 rows × one group's 4 vectors of 16 columns are
    /// 24 accumulators; per pair of inputs, 4 weight loads and 6 broadcasts
    /// feed 24 dot products (4 rows fed 16: the weights, read from L2, were
    /// the limit).
    const ROWS: usize = 6;

    /// `dst[32 × n] += x[32 × 2kp] · wᵀ` for every group of `words`.
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512 BF16; `dst` is 32 rows of `n`,
    /// `x` 32 rows of `kp` words, `words` `n × kp` words packed by groups.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn block_times_groups(
        dst: &mut [f32],
        n: usize,
        x: &[u32],
        kp: usize,
        words: &[u32],
    ) {
        debug_assert!(dst.len() == ROWS_PER_TASK * n && x.len() == ROWS_PER_TASK * kp);
        debug_assert!(words.len() == n * kp);
        for g in 0..n / GROUP {
            // SAFETY: group g's words are kp × 64 from g·64·kp.
            let w = unsafe { words.as_ptr().add(g * GROUP * kp) };
            let mut r = 0;
            while r < ROWS_PER_TASK {
                // SAFETY: rows r..r+ROWS (or the last 2) of x and dst exist;
                // columns g·64..+64 < n.
                unsafe {
                    let d = dst.as_mut_ptr().add(r * n + g * GROUP);
                    let x = x.as_ptr().add(r * kp);
                    if ROWS_PER_TASK - r >= ROWS {
                        rows::<ROWS>(d, n, x, kp, w);
                        r += ROWS;
                    } else {
                        rows::<{ ROWS_PER_TASK % ROWS }>(d, n, x, kp, w);
                        r += ROWS_PER_TASK % ROWS;
                    }
                }
            }
        }
    }

    /// `out[t × 64] += x[t × 2kp] · wᵀ` for group `g` of `words`, any `t`.
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512 BF16; `out` is t rows of 64,
    /// `x` t rows of `kp` words, and `words` holds group `g` (kp × 64 words).
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn rows_times_group(out: &mut [f32], x: &[u32], kp: usize, words: &[u32], g: usize) {
        let t = out.len() / GROUP;
        debug_assert!(out.len() == t * GROUP && x.len() == t * kp);
        debug_assert!(words.len() >= (g + 1) * GROUP * kp);
        // SAFETY (the whole body): rows r..r+R of `out` and `x` exist (R is
        // at most what is left), and group g's words are kp × 64 from g·64·kp.
        unsafe {
            let w = words.as_ptr().add(g * GROUP * kp);
            let mut r = 0;
            while r < t {
                let d = out.as_mut_ptr().add(r * GROUP);
                let xr = x.as_ptr().add(r * kp);
                let step = match t - r {
                    1 => rows::<1>(d, GROUP, xr, kp, w),
                    2 => rows::<2>(d, GROUP, xr, kp, w),
                    3 => rows::<3>(d, GROUP, xr, kp, w),
                    4 => rows::<4>(d, GROUP, xr, kp, w),
                    5 => rows::<5>(d, GROUP, xr, kp, w),
                    _ => rows::<ROWS>(d, GROUP, xr, kp, w),
                };
                r += step;
            }
        }
    }

    /// `R` rows of `dst` (row stride `n`, one group's 64 columns) plus `R`
    /// rows of `x` (stride `kp`) times one group of weights.
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[inline]
    unsafe fn rows<const R: usize>(
        d: *mut f32,
        n: usize,
        x: *const u32,
        kp: usize,
        w: *const u32,
    ) -> usize {
        // SAFETY (the whole body): offsets stay inside the R rows of `d`
        // and `x` and the group's kp × 64 words, as the caller promised.
        unsafe {
            let mut acc: [[__m512; 4]; R] = std::array::from_fn(|r| {
                std::array::from_fn(|v| _mm512_loadu_ps(d.add(r * n + v * 16)))
            });
            for p in 0..kp {
                let row = w.add(p * GROUP);
                let wv: [__m512bh; 4] = std::array::from_fn(|v| {
                    std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(
                        row.add(v * 16).cast(),
                    ))
                });
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let xv: __m512bh =
                        std::mem::transmute(_mm512_set1_epi32(*x.add(r * kp + p) as i32));
                    for (a, wc) in acc_r.iter_mut().zip(&wv) {
                        *a = _mm512_dpbf16_ps(*a, xv, *wc);
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                for (v, a) in acc_r.iter().enumerate() {
                    _mm512_storeu_ps(d.add(r * n + v * 16), *a);
                }
            }
        }
        R
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(bf16(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to even (1).
        assert_eq!(bf16(1.0 + 1.0 / 256.0), 0x3f80);
        // Just above halfway rounds up.
        assert_eq!(bf16(f32::from_bits(0x3f80_8001)), 0x3f81);
        // 1 + 3·2^-8 is halfway between odd 1+2^-7 and even 1+2^-6: up.
        assert_eq!(bf16(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(bf16(-2.0), 0xc000);
    }

    /// The packed product against an `f64` product of the same bfloat16-rounded
    /// inputs, on shapes with ragged row counts (with this CPU's kernel).
    #[test]
    fn product_matches_rounded_reference() {
        if kernel().is_none() {
            eprintln!("no AVX-512 BF16 on this machine: the bfloat16 product is not used here");
            return;
        }
        eprintln!("bfloat16 kernel: {:?}", kernel());
        let round = |x: f32| f32::from_bits(bf16(x) << 16);
        for (t, n, k) in [
            (1, 64, 32),
            (7, 128, 64),
            (12, 128, 64),
            (61, 192, 384),
            (130, 64, 96),
        ] {
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 33.0)
                .collect();
            let x: Vec<f32> = (0..t * k)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 17.0)
                .collect();
            let packed = Packed::pack(&w, n, k).unwrap();
            // Both products (blocks of rows; a query's few rows by groups),
            // on one thread and on several.
            for (few, parallel) in [(false, false), (false, true), (true, false), (true, true)] {
                let mut dst: Vec<f32> = (0..t * n).map(|i| i as f32).collect();
                if few {
                    matmul_acc_few(&mut dst, &x, &packed, parallel);
                } else {
                    matmul_acc(&mut dst, &x, &packed, &mut Vec::new(), parallel);
                }
                for r in 0..t {
                    for c in 0..n {
                        let want: f64 = (r * n + c) as f64
                            + (0..k)
                                .map(|i| round(x[r * k + i]) as f64 * round(w[c * k + i]) as f64)
                                .sum::<f64>();
                        let got = dst[r * n + c] as f64;
                        assert!(
                            (got - want).abs() <= 1e-3 * want.abs().max(1.0),
                            "{t}×{n}×{k} (few {few}) row {r} col {c}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn shapes_outside_the_kernel_are_declined() {
        assert!(Packed::pack(&[0.0; 32 * 32], 32, 32).is_none());
        assert!(Packed::pack(&[0.0; 64 * 48], 64, 48).is_none());
        assert!(Packed::pack(&[0.0; 64 * 64], 64, 64).is_some());
    }
}
