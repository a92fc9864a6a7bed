//! Keeping the embedding cache and the vector removal log bounded.
//!
//! Cache entries: a chunk deleted (a note edited, a folder removed) may leave
//! a vector no chunk uses. Such an entry is stamped `unused_since` when found
//! and deleted once it has stayed unused for the grace period: an undo, a
//! branch switch or a note moved and back within it costs no embedding. An
//! entry used again is unstamped. Finding them reads only the narrow key index
//! and only after chunks were deleted (new entries in the removal log).
//!
//! Removal log: every vector index applies it, then remembers how far it got.
//! Entries are trimmed except the latest `keep`; `removals_pruned_through`
//! records the trim point, and an index that had not got that far rebuilds
//! itself from the cache instead of missing removals (see `crate::vectors`).

use rusqlite::{params, Connection};

use crate::error::Result;

/// What a prune did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PruneReport {
    /// Cache entries found unused and stamped now.
    pub cache_marked: u64,
    /// Stamped entries used again and unstamped.
    pub cache_unmarked: u64,
    /// Entries deleted after the grace period.
    pub cache_deleted: u64,
    /// Removal log entries trimmed.
    pub removals_deleted: u64,
}

/// Stamps, unstamps and deletes cache entries as of `now` (Unix seconds) with
/// `grace_secs`; trims the removal log to its latest `keep` entries, never
/// beyond `applied` (what the caller's saved vector index has applied).
pub fn prune(
    conn: &Connection,
    now: i64,
    grace_secs: i64,
    keep: i64,
    applied: i64,
) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    let last_removal = super::chunks::max_removal_seq(conn)?;
    let checked = meta(conn, "removals_checked_through")?;
    if last_removal > checked {
        report.cache_marked = conn.execute(
            "UPDATE embed_cache SET unused_since = ?1
             WHERE (embedder, hash) IN (
                SELECT e.embedder, e.hash FROM embed_cache e INDEXED BY embed_cache_keys
                WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.embed_hash = e.hash))
               AND unused_since IS NULL",
            [now],
        )? as u64;
        set_meta(conn, "removals_checked_through", last_removal)?;
    }
    report.cache_unmarked = conn.execute(
        "UPDATE embed_cache SET unused_since = NULL
         WHERE unused_since IS NOT NULL
           AND EXISTS (SELECT 1 FROM chunks c WHERE c.embed_hash = embed_cache.hash)",
        [],
    )? as u64;
    report.cache_deleted = conn.execute(
        "DELETE FROM embed_cache WHERE unused_since IS NOT NULL AND unused_since <= ?1",
        [now - grace_secs],
    )? as u64;
    let through = (last_removal - keep).min(applied);
    if through > meta(conn, "removals_pruned_through")? {
        report.removals_deleted =
            conn.execute("DELETE FROM vector_removals WHERE seq <= ?1", [through])? as u64;
        set_meta(conn, "removals_pruned_through", through)?;
    }
    Ok(report)
}

/// The removal log holds no entry at or before this seq any more.
pub fn removals_pruned_through(conn: &Connection) -> Result<i64> {
    meta(conn, "removals_pruned_through")
}

/// Deletes the cache entries of `hashes` that no chunk uses (every embedder's):
/// what removing a folder does at once, without a grace period.
pub fn forget_unused_vectors(conn: &Connection, hashes: &[Vec<u8>]) -> Result<u64> {
    let mut stmt = conn.prepare_cached(
        "DELETE FROM embed_cache WHERE hash = ?1
           AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.embed_hash = ?1)",
    )?;
    let mut deleted = 0;
    for hash in hashes {
        deleted += stmt.execute([hash])? as u64;
    }
    Ok(deleted)
}

fn meta(conn: &Connection, key: &str) -> Result<i64> {
    let mut stmt =
        conn.prepare_cached("SELECT coalesce((SELECT value FROM store_meta WHERE key = ?1), 0)")?;
    Ok(stmt.query_row([key], |r| r.get(0))?)
}

fn set_meta(conn: &Connection, key: &str, value: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO store_meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}
