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
            out.insert(*hash, decode_vector(&bytes));
        }
    }
    Ok(out)
}

/// Stores vectors; existing entries are kept (same text, same vector).
pub fn put_vectors(conn: &Connection, embedder: &str, items: &[([u8; 32], &[f32])]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO embed_cache(embedder, hash, vector) VALUES (?1, ?2, ?3)",
    )?;
    for (hash, vector) in items {
        stmt.execute(params![embedder, &hash[..], encode_vector(vector)])?;
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
