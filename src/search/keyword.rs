//! Keyword search: SQLite FTS5 with BM25 ranking.

use rusqlite::types::Value;
use rusqlite::Connection;

use super::filter::Filters;
use super::terms::Terms;
use crate::error::Result;

/// Weight of the title/heading column relative to the body in BM25.
const CONTEXT_WEIGHT: f64 = 2.0;

/// The best `limit` chunks for `terms` as (chunk id, note id, bm25 score; lower is
/// better), best first. Filters apply inside the query, so they never starve results.
pub fn keyword_chunks(
    conn: &Connection,
    terms: &Terms,
    filters: &Filters,
    limit: usize,
) -> Result<Vec<(i64, i64, f64)>> {
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let (filter_sql, filter_params) = filters.sql();
    let mut params: Vec<Value> = vec![Value::Text(terms.fts_query())];
    // Filter params are numbered from ?1 in Filters::sql; shift them past ours.
    let filter_sql = shift_params(&filter_sql, 2);
    params.extend(filter_params);
    params.push(Value::Integer(limit as i64));
    let limit_param = params.len();
    let join_notes = if filters.is_empty() {
        String::new()
    } else {
        "JOIN notes n ON n.id = c.note_id".to_string()
    };
    let sql = format!(
        "SELECT c.id, c.note_id, bm25(chunks_fts, {CONTEXT_WEIGHT}, 1.0) AS score
         FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid {join_notes}
         WHERE chunks_fts MATCH ?1 {filter_sql}
         ORDER BY score LIMIT ?{limit_param}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Renumbers `?N` placeholders in `sql` to start at `first`.
pub(crate) fn shift_params(sql: &str, first: usize) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '?' {
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            if let Ok(n) = digits.parse::<usize>() {
                out.push_str(&(n + first - 1).to_string());
            }
        }
    }
    out
}

/// Chunk ids allowed by `filters` (for filtered vector search).
pub fn allowed_chunk_ids(conn: &Connection, filters: &Filters) -> Result<Vec<i64>> {
    let (filter_sql, params) = filters.sql();
    let sql = format!(
        "SELECT c.id FROM chunks c JOIN notes n ON n.id = c.note_id WHERE 1 = 1 {filter_sql}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn shift_params_renumbers() {
        assert_eq!(
            super::shift_params("a = ?1 AND b = ?2", 3),
            "a = ?3 AND b = ?4"
        );
    }
}
