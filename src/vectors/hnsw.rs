//! HNSW settings that grow with the number of vectors.
//!
//! Measured on vectors recombined from real MiniLM embeddings
//! (`benches/vectors_scale.rs`, BENCHMARKS.md "Vectors at 1M"): at fixed
//! settings recall@10 against exact search falls as the index grows (0.988 at
//! 100k, 0.973 at 1M with expansion_search 64); searches that look further
//! bring it back for little time (0.988 at 1M with 128, p50 about 1 ms).
//! Storage is bfloat16: the same recall@10 as f16 within the spread between two
//! builds of the same graph (exact search over bf16 loses 0.001 to the
//! rounding), and its distances are AVX-512 BF16 dot products on CPUs that
//! have them (NumKong's `genoa` kernel: AMD Zen 4 on, Intel Cooper Lake on),
//! where f16 without AVX-512 FP16 (Zen 4) is converted to f32 first: adds and
//! searches are cheaper (BENCHMARKS.md "bfloat16 storage"). Other CPUs
//! convert bf16 to f32 with a shift (AVX2, or plain code): same results.
//! i8 capped recall@10 at 0.935 at 100k whatever the search expansion (the
//! rounding of MiniLM's small components, not the graph). Connectivity 32
//! gained 0.006 at 100k for twice the build time: kept at 16.

use usearch::{MetricKind, ScalarKind};

/// How vectors are stored in the index. A vector file of another storage is
/// rebuilt from the embedding cache when opened (`file::new_like`).
pub(crate) const STORAGE: ScalarKind = ScalarKind::BF16;

/// How two vectors are compared: inner product, over vectors normalised on
/// the way in (`VectorIndex::add`, queries in `search`), where it ranks as
/// cosine does. Cosine's kernel sums three products per pair of vectors
/// (a·b, a·a, b·b), inner product's one: measured at 100k real-vector mixes,
/// a fifth less CPU per add and a quarter off a graph search, same recall@10
/// (BENCHMARKS.md, issue 13, round 6). A file of another metric (cosine,
/// before) is rebuilt from the embedding cache when opened.
pub(crate) const METRIC: MetricKind = MetricKind::IP;

/// `v` scaled to length 1 (a zero vector as it is).
pub(crate) fn unit(v: &[f32]) -> std::borrow::Cow<'_, [f32]> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 || (norm - 1.0).abs() < 1e-6 {
        std::borrow::Cow::Borrowed(v)
    } else {
        let mut unit = v.to_vec();
        crate::embed::normalize(&mut unit);
        std::borrow::Cow::Owned(unit)
    }
}

/// Neighbours a node keeps per graph level, fixed when an index is created:
/// chosen from the number of vectors it is built for.
pub(crate) fn connectivity_for(_vectors: usize) -> usize {
    16
}

/// How hard graph construction looks for neighbours. usearch's default is 128;
/// 64 builds about 1.5x faster with recall@10 within 0.005 of it at 10k
/// (BENCHMARKS.md), since searches look harder anyway.
pub(crate) fn expansion_add_for(_vectors: usize) -> usize {
    64
}

/// How hard a search looks: more candidates as the graph grows.
pub(crate) fn expansion_search_for(vectors: usize) -> usize {
    match vectors {
        0..=200_000 => 64,
        200_001..=500_000 => 96,
        _ => 128,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_made_unit_length() {
        let v = unit(&[3.0, 4.0]);
        assert!(
            (v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6,
            "{v:?}"
        );
        assert_eq!(&*unit(&[0.0, 0.0]), &[0.0, 0.0]);
        assert!(matches!(unit(&[1.0, 0.0]), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn searches_look_harder_as_the_index_grows() {
        let sizes = [0, 10_000, 200_000, 300_000, 1_000_000, 5_000_000];
        let efs: Vec<usize> = sizes.iter().map(|&n| expansion_search_for(n)).collect();
        assert!(efs.windows(2).all(|w| w[0] <= w[1]), "{efs:?}");
        assert!(efs[4] > efs[1], "{efs:?}");
    }
}
