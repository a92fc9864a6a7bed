//! Meaning for the notes keywords found: every chunk of the first keyword
//! notes that is not among the nearest chunks gets its own similarity to the
//! query, read from the vector index. A note found by meaning is credited
//! with its best chunk's similarity; without this, a note found by keywords
//! was credited with nothing when its chunks missed the nearest hundred, or
//! with its keyword chunk's similarity when another of its chunks is closer
//! (BENCHMARKS.md, issue 12, eighth round: SciFact +0.007 nDCG@10, every
//! other set unchanged).

use std::collections::HashSet;

use rusqlite::Connection;

use crate::embed::normalize;
use crate::error::Result;
use crate::vectors::VectorIndex;

/// Most chunks of one whole note looked up (a long note has hundreds).
const MOST_CHUNKS: usize = 256;

/// Which keyword notes get meaning filled in, from the first keyword note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeaningFill {
    /// Notes whose keyword chunks get their similarity.
    pub keyword_notes: usize,
    /// Notes whose every chunk does (one index seek each).
    pub whole_notes: usize,
}

impl MeaningFill {
    /// No filling: each ranker's candidates as found.
    pub const NONE: MeaningFill = MeaningFill {
        keyword_notes: 0,
        whole_notes: 0,
    };
}

impl Default for MeaningFill {
    fn default() -> Self {
        // The first five keyword notes gain all that every keyword note
        // does (BENCHMARKS.md, issue 12, eighth round), for a few dozen
        // look-ups instead of a hundred.
        MeaningFill {
            keyword_notes: 5,
            whole_notes: 5,
        }
    }
}

/// Adds to `semantic` (chunk, note, similarity; best first on return) the
/// chunks of `keyword` (chunk, note, BM25) it lacks and the chunks of the
/// first keyword notes, as `fill` says, with their similarity to `query`.
/// Chunks without a vector (not embedded yet) are left out.
pub fn fill_in_meaning(
    conn: &Connection,
    index: &VectorIndex,
    query: &[f32],
    keyword: &[(i64, i64, f64)],
    semantic: &mut Vec<(i64, i64, f32)>,
    fill: MeaningFill,
) -> Result<()> {
    if keyword.is_empty() || fill == MeaningFill::NONE {
        return Ok(());
    }
    let mut known: HashSet<i64> = semantic.iter().map(|s| s.0).collect();
    // Cosine, as the index's own searches give it: stored vectors are
    // rounded to i8, so not exactly of length 1.
    let mut query = query.to_vec();
    normalize(&mut query);
    let mut add = |chunk: i64, note: i64, semantic: &mut Vec<(i64, i64, f32)>| {
        if known.insert(chunk) {
            if let Some(mut v) = index.get(chunk) {
                normalize(&mut v);
                let cosine = v.iter().zip(&query).map(|(a, b)| a * b).sum();
                semantic.push((chunk, note, cosine));
            }
        }
    };
    let mut notes = HashSet::new();
    for &(chunk, note, _) in keyword {
        if notes.len() < fill.keyword_notes || notes.contains(&note) {
            notes.insert(note);
            add(chunk, note, semantic);
        }
    }
    let mut notes = HashSet::new();
    let mut stmt = conn.prepare_cached("SELECT id FROM chunks WHERE note_id = ?1")?;
    for note in keyword
        .iter()
        .map(|k| k.1)
        .filter(|n| notes.insert(*n))
        .take(fill.whole_notes)
    {
        let chunks = stmt
            .query_map([note], |r| r.get::<_, i64>(0))?
            .take(MOST_CHUNKS)
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        for chunk in chunks {
            add(chunk, note, semantic);
        }
    }
    semantic.sort_by(|a, b| b.2.total_cmp(&a.2));
    Ok(())
}
