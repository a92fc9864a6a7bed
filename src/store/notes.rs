//! Rows of `roots`, `notes` and `note_tags`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

/// What the indexer needs to know about a stored note.
#[derive(Debug, Clone, PartialEq)]
pub struct NoteRow {
    /// Row id.
    pub id: i64,
    /// Path relative to the root.
    pub rel_path: String,
    /// Size when last seen.
    pub size: u64,
    /// Modification time when last seen.
    pub mtime_ns: i64,
    /// Hash of the bytes last indexed.
    pub content_hash: Option<Vec<u8>>,
    /// indexed | pending | skipped | failed.
    pub state: String,
}

/// What reading a note produced, to be stored with its chunks.
#[derive(Debug, Clone)]
pub struct NoteContent {
    /// Display title.
    pub title: String,
    /// Tags, lower case.
    pub tags: Vec<String>,
    /// Aliases.
    pub aliases: Vec<String>,
    /// Front-matter date (Unix seconds).
    pub date: Option<i64>,
    /// SHA-256 of the file bytes.
    pub content_hash: [u8; 32],
    /// Links to other notes: key, whether the key is a whole path, byte
    /// offset (see [`crate::links`]).
    pub links: Vec<(String, bool, usize)>,
    /// The script of its prose ([`crate::language::prose_script`]).
    pub script: Option<crate::language::Script>,
}

/// One file's state, for `sift status --files`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileStateRow {
    /// Indexed folder.
    pub root: String,
    /// Path relative to it.
    pub path: String,
    /// indexed | pending | skipped | failed.
    pub state: String,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
}

/// The id of root folder `path`, creating it if new.
pub fn ensure_root(conn: &Connection, path: &Path) -> Result<i64> {
    let path = path.to_string_lossy();
    conn.execute("INSERT OR IGNORE INTO roots(path) VALUES (?1)", [&path])?;
    Ok(
        conn.query_row("SELECT id FROM roots WHERE path = ?1", [&path], |r| {
            r.get(0)
        })?,
    )
}

/// The id of root folder `path` if indexed.
pub fn find_root(conn: &Connection, path: &Path) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            "SELECT id FROM roots WHERE path = ?1",
            [path.to_string_lossy()],
            |r| r.get(0),
        )
        .optional()?)
}

/// All root folders.
pub fn roots(conn: &Connection) -> Result<Vec<(i64, PathBuf)>> {
    let mut stmt = conn.prepare_cached("SELECT id, path FROM roots ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, i64>(0)?, PathBuf::from(r.get::<_, String>(1)?)))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Removes a root and everything indexed under it: notes, tags, chunks with
/// their keyword entries (a trigger) and their vectors (the removal log).
/// Returns the embed hashes of its chunks: their cached vectors stay for the
/// grace period unless the caller forgets them ([`super::prune::forget_unused_vectors`]).
pub fn delete_root(conn: &Connection, root_id: i64) -> Result<Vec<Vec<u8>>> {
    let hashes: Vec<Vec<u8>> = {
        let mut stmt = conn.prepare(
            "SELECT DISTINCT c.embed_hash FROM chunks c JOIN notes n ON n.id = c.note_id
             WHERE n.root_id = ?1",
        )?;
        let rows = stmt.query_map([root_id], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let ids: Vec<i64> = {
        let mut stmt = conn.prepare("SELECT id FROM notes WHERE root_id = ?1")?;
        let rows = stmt.query_map([root_id], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for id in ids {
        delete_note(conn, id)?;
    }
    conn.execute("DELETE FROM roots WHERE id = ?1", [root_id])?;
    Ok(hashes)
}

/// Every note row of a root, by relative path.
pub fn notes_of_root(conn: &Connection, root_id: i64) -> Result<HashMap<String, NoteRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, rel_path, size, mtime_ns, content_hash, state FROM notes WHERE root_id = ?1",
    )?;
    let rows = stmt.query_map([root_id], |r| {
        Ok(NoteRow {
            id: r.get(0)?,
            rel_path: r.get(1)?,
            size: r.get::<_, i64>(2)? as u64,
            mtime_ns: r.get(3)?,
            content_hash: r.get(4)?,
            state: r.get(5)?,
        })
    })?;
    let mut out = HashMap::new();
    for row in rows {
        let row = row?;
        out.insert(row.rel_path.clone(), row);
    }
    Ok(out)
}

/// Note rows of a root at `rel_path` or below it (`rel_path` as a folder), by
/// relative path: what a change to that path may have touched.
pub fn notes_at_or_under(
    conn: &Connection,
    root_id: i64,
    rel_path: &str,
) -> Result<HashMap<String, NoteRow>> {
    // A range on the (root_id, rel_path) index: `a/` <= p < `a0` ('0' follows '/').
    let mut stmt = conn.prepare_cached(
        "SELECT id, rel_path, size, mtime_ns, content_hash, state FROM notes
         WHERE root_id = ?1 AND (rel_path = ?2 OR (rel_path >= ?3 AND rel_path < ?4))",
    )?;
    let rows = stmt.query_map(
        params![
            root_id,
            rel_path,
            format!("{rel_path}/"),
            format!("{rel_path}0")
        ],
        note_row,
    )?;
    let mut out = HashMap::new();
    for row in rows {
        let row = row?;
        out.insert(row.rel_path.clone(), row);
    }
    Ok(out)
}

fn note_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NoteRow> {
    Ok(NoteRow {
        id: r.get(0)?,
        rel_path: r.get(1)?,
        size: r.get::<_, i64>(2)? as u64,
        mtime_ns: r.get(3)?,
        content_hash: r.get(4)?,
        state: r.get(5)?,
    })
}

/// Creates or updates a note row with a state other than `indexed`; returns its id.
#[allow(clippy::too_many_arguments)]
pub fn upsert_state(
    conn: &Connection,
    root_id: i64,
    rel_path: &str,
    ext: &str,
    size: u64,
    mtime_ns: i64,
    state: &str,
    reason: Option<&str>,
) -> Result<i64> {
    // Statements cached: this runs for every note read (hot in a first index).
    conn.prepare_cached(
        "INSERT INTO notes(root_id, rel_path, ext, size, mtime_ns, state, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(root_id, rel_path) DO UPDATE SET
            ext = excluded.ext, size = excluded.size, mtime_ns = excluded.mtime_ns,
            state = excluded.state, reason = excluded.reason",
    )?
    .execute(params![
        root_id,
        rel_path,
        ext,
        size as i64,
        mtime_ns,
        state,
        reason
    ])?;
    Ok(conn
        .prepare_cached("SELECT id FROM notes WHERE root_id = ?1 AND rel_path = ?2")?
        .query_row(params![root_id, rel_path], |r| r.get(0))?)
}

/// Gives indexed notes without a script (indexed before Sift stored one) the
/// script of their chunks' prose, from the store alone: no file is read and
/// nothing is embedded again. Returns how many it filled in.
pub fn fill_in_scripts(conn: &mut Connection) -> Result<usize> {
    let missing: Vec<i64> = conn
        .prepare("SELECT id FROM notes WHERE script IS NULL AND state = 'indexed'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if missing.is_empty() {
        return Ok(0);
    }
    let tx = conn.transaction()?;
    {
        let mut bodies = tx.prepare("SELECT body FROM chunks WHERE note_id = ?1 ORDER BY seq")?;
        let mut set = tx.prepare("UPDATE notes SET script = ?2 WHERE id = ?1")?;
        for &id in &missing {
            let texts: Vec<String> = bodies
                .query_map([id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let script = crate::language::prose_script(texts.iter().map(String::as_str));
            set.execute(params![id, crate::language::script_column(script)])?;
        }
    }
    tx.commit()?;
    Ok(missing.len())
}

/// Marks note `id` indexed with its content (chunks are written separately).
pub fn set_indexed(conn: &Connection, id: i64, content: &NoteContent, now: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE notes SET content_hash = ?2, title = ?3, tags = ?4, aliases = ?5,
            note_date = ?6, state = 'indexed', reason = NULL, indexed_at = ?7, script = ?8
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        &content.content_hash[..],
        content.title,
        serde_json::to_string(&content.tags).unwrap_or_default(),
        serde_json::to_string(&content.aliases).unwrap_or_default(),
        content.date,
        now,
        crate::language::script_column(content.script)
    ])?;
    conn.prepare_cached("DELETE FROM note_tags WHERE note_id = ?1")?
        .execute([id])?;
    let mut stmt =
        conn.prepare_cached("INSERT OR IGNORE INTO note_tags(note_id, tag) VALUES (?1, ?2)")?;
    for tag in &content.tags {
        stmt.execute(params![id, tag])?;
    }
    conn.execute("DELETE FROM note_links WHERE note_id = ?1", [id])?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO note_links(note_id, target, exact, byte_offset) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (target, exact, offset) in &content.links {
        stmt.execute(params![id, target, exact, *offset as i64])?;
    }
    Ok(())
}

/// Deletes a note, its tags and its chunks (the chunk trigger logs vector removals).
pub fn delete_note(conn: &Connection, id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM chunks WHERE note_id = ?1")?
        .execute([id])?;
    conn.prepare_cached("DELETE FROM note_tags WHERE note_id = ?1")?
        .execute([id])?;
    conn.prepare_cached("DELETE FROM note_links WHERE note_id = ?1")?
        .execute([id])?;
    conn.prepare_cached("DELETE FROM notes WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Per-file states, optionally only those not indexed.
pub fn file_states(conn: &Connection, only_problems: bool) -> Result<Vec<FileStateRow>> {
    let sql =
        format!(
        "SELECT r.path, n.rel_path, n.state, n.reason FROM notes n JOIN roots r ON r.id = n.root_id
         {} ORDER BY r.path, n.rel_path",
        if only_problems { "WHERE n.state != 'indexed'" } else { "" }
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], |r| {
        Ok(FileStateRow {
            root: r.get(0)?,
            path: r.get(1)?,
            state: r.get(2)?,
            reason: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Number of notes in each state: (indexed, pending, skipped, failed).
pub fn state_counts(conn: &Connection) -> Result<(u64, u64, u64, u64)> {
    let mut counts = (0, 0, 0, 0);
    let mut stmt = conn.prepare_cached("SELECT state, count(*) FROM notes GROUP BY state")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
    for row in rows {
        let (state, n) = row?;
        match state.as_str() {
            "indexed" => counts.0 = n,
            "pending" => counts.1 = n,
            "skipped" => counts.2 = n,
            _ => counts.3 = n,
        }
    }
    Ok(counts)
}

/// Latest `indexed_at` (Unix seconds).
pub fn last_indexed(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn.query_row("SELECT max(indexed_at) FROM notes", [], |r| r.get(0))?)
}

/// Id of the note at `rel_path` under root `root_id`.
pub fn find_note(conn: &Connection, root_id: i64, rel_path: &str) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            "SELECT id FROM notes WHERE root_id = ?1 AND rel_path = ?2",
            params![root_id, rel_path],
            |r| r.get(0),
        )
        .optional()?)
}

/// Id, state and reason of the note at `rel_path` under root `root_id`.
pub fn note_state(
    conn: &Connection,
    root_id: i64,
    rel_path: &str,
) -> Result<Option<(i64, String, Option<String>)>> {
    Ok(conn
        .query_row(
            "SELECT id, state, reason FROM notes WHERE root_id = ?1 AND rel_path = ?2",
            params![root_id, rel_path],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?)
}

/// Marks every note holding a chunk whose embedded text has `hash` as failed
/// with `reason`, dropping its chunks (it is tried again at the next run);
/// returns the notes' relative paths.
pub fn fail_notes_with_chunk_hash(
    conn: &Connection,
    hash: &[u8; 32],
    reason: &str,
) -> Result<Vec<String>> {
    let notes: Vec<(i64, String)> = {
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT n.id, n.rel_path FROM notes n JOIN chunks c ON c.note_id = n.id
             WHERE c.embed_hash = ?1",
        )?;
        let rows = stmt.query_map([&hash[..]], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (id, _) in &notes {
        conn.execute("DELETE FROM chunks WHERE note_id = ?1", [id])?;
        conn.execute("DELETE FROM note_tags WHERE note_id = ?1", [id])?;
        conn.execute(
            "UPDATE notes SET state = 'failed', reason = ?2, content_hash = NULL WHERE id = ?1",
            params![id, reason],
        )?;
    }
    Ok(notes.into_iter().map(|(_, path)| path).collect())
}

/// What the store holds about one indexed note, for showing it whole.
#[derive(Debug, Clone)]
pub struct NoteMeta {
    /// File extension.
    pub ext: String,
    /// Display title.
    pub title: String,
    /// Tags, lower case.
    pub tags: Vec<String>,
    /// Aliases from front matter.
    pub aliases: Vec<String>,
    /// Modification time when last seen (nanoseconds).
    pub mtime_ns: i64,
    /// Front-matter date (Unix seconds).
    pub note_date: Option<i64>,
}

/// The stored facts of the note at `rel_path` under root `root_id`.
pub fn note_meta(conn: &Connection, root_id: i64, rel_path: &str) -> Result<Option<NoteMeta>> {
    let row = conn
        .query_row(
            "SELECT ext, title, tags, aliases, mtime_ns, note_date FROM notes
             WHERE root_id = ?1 AND rel_path = ?2",
            params![root_id, rel_path],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                ))
            },
        )
        .optional()?;
    Ok(row.map(
        |(ext, title, tags, aliases, mtime_ns, note_date)| NoteMeta {
            ext,
            title,
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            aliases: serde_json::from_str(&aliases).unwrap_or_default(),
            mtime_ns,
            note_date,
        },
    ))
}

/// Reads every note's row once (titles, tags, aliases: what a keyword search
/// looks up for its candidates), so that a warming process brings the notes
/// table's pages into the page cache; the number of notes.
pub fn read_every_note(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM notes
         WHERE length(rel_path) + length(title) + length(tags) + length(aliases) >= 0",
        [],
        |r| r.get(0),
    )?)
}
