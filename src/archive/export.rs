//! Writing a Sift archive from one consistent snapshot of the store, row by
//! row: memory stays flat whatever the size of the index.

use std::io::Write;
use std::path::Path;

use rusqlite::Connection;

use super::format::*;
use crate::config::Settings;
use crate::error::{Error, ErrorKind, Result};

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportReport {
    /// Lines of each kind.
    pub counts: Counts,
    /// Embedders whose vectors were written.
    pub embedders: Vec<EmbedderInfo>,
    /// Size of the file.
    pub bytes: u64,
}

/// Progress of an export or import: lines done of lines in all.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ArchiveProgress {
    /// Lines written or read.
    pub done: u64,
    /// Lines in the archive.
    pub total: u64,
}

/// Lines between two progress reports.
pub(super) const PROGRESS_EVERY: u64 = 2_000;

/// Counts one line per call and reports progress now and then.
pub(super) struct LineWriter<'a, W: Write> {
    out: W,
    pub(super) lines: u64,
    total: u64,
    progress: &'a dyn Fn(&ArchiveProgress),
}

impl<'a, W: Write> LineWriter<'a, W> {
    pub(super) fn new(out: W, total: u64, progress: &'a dyn Fn(&ArchiveProgress)) -> Self {
        LineWriter {
            out,
            lines: 0,
            total,
            progress,
        }
    }

    pub(super) fn put<T: serde::Serialize>(&mut self, line: &T) -> Result<()> {
        serde_json::to_writer(&mut self.out, line)
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot write the archive: {e}")))?;
        self.out.write_all(b"\n").map_err(write_err)?;
        self.lines += 1;
        if self.lines.is_multiple_of(PROGRESS_EVERY) {
            (self.progress)(&ArchiveProgress {
                done: self.lines,
                total: self.total,
            });
        }
        Ok(())
    }

    pub(super) fn finish(self) -> Result<W> {
        (self.progress)(&ArchiveProgress {
            done: self.lines,
            total: self.total,
        });
        Ok(self.out)
    }
}

pub(super) fn write_err(e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("cannot write the archive: {e}"))
}

/// Embedders with vectors some chunk uses: (id, dimensions, vectors).
pub(super) fn used_embedders(conn: &Connection) -> Result<Vec<EmbedderInfo>> {
    let mut stmt = conn.prepare(
        // A cached vector is f16 after a tag byte (odd length) or, from an
        // older Sift, f32 (see store::cache).
        "SELECT e.embedder,
                max(CASE WHEN length(e.vector) % 2 = 1 THEN (length(e.vector) - 1) / 2
                         ELSE length(e.vector) / 4 END),
                count(*) FROM embed_cache e
         WHERE EXISTS (SELECT 1 FROM chunks c WHERE c.embed_hash = e.hash)
         GROUP BY e.embedder ORDER BY e.embedder",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(EmbedderInfo {
            id: r.get(0)?,
            dimensions: r.get::<_, i64>(1)? as usize,
            vectors: r.get::<_, i64>(2)? as u64,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn count(conn: &Connection, sql: &str) -> Result<u64> {
    Ok(conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
}

/// Writes the whole archive of the store behind `conn` (inside one read
/// transaction the caller opened) to `out`.
pub(super) fn write_archive<W: Write>(
    conn: &Connection,
    data_dir: &Path,
    settings: &Settings,
    active_embedder: Option<&str>,
    out: W,
    progress: &dyn Fn(&ArchiveProgress),
) -> Result<(W, Counts, Vec<EmbedderInfo>)> {
    let embedders = used_embedders(conn)?;
    let ledger_exists = crate::cost::UsageLedger::exists(conn)?;
    let counts = Counts {
        roots: count(conn, "SELECT count(*) FROM roots")?,
        notes: count(conn, "SELECT count(*) FROM notes")?,
        chunks: count(conn, "SELECT count(*) FROM chunks")?,
        vectors: embedders.iter().map(|e| e.vectors).sum(),
        ledger: if ledger_exists {
            count(conn, "SELECT count(*) FROM usage_ledger")?
        } else {
            0
        },
    };
    let prices = read_json(&data_dir.join(crate::cost::prices::PRICES_FILE))?;
    let total = 3
        + u64::from(prices.is_some())
        + counts.roots
        + counts.notes
        + counts.chunks
        + counts.vectors
        + counts.ledger;
    let mut w = LineWriter::new(out, total, progress);
    w.put(&Line::Header(Header {
        format: ARCHIVE_FORMAT.into(),
        version: ARCHIVE_VERSION,
        sift_version: env!("CARGO_PKG_VERSION").into(),
        created: chrono::Utc::now().to_rfc3339(),
        active_embedder: active_embedder.map(String::from),
        embedders: embedders.clone(),
        vector_encoding: VECTOR_ENCODING.into(),
        counts,
    }))?;
    w.put(&Line::Settings {
        settings: serde_json::to_value(settings)
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?,
    })?;
    if let Some(prices) = prices {
        w.put(&Line::Prices { prices })?;
    }
    write_roots(conn, &mut w)?;
    write_notes(conn, &mut w)?;
    write_chunks(conn, &mut w)?;
    write_vectors(conn, &mut w)?;
    if ledger_exists {
        write_ledger(conn, &mut w)?;
    }
    let lines = w.lines;
    w.put(&Line::End(EndLine { lines }))?;
    Ok((w.finish()?, counts, embedders))
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>> {
    match crate::lock::read_if_exists(path)? {
        // A damaged file is left behind (Sift itself ignores it with a warning).
        Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        None => Ok(None),
    }
}

fn write_roots<W: Write>(conn: &Connection, w: &mut LineWriter<W>) -> Result<()> {
    let mut stmt = conn.prepare("SELECT id, path FROM roots ORDER BY id")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        w.put(&Line::Root(RootLine {
            id: r.get(0)?,
            path: r.get(1)?,
        }))?;
    }
    Ok(())
}

fn write_notes<W: Write>(conn: &Connection, w: &mut LineWriter<W>) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT id, root_id, rel_path, ext, size, mtime_ns, content_hash, title, tags,
                aliases, note_date, state, reason, indexed_at
         FROM notes ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        w.put(&Line::Note(NoteLine {
            id: r.get(0)?,
            root: r.get(1)?,
            path: r.get(2)?,
            ext: r.get(3)?,
            size: r.get::<_, i64>(4)? as u64,
            mtime_ns: r.get(5)?,
            content_hash: r.get::<_, Option<Vec<u8>>>(6)?.map(hex::encode),
            title: r.get(7)?,
            tags: serde_json::from_str(&r.get::<_, String>(8)?).unwrap_or_default(),
            aliases: serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or_default(),
            date: r.get(10)?,
            state: r.get(11)?,
            reason: r.get(12)?,
            indexed_at: r.get(13)?,
        }))?;
    }
    Ok(())
}

fn write_chunks<W: Write>(conn: &Connection, w: &mut LineWriter<W>) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT id, note_id, seq, byte_start, byte_end, line_start, line_end, page,
                heading_path, context, embed_prefix, body, embed_hash
         FROM chunks ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        w.put(&Line::Chunk(ChunkLine {
            id: r.get(0)?,
            note: r.get(1)?,
            seq: r.get(2)?,
            byte_start: r.get(3)?,
            byte_end: r.get(4)?,
            line_start: r.get(5)?,
            line_end: r.get(6)?,
            page: r.get(7)?,
            heading_path: serde_json::from_str(&r.get::<_, String>(8)?).unwrap_or_default(),
            context: r.get(9)?,
            embed_prefix: r.get(10)?,
            body: r.get(11)?,
            embed_hash: hex::encode(r.get::<_, Vec<u8>>(12)?),
        }))?;
    }
    Ok(())
}

fn write_vectors<W: Write>(conn: &Connection, w: &mut LineWriter<W>) -> Result<()> {
    // Only vectors some chunk uses: the rest is cache the archive need not carry.
    let mut stmt = conn.prepare(
        "SELECT e.embedder, e.hash, e.vector FROM embed_cache e
         WHERE EXISTS (SELECT 1 FROM chunks c WHERE c.embed_hash = e.hash)
         ORDER BY e.embedder, e.hash",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let bytes = r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
        // The archive's encoding stays f32 whatever the cache keeps.
        let vector = crate::store::decode_cached(bytes);
        w.put(&Line::Vector(VectorLine {
            embedder: r.get(0)?,
            hash: hex::encode(r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?),
            vector: encode_vector(&vector),
        }))?;
    }
    Ok(())
}

fn write_ledger<W: Write>(conn: &Connection, w: &mut LineWriter<W>) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT day, provider, model, requests, tokens_sent, dollars, cache_hits,
                cache_hit_tokens, dollars_saved
         FROM usage_ledger ORDER BY day, provider, model",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        w.put(&Line::Ledger(LedgerLine {
            day: r.get(0)?,
            provider: r.get(1)?,
            model: r.get(2)?,
            requests: r.get::<_, i64>(3)? as u64,
            tokens_sent: r.get::<_, i64>(4)? as u64,
            dollars: r.get(5)?,
            cache_hits: r.get::<_, i64>(6)? as u64,
            cache_hit_tokens: r.get::<_, i64>(7)? as u64,
            dollars_saved: r.get(8)?,
        }))?;
    }
    Ok(())
}
