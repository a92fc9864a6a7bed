//! Rows of `chunks`, and the keyword index (FTS5) entries written with them.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use crate::chunk::{embed_text, Chunk};
use crate::error::Result;
use crate::note::is_markdown_ext;
use crate::text::index_terms;

/// A chunk as stored, joined with its note: what search results are made of.
#[derive(Debug, Clone)]
pub struct StoredChunk {
    /// Chunk id (also its vector key).
    pub id: i64,
    /// Note id.
    pub note_id: i64,
    /// Root folder path.
    pub root: String,
    /// Note path relative to the root.
    pub rel_path: String,
    /// Note title.
    pub title: String,
    /// Note tags.
    pub tags: Vec<String>,
    /// Note aliases.
    pub aliases: Vec<String>,
    /// The note's front-matter date (Unix seconds).
    pub note_date: Option<i64>,
    /// Note extension.
    pub ext: String,
    /// Note modification time (Unix seconds).
    pub modified: i64,
    /// Headings in effect.
    pub heading_path: Vec<String>,
    /// First line (1-based).
    pub line_start: usize,
    /// Page where the chunk starts (paged documents only).
    pub page: Option<u32>,
    /// The chunk's text.
    pub body: String,
}

/// A chunk that needs (or has) a vector: id, cache key and the text to embed.
#[derive(Debug, Clone)]
pub struct ChunkRow {
    /// Chunk id.
    pub id: i64,
    /// Hash of the embedded text.
    pub embed_hash: [u8; 32],
    /// The embedded text (prefix + body).
    pub embed_text: String,
}

/// Keyword-index (FTS5) rows of chunks just written, inserted together by
/// [`KeywordRows::write`] before the transaction commits. FTS5 writes the
/// terms it holds to disk at every savepoint and at every statement that
/// opens one (an insert into `chunks` fires triggers): a row inserted with
/// each chunk made a segment of a chunk or two, then merges. Rows written
/// after the batch's savepoints are flushed once (BENCHMARKS.md, issue 13).
#[must_use = "the chunks have no keyword entries until the rows are written"]
#[derive(Debug, Default)]
pub struct KeywordRows(Vec<(i64, String, String)>);

impl KeywordRows {
    /// Takes in another note's rows (after its savepoint was released).
    pub fn append(&mut self, mut other: KeywordRows) {
        self.0.append(&mut other.0);
    }

    /// Inserts every row, in chunk order, and empties the list.
    pub fn write(&mut self, conn: &Connection) -> Result<()> {
        for (id, context_terms, body_terms) in self.0.drain(..) {
            insert_terms(conn, id, &context_terms, &body_terms)?;
        }
        Ok(())
    }
}

/// Replaces the chunks of note `note_id` and returns the new chunk ids in order,
/// with their keyword-index rows (for the caller to write before committing).
/// `title` and `aliases` go into the keyword index's context field with the
/// heading path; the body's terms were taken when it was chunked.
pub fn replace_chunks(
    conn: &Connection,
    note_id: i64,
    title: &str,
    aliases: &[String],
    chunks: &[Chunk],
) -> Result<(Vec<i64>, KeywordRows)> {
    conn.prepare_cached("DELETE FROM chunks WHERE note_id = ?1")?
        .execute([note_id])?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO chunks(note_id, seq, byte_start, byte_end, line_start, line_end,
                            heading_path, context, embed_prefix, body, embed_hash, page,
                            embed_body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    let mut ids = Vec::with_capacity(chunks.len());
    let mut rows = KeywordRows::default();
    for c in chunks {
        let mut context = vec![title.to_string()];
        context.extend(aliases.iter().cloned());
        context.extend(c.heading_path.iter().filter(|h| *h != title).cloned());
        let prefix = crate::boilerplate::chunk_prefix(c);
        stmt.execute(params![
            note_id,
            c.seq as i64,
            c.byte_start as i64,
            c.byte_end as i64,
            c.line_start as i64,
            c.line_end as i64,
            serde_json::to_string(&c.heading_path).unwrap_or_default(),
            context.join(" > "),
            prefix,
            c.body,
            &c.embed_hash[..],
            c.page,
            c.embed_body,
        ])?;
        let id = conn.last_insert_rowid();
        rows.0
            .push((id, index_terms(&context.join(" > ")), c.body_terms.clone()));
        ids.push(id);
    }
    Ok((ids, rows))
}

/// Writes chunk `id`'s entry in the keyword index: the terms of its context
/// and of its body as a reader sees it, by the one word rule.
pub fn insert_keyword_terms(
    conn: &Connection,
    id: i64,
    context: &str,
    body: &str,
    markdown: bool,
) -> Result<()> {
    let body_terms = crate::chunk::body_terms(body, markdown);
    insert_terms(conn, id, &index_terms(context), &body_terms)
}

fn insert_terms(conn: &Connection, id: i64, context_terms: &str, body_terms: &str) -> Result<()> {
    conn.prepare_cached("INSERT INTO chunks_fts(rowid, context, body) VALUES (?1, ?2, ?3)")?
        .execute(params![id, context_terms, body_terms])?;
    Ok(())
}

/// Refills the keyword index from `chunks` (after a schema change of the
/// index or when it is found missing).
pub(super) fn rebuild_keyword_index(conn: &Connection) -> Result<()> {
    conn.execute("DELETE FROM chunks_fts", [])?;
    let mut stmt = conn.prepare(
        "SELECT c.id, c.context, c.body, n.ext FROM chunks c JOIN notes n ON n.id = c.note_id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (id, context, body, ext): (i64, String, String, String) =
            (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
        insert_keyword_terms(conn, id, &context, &body, is_markdown_ext(&ext))?;
    }
    Ok(())
}

/// Chunks whose embedded text has no cached vector for `embedder`, up to `limit`,
/// after chunk id `after` (for paging).
pub fn chunks_missing_vectors(
    conn: &Connection,
    embedder: &str,
    after: i64,
    limit: usize,
) -> Result<Vec<ChunkRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.embed_hash, c.embed_prefix, coalesce(c.embed_body, c.body) FROM chunks c
         WHERE c.id > ?2 AND NOT EXISTS
            (SELECT 1 FROM embed_cache e WHERE e.embedder = ?1 AND e.hash = c.embed_hash)
         ORDER BY c.id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![embedder, after, limit as i64], chunk_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Ids of the chunks with no cached vector for `embedder`, the chunks of the
/// most recently modified notes first (a note's chunks in order): the order a
/// first index embeds in, so what the user wrote lately is found by meaning first.
pub fn missing_vector_ids_newest_first(conn: &Connection, embedder: &str) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id FROM chunks c JOIN notes n ON n.id = c.note_id
         WHERE NOT EXISTS
            (SELECT 1 FROM embed_cache e INDEXED BY embed_cache_keys
             WHERE e.embedder = ?1 AND e.hash = c.embed_hash)
         ORDER BY n.mtime_ns DESC, c.note_id, c.seq",
    )?;
    let rows = stmt.query_map([embedder], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Those of chunks `ids` (in that order) that still have no cached vector for
/// `embedder`: an earlier batch may have embedded the same text, and a chunk
/// may be gone.
pub fn chunks_still_missing(
    conn: &Connection,
    embedder: &str,
    ids: &[i64],
) -> Result<Vec<ChunkRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.embed_hash, c.embed_prefix, coalesce(c.embed_body, c.body) FROM chunks c
         WHERE c.id = ?2 AND NOT EXISTS
            (SELECT 1 FROM embed_cache e INDEXED BY embed_cache_keys
             WHERE e.embedder = ?1 AND e.hash = c.embed_hash)",
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(row) = stmt
            .query_map(params![embedder, id], chunk_row)?
            .next()
            .transpose()?
        {
            out.push(row);
        }
    }
    Ok(out)
}

/// The embedded texts of chunks `ids`, in order (for booking cache hits).
pub fn embed_texts(conn: &Connection, ids: &[i64]) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT embed_prefix, coalesce(embed_body, body) FROM chunks WHERE id = ?1",
    )?;
    let mut texts = Vec::with_capacity(ids.len());
    for id in ids {
        let (prefix, body): (String, String) =
            stmt.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        texts.push(embed_text(&prefix, &body));
    }
    Ok(texts)
}

/// Gives chunk `id` a new embedded body (`None`: its body as is) and hash:
/// the chunk is written again under a new id (returned) and the old one
/// deleted, so vector and keyword indexes, which follow new ids and the
/// removal log, drop its old vector and pick up the new one.
pub fn rewrite_chunk(
    conn: &Connection,
    id: i64,
    embed_body: Option<&str>,
    embed_hash: &[u8; 32],
) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO chunks(note_id, seq, byte_start, byte_end, line_start, line_end,
                            heading_path, context, embed_prefix, body, embed_hash, page,
                            embed_body)
         SELECT note_id, seq, byte_start, byte_end, line_start, line_end,
                heading_path, context, embed_prefix, body, ?2, page, ?3
         FROM chunks WHERE id = ?1",
    )?
    .execute(params![id, &embed_hash[..], embed_body])?;
    let new_id = conn.last_insert_rowid();
    conn.prepare_cached(
        "INSERT INTO chunks_fts(rowid, context, body)
         SELECT ?2, context, body FROM chunks_fts WHERE rowid = ?1",
    )?
    .execute(params![id, new_id])?;
    conn.prepare_cached("DELETE FROM chunks WHERE id = ?1")?
        .execute([id])?;
    Ok(new_id)
}

/// Number of chunks with no cached vector for `embedder`.
pub fn count_missing_vectors(conn: &Connection, embedder: &str) -> Result<u64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM chunks c WHERE NOT EXISTS
            (SELECT 1 FROM embed_cache e WHERE e.embedder = ?1 AND e.hash = c.embed_hash)",
        [embedder],
        |r| r.get(0),
    )?)
}

fn chunk_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChunkRow> {
    let hash: Vec<u8> = r.get(1)?;
    let prefix: String = r.get(2)?;
    let body: String = r.get(3)?;
    let embed_hash = to_hash(&hash);
    let embed_text = embed_text(&prefix, &body);
    Ok(ChunkRow {
        id: r.get(0)?,
        embed_hash,
        embed_text,
    })
}

/// Visits (chunk id, cached vector) for every chunk after `after_id` that has
/// one for `embedder`, in chunk id order.
pub fn for_each_chunk_vector_after(
    conn: &Connection,
    embedder: &str,
    after_id: i64,
    mut f: impl FnMut(i64, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT c.id, e.vector FROM chunks c
         JOIN embed_cache e ON e.embedder = ?1 AND e.hash = c.embed_hash
         WHERE c.id > ?2 ORDER BY c.id",
    )?;
    let mut rows = stmt.query(rusqlite::params![embedder, after_id])?;
    while let Some(row) = rows.next()? {
        let bytes = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
        f(row.get(0)?, bytes)?;
    }
    Ok(())
}

/// Number of chunks that have a cached vector for `embedder`.
pub fn count_chunks_with_vectors(conn: &Connection, embedder: &str) -> Result<u64> {
    Ok(conn.query_row(
        // The narrow key index: the cache rows themselves carry the vectors.
        "SELECT count(*) FROM chunks c
         JOIN embed_cache e INDEXED BY embed_cache_keys
           ON e.embedder = ?1 AND e.hash = c.embed_hash",
        [embedder],
        |r| r.get(0),
    )?)
}

/// Total chunks.
pub fn count_chunks(conn: &Connection) -> Result<u64> {
    Ok(conn.query_row("SELECT count(*) FROM chunks", [], |r| r.get(0))?)
}

/// Chunks by id joined with their notes, in the order of `ids`; unknown ids are dropped.
pub fn load_chunks(conn: &Connection, ids: &[i64]) -> Result<Vec<StoredChunk>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.note_id, r.path, n.rel_path, n.title, n.tags, n.ext,
                n.mtime_ns, c.heading_path, c.line_start, c.body, c.page, n.aliases, n.note_date
         FROM chunks c JOIN notes n ON n.id = c.note_id JOIN roots r ON r.id = n.root_id
         WHERE c.id = ?1",
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let mut rows = stmt.query([id])?;
        if let Some(r) = rows.next()? {
            out.push(StoredChunk {
                id: r.get(0)?,
                note_id: r.get(1)?,
                root: r.get(2)?,
                rel_path: r.get(3)?,
                title: r.get(4)?,
                tags: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
                ext: r.get(6)?,
                modified: r.get::<_, i64>(7)? / 1_000_000_000,
                heading_path: serde_json::from_str(&r.get::<_, String>(8)?).unwrap_or_default(),
                line_start: r.get::<_, i64>(9)? as usize,
                body: r.get(10)?,
                page: r.get(11)?,
                aliases: serde_json::from_str(&r.get::<_, String>(12)?).unwrap_or_default(),
                note_date: r.get(13)?,
            });
        }
    }
    Ok(out)
}

/// Ids of the chunks of a note.
pub fn chunk_ids_of_note(conn: &Connection, note_id: i64) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM chunks WHERE note_id = ?1 ORDER BY seq")?;
    let rows = stmt.query_map([note_id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Vector removals logged after `seq`: (seq, chunk id).
pub fn removals_after(conn: &Connection, seq: i64) -> Result<Vec<(i64, i64)>> {
    let mut stmt = conn
        .prepare_cached("SELECT seq, chunk_id FROM vector_removals WHERE seq > ?1 ORDER BY seq")?;
    let rows = stmt.query_map([seq], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Highest removal seq logged so far.
pub fn max_removal_seq(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT coalesce(max(seq), 0) FROM vector_removals",
        [],
        |r| r.get(0),
    )?)
}

/// Deletes the chunks of a note (the trigger logs vector removals).
pub fn delete_chunks_of_note(conn: &Connection, note_id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM chunks WHERE note_id = ?1")?
        .execute([note_id])?;
    Ok(())
}

/// The note of each of `ids` that still exists, in one statement: a search
/// maps a hundred vector candidates to their notes (one lookup each cost
/// 0.8 ms of a 5 ms search at 10k chunks).
pub fn notes_of_chunks(conn: &Connection, ids: &[i64]) -> Result<HashMap<i64, i64>> {
    rows_by_id(
        conn,
        "SELECT id, note_id FROM chunks WHERE id IN",
        ids,
        |r| r.get(1),
    )
}

/// (chunk id, note id) of every chunk, read from the narrow `chunks_note`
/// index rather than the chunks themselves (which hold their text).
pub fn all_chunk_notes(conn: &Connection) -> Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare("SELECT id, note_id FROM chunks INDEXED BY chunks_note")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// `(title, aliases as JSON)` of each of `notes` that still exists, in one
/// statement.
pub fn titles_of_notes(conn: &Connection, notes: &[i64]) -> Result<HashMap<i64, (String, String)>> {
    rows_by_id(
        conn,
        "SELECT id, title, aliases FROM notes WHERE id IN",
        notes,
        |r| Ok((r.get(1)?, r.get(2)?)),
    )
}

/// The script of each of `notes` that still exists (`None`: no letters, or
/// not read yet).
pub fn scripts_of_notes(
    conn: &Connection,
    notes: &[i64],
) -> Result<HashMap<i64, Option<crate::language::Script>>> {
    rows_by_id(
        conn,
        "SELECT id, script FROM notes WHERE id IN",
        notes,
        |r| {
            Ok(r.get::<_, Option<i64>>(1)?
                .and_then(crate::language::Script::from_code))
        },
    )
}

/// Runs `select` (ending in `WHERE id IN`) for `ids`, keyed by the first
/// column. The ids are integers, so they are written into the statement.
fn rows_by_id<T>(
    conn: &Connection,
    select: &str,
    ids: &[i64],
    value: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<HashMap<i64, T>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    let mut stmt = conn.prepare(&format!("{select} ({})", list.join(",")))?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, value(r)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// (chunk id, embed hash) for the given chunk ids.
pub fn chunk_hashes(conn: &Connection, ids: &[i64]) -> Result<Vec<(i64, [u8; 32])>> {
    let mut stmt = conn.prepare_cached("SELECT embed_hash FROM chunks WHERE id = ?1")?;
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        let mut rows = stmt.query([id])?;
        if let Some(r) = rows.next()? {
            out.push((id, to_hash(&r.get::<_, Vec<u8>>(0)?)));
        }
    }
    Ok(out)
}

/// (chunk id, embed hash) of every chunk whose embedded text has one of `hashes`.
pub fn chunks_with_hashes(conn: &Connection, hashes: &[[u8; 32]]) -> Result<Vec<(i64, [u8; 32])>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM chunks WHERE embed_hash = ?1")?;
    let mut out = Vec::new();
    for hash in hashes {
        let rows = stmt.query_map([&hash[..]], |r| r.get::<_, i64>(0))?;
        for id in rows {
            out.push((id?, *hash));
        }
    }
    Ok(out)
}

fn to_hash(bytes: &[u8]) -> [u8; 32] {
    let mut hash = [0u8; 32];
    let n = bytes.len().min(32);
    hash[..n].copy_from_slice(&bytes[..n]);
    hash
}
