//! "Notes linking here": the notes whose links (stored at index time, see
//! [`crate::links`]) lead to a note, each shown at the passage holding its
//! first link to it.

use rusqlite::{params_from_iter, types::Value, Connection};

use super::fusion::{build_hits, RankedNote};
use super::Hit;
use crate::error::Result;
use crate::search::terms::TermSet;

/// Notes of the same indexed folder linking to note `note_id` (at `rel_path`),
/// most links first, then by path.
pub fn backlinks(
    conn: &Connection,
    note_id: i64,
    rel_path: &str,
    limit: usize,
) -> Result<Vec<Hit>> {
    let keys = crate::links::keys_of(rel_path);
    let full = keys[0].clone();
    let mut params: Vec<Value> = vec![Value::Integer(note_id), Value::Text(full)];
    let marks: Vec<String> = keys
        .into_iter()
        .map(|k| {
            params.push(Value::Text(k));
            format!("?{}", params.len())
        })
        .collect();
    params.push(Value::Integer(limit as i64));
    let sql = format!(
        "SELECT l.note_id, min(l.byte_offset), count(*) AS links
         FROM note_links l JOIN notes n ON n.id = l.note_id
         WHERE n.state = 'indexed' AND l.note_id != ?1
           AND n.root_id = (SELECT root_id FROM notes WHERE id = ?1)
           AND ((l.exact = 1 AND l.target = ?2) OR (l.exact = 0 AND l.target IN ({})))
         GROUP BY l.note_id
         ORDER BY links DESC, n.rel_path
         LIMIT ?{}",
        marks.join(", "),
        params.len()
    );
    let mut stmt = conn.prepare(&sql)?;
    let linkers: Vec<(i64, i64, i64)> = stmt
        .query_map(params_from_iter(params), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut ranked = Vec::with_capacity(linkers.len());
    let mut chunk_at = conn.prepare_cached(
        "SELECT id FROM chunks WHERE note_id = ?1
         ORDER BY (byte_start <= ?2 AND ?2 < byte_end) DESC, abs(byte_start - ?2), seq LIMIT 1",
    )?;
    for (linker, offset, links) in linkers {
        let chunk: Option<i64> = chunk_at
            .query_row(rusqlite::params![linker, offset], |r| r.get(0))
            .ok();
        // A note whose only text is the link may hold no chunk: nothing to show.
        let Some(chunk_id) = chunk else { continue };
        ranked.push(RankedNote {
            note_id: linker,
            chunk_id,
            score: links as f64,
            keyword_rank: None,
            vector_similarity: None,
            other_chunks: Vec::new(),
        });
    }
    build_hits(conn, &ranked, &TermSet::default())
}
