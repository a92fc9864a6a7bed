//! The note of each chunk a vector search returns, kept in memory.
//!
//! A hybrid search groups its hundred nearest chunks by note. Reading their
//! notes from SQLite walks the chunks table's B-tree once per chunk, and that
//! table holds every chunk's text: about 0.3 ms of a 2 ms search at 100k
//! chunks (BENCHMARKS.md, "Hybrid latency at scale, sixth round"). A chunk's
//! note never changes (chunks are inserted and deleted, never updated) and
//! chunk ids are never reused (`AUTOINCREMENT`), so what was read once stays
//! true: the map is read whole from the narrow `chunks_note` index into an
//! array indexed by chunk id (ids are dense: one memory read a chunk), and
//! chunks added later (ids above what was read) are looked up when first met.
//!
//! A process that searches once (`sift search`) never pays for the map: it is
//! read at the second search.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::error::Result;
use crate::store::tables;

/// Chunks added after the map was read that it remembers, beyond which it is
/// read again whole (a long session of edits).
const LATER_MAX: usize = 50_000;

/// No chunk has this id (deleted, or never there).
const NONE: u32 = u32::MAX;

#[derive(Debug, Default)]
pub(crate) struct ChunkNotes {
    /// Searches that asked so far.
    asked: u32,
    /// The note of chunk `first + i` at `read[i]` when the map was read
    /// ([`NONE`]: no such chunk).
    read: Vec<u32>,
    /// The lowest chunk id read.
    first: i64,
    /// Whether the map was read.
    loaded: bool,
    /// The highest chunk id the map was read through (0: none).
    through: i64,
    /// Chunks with higher ids, looked up when a search met them.
    later: HashMap<i64, i64>,
    /// The ids were too sparse (or a note id too large) for the array:
    /// every look-up goes to SQLite.
    unmapped: bool,
}

impl ChunkNotes {
    /// The note of each of `ids` that still exists.
    pub(crate) fn notes_of(&mut self, conn: &Connection, ids: &[i64]) -> Result<HashMap<i64, i64>> {
        self.asked = self.asked.saturating_add(1);
        if self.asked < 2 || self.unmapped {
            return tables::notes_of_chunks(conn, ids);
        }
        if !self.loaded || self.later.len() > LATER_MAX {
            self.read_all(conn)?;
            if self.unmapped {
                return tables::notes_of_chunks(conn, ids);
            }
        }
        let mut out = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for &id in ids {
            if id > self.through {
                match self.later.get(&id) {
                    Some(&note) => {
                        out.insert(id, note);
                    }
                    None => missing.push(id),
                }
            } else if let Some(&note) = self.slot(id) {
                if note != NONE {
                    out.insert(id, i64::from(note));
                }
            }
        }
        if !missing.is_empty() {
            // Chunks added since the map was read.
            let found = tables::notes_of_chunks(conn, &missing)?;
            self.later.extend(&found);
            out.extend(found);
        }
        Ok(out)
    }

    /// Reads the map now, whatever was asked before; whether it is in memory
    /// (not when the ids are too sparse).
    pub(crate) fn read_now(&mut self, conn: &Connection) -> Result<bool> {
        self.asked = self.asked.max(2);
        if !self.unmapped {
            self.read_all(conn)?;
        }
        Ok(self.loaded && !self.unmapped)
    }

    /// Forgets chunks whose vectors were removed, so that a search never
    /// maps a deleted chunk to its former note.
    pub(crate) fn forget(&mut self, id: i64) {
        if let Some(note) = self.slot_mut(id) {
            *note = NONE;
        }
        self.later.remove(&id);
    }

    fn slot(&self, id: i64) -> Option<&u32> {
        usize::try_from(id - self.first)
            .ok()
            .and_then(|at| self.read.get(at))
    }

    fn slot_mut(&mut self, id: i64) -> Option<&mut u32> {
        usize::try_from(id - self.first)
            .ok()
            .and_then(|at| self.read.get_mut(at))
    }

    /// Forgets everything (the index was replaced by another process's file):
    /// read again at the next search.
    pub(crate) fn clear(&mut self) {
        self.read = Vec::new();
        self.first = 0;
        self.loaded = false;
        self.through = 0;
        self.later.clear();
    }

    fn read_all(&mut self, conn: &Connection) -> Result<()> {
        self.clear();
        let pairs = tables::all_chunk_notes(conn)?;
        self.loaded = true;
        let (Some(first), Some(last)) = (
            pairs.iter().map(|(id, _)| *id).min(),
            pairs.iter().map(|(id, _)| *id).max(),
        ) else {
            // No chunks yet: every chunk is met later.
            return Ok(());
        };
        // Ids deleted by edits leave holes; an array mostly of holes (or a
        // note id past u32) is not worth its memory.
        let span = usize::try_from(last - first + 1).unwrap_or(usize::MAX);
        if span > 16 * pairs.len() + (1 << 20)
            || pairs.iter().any(|(_, note)| u32::try_from(*note).is_err())
        {
            self.unmapped = true;
            return Ok(());
        }
        let mut read = vec![NONE; span];
        for (id, note) in pairs {
            read[(id - first) as usize] = note as u32;
        }
        self.read = read;
        self.first = first;
        self.through = last;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use rusqlite::params;

    /// A store with `notes` notes of `per_note` chunks each; their chunk ids.
    fn store_with(notes: usize, per_note: usize) -> (tempfile::TempDir, Store, Vec<(i64, i64)>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sift.db")).unwrap();
        let chunks = add_notes(&store, 0, notes, per_note);
        (dir, store, chunks)
    }

    fn add_notes(store: &Store, from: usize, notes: usize, per_note: usize) -> Vec<(i64, i64)> {
        let conn = store.writer();
        conn.execute("INSERT OR IGNORE INTO roots(id, path) VALUES (1, '/n')", [])
            .unwrap();
        let mut out = Vec::new();
        for n in from..from + notes {
            conn.execute(
                "INSERT INTO notes(root_id, rel_path, ext, size, mtime_ns, title, state, indexed_at)
                 VALUES (1, ?1, 'md', 0, 0, 't', 'indexed', 0)",
                [format!("n{n}.md")],
            )
            .unwrap();
            let note = conn.last_insert_rowid();
            for seq in 0..per_note {
                conn.execute(
                    "INSERT INTO chunks(note_id, seq, byte_start, byte_end, line_start, line_end,
                                        heading_path, context, embed_prefix, body, embed_hash)
                     VALUES (?1, ?2, 0, 1, 1, 1, '[]', '', '', 'x', x'00')",
                    params![note, seq as i64],
                )
                .unwrap();
                out.push((conn.last_insert_rowid(), note));
            }
        }
        out
    }

    fn ask(map: &mut ChunkNotes, store: &Store, ids: &[i64]) -> HashMap<i64, i64> {
        store.read(|c| map.notes_of(c, ids)).unwrap()
    }

    #[test]
    fn every_search_gets_the_notes_sqlite_gives() {
        let (_dir, store, chunks) = store_with(50, 3);
        let ids: Vec<i64> = chunks
            .iter()
            .map(|(c, _)| *c)
            .chain([0, -5, 10_000])
            .collect();
        let expected: HashMap<i64, i64> = chunks.iter().copied().collect();
        let mut map = ChunkNotes::default();
        // The first search reads SQLite, the second reads the map whole.
        for _ in 0..3 {
            assert_eq!(ask(&mut map, &store, &ids), expected);
        }
        assert!(map.loaded && map.through > 0, "read at the second search");
        assert!(!map.unmapped);
    }

    #[test]
    fn chunks_added_after_the_map_was_read_are_found() {
        let (_dir, store, mut chunks) = store_with(10, 2);
        let mut map = ChunkNotes::default();
        let ids: Vec<i64> = chunks.iter().map(|(c, _)| *c).collect();
        ask(&mut map, &store, &ids);
        ask(&mut map, &store, &ids);
        let read_through = map.through;
        chunks.extend(add_notes(&store, 10, 5, 2));
        let ids: Vec<i64> = chunks.iter().map(|(c, _)| *c).collect();
        let expected: HashMap<i64, i64> = chunks.iter().copied().collect();
        assert_eq!(ask(&mut map, &store, &ids), expected);
        assert_eq!(map.through, read_through, "not read again");
        assert_eq!(map.later.len(), 10);
        // Remembered: the same answer without them in the database's reply.
        assert_eq!(ask(&mut map, &store, &ids), expected);
    }

    #[test]
    fn a_map_read_before_any_chunk_finds_the_first_chunks() {
        let (_dir, store, _) = store_with(0, 0);
        let mut map = ChunkNotes::default();
        ask(&mut map, &store, &[]);
        ask(&mut map, &store, &[1]);
        assert!(map.loaded);
        let chunks = add_notes(&store, 0, 3, 2);
        let ids: Vec<i64> = chunks.iter().map(|(c, _)| *c).collect();
        assert_eq!(ids[0], 1);
        let expected: HashMap<i64, i64> = chunks.iter().copied().collect();
        assert_eq!(ask(&mut map, &store, &ids), expected);
        assert_eq!(ask(&mut map, &store, &ids), expected);
    }

    #[test]
    fn forgotten_chunks_have_no_note() {
        let (_dir, store, chunks) = store_with(5, 2);
        let mut map = ChunkNotes::default();
        let ids: Vec<i64> = chunks.iter().map(|(c, _)| *c).collect();
        ask(&mut map, &store, &ids);
        ask(&mut map, &store, &ids);
        map.forget(ids[3]);
        let found = ask(&mut map, &store, &ids);
        assert_eq!(found.len(), ids.len() - 1);
        assert!(!found.contains_key(&ids[3]));
        // Cleared, the map is read again from the database, which still
        // holds the chunk (only its vector was removed in this test).
        map.clear();
        assert_eq!(ask(&mut map, &store, &ids).len(), ids.len());
    }

    #[test]
    fn sparse_ids_are_looked_up_in_sqlite() {
        let (_dir, store, mut chunks) = store_with(2, 2);
        // Ids far apart: an array would be mostly holes.
        store
            .writer()
            .execute(
                "UPDATE sqlite_sequence SET seq = 50000000 WHERE name = 'chunks'",
                [],
            )
            .unwrap();
        chunks.extend(add_notes(&store, 2, 2, 2));
        let ids: Vec<i64> = chunks.iter().map(|(c, _)| *c).collect();
        let expected: HashMap<i64, i64> = chunks.iter().copied().collect();
        let mut map = ChunkNotes::default();
        for _ in 0..3 {
            assert_eq!(ask(&mut map, &store, &ids), expected);
        }
        assert!(map.unmapped);
    }
}
