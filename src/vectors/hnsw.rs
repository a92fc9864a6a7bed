//! HNSW settings that grow with the number of vectors.
//!
//! Measured on vectors recombined from real MiniLM embeddings
//! (`benches/vectors_scale.rs`, BENCHMARKS.md "Vectors at 1M"): at fixed
//! settings recall@10 against exact search falls as the index grows (with
//! f16 storage 0.988 at 100k, 0.973 at 1M with expansion_search 64, 0.988 at
//! 1M with 128). i8 costs recall where neighbours crowd: 0.953 at 1M with 128
//! (0.959 with 256: the graph, built on rounded distances, is the limit).
//! Storage is i8, scaled by hand (`stored_scale`: five standard deviations
//! of a component reach 127) and queries scaled to their own largest
//! component: at 100k real-vector mixes recall@10 (k = 100, what a hybrid
//! query asks for) 0.974 against bf16's 0.980, for half the CPU per add and
//! half the search time on AVX2 (where bf16 is converted to f32 first), a file
//! 42% smaller (BENCHMARKS.md, issue 13, round 12).
//! usearch's own i8 cast capped recall@10 at 0.935 at 100k whatever the search
//! expansion (it left MiniLM's small components at about ±6). Connectivity 32
//! gained 0.006 at 100k for twice the build time: kept at 16.

use usearch::{MetricKind, ScalarKind};

/// How vectors are stored in the index. A vector file of another storage is
/// rebuilt from the embedding cache when opened (`file::new_like`).
pub(crate) const STORAGE: ScalarKind = ScalarKind::I8;

/// How two vectors are compared: inner product, over vectors normalised on
/// the way in (`VectorIndex::add`, queries in `search`), where it ranks as
/// cosine does. Cosine's kernel sums three products per pair of vectors
/// (a·b, a·a, b·b), inner product's one: measured at 100k real-vector mixes,
/// a fifth less CPU per add and a quarter off a graph search, same recall@10
/// (BENCHMARKS.md, issue 13, round 6). A file of another metric (cosine,
/// before) is rebuilt from the embedding cache when opened.
pub(crate) const METRIC: MetricKind = MetricKind::IP;

/// Standard deviations of a unit vector's component (1/sqrt(dims)) that map
/// to 127, the largest i8: components beyond are clamped. Changing it changes
/// every stored vector: bump `VECTOR_FORMAT_VERSION` with it. usearch's own cast
/// maps the vector's length to 127 instead, which leaves MiniLM's components
/// (about ±0.05) at ±6 and capped recall@10 at 0.935.
const CLAMP_SIGMAS: f32 = 5.0;

/// What every stored component of a `dims`-dimensional unit vector is
/// multiplied by before rounding (the same for every vector of an index, so
/// inner products of stored vectors rank as the vectors' own do).
pub(crate) fn stored_scale(dims: usize) -> f32 {
    127.0 * (dims as f32).sqrt() / CLAMP_SIGMAS
}

/// `v` made unit length and rounded for storage.
pub(crate) fn stored(v: &[f32]) -> Vec<i8> {
    quantize(&unit(v), stored_scale(v.len()))
}

/// A query rounded for search, and its scale: each query is scaled to its own
/// largest component (one factor for every score of that query, so the
/// ranking is the same and the rounding the finest).
pub(crate) fn query(q: &[f32]) -> (Vec<i8>, f32) {
    let q = unit(q);
    let largest = q.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if largest > 0.0 { 127.0 / largest } else { 1.0 };
    (quantize(&q, scale), scale)
}

/// The cosine similarity of a query (rounded with `query_scale`) and a stored
/// vector, from usearch's inner-product distance (1 - the integer product).
pub(crate) fn similarity(distance: f32, query_scale: f32, dims: usize) -> f32 {
    (1.0 - distance) / (query_scale * stored_scale(dims))
}

/// A stored vector back as f32, of about unit length.
pub(crate) fn restored(v: &[i8]) -> Vec<f32> {
    let scale = stored_scale(v.len());
    v.iter().map(|&x| x as f32 / scale).collect()
}

fn quantize(v: &[f32], scale: f32) -> Vec<i8> {
    v.iter()
        .map(|x| (x * scale).round().clamp(-127.0, 127.0) as i8)
        .collect()
}

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
    fn rounded_vectors_keep_their_similarity() {
        // Two unit vectors of 384 dimensions with MiniLM-like components.
        let a: Vec<f32> = (0..384)
            .map(|i| ((i * 7 % 23) as f32 - 11.0) / 11.0)
            .collect();
        let b: Vec<f32> = (0..384)
            .map(|i| ((i * 5 % 19) as f32 - 9.0) / 9.0)
            .collect();
        let (a, b) = (unit(&a).into_owned(), unit(&b).into_owned());
        let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let (q, q_scale) = query(&a);
        let s = stored(&b);
        let product: i32 = q.iter().zip(&s).map(|(&x, &y)| x as i32 * y as i32).sum();
        let rounded = similarity(1.0 - product as f32, q_scale, 384);
        assert!((rounded - exact).abs() < 0.01, "{rounded} vs {exact}");
        let back = restored(&s);
        let length: f32 = back.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((length - 1.0).abs() < 0.01, "{length}");
        assert_eq!(stored(&[0.0; 4]), vec![0i8; 4]);
    }

    #[test]
    fn searches_look_harder_as_the_index_grows() {
        let sizes = [0, 10_000, 200_000, 300_000, 1_000_000, 5_000_000];
        let efs: Vec<usize> = sizes.iter().map(|&n| expansion_search_for(n)).collect();
        assert!(efs.windows(2).all(|w| w[0] <= w[1]), "{efs:?}");
        assert!(efs[4] > efs[1], "{efs:?}");
    }
}
