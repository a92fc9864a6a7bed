//! The BERT encoder of all-MiniLM-L6-v2, run on packed (unpadded) sequences.
//!
//! The tokens of a whole batch sit one after another in one `[tokens × hidden]`
//! matrix: the per-token layers (projections, feed-forward, layer norms) are then
//! a few large matrix products, and attention runs per sequence and head at that
//! sequence's own length, so padding costs nothing and needs no mask. The weights
//! stay in PyTorch's `[out × in]` layout, mostly where the mapped file holds
//! them: the products read them transposed through their strides (the `gemm`
//! crate packs its operands either way).

use rayon::prelude::*;

use crate::weights::{Config, Floats, Weights};
use crate::{bf16, fixed16, fixed8, kernels, row_products};

/// Rows per task of the row-wise kernels.
const ROWS_PER_TASK: usize = 32;

/// A matrix product whose result is at least this many multiply-adds runs on
/// every thread; smaller ones (short queries) stay on the calling thread.
const PARALLEL_MACS: usize = 1 << 22;

/// Products with at most this many rows (queries) take rows of the weights
/// as they lie instead of going through `gemm`, which repacks the whole
/// matrix first (`row_products`).
const FEW_ROWS: usize = 64;

/// Output columns per task of that path.
const COLUMNS_PER_TASK: usize = 64;

struct Layer {
    /// Query, key and value projections stacked: `[3·hidden × hidden]`.
    qkv_w: Floats,
    qkv_b: Vec<f32>,
    /// `[hidden × hidden]`
    out_w: Floats,
    out_b: Floats,
    attn_norm: (Floats, Floats),
    /// `[intermediate × hidden]`
    up_w: Floats,
    up_b: Floats,
    /// `[hidden × intermediate]`
    down_w: Floats,
    down_b: Floats,
    out_norm: (Floats, Floats),
}

/// Working memory of forward passes: reusing it between the sub-batches of one
/// call saves page faults on fresh allocations of tens of megabytes, and dropping
/// it afterwards keeps an idle embedder small.
#[derive(Default)]
pub struct Scratch {
    x: Vec<f32>,
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    inter: Vec<f32>,
    /// Activations as bfloat16 pairs, for the packed products.
    pairs: Vec<u32>,
    /// Activations as pairs of 16-bit integers, for the fixed-point products.
    ints: Vec<i32>,
}

/// A weight matrix packed for the narrow products this CPU has.
enum PackedMatrix {
    Bf16(bf16::Packed),
    Fixed16(fixed16::Packed),
    Fixed8(fixed8::Packed),
}

impl PackedMatrix {
    /// Packs `w` (`[n × k]`) for `precision`; `None` for shapes its kernel
    /// does not cover.
    /// With `smooth` (the inputs' ranges per channel), in 8 bits where the
    /// shape allows.
    fn pack(
        precision: Narrow,
        w: &[f32],
        n: usize,
        k: usize,
        smooth: Option<&[f32]>,
    ) -> Option<PackedMatrix> {
        if let Some(p) = smooth.and_then(|ranges| fixed8::Packed::pack(w, n, k, ranges)) {
            return Some(PackedMatrix::Fixed8(p));
        }
        match precision {
            Narrow::Bf16 => bf16::Packed::pack(w, n, k).map(PackedMatrix::Bf16),
            Narrow::Fixed16 => fixed16::Packed::pack(w, n, k).map(PackedMatrix::Fixed16),
        }
    }
}

/// The narrower-than-`f32` products a CPU can take, best first.
#[derive(Clone, Copy)]
enum Narrow {
    /// bfloat16 through AMX or AVX-512 BF16.
    Bf16,
    /// 16-bit fixed point through AVX-512 VNNI or AVX2.
    Fixed16,
}

impl Narrow {
    /// AMX tiles first, then 16-bit fixed point (as fast as AVX-512 BF16's
    /// dot products on Zen 4, and closer to `f32`), then those dot products.
    fn of_this_cpu() -> Option<Narrow> {
        if bf16::enabled() && bf16::uses_tiles() {
            Some(Narrow::Bf16)
        } else if fixed16::enabled() {
            Some(Narrow::Fixed16)
        } else if bf16::enabled() {
            Some(Narrow::Bf16)
        } else {
            None
        }
    }
}

/// What this CPU (and `SIFT_ENCODER_PRECISION`) has document batches
/// multiplied in, for people: the choice `Encoder::packed` makes.
pub fn arithmetic() -> &'static str {
    match Narrow::of_this_cpu() {
        None => "32-bit floats",
        Some(Narrow::Bf16) if bf16::uses_tiles() => "bfloat16, AMX tiles",
        Some(Narrow::Bf16) => "bfloat16, AVX-512 BF16",
        Some(Narrow::Fixed16) if !eight_bit_matrices(Narrow::Fixed16).is_empty() => {
            match fixed8::Kernel::of_this_cpu() {
                Some(fixed8::Kernel::AvxVnni) => "8-bit integers, AVX-VNNI",
                Some(fixed8::Kernel::Vnni256) => "8-bit integers, AVX-512 VNNI on 256 bits",
                _ => "8-bit integers, AVX-512 VNNI",
            }
        }
        Some(Narrow::Fixed16) => match fixed16::Kernel::of_this_cpu() {
            Some(fixed16::Kernel::Avx512Vnni) => "16-bit integers, AVX-512 VNNI",
            _ => "16-bit integers, AVX2",
        },
    }
}

/// The matrices multiplied in 8 bits (`fixed8`): all four, on CPUs with
/// VNNI (AVX-512 VNNI, or AVX-VNNI without AVX-512) where the fixed-point
/// products run, unless the user asked for 16 bits
/// (`SIFT_ENCODER_PRECISION=fixed16`, to compare).
fn eight_bit_matrices(narrow: Narrow) -> Vec<Matrix> {
    let sixteen_asked = std::env::var("SIFT_ENCODER_PRECISION")
        .is_ok_and(|p| p == "fixed16" || p == "fixed16-avx2");
    if !matches!(narrow, Narrow::Fixed16) || !fixed8::cpu_has_kernel() || sixteen_asked {
        return Vec::new();
    }
    vec![Matrix::Qkv, Matrix::Out, Matrix::Up, Matrix::Down]
}

/// A layer's four weight matrices packed for narrow products.
struct PackedLayer {
    qkv: PackedMatrix,
    out: PackedMatrix,
    up: PackedMatrix,
    down: PackedMatrix,
}

/// One of a layer's four projections.
#[derive(Clone, Copy, PartialEq)]
enum Matrix {
    Qkv,
    Out,
    Up,
    Down,
}

/// Per matrix of a layer (indexed by [`Matrix`]), its inputs' largest
/// magnitude per channel over the calibration texts.
type Ranges = [Vec<f32>; 4];

impl PackedLayer {
    fn get(&self, m: Matrix) -> &PackedMatrix {
        match m {
            Matrix::Qkv => &self.qkv,
            Matrix::Out => &self.out,
            Matrix::Up => &self.up,
            Matrix::Down => &self.down,
        }
    }
}

pub struct Encoder {
    hidden: usize,
    heads: usize,
    intermediate: usize,
    max_positions: usize,
    eps: f32,
    word: Floats,
    position: Floats,
    token_type: Floats,
    embed_norm: (Floats, Floats),
    layers: Vec<Layer>,
    /// Packed on the first document batch when the CPU has narrow products
    /// (`None` otherwise); queries never need it, so a search process does
    /// not pay for it.
    packed: std::sync::OnceLock<Option<Vec<PackedLayer>>>,
}

/// A raw pointer that tasks writing disjoint parts of one buffer can share.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: only used to write disjoint regions from parallel tasks.
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The pointer; a method, so closures capture the whole (Send) wrapper.
    fn get(self) -> *mut f32 {
        self.0
    }
}

impl Encoder {
    /// Takes its weights from the mapped `model.safetensors`.
    pub fn load(safetensors: memmap2::Mmap, config: &Config) -> Result<Self, String> {
        // BERT's "gelu" is the exact (erf) form, which the kernels compute.
        if config.hidden_act != "gelu" {
            return Err(format!("unsupported activation {:?}", config.hidden_act));
        }
        if !config
            .hidden_size
            .is_multiple_of(config.num_attention_heads)
        {
            return Err("hidden size is not a multiple of the head count".into());
        }
        let w = Weights::parse(safetensors)?;
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let norm = |prefix: &str| -> Result<_, String> {
            Ok((
                w.get(&format!("{prefix}.weight"), &[h])?,
                w.get(&format!("{prefix}.bias"), &[h])?,
            ))
        };
        let layers = (0..config.num_hidden_layers)
            .map(|n| {
                let p = format!("encoder.layer.{n}");
                let a = format!("{p}.attention");
                let qkv = ["query", "key", "value"];
                // One product for the three: their `[hidden × hidden]`
                // matrices stacked into `[3·hidden × hidden]` (a 1.7 MB copy).
                let stack = |what: &str, shape: &[usize]| -> Result<Vec<f32>, String> {
                    let parts = qkv
                        .iter()
                        .map(|m| w.get(&format!("{a}.self.{m}.{what}"), shape))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(parts.iter().flat_map(|p| p.iter().copied()).collect())
                };
                Ok(Layer {
                    qkv_w: Floats::Owned(stack("weight", &[h, h])?),
                    qkv_b: stack("bias", &[h])?,
                    out_w: w.get(&format!("{a}.output.dense.weight"), &[h, h])?,
                    out_b: w.get(&format!("{a}.output.dense.bias"), &[h])?,
                    attn_norm: norm(&format!("{a}.output.LayerNorm"))?,
                    up_w: w.get(&format!("{p}.intermediate.dense.weight"), &[i, h])?,
                    up_b: w.get(&format!("{p}.intermediate.dense.bias"), &[i])?,
                    down_w: w.get(&format!("{p}.output.dense.weight"), &[h, i])?,
                    down_b: w.get(&format!("{p}.output.dense.bias"), &[h])?,
                    out_norm: norm(&format!("{p}.output.LayerNorm"))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Encoder {
            hidden: h,
            heads: config.num_attention_heads,
            intermediate: i,
            max_positions: config.max_position_embeddings,
            eps: config.layer_norm_eps as f32,
            word: w.get("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
            position: w.get(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?,
            token_type: w.get(
                "embeddings.token_type_embeddings.weight",
                &[config.type_vocab_size, h],
            )?,
            embed_norm: norm("embeddings.LayerNorm")?,
            layers,
            packed: std::sync::OnceLock::new(),
        })
    }

    /// Mean-pooled, L2-normalised embeddings of `seqs` (word-piece ids with
    /// `[CLS]`/`[SEP]`, each at most `max_positions` long).
    pub fn embed(&self, seqs: &[&[u32]], scratch: &mut Scratch) -> Vec<Vec<f32>> {
        let h = self.hidden;
        let mut starts = Vec::with_capacity(seqs.len());
        let mut total = 0;
        for s in seqs {
            assert!(
                s.len() <= self.max_positions,
                "sequence longer than the model"
            );
            starts.push(total);
            total += s.len();
        }
        if total == 0 {
            return vec![vec![0.0; h]; seqs.len()];
        }
        // A query (one sequence) never packs: a one-shot search stays light.
        // Where the weights are packed (documents embedded, or a long-lived
        // process's warm-up) a query's few rows use bfloat16 or 8-bit ones
        // too (split by columns over every core): a half or a quarter of the
        // bytes of the `f32` row products. (The 16-bit products split work
        // by rows, so there a query's few rows stay on `f32` row products,
        // which split it by columns.)
        let packed = if total > FEW_ROWS && seqs.len() > 1 {
            self.packed()
        } else {
            self.packed.get().and_then(|p| p.as_deref())
        };
        self.forward(seqs, &starts, scratch, packed, None);
        let x = &scratch.x;
        starts
            .iter()
            .zip(seqs)
            .map(|(&start, s)| {
                let mut v = vec![0f32; h];
                for row in x[start * h..(start + s.len()) * h].chunks_exact(h) {
                    v.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                }
                let n = s.len().max(1) as f32;
                v.iter_mut().for_each(|a| *a /= n);
                crate::normalize(&mut v);
                v
            })
            .collect()
    }

    /// Runs the layers over `seqs` (rows from `starts`), leaving the last
    /// hidden states in `scratch.x`; records each matrix's input ranges into
    /// `ranges` (one per layer) when given.
    fn forward(
        &self,
        seqs: &[&[u32]],
        starts: &[usize],
        scratch: &mut Scratch,
        packed: Option<&[PackedLayer]>,
        mut ranges: Option<&mut [Ranges]>,
    ) {
        let h = self.hidden;
        let total: usize = seqs.iter().map(|s| s.len()).sum();
        let Scratch {
            x,
            qkv,
            ctx,
            inter,
            pairs,
            ints,
        } = scratch;
        x.resize(total * h, 0.0);
        qkv.resize(total * 3 * h, 0.0);
        ctx.resize(total * h, 0.0);
        inter.resize(total * self.intermediate, 0.0);

        self.embeddings(seqs, x);
        for (n, layer) in self.layers.iter().enumerate() {
            let mut products = Products {
                packed: packed.map(|layers| &layers[n]),
                ranges: ranges.as_deref_mut().map(|r| &mut r[n]),
                pairs: &mut *pairs,
                ints: &mut *ints,
            };
            self.layer(layer, &mut products, starts, seqs, x, qkv, ctx, inter);
        }
    }

    /// Each matrix's input ranges per channel, from the `f32` model run over
    /// a few sequences of word pieces: what 8-bit products smooth by (see
    /// `fixed8`). The channels that carry a transformer's large activations
    /// are a property of the model, not of the text, so any word pieces show
    /// them; short sequences are included, where `[CLS]` and `[SEP]` weigh most.
    fn calibrate(&self) -> Vec<Ranges> {
        const CLS: u32 = 101;
        const SEP: u32 = 102;
        // Deterministic pieces from the body of the vocabulary (ids past the
        // special and unused tokens).
        let mut seed = 0x2545_f491_u64;
        let mut piece = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            1996 + ((seed >> 33) % 28_000) as u32
        };
        let seqs: Vec<Vec<u32>> = [1usize, 1, 2, 3, 5, 8, 16, 32, 64, 128, 128, 200]
            .iter()
            .map(|&len| {
                let len = len.min(self.max_positions.saturating_sub(2)).max(1);
                std::iter::once(CLS)
                    .chain((0..len).map(|_| piece()))
                    .chain(std::iter::once(SEP))
                    .collect()
            })
            .collect();
        let seqs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
        let mut starts = Vec::new();
        let mut total = 0;
        for s in &seqs {
            starts.push(total);
            total += s.len();
        }
        let mut ranges: Vec<Ranges> = vec![Default::default(); self.layers.len()];
        self.forward(
            &seqs,
            &starts,
            &mut Scratch::default(),
            None,
            Some(&mut ranges),
        );
        ranges
    }

    /// Packs the weights for narrow products now (if the CPU has them), so
    /// that queries use bfloat16 ones too (see `embed`).
    pub fn prepare_packed(&self) {
        self.packed();
    }

    /// The layers' weights packed for narrow products, packed on first use;
    /// `None` when this CPU or the user's setting rules them out.
    fn packed(&self) -> Option<&[PackedLayer]> {
        self.packed
            .get_or_init(|| {
                let narrow = Narrow::of_this_cpu()?;
                let eight = eight_bit_matrices(narrow);
                let ranges = if eight.is_empty() {
                    Vec::new()
                } else {
                    self.calibrate()
                };
                let (h, i) = (self.hidden, self.intermediate);
                self.layers
                    .iter()
                    .enumerate()
                    .map(|(n, l)| {
                        let pack = |m: Matrix, w: &[f32], rows: usize, cols: usize| {
                            let smooth = eight.contains(&m).then(|| &ranges[n][m as usize][..]);
                            PackedMatrix::pack(narrow, w, rows, cols, smooth)
                        };
                        Some(PackedLayer {
                            qkv: pack(Matrix::Qkv, &l.qkv_w, 3 * h, h)?,
                            out: pack(Matrix::Out, &l.out_w, h, h)?,
                            up: pack(Matrix::Up, &l.up_w, i, h)?,
                            down: pack(Matrix::Down, &l.down_w, h, i)?,
                        })
                    })
                    .collect()
            })
            .as_deref()
    }

    fn embeddings(&self, seqs: &[&[u32]], x: &mut [f32]) {
        let h = self.hidden;
        let tokens: Vec<(usize, usize)> = seqs
            .iter()
            .flat_map(|s| s.iter().enumerate().map(|(pos, &id)| (id as usize, pos)))
            .collect();
        x.par_chunks_mut(h * ROWS_PER_TASK)
            .zip(tokens.par_chunks(ROWS_PER_TASK))
            .for_each(|(rows, toks)| {
                for (row, &(id, pos)) in rows.chunks_exact_mut(h).zip(toks) {
                    let word = &self.word[id * h..(id + 1) * h];
                    let position = &self.position[pos * h..(pos + 1) * h];
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = word[j] + position[j] + self.token_type[j];
                    }
                }
                kernels::layer_norm(rows, h, &self.embed_norm.0, &self.embed_norm.1, self.eps);
            });
    }

    #[allow(clippy::too_many_arguments)]
    fn layer(
        &self,
        l: &Layer,
        products: &mut Products,
        starts: &[usize],
        seqs: &[&[u32]],
        x: &mut [f32],
        qkv: &mut [f32],
        ctx: &mut [f32],
        inter: &mut [f32],
    ) {
        let (h, i) = (self.hidden, self.intermediate);
        let t = x.len() / h;

        // qkv = x · Wqkv + b
        products.linear(qkv, 3 * h, &l.qkv_b, x, h, &l.qkv_w, false, Matrix::Qkv);
        self.attention(starts, seqs, qkv, ctx);
        // x = norm(x + ctx · Wo + b)
        products.linear(x, h, &l.out_b, ctx, h, &l.out_w, true, Matrix::Out);
        norm_rows(x, h, &l.attn_norm, self.eps);
        // x = norm(x + gelu(x · W1 + b1) · W2 + b2)
        products.linear(inter, i, &l.up_b, x, h, &l.up_w, false, Matrix::Up);
        inter
            .par_chunks_mut(i * ROWS_PER_TASK)
            .for_each(kernels::gelu);
        products.linear(x, h, &l.down_b, inter, i, &l.down_w, true, Matrix::Down);
        norm_rows(x, h, &l.out_norm, self.eps);
        debug_assert_eq!(x.len(), t * h);
    }

    /// Self-attention of every sequence and head; writes `ctx`.
    fn attention(&self, starts: &[usize], seqs: &[&[u32]], qkv: &[f32], ctx: &mut [f32]) {
        let h = self.hidden;
        let d = h / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        let out = SharedMut(ctx.as_mut_ptr());
        let qkv = qkv.as_ptr() as usize;
        let tasks: Vec<(usize, usize, usize)> = starts
            .iter()
            .zip(seqs)
            .flat_map(|(&s, seq)| (0..self.heads).map(move |head| (s, seq.len(), head)))
            .collect();
        tasks.into_par_iter().for_each_init(
            Vec::new,
            |scores: &mut Vec<f32>, (start, len, head)| {
                scores.resize(len * len, 0.0);
                let base = qkv as *const f32;
                // SAFETY: every offset stays inside `qkv` (rows start..start+len,
                // columns below 3·h) and inside `ctx` (same rows, columns below h);
                // tasks write disjoint (rows, head columns) blocks of `ctx`.
                unsafe {
                    let q = base.add(start * 3 * h + head * d);
                    let k = q.add(h);
                    let v = q.add(2 * h);
                    // scores = scale · q · kᵀ
                    kernels::matmul(
                        len,
                        len,
                        d,
                        (scores.as_mut_ptr(), len, 1),
                        (q, 3 * h, 1),
                        (k, 1, 3 * h),
                        false,
                        scale,
                        1,
                    );
                    kernels::softmax(scores, len);
                    // ctx = scores · v
                    kernels::matmul(
                        len,
                        d,
                        len,
                        (out.get().add(start * h + head * d), h, 1),
                        (scores.as_ptr(), len, 1),
                        (v, 3 * h, 1),
                        false,
                        1.0,
                        1,
                    );
                }
            },
        );
    }
}

/// How one layer's projections are multiplied: packed bfloat16 weights when
/// there are some, with the working memory they need.
struct Products<'a> {
    packed: Option<&'a PackedLayer>,
    /// When calibrating: each matrix's largest input magnitude per channel.
    ranges: Option<&'a mut Ranges>,
    pairs: &'a mut Vec<u32>,
    ints: &'a mut Vec<i32>,
}

impl Products<'_> {
    /// [`linear`], through the packed narrow weights `which` picks when
    /// this batch has them.
    #[allow(clippy::too_many_arguments)]
    fn linear(
        &mut self,
        dst: &mut [f32],
        n: usize,
        bias: &[f32],
        src: &[f32],
        k: usize,
        w: &[f32],
        residual: bool,
        which: Matrix,
    ) {
        let t = src.len() / k;
        if let Some(ranges) = self.ranges.as_deref_mut() {
            let seen = &mut ranges[which as usize];
            seen.resize(k, 0.0);
            for row in src.chunks_exact(k) {
                seen.iter_mut()
                    .zip(row)
                    .for_each(|(m, v)| *m = m.max(v.abs()));
            }
        }
        let packed = match self.packed.map(|p| p.get(which)) {
            // A query's few rows: see `Encoder::embed`.
            Some(PackedMatrix::Fixed16(_)) if t <= FEW_ROWS => None,
            packed => packed,
        };
        let Some(packed) = packed else {
            return linear(dst, n, bias, src, k, w, residual);
        };
        let parallel = t * n * k >= PARALLEL_MACS;
        match packed {
            PackedMatrix::Bf16(p) => {
                set_bias(dst, n, bias, residual);
                if t <= FEW_ROWS {
                    bf16::matmul_acc_few(dst, src, p, parallel)
                } else {
                    bf16::matmul_acc(dst, src, p, self.pairs, parallel)
                }
            }
            // Adds the bias and residual as it stores: one pass fewer over `dst`.
            PackedMatrix::Fixed16(p) => {
                fixed16::linear(dst, src, p, bias, residual, self.ints, parallel)
            }
            PackedMatrix::Fixed8(p) => {
                fixed8::linear(dst, src, p, bias, residual, self.ints, parallel)
            }
        }
    }
}

/// `dst = (residual ? dst : 0) + bias`, row by row.
fn set_bias(dst: &mut [f32], n: usize, bias: &[f32], residual: bool) {
    dst.par_chunks_mut(n * ROWS_PER_TASK).for_each(|rows| {
        if residual {
            kernels::add_rows(rows, bias);
        } else {
            rows.chunks_exact_mut(n)
                .for_each(|r| r.copy_from_slice(bias));
        }
    });
}

/// `dst[t × n] = (residual ? dst : 0) + bias + src[t × k] · wᵀ`, with `w` in
/// PyTorch's `[n × k]` layout.
fn linear(
    dst: &mut [f32],
    n: usize,
    bias: &[f32],
    src: &[f32],
    k: usize,
    w: &[f32],
    residual: bool,
) {
    let t = src.len() / k;
    assert!(dst.len() == t * n && w.len() == k * n && bias.len() == n);
    set_bias(dst, n, bias, residual);
    let parallel = t * n * k >= PARALLEL_MACS;
    if t <= FEW_ROWS {
        // A query: a few rows against each weight row, read once in place.
        // `gemm` would first repack the whole matrix for them.
        let block = |(b, w_block): (usize, &[f32])| {
            let mut out = vec![0f32; t * (w_block.len() / k)];
            row_products::dot_rows(&mut out, src, w_block, k);
            (b * COLUMNS_PER_TASK, out)
        };
        let blocks: Vec<(usize, Vec<f32>)> = if parallel {
            w.par_chunks(k * COLUMNS_PER_TASK)
                .enumerate()
                .map(block)
                .collect()
        } else {
            w.chunks(k * COLUMNS_PER_TASK)
                .enumerate()
                .map(block)
                .collect()
        };
        for (first, out) in blocks {
            let cols = out.len() / t;
            for (row, part) in dst.chunks_exact_mut(n).zip(out.chunks_exact(cols)) {
                row[first..first + cols]
                    .iter_mut()
                    .zip(part)
                    .for_each(|(d, v)| *d += v);
            }
        }
        return;
    }
    let threads = if parallel {
        rayon::current_num_threads()
    } else {
        1
    };
    // SAFETY: shapes checked above; dst is a distinct buffer from src and w.
    unsafe {
        kernels::matmul(
            t,
            n,
            k,
            (dst.as_mut_ptr(), n, 1),
            (src.as_ptr(), k, 1),
            // wᵀ is `[k × n]`: row stride 1, column stride k.
            (w.as_ptr(), 1, k),
            true,
            1.0,
            threads,
        )
    }
}

fn norm_rows(x: &mut [f32], h: usize, (gamma, beta): &(Floats, Floats), eps: f32) {
    x.par_chunks_mut(h * ROWS_PER_TASK)
        .for_each(|rows| kernels::layer_norm(rows, h, gamma, beta, eps));
}
