//! Exports for vector databases, so a team can serve the index without a
//! home-made server: Qdrant points and Chroma records, one batch per line,
//! each line the body of one upload call (see docs/archive-format.md).

use std::io::Write;

use rusqlite::Connection;
use serde_json::{json, Map, Value};

use super::export::{ArchiveProgress, LineWriter};
use crate::error::{Error, ErrorKind, Result};
use crate::store::decode_cached;

/// Points or records per line: well under Chroma's largest batch (5461) and
/// a Qdrant request of a few MB.
pub const BATCH: usize = 256;

/// Which vector database the export is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerFormat {
    /// `{"points": [{"id", "vector", "payload"}]}` per line: the body of
    /// Qdrant's `PUT /collections/{name}/points`.
    Qdrant,
    /// `{"ids", "embeddings", "documents", "metadatas"}` per line: the
    /// arguments of Chroma's `collection.add`.
    Chroma,
}

/// One chunk with what a search hit shows.
struct Record {
    id: i64,
    vector: Vec<f32>,
    text: String,
    root: String,
    path: String,
    title: String,
    tags: Vec<String>,
    heading_path: Vec<String>,
    line_start: i64,
    line_end: i64,
    page: Option<i64>,
}

/// Writes every chunk that has a vector of `embedder` in `format`; returns
/// the points written.
pub(super) fn write_peer<W: Write>(
    conn: &Connection,
    embedder: &str,
    format: PeerFormat,
    out: W,
    progress: &dyn Fn(&ArchiveProgress),
) -> Result<(W, u64)> {
    let total: i64 = conn.query_row(
        "SELECT count(*) FROM chunks c JOIN embed_cache e
           ON e.embedder = ?1 AND e.hash = c.embed_hash",
        [embedder],
        |r| r.get(0),
    )?;
    if total == 0 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("no chunk has a vector of {embedder}: index the folders first"),
        ));
    }
    let batches = (total as u64).div_ceil(BATCH as u64);
    let mut w = LineWriter::new(out, batches, progress);
    let mut stmt = conn.prepare(
        "SELECT c.id, e.vector, c.body, r.path, n.rel_path, n.title, n.tags, c.heading_path,
                c.line_start, c.line_end, c.page
         FROM chunks c
         JOIN embed_cache e ON e.embedder = ?1 AND e.hash = c.embed_hash
         JOIN notes n ON n.id = c.note_id JOIN roots r ON r.id = n.root_id
         ORDER BY c.id",
    )?;
    let mut rows = stmt.query([embedder])?;
    let mut batch = Vec::with_capacity(BATCH);
    let mut written = 0u64;
    loop {
        let row = rows.next()?;
        if let Some(r) = row {
            batch.push(Record {
                id: r.get(0)?,
                vector: decode_cached(r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?),
                text: r.get(2)?,
                root: r.get(3)?,
                path: r.get(4)?,
                title: r.get(5)?,
                tags: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or_default(),
                heading_path: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or_default(),
                line_start: r.get(8)?,
                line_end: r.get(9)?,
                page: r.get(10)?,
            });
        }
        let last = row.is_none();
        if batch.len() == BATCH || (last && !batch.is_empty()) {
            written += batch.len() as u64;
            w.put(&match format {
                PeerFormat::Qdrant => qdrant_line(&batch),
                PeerFormat::Chroma => chroma_line(&batch),
            })?;
            batch.clear();
        }
        if last {
            break;
        }
    }
    Ok((w.finish()?, written))
}

fn qdrant_line(batch: &[Record]) -> Value {
    let points: Vec<Value> = batch
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "vector": r.vector,
                "payload": {
                    "root": r.root,
                    "path": r.path,
                    "title": r.title,
                    "tags": r.tags,
                    "heading_path": r.heading_path,
                    "line_start": r.line_start,
                    "line_end": r.line_end,
                    "page": r.page,
                    "text": r.text,
                },
            })
        })
        .collect();
    json!({ "points": points })
}

fn chroma_line(batch: &[Record]) -> Value {
    let metadatas: Vec<Value> = batch
        .iter()
        .map(|r| {
            // Chroma metadata values are scalars (no lists, no null).
            let mut m = Map::new();
            m.insert("root".into(), r.root.clone().into());
            m.insert("path".into(), r.path.clone().into());
            m.insert("title".into(), r.title.clone().into());
            m.insert("tags".into(), r.tags.join(",").into());
            m.insert("heading_path".into(), r.heading_path.join(" > ").into());
            m.insert("line_start".into(), r.line_start.into());
            m.insert("line_end".into(), r.line_end.into());
            if let Some(page) = r.page {
                m.insert("page".into(), page.into());
            }
            Value::Object(m)
        })
        .collect();
    json!({
        "ids": batch.iter().map(|r| r.id.to_string()).collect::<Vec<_>>(),
        "embeddings": batch.iter().map(|r| &r.vector).collect::<Vec<_>>(),
        "documents": batch.iter().map(|r| &r.text).collect::<Vec<_>>(),
        "metadatas": metadatas,
    })
}
