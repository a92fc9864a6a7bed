//! The embedding cache: vectors keyed by (embedder id, hash of embedded text).

use std::collections::HashMap;

use rusqlite::{params, Connection};

use crate::error::Result;

/// Vector to little-endian f32 bytes.
pub fn encode_vector(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Little-endian f32 bytes to vector.
pub fn decode_vector(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// First byte of a cached vector stored as f16. Such a blob has an odd
/// length (one tag byte, two bytes a component); an f32 vector, as Sift
/// stored them before, has a multiple of four, so both read back unambiguously
/// and an older cache needs no migration.
const F16_TAG: u8 = 0x16;

/// A vector as the cache stores it: f16, half the bytes of f32 (the vector
/// index itself keeps i8, coarser still, so nothing a search sees is lost;
/// cosine to the f32 vector stays above 0.9999). A vector with a component
/// f16 cannot hold (beyond ±65504, or not finite) is kept as f32.
pub fn encode_cached(v: &[f32]) -> Vec<u8> {
    if !v.iter().all(|x| x.abs() <= f32::from(half::f16::MAX)) {
        return encode_vector(v);
    }
    let mut out = Vec::with_capacity(1 + 2 * v.len());
    out.push(F16_TAG);
    for x in v {
        out.extend_from_slice(&half::f16::from_f32(*x).to_le_bytes());
    }
    out
}

/// A cached vector back to f32, from either of the cache's encodings.
pub fn decode_cached(bytes: &[u8]) -> Vec<f32> {
    match bytes.split_first() {
        Some((&F16_TAG, rest)) if bytes.len() % 2 == 1 => rest
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        _ => decode_vector(bytes),
    }
}

/// Cached vectors for those of `hashes` that have one.
pub fn cached_vectors(
    conn: &Connection,
    embedder: &str,
    hashes: &[[u8; 32]],
) -> Result<HashMap<[u8; 32], Vec<f32>>> {
    let mut stmt =
        conn.prepare_cached("SELECT vector FROM embed_cache WHERE embedder = ?1 AND hash = ?2")?;
    let mut out = HashMap::new();
    for hash in hashes {
        if out.contains_key(hash) {
            continue;
        }
        let found: Option<Vec<u8>> = stmt
            .query_row(params![embedder, &hash[..]], |r| r.get(0))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        if let Some(bytes) = found {
            out.insert(*hash, decode_cached(&bytes));
        }
    }
    Ok(out)
}

/// Stores vectors; existing entries are kept (same text, same vector).
pub fn put_vectors(conn: &Connection, embedder: &str, items: &[([u8; 32], &[f32])]) -> Result<()> {
    let encoded: Vec<([u8; 32], Vec<u8>)> =
        items.iter().map(|(h, v)| (*h, encode_cached(v))).collect();
    put_encoded(conn, embedder, &encoded)
}

/// [`put_vectors`] for vectors already as [`encode_cached`] gives them.
pub fn put_encoded(conn: &Connection, embedder: &str, items: &[([u8; 32], Vec<u8>)]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO embed_cache(embedder, hash, vector) VALUES (?1, ?2, ?3)",
    )?;
    for (hash, bytes) in items {
        stmt.execute(params![embedder, &hash[..], bytes])?;
    }
    Ok(())
}

/// Number of cached vectors for `embedder`.
pub fn cache_size(conn: &Connection, embedder: &str) -> Result<u64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM embed_cache WHERE embedder = ?1",
        [embedder],
        |r| r.get(0),
    )?)
}

/// Ids of the embedders that have vectors in the cache.
pub fn cached_embedders(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT DISTINCT embedder FROM embed_cache")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_vectors_keep_their_direction_in_half_the_bytes() {
        let v: Vec<f32> = (0..384).map(|i| ((i as f32) * 0.37).sin() / 11.0).collect();
        let bytes = encode_cached(&v);
        assert_eq!(bytes.len(), 1 + 2 * 384);
        let back = decode_cached(&bytes);
        let dot: f32 = v.iter().zip(&back).map(|(a, b)| a * b).sum();
        let norm = |x: &[f32]| x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!(dot / (norm(&v) * norm(&back)) > 0.9999);
    }

    #[test]
    fn an_older_f32_cache_entry_still_reads() {
        // 384 f32 components are 1,536 bytes, as are 768 f16 ones: the tag
        // and the odd length tell them apart, not the length alone.
        let v: Vec<f32> = (0..384).map(|i| i as f32 / 384.0).collect();
        assert_eq!(decode_cached(&encode_vector(&v)), v);
        let first_byte_is_the_tag: Vec<f32> = vec![f32::from_le_bytes([F16_TAG, 0, 0, 0]); 4];
        assert_eq!(
            decode_cached(&encode_vector(&first_byte_is_the_tag)),
            first_byte_is_the_tag
        );
    }

    #[test]
    fn a_vector_beyond_f16_is_kept_as_f32() {
        let v = vec![1.0e6_f32, -2.0, 0.5];
        assert_eq!(encode_cached(&v).len(), 12);
        assert_eq!(decode_cached(&encode_cached(&v)), v);
    }
}
