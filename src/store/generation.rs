//! The store's generation and the queries that let a process catch its vector
//! index up with what other processes committed (see `schema::V3_GENERATION`).

use std::collections::HashMap;

use rusqlite::{params, Connection};

use crate::error::Result;

/// The current generation: moves on with every committed change to chunks or
/// to the embedding cache.
pub fn generation(conn: &Connection) -> Result<i64> {
    meta(conn, "generation")
}

/// A number that tells this database from any other.
pub fn store_id(conn: &Connection) -> Result<i64> {
    meta(conn, "store_id")
}

/// How many times a vector file was rebuilt from the embedding cache.
pub fn vector_rebuilds(conn: &Connection) -> Result<i64> {
    meta(conn, "vector_rebuilds")
}

/// Counts one more rebuild of a vector file.
pub fn count_vector_rebuild(conn: &Connection) -> Result<()> {
    conn.execute(
        "UPDATE store_meta SET value = value + 1 WHERE key = 'vector_rebuilds'",
        [],
    )?;
    Ok(())
}

fn meta(conn: &Connection, key: &str) -> Result<i64> {
    let mut stmt = conn.prepare_cached("SELECT value FROM store_meta WHERE key = ?1")?;
    Ok(stmt.query_row([key], |r| r.get(0))?)
}

/// Highest chunk id ever handed out (ids are never reused), 0 for none.
pub fn max_chunk_id(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'chunks'), 0)",
        [],
        |r| r.get(0),
    )?)
}

/// (id, embed hash) of the chunks after `after_id`, in id order.
pub fn chunks_after(conn: &Connection, after_id: i64) -> Result<Vec<(i64, [u8; 32])>> {
    let mut stmt =
        conn.prepare_cached("SELECT id, embed_hash FROM chunks WHERE id > ?1 ORDER BY id")?;
    let rows = stmt.query_map([after_id], |r| {
        Ok((r.get::<_, i64>(0)?, to_hash(&r.get::<_, Vec<u8>>(1)?)))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// (id, embed hash) of every chunk with no cached vector for `embedder`.
pub fn chunks_without_vectors(conn: &Connection, embedder: &str) -> Result<HashMap<i64, [u8; 32]>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.embed_hash FROM chunks c WHERE NOT EXISTS
            (SELECT 1 FROM embed_cache e INDEXED BY embed_cache_keys
             WHERE e.embedder = ?1 AND e.hash = c.embed_hash)",
    )?;
    let rows = stmt.query_map(params![embedder], |r| {
        Ok((r.get::<_, i64>(0)?, to_hash(&r.get::<_, Vec<u8>>(1)?)))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn to_hash(bytes: &[u8]) -> [u8; 32] {
    let mut hash = [0u8; 32];
    let n = bytes.len().min(32);
    hash[..n].copy_from_slice(&bytes[..n]);
    hash
}

/// Highest `vector_removals` entry ever logged, 0 for none (from the
/// sequence, so pruning old entries does not move it back).
pub fn last_removal_seq(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'vector_removals'), 0)",
        [],
        |r| r.get(0),
    )?)
}

/// A chunk's keyword terms, as stored in the FTS5 table.
pub struct KeywordTerms {
    /// Chunk id.
    pub chunk_id: i64,
    /// Its note.
    pub note_id: i64,
    /// Terms of the title, aliases and headings.
    pub context: String,
    /// Terms of the body as a reader sees it.
    pub body: String,
    /// The note's title, as written.
    pub title: String,
    /// The note's aliases (JSON list).
    pub aliases: String,
}

/// Keyword terms of up to `limit` chunks with `after < id <= upto`, in id order.
pub fn keyword_terms_after(
    conn: &Connection,
    after: i64,
    upto: i64,
    limit: usize,
) -> Result<Vec<KeywordTerms>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.note_id, f.context, f.body, n.title, n.aliases
         FROM chunks c JOIN chunks_fts f ON f.rowid = c.id JOIN notes n ON n.id = c.note_id
         WHERE c.id > ?1 AND c.id <= ?2 ORDER BY c.id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![after, upto, limit as i64], |r| {
        Ok(KeywordTerms {
            chunk_id: r.get(0)?,
            note_id: r.get(1)?,
            context: r.get(2)?,
            body: r.get(3)?,
            title: r.get(4)?,
            aliases: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Oldest `vector_removals` entry still logged (None: the log is empty).
pub fn oldest_removal_seq(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn.query_row("SELECT min(seq) FROM vector_removals", [], |r| r.get(0))?)
}
