//! The last searches typed, kept in the data folder's database so that a
//! provider comparison ([`crate::compare`]) can run them on the user's own
//! notes. Decided: kept by default (it is the user's own machine and the
//! queries never leave it unless a comparison the user confirmed embeds
//! them), at most [`KEEP`] of them, cleared with `sift history clear` or the
//! app's "Clear search history". Search-as-you-type keeps one entry per
//! search, not one per keystroke: a query that extends or shortens the latest
//! one within [`TYPING_SECS`] replaces it.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;
use crate::Engine;

/// Searches kept.
pub const KEEP: usize = 50;
/// A query typed on from the previous one within this many seconds replaces it.
pub const TYPING_SECS: i64 = 60;

/// Records `query` (trimmed; empty ones are not kept) as searched at `now`.
pub fn record(conn: &Connection, query: &str, now: i64) -> Result<()> {
    let query = query.trim();
    if query.is_empty() {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    let latest: Option<(i64, String, i64)> = tx
        .query_row(
            "SELECT id, query, at FROM search_history ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let typed_on = latest.as_ref().is_some_and(|(_, last, at)| {
        now - at <= TYPING_SECS && (query.starts_with(last.as_str()) || last.starts_with(query))
    });
    if let (true, Some((id, _, _))) = (typed_on, &latest) {
        tx.execute("DELETE FROM search_history WHERE id = ?1", [id])?;
    }
    // The same search again moves to the front.
    tx.execute("DELETE FROM search_history WHERE query = ?1", [query])?;
    tx.execute(
        "INSERT INTO search_history(query, at) VALUES (?1, ?2)",
        params![query, now],
    )?;
    tx.execute(
        "DELETE FROM search_history WHERE id NOT IN
            (SELECT id FROM search_history ORDER BY id DESC LIMIT ?1)",
        [KEEP as i64],
    )?;
    tx.commit()?;
    Ok(())
}

/// Up to `n` searches, the latest first.
pub fn recent(conn: &Connection, n: usize) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT query FROM search_history ORDER BY id DESC LIMIT ?1")?;
    let rows = stmt.query_map([n as i64], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl Engine {
    /// Keeps `query` in the search history (see the module's rules). For the
    /// app's and the CLI's searches, not an assistant's or a benchmark's.
    pub fn remember_search(&self, query: &str) -> Result<()> {
        record(
            &self.store().writer(),
            query,
            chrono::Utc::now().timestamp(),
        )
    }

    /// Up to `n` of the latest searches, the latest first.
    pub fn recent_searches(&self, n: usize) -> Result<Vec<String>> {
        self.store().read(|conn| recent(conn, n))
    }

    /// Forgets every search kept; returns how many.
    pub fn clear_search_history(&self) -> Result<usize> {
        Ok(self
            .store()
            .writer()
            .execute("DELETE FROM search_history", [])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, crate::store::Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("sift.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn typing_keeps_one_entry_and_the_list_is_bounded() {
        let (_dir, store) = db();
        let conn = store.writer();
        for (i, q) in ["s", "sle", "sleep", "sleep bet", "sleep better"]
            .iter()
            .enumerate()
        {
            record(&conn, q, 1000 + i as i64).unwrap();
        }
        record(&conn, "  ", 1010).unwrap();
        assert_eq!(recent(&conn, 10).unwrap(), ["sleep better"]);
        // Much later, a shorter query is a new search.
        record(&conn, "sleep", 5000).unwrap();
        record(&conn, "garden", 5001).unwrap();
        record(&conn, "sleep better", 9000).unwrap();
        assert_eq!(
            recent(&conn, 10).unwrap(),
            ["sleep better", "garden", "sleep"]
        );
        for i in 0..(KEEP + 10) {
            record(&conn, &format!("query {i}"), 10_000 + i as i64 * 1000).unwrap();
        }
        let all = recent(&conn, 1000).unwrap();
        assert_eq!(all.len(), KEEP);
        assert_eq!(all[0], format!("query {}", KEEP + 9));
    }
}
