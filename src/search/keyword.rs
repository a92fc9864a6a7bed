//! Keyword search with BM25 ranking: the fast keyword index when it holds
//! what the store holds, SQLite's FTS5 table otherwise (same terms, same
//! ranking function).

use std::collections::{HashMap, HashSet};

use rusqlite::types::Value;
use rusqlite::Connection;

use super::filter::Filters;
use super::terms::Terms;
use crate::error::Result;
use crate::keyword_index::{KeywordIndex, KeywordMatch};
use crate::store::tables;

/// Weight of the title/heading column relative to the body in BM25.
const CONTEXT_WEIGHT: f64 = 2.0;

/// Chunks found by keywords, best first, and (from the fast index) the share
/// of the query's terms each holds.
#[derive(Debug, Default)]
pub struct KeywordChunks {
    /// (chunk id, note id, bm25 score; lower is better).
    pub chunks: Vec<(i64, i64, f64)>,
    /// Coverage by chunk id, when the engine could read it cheaply.
    pub coverage: Option<HashMap<i64, f64>>,
    /// Coverage weighted by each term's IDF, by chunk id (fast index only).
    pub weighted_coverage: Option<HashMap<i64, f64>>,
}

/// The best `limit` chunks for `terms`, from `fast` when given (the caller
/// checked it is current), else from FTS5. Filters apply inside the query, so
/// they never starve results.
pub fn keyword_chunks(
    conn: &Connection,
    fast: Option<&KeywordIndex>,
    terms: &Terms,
    filters: &Filters,
    limit: usize,
) -> Result<KeywordChunks> {
    if terms.is_empty() {
        return Ok(KeywordChunks::default());
    }
    let allowed: Option<HashSet<i64>> = match fast {
        Some(_) if !filters.is_empty() => {
            Some(allowed_chunk_ids(conn, filters)?.into_iter().collect())
        }
        _ => None,
    };
    keyword_chunks_among(conn, fast, terms, filters, allowed.as_ref(), limit)
}

/// [`keyword_chunks`] with the chunks `filters` allow already read (`allowed`:
/// None when there are no filters).
pub(crate) fn keyword_chunks_among(
    conn: &Connection,
    fast: Option<&KeywordIndex>,
    terms: &Terms,
    filters: &Filters,
    allowed: Option<&HashSet<i64>>,
    limit: usize,
) -> Result<KeywordChunks> {
    if terms.is_empty() {
        return Ok(KeywordChunks::default());
    }
    let Some(fast) = fast else {
        return Ok(KeywordChunks {
            chunks: fts_chunks(conn, terms, filters, limit)?,
            ..KeywordChunks::default()
        });
    };
    keyword_chunks_found(
        conn,
        fast.search(terms, allowed, limit),
        terms,
        filters,
        limit,
    )
}

/// [`keyword_chunks_among`] once the fast index has searched (`found`; a
/// hybrid search runs that on another thread): its title boosts, or FTS5's
/// answer if the fast index failed.
pub(crate) fn keyword_chunks_found(
    conn: &Connection,
    found: Result<Vec<KeywordMatch>>,
    terms: &Terms,
    filters: &Filters,
    limit: usize,
) -> Result<KeywordChunks> {
    let found = match found {
        Ok(found) => found,
        // Damaged on disk, or its files went away under a reload: SQLite
        // answers, and the writer's next catch-up starts it afresh.
        Err(e) => {
            eprintln!("sift: warning: keyword index failed, using SQLite's: {e}");
            return Ok(KeywordChunks {
                chunks: fts_chunks(conn, terms, filters, limit)?,
                ..KeywordChunks::default()
            });
        }
    };
    let known: HashMap<i64, TitleEvidence> = found
        .iter()
        .map(|m| {
            let evidence = TitleEvidence {
                terms_held: m.terms_held,
                title_match: m.title_match,
            };
            (m.chunk_id, evidence)
        })
        .collect();
    let coverage = found.iter().map(|m| (m.chunk_id, m.coverage)).collect();
    let weighted_coverage = found
        .iter()
        .map(|m| (m.chunk_id, m.weighted_coverage))
        .collect();
    let mut chunks: Vec<(i64, i64, f64)> = found
        .into_iter()
        .map(|m| (m.chunk_id, m.note_id, m.score))
        .collect();
    boost_title_matches(conn, terms, &mut chunks, Some(&known))?;
    Ok(KeywordChunks {
        chunks,
        coverage: Some(coverage),
        weighted_coverage: Some(weighted_coverage),
    })
}

/// The best `limit` chunks by SQLite's FTS5 table.
fn fts_chunks(
    conn: &Connection,
    terms: &Terms,
    filters: &Filters,
    limit: usize,
) -> Result<Vec<(i64, i64, f64)>> {
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
    let mut chunks: Vec<(i64, i64, f64)> = rows.collect::<rusqlite::Result<_>>()?;
    boost_title_matches(conn, terms, &mut chunks, None)?;
    Ok(chunks)
}

/// Title overlap (Jaccard of terms) from which a title match is boosted.
/// Measured on SciFact: boosting every overlap cost 0.001 nDCG@10.
const TITLE_MATCH_MIN: f64 = 0.5;

/// What the fast index knows of a found chunk's note title.
struct TitleEvidence {
    /// Searched terms the chunk holds (its context holds the title).
    terms_held: usize,
    /// The title's match, None when the note has aliases.
    title_match: Option<f64>,
}

/// Multiplies each chunk's BM25 score by one plus how well its note's title
/// (or best alias) matches the whole query: a search for a note's exact title
/// finds that note first, not the pages that repeat its words most. BM25 in
/// FTS5 is negative (lower is better), so a larger magnitude ranks higher.
/// `known`: what the fast index read of each chunk's title; SQLite's titles
/// are read only for notes it cannot answer for (aliases) and that could
/// still reach a boost.
fn boost_title_matches(
    conn: &Connection,
    terms: &Terms,
    chunks: &mut [(i64, i64, f64)],
    known: Option<&HashMap<i64, TitleEvidence>>,
) -> Result<()> {
    let ceiling = terms.title_match_ceiling();
    let evidence = |chunk_id: &i64| known.and_then(|k| k.get(chunk_id));
    let needs_reading = |chunk_id: &i64| match evidence(chunk_id) {
        None => true,
        Some(TitleEvidence {
            title_match: Some(_),
            ..
        }) => false,
        Some(e) => ceiling(e.terms_held) >= TITLE_MATCH_MIN,
    };
    // One snapshot of the titles still to read; a note removed by another
    // process since the keyword query gets no boost from them.
    let mut notes: Vec<i64> = chunks
        .iter()
        .filter(|c| needs_reading(&c.0))
        .map(|c| c.1)
        .collect();
    notes.sort_unstable();
    notes.dedup();
    let titles = if notes.is_empty() {
        HashMap::new()
    } else {
        tables::titles_of_notes(conn, &notes)?
    };
    let mut by_note: HashMap<i64, f64> = HashMap::new();
    let mut boosted = false;
    for (chunk_id, note_id, score) in chunks.iter_mut() {
        let boost = match evidence(chunk_id).and_then(|e| e.title_match) {
            Some(known) => known,
            None => *by_note.entry(*note_id).or_insert_with(|| {
                let Some((title, aliases)) = titles.get(note_id) else {
                    return 0.0;
                };
                let aliases: Vec<String> = serde_json::from_str(aliases).unwrap_or_default();
                std::iter::once(title.as_str())
                    .chain(aliases.iter().map(String::as_str))
                    .map(|t| terms.title_match(t))
                    .fold(0.0, f64::max)
            }),
        };
        // Partial overlaps are already counted by BM25 through the context
        // column; only a query that is (nearly) the title earns more.
        if boost >= TITLE_MATCH_MIN {
            *score *= 1.0 + boost;
            boosted = true;
        }
    }
    if boosted || known.is_none() {
        chunks.sort_by(|a, b| a.2.total_cmp(&b.2));
    }
    Ok(())
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
