//! The encoder of Sift's local embedding model (all-MiniLM-L6-v2) on the CPU:
//! its weights, forward pass and matrix kernels. The tokenizer, model files
//! and errors the user sees stay in the engine (`sift::embed::local`).
//!
//! A crate of its own so test builds can compile it optimised and without
//! debug assertions (see the root `Cargo.toml`): the engine's tests embed
//! thousands of texts, and its SIMD kernels ran 10-40 times slower in the
//! engine's opt-level-1 test build.

mod bert;
mod bf16;
#[cfg(target_arch = "x86_64")]
mod column_groups;
mod fixed16;
mod fixed8;
mod kernels;
#[cfg(test)]
mod reference;
mod row_products;
mod weights;

pub use bert::{arithmetic, Encoder, Scratch};
pub use weights::Config;

/// Scales `v` to unit length in place (no-op for the zero vector). The
/// engine uses this one too (`sift::embed::normalize`).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}
