//! Ranking notes: candidate chunks from each ranker, reciprocal rank fusion at
//! the note level, then hits with the best chunk's snippet.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::filter::Filters;
use super::keyword::{
    allowed_chunk_ids, keyword_chunks_among, keyword_chunks_found, KeywordChunks,
};
use super::meaning_fill::{fill_in_meaning, MeaningFill};
use super::second_thread::beside;
use super::snippet::make_snippet;
use super::terms::{TermSet, Terms};
use super::DateSource;
use super::{Hit, Mode, SnippetPart};
use crate::error::Result;
use crate::keyword_index::KeywordIndex;
use crate::note::is_markdown_ext;
use crate::store::{tables, StoredChunk};
use crate::text::reader_text;
use crate::vectors::VectorIndex;

/// The RRF constant: ranks beyond a few dozen barely differ.
pub const RRF_K: f64 = 60.0;

/// Vector-only notes must reach this share of the best similarity.
pub const RELATIVE_SIMILARITY_FLOOR: f32 = 0.5;

/// Chunks asked of each ranker for a page of up to a quarter as many notes.
const CANDIDATES: usize = 100;

/// Below this many allowed chunks, filtered vector search is an exact scan.
const EXACT_SCAN_MAX: usize = 4096;

/// A note's place in the fused ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedNote {
    /// Note id.
    pub note_id: i64,
    /// Best chunk.
    pub chunk_id: i64,
    /// Fused score (higher is better).
    pub score: f64,
    /// Rank among keyword results.
    pub keyword_rank: Option<usize>,
    /// Best similarity among the note's chunks.
    pub vector_similarity: Option<f32>,
    /// The note's other candidate chunks, best first: the snippet comes from
    /// one of them when the best chunk matched by its heading path alone and
    /// holds no query word in its text.
    pub other_chunks: Vec<i64>,
}

/// Other chunks of a note tried for a snippet with a highlight.
const SNIPPET_ALTERNATIVES: usize = 4;

/// What each ranker found for one query: the input of [`fuse`].
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    /// Keyword chunks, best first: (chunk id, note id, BM25; lower is better).
    pub keyword: Vec<(i64, i64, f64)>,
    /// Nearest chunks, best first: (chunk id, note id, cosine similarity).
    pub semantic: Vec<(i64, i64, f32)>,
    /// Share of the query's terms held by each note's first keyword chunk
    /// (hybrid only; empty when the query has fewer than two terms).
    pub coverage: HashMap<i64, f64>,
    /// The same coverage with terms weighted by IDF (fast keyword index only;
    /// empty otherwise).
    pub weighted_coverage: HashMap<i64, f64>,
    /// What the query itself looks like.
    pub shape: QueryShape,
    /// Candidate notes written in another script than the query, when the
    /// embedder knows English only (see [`crate::language::Script`]).
    pub foreign: HashSet<i64>,
}

/// What a query looks like, read from its own terms (no index look-up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryShape {
    /// Distinct terms searched for (words and phrase words).
    pub terms: usize,
    /// Whether it reads as a question (see [`Terms::question`]).
    pub question: bool,
    /// Whether it is one identifier (see [`Terms::literal`]).
    pub literal: bool,
}

/// Ranks notes for a query and returns the top `limit` as hits.
#[allow(clippy::too_many_arguments)]
pub fn rank_notes(
    conn: &Connection,
    fast_keywords: Option<&KeywordIndex>,
    vectors: Option<&VectorIndex>,
    query_vector: Option<&[f32]>,
    terms: &Terms,
    filters: &Filters,
    mode: Mode,
    limit: usize,
    keyword_weight: f32,
) -> Result<Vec<Hit>> {
    let found = candidates(
        conn,
        fast_keywords,
        vectors,
        query_vector,
        terms,
        filters,
        mode,
        limit,
        MeaningFill::default(),
    )?;
    let mut ranked = fuse(&found, mode, keyword_weight);
    ranked.truncate(limit);
    build_hits(conn, &ranked, &terms.matcher())
}

/// Candidate chunks from each ranker the mode uses, enough to fill `limit`
/// notes, with the keyword chunks' coverage of the query, and in hybrid mode
/// meaning filled in for keyword notes as `fill` says (the search passes
/// `MeaningFill::default()`; benches/fusion_lab.rs compares others).
#[allow(clippy::too_many_arguments)]
pub fn candidates(
    conn: &Connection,
    fast_keywords: Option<&KeywordIndex>,
    vectors: Option<&VectorIndex>,
    query_vector: Option<&[f32]>,
    terms: &Terms,
    filters: &Filters,
    mode: Mode,
    limit: usize,
    fill: MeaningFill,
) -> Result<Candidates> {
    // Chunks, not notes, come back from each ranker: ask for enough to fill `limit`
    // notes even when several chunks of a note rank together.
    let depth = (limit * 4).max(CANDIDATES);
    let nearest_to = match (mode, vectors, query_vector) {
        (Mode::Keyword, _, _) | (_, None, _) | (_, _, None) => None,
        (_, Some(index), Some(q)) => Some((index, q)),
    };
    // The chunks the filters allow, read once for both rankers.
    let fast_keywords = fast_keywords.filter(|_| mode != Mode::Semantic);
    let allowed: Option<Vec<i64>> =
        if filters.is_empty() || (nearest_to.is_none() && fast_keywords.is_none()) {
            None
        } else {
            Some(allowed_chunk_ids(conn, filters)?)
        };
    let allowed_set: Option<HashSet<i64>> = allowed.as_ref().map(|a| a.iter().copied().collect());
    let keywords = || -> Result<KeywordChunks> {
        if mode == Mode::Semantic {
            return Ok(KeywordChunks::default());
        }
        keyword_chunks_among(
            conn,
            fast_keywords,
            terms,
            filters,
            allowed_set.as_ref(),
            depth,
        )
    };
    let walk = |(index, q): (&VectorIndex, &[f32])| {
        nearest_chunks(index, q, allowed.as_deref(), allowed_set.as_ref(), depth)
    };
    let with_their_notes = |(index, _): (&VectorIndex, &[f32]), found: Result<Vec<(i64, f32)>>| {
        with_notes(conn, index, found?)
    };
    // The two rankers' searches (the HNSW walk and tantivy's, or FTS5's)
    // are most of a hybrid query's time and share nothing: one runs on a
    // second thread meanwhile. The SQLite connection stays on this thread,
    // so tantivy's search goes to the other one when it answers, and the
    // vector walk (and FTS5 on this thread) otherwise.
    let (found, semantic) = match (nearest_to, fast_keywords) {
        (Some(to), Some(fast)) if mode == Mode::Hybrid && !terms.is_empty() => {
            let (found, semantic) = beside(
                || fast.search(terms, allowed_set.as_ref(), depth),
                || with_their_notes(to, walk(to)),
            );
            let found = keyword_chunks_found(conn, found, terms, filters, depth);
            (found, semantic)
        }
        (Some(to), _) if mode == Mode::Hybrid => {
            let (nearest, found) = beside(|| walk(to), keywords);
            (found, with_their_notes(to, nearest))
        }
        (Some(to), _) => (keywords(), with_their_notes(to, walk(to))),
        (None, _) => (keywords(), Ok(Vec::new())),
    };
    let found = found?;
    let keyword = found.chunks;
    let mut semantic = semantic?;
    if let (Some((index, q)), Mode::Hybrid) = (nearest_to, mode) {
        fill_in_meaning(conn, index, q, &keyword, &mut semantic, fill)?;
    }
    let (coverage, weighted_coverage) = if mode == Mode::Hybrid && !semantic.is_empty() {
        // Each note's first keyword chunk.
        let mut seen = HashSet::new();
        let first_chunks: Vec<i64> = keyword
            .iter()
            .filter(|(_, note, _)| seen.insert(*note))
            .map(|(chunk, _, _)| *chunk)
            .collect();
        let of_first = |known: &HashMap<i64, f64>| -> HashMap<i64, f64> {
            first_chunks
                .iter()
                .filter_map(|id| known.get(id).map(|c| (*id, *c)))
                .collect()
        };
        match (&found.coverage, &found.weighted_coverage) {
            // The fast index read it from its postings.
            (Some(known), Some(weighted)) if terms.matcher().len() >= 2 => {
                (of_first(known), of_first(weighted))
            }
            (Some(_), _) => (HashMap::new(), HashMap::new()),
            (None, _) => (term_coverage(conn, &first_chunks, terms)?, HashMap::new()),
        }
    } else {
        (HashMap::new(), HashMap::new())
    };
    // An English-only model's similarity between an English query and a
    // Chinese page measures the identifiers they share more than meaning:
    // fusion needs to know which candidate notes are in another script.
    let foreign = match (nearest_to, terms.script) {
        (Some((index, _)), Some(own))
            if mode == Mode::Hybrid && crate::language::english_only(index.embedder_id()) =>
        {
            let notes: Vec<i64> = keyword
                .iter()
                .map(|c| c.1)
                .chain(semantic.iter().map(|c| c.1))
                .collect::<HashSet<i64>>()
                .into_iter()
                .collect();
            tables::scripts_of_notes(conn, &notes)?
                .into_iter()
                .filter(|(_, script)| script.is_some_and(|s| s != own))
                .map(|(note, _)| note)
                .collect()
        }
        _ => HashSet::new(),
    };
    Ok(Candidates {
        keyword,
        semantic,
        coverage,
        weighted_coverage,
        shape: QueryShape {
            terms: terms.matcher().len(),
            question: terms.question,
            literal: terms.literal,
        },
        foreign,
    })
}

/// The knobs of hybrid fusion, for measuring variants (benches/fusion_lab.rs);
/// searches use [`FusionParams::default`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusionParams {
    /// Reciprocal rank fusion's k.
    pub rrf_k: f64,
    /// Power of a note's coverage applied to its keyword credit.
    pub coverage_power: i32,
    /// Below this best coverage, the keyword list earns nothing at all.
    pub confidence_floor: f64,
    /// How a ranker's place becomes credit.
    pub combine: Combine,
    /// Multiplier of the keyword credit (the keyword weight's scale).
    pub keyword_scale: f64,
    /// Multiplier of the keyword credit when the query reads as a question.
    pub question_keyword_scale: f64,
    /// Share of a note's second keyword chunk's credit added to its best
    /// chunk's (0: the best chunk alone speaks for the note).
    pub second_keyword_chunk: f64,
    /// The same for the note's second nearest chunk.
    pub second_vector_chunk: f64,
    /// The second nearest chunk's share shrinks as keyword confidence grows
    /// (multiplied by 1 - confidence): a query whose words a note holds is
    /// answered by that note, one whose words no note holds by meaning.
    pub second_vector_by_doubt: bool,
    /// Power of similarity / best similarity on vector credit.
    pub similarity_power: i32,
    /// Coverage counts each query term by its IDF (when the fast keyword
    /// index could weigh them).
    pub idf_coverage: bool,
    /// Keyword confidence shrinks when the best keyword note holds fewer of
    /// the query's terms than this (0: off).
    pub min_terms_held: f64,
    /// Power of held / [`Self::min_terms_held`] on keyword confidence.
    pub held_power: i32,
    /// The rankers agree when one of the first this many keyword notes is
    /// among the first [`Self::agreement_vector_notes`] notes by meaning
    /// (0: the check is off).
    pub agreement_keyword_notes: usize,
    /// See [`Self::agreement_keyword_notes`].
    pub agreement_vector_notes: usize,
    /// Multiplier of keyword confidence when the rankers do not agree.
    pub disagreement_scale: f64,
    /// Keyword confidence grows with how far the best keyword note stands
    /// above the note at this keyword rank (0: off): 1 - BM25(rank) / best
    /// BM25, over [`Self::peak_full`] for full confidence.
    pub peak_rank: usize,
    /// See [`Self::peak_rank`].
    pub peak_full: f64,
    /// The same for meaning: vector credit grows with 1 - similarity(rank) /
    /// best similarity, full at [`Self::vector_peak_full`] (0: off).
    pub vector_peak_rank: usize,
    /// See [`Self::vector_peak_rank`].
    pub vector_peak_full: f64,
    /// Score credit for meaning stretched between the similarity of the
    /// note at this meaning rank (0) and the best (1), instead of
    /// similarity / best (0: off).
    pub vector_low_rank: usize,
    /// Multiplier of the meaning credit of a note written in another script
    /// than the query (1: off).
    pub foreign_vector_scale: f64,
    /// The same for keyword credit.
    pub foreign_keyword_scale: f64,
    /// A query typed as one identifier keeps its keyword confidence however
    /// flat the keyword list ([`Self::peak_rank`] does not apply).
    pub literal_skips_peak: bool,
}

/// How a ranker's place becomes credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// Reciprocal rank, weighted by the strength of the evidence.
    Ranks,
    /// The score itself over the list's best: BM25 / best BM25 and
    /// similarity / best similarity.
    Scores,
    /// Scores stretched over the candidate list: (x - last) / (best - last).
    MinMax,
}

impl Default for FusionParams {
    fn default() -> Self {
        FusionParams {
            rrf_k: RRF_K,
            coverage_power: 2,
            confidence_floor: 0.0,
            // Issue 12 (BENCHMARKS.md, "A default that wins everywhere"):
            // score credit, IDF-weighted coverage and two terms held met the
            // eval set's bar and gained 0.010 nDCG@10 on SciFact.
            combine: Combine::Scores,
            keyword_scale: 1.0,
            question_keyword_scale: 1.0,
            second_keyword_chunk: 0.0,
            second_vector_chunk: 0.0,
            second_vector_by_doubt: false,
            similarity_power: 1,
            idf_coverage: true,
            min_terms_held: 2.0,
            held_power: 1,
            agreement_keyword_notes: 0,
            agreement_vector_notes: 0,
            disagreement_scale: 1.0,
            // A flat keyword list (its fifth note within 35% of the best's
            // BM25) is shared words more than an answer: measured on every
            // set (BENCHMARKS.md, issue 12, seventh round), SciFact +0.004,
            // the others unchanged or up, from 0.2 to 0.4 alike.
            peak_rank: 5,
            peak_full: 0.35,
            vector_peak_rank: 0,
            vector_peak_full: 1.0,
            vector_low_rank: 0,
            // Issue 12, eleventh round (BENCHMARKS.md): on Helm's pages with
            // their Chinese and Japanese translations, an English query's
            // keyword and meaning credit for a translated copy of the page it
            // wants put the copy first (keyword queries 0.64 against 0.90 for
            // keywords alone). Counting such notes half in both rankers
            // brings the default to 0.90 / 0.625 (questions: meaning alone
            // 0.532); the English-only sets are unchanged.
            foreign_vector_scale: 0.5,
            foreign_keyword_scale: 0.5,
            // A flag or a dotted name is looked up, not described: however
            // many notes hold it, the keyword list stays trusted (Helm's
            // `--atomic` is in every command page that installs).
            literal_skips_peak: true,
        }
    }
}

/// Fuses the rankers' candidates into notes, best first (all of them; the
/// caller keeps the top).
pub fn fuse(found: &Candidates, mode: Mode, keyword_weight: f32) -> Vec<RankedNote> {
    fuse_with(found, mode, keyword_weight, &FusionParams::default())
}

/// [`fuse`] with explicit knobs.
pub fn fuse_with(
    found: &Candidates,
    mode: Mode,
    keyword_weight: f32,
    params: &FusionParams,
) -> Vec<RankedNote> {
    // A single mode hears its own ranker only.
    let keyword: &[(i64, i64, f64)] = if mode == Mode::Semantic {
        &[]
    } else {
        &found.keyword
    };
    let semantic: &[(i64, i64, f32)] = if mode == Mode::Keyword {
        &[]
    } else {
        &found.semantic
    };
    // Coverage only tempers keyword credit against meaning (hybrid).
    let none = HashMap::new();
    let coverage = if mode != Mode::Hybrid {
        &none
    } else if params.idf_coverage && !found.weighted_coverage.is_empty() {
        &found.weighted_coverage
    } else {
        &found.coverage
    };
    let rrf_k = params.rrf_k;
    // Every note is *somewhat* similar to any query: a note found only by
    // meaning must come close to the best match to be listed at all.
    let best_similarity = semantic.first().map_or(0.0, |c| c.2).max(f32::EPSILON);
    let floor = best_similarity * RELATIVE_SIMILARITY_FLOOR;
    let (w_kw, w_vec) = match mode {
        Mode::Keyword => (1.0, 0.0),
        Mode::Semantic => (0.0, 1.0),
        Mode::Hybrid => {
            let w = keyword_weight.clamp(0.0, 1.0) as f64;
            (2.0 * w, 2.0 * (1.0 - w))
        }
    };

    let mut notes: HashMap<i64, NoteScore> = HashMap::new();
    let mut note_rank = 0;
    for (chunk_rank, &(chunk_id, note_id, bm25)) in keyword.iter().enumerate() {
        let entry = notes.entry(note_id).or_default();
        if entry.keyword_rank.is_none() {
            note_rank += 1;
            entry.keyword_rank = Some(note_rank);
            entry.keyword_chunk = chunk_id;
            entry.bm25 = -bm25;
        } else if entry.second_keyword.is_none() {
            entry.second_keyword = Some((chunk_rank + 1, -bm25));
        }
        entry.add_chunk(chunk_id, w_kw / (rrf_k + chunk_rank as f64 + 1.0));
    }
    let mut note_rank = 0;
    for (chunk_rank, &(chunk_id, note_id, similarity)) in semantic.iter().enumerate() {
        let entry = notes.entry(note_id).or_default();
        if entry.vector_rank.is_none() {
            note_rank += 1;
            entry.vector_rank = Some(note_rank);
            entry.similarity = Some(similarity);
        } else if entry.second_vector.is_none() {
            entry.second_vector = Some((chunk_rank + 1, similarity));
        }
        entry.add_chunk(chunk_id, w_vec / (rrf_k + chunk_rank as f64 + 1.0));
    }

    // How much the keyword list as a whole can be trusted: when no note holds
    // most of the query's words (a paraphrased question), keyword ranks are
    // accidents of shared filler words and must not outvote meaning.
    // Square root: a long natural-language query (a scientific claim, a
    // question) whose best note holds half its words is still good keyword
    // evidence; one holding a fifth of them is mostly filler-word overlap.
    // Measured on both our eval set and SciFact (BENCHMARKS.md).
    let best_coverage = coverage.values().copied().fold(0.0, f64::max);
    let mut keyword_confidence = if coverage.is_empty() {
        1.0
    } else if best_coverage < params.confidence_floor {
        0.0
    } else {
        best_coverage.sqrt()
    };
    // One shared word of a many-word query is weak keyword evidence however
    // rare the word ("moments I'm thankful for" against a note that says
    // "moments" once): the best note must hold two of the query's terms for
    // the keyword list to be trusted in full.
    if params.min_terms_held > 0.0 && !coverage.is_empty() {
        let plain_best = found.coverage.values().copied().fold(0.0, f64::max);
        let held = (plain_best * found.shape.terms as f64).round();
        keyword_confidence *= (held / params.min_terms_held)
            .min(1.0)
            .powi(params.held_power);
    }
    if params.agreement_keyword_notes > 0 && mode == Mode::Hybrid && !semantic.is_empty() {
        let agree = notes.values().any(|s| {
            s.keyword_rank
                .is_some_and(|r| r <= params.agreement_keyword_notes)
                && s.vector_rank
                    .is_some_and(|r| r <= params.agreement_vector_notes)
        });
        if !agree {
            keyword_confidence *= params.disagreement_scale;
        }
    }
    if params.peak_rank > 0
        && mode == Mode::Hybrid
        && !semantic.is_empty()
        && !(params.literal_skips_peak && found.shape.literal)
    {
        let best = notes
            .values()
            .find(|s| s.keyword_rank == Some(1))
            .map_or(0.0, |s| s.bm25);
        let at_rank = notes
            .values()
            .find(|s| s.keyword_rank == Some(params.peak_rank))
            .map_or(0.0, |s| s.bm25);
        if best > 0.0 {
            let peak = 1.0 - at_rank / best;
            keyword_confidence *= (peak / params.peak_full).min(1.0);
        }
    }
    let mut vector_confidence = 1.0;
    if params.vector_peak_rank > 0 && mode == Mode::Hybrid && !keyword.is_empty() {
        let at_rank = notes
            .values()
            .find(|s| s.vector_rank == Some(params.vector_peak_rank))
            .and_then(|s| s.similarity)
            .unwrap_or(0.0) as f64;
        let peak = 1.0 - at_rank / best_similarity as f64;
        vector_confidence = (peak / params.vector_peak_full).min(1.0);
    }
    let second_vector = if params.second_vector_by_doubt {
        params.second_vector_chunk * (1.0 - keyword_confidence).max(0.0)
    } else {
        params.second_vector_chunk
    };
    if mode == Mode::Hybrid {
        keyword_confidence *= params.keyword_scale;
        if found.shape.question {
            keyword_confidence *= params.question_keyword_scale;
        }
    }
    // Each list's best and last scores, for score-based credit.
    let span = |first: Option<f64>, last: Option<f64>| {
        let best = first.unwrap_or(0.0);
        let low = match params.combine {
            Combine::MinMax => last.unwrap_or(0.0),
            _ => 0.0,
        };
        (low, (best - low).max(f64::EPSILON))
    };
    let kw_span = span(keyword.first().map(|c| -c.2), keyword.last().map(|c| -c.2));
    let mut vec_span = span(
        semantic.first().map(|c| c.2 as f64),
        semantic.last().map(|c| c.2 as f64),
    );
    if params.vector_low_rank > 0 && mode == Mode::Hybrid && params.combine == Combine::Scores {
        let low = notes
            .values()
            .filter(|s| s.vector_rank.is_some_and(|r| r <= params.vector_low_rank))
            .filter_map(|s| s.similarity)
            .fold(f32::MAX, f32::min) as f64;
        let best = best_similarity as f64;
        if low < best {
            vec_span = (low, best - low);
        }
    }
    let rrf = |rank: Option<usize>, w: f64| rank.map_or(0.0, |r| w / (rrf_k + r as f64));
    let mut ranked: Vec<RankedNote> = notes
        .into_iter()
        .filter(|(_, s)| s.keyword_rank.is_some() || s.similarity.is_some_and(|sim| sim >= floor))
        .map(|(note_id, s)| {
            // In hybrid mode a keyword rank earns credit by how much of the
            // query the note matched (squared: one shared word out of three is
            // weak evidence; "rest" in a recipe is no answer to "how do I get
            // better rest at night").
            let cov = coverage.get(&s.keyword_chunk).copied().unwrap_or(1.0);
            let score = match mode {
                Mode::Semantic => s.similarity.unwrap_or(0.0) as f64,
                _ => {
                    let (kw, vec) = match params.combine {
                        Combine::Ranks => {
                            // Ranks are weighted by the strength of their evidence: RRF's
                            // k = 60 makes neighbouring ranks nearly equal, so unweighted,
                            // any stray keyword credit would reorder close meaning ranks.
                            let relative = s
                                .similarity
                                .map_or(0.0, |sim| (sim / best_similarity).max(0.0) as f64)
                                .powi(params.similarity_power);
                            let relative2 = |sim: f32| {
                                ((sim / best_similarity).max(0.0) as f64)
                                    .powi(params.similarity_power)
                            };
                            (
                                rrf(s.keyword_rank, w_kw)
                                    + params.second_keyword_chunk
                                        * s.second_keyword.map_or(0.0, |(r, _)| rrf(Some(r), w_kw)),
                                relative * rrf(s.vector_rank, w_vec)
                                    + second_vector
                                        * s.second_vector.map_or(0.0, |(r, sim)| {
                                            relative2(sim) * rrf(Some(r), w_vec)
                                        }),
                            )
                        }
                        Combine::Scores | Combine::MinMax => {
                            let norm = |x: f64, (low, width): (f64, f64)| {
                                ((x - low) / width).clamp(0.0, 1.0)
                            };
                            let kw = s.keyword_rank.map_or(0.0, |_| norm(s.bm25, kw_span))
                                + params.second_keyword_chunk
                                    * s.second_keyword.map_or(0.0, |(_, b)| norm(b, kw_span));
                            let vec = s.similarity.map_or(0.0, |sim| {
                                norm(sim as f64, vec_span).powi(params.similarity_power)
                            }) + second_vector
                                * s.second_vector.map_or(0.0, |(_, sim)| {
                                    norm(sim as f64, vec_span).powi(params.similarity_power)
                                });
                            (w_kw * kw, w_vec * vec)
                        }
                    };
                    let (kw_scale, vec_scale) =
                        if mode == Mode::Hybrid && found.foreign.contains(&note_id) {
                            (params.foreign_keyword_scale, params.foreign_vector_scale)
                        } else {
                            (1.0, 1.0)
                        };
                    kw_scale * keyword_confidence * cov.powi(params.coverage_power) * kw
                        + vec_scale * vector_confidence * vec
                }
            };
            let mut by_score = s.chunks_by_score();
            let chunk_id = by_score.remove(0);
            by_score.truncate(SNIPPET_ALTERNATIVES);
            RankedNote {
                note_id,
                chunk_id,
                score,
                keyword_rank: s.keyword_rank,
                vector_similarity: s.similarity,
                other_chunks: by_score,
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(
                a.keyword_rank
                    .unwrap_or(usize::MAX)
                    .cmp(&b.keyword_rank.unwrap_or(usize::MAX)),
            )
            .then(a.note_id.cmp(&b.note_id))
    });
    ranked
}

/// Notes whose meaning is closest to note `note_id` (its mean chunk vector).
pub fn related_notes(
    conn: &Connection,
    vectors: &VectorIndex,
    note_id: i64,
    limit: usize,
) -> Result<Vec<Hit>> {
    let own: Vec<i64> = tables::chunk_ids_of_note(conn, note_id)?;
    let mut mean = vec![0f32; vectors.dimensions()];
    let mut n = 0;
    for id in &own {
        if let Some(v) = vectors.get(*id) {
            mean.iter_mut().zip(&v).for_each(|(m, x)| *m += x);
            n += 1;
        }
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    crate::embed::normalize(&mut mean);
    let own: HashSet<i64> = own.into_iter().collect();
    let found = vectors.search(&mean, (limit * 4).max(50) + own.len(), None)?;
    let ids: Vec<i64> = found.iter().map(|(id, _)| *id).collect();
    let notes = vectors.notes_of_chunks(conn, &ids)?;
    let mut seen = HashSet::new();
    let mut ranked = Vec::new();
    for (chunk_id, similarity) in found {
        if own.contains(&chunk_id) {
            continue;
        }
        let Some(&other) = notes.get(&chunk_id) else {
            continue;
        };
        if other != note_id && seen.insert(other) {
            ranked.push(RankedNote {
                note_id: other,
                chunk_id,
                score: similarity as f64,
                keyword_rank: None,
                vector_similarity: Some(similarity),
                other_chunks: Vec::new(),
            });
        }
        if ranked.len() == limit {
            break;
        }
    }
    build_hits(conn, &ranked, &TermSet::default())
}

#[derive(Default)]
struct NoteScore {
    keyword_rank: Option<usize>,
    keyword_chunk: i64,
    /// The first keyword chunk's BM25 (higher is better here).
    bm25: f64,
    /// The note's second keyword chunk: (chunk rank, BM25).
    second_keyword: Option<(usize, f64)>,
    vector_rank: Option<usize>,
    similarity: Option<f32>,
    /// The note's second nearest chunk: (chunk rank, similarity).
    second_vector: Option<(usize, f32)>,
    chunks: Vec<(i64, f64)>,
}

impl NoteScore {
    fn add_chunk(&mut self, chunk_id: i64, score: f64) {
        match self.chunks.iter_mut().find(|(id, _)| *id == chunk_id) {
            Some((_, s)) => *s += score,
            None => self.chunks.push((chunk_id, score)),
        }
    }

    /// The note's chunks by fused chunk score, best first (first seen wins
    /// ties); never empty (a note is only scored through one of its chunks).
    fn chunks_by_score(&self) -> Vec<i64> {
        let mut chunks = self.chunks.clone();
        chunks.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut ids: Vec<i64> = chunks.into_iter().map(|(id, _)| id).collect();
        if ids.is_empty() {
            ids.push(0);
        }
        ids
    }
}

/// Nearest chunks as (chunk id, similarity), honouring filters without
/// starving: small allowed sets are scanned exactly, larger ones use the
/// index's filtered search. Touches no SQLite (it runs beside the keyword
/// search).
fn nearest_chunks(
    index: &VectorIndex,
    query: &[f32],
    allowed: Option<&[i64]>,
    allowed_set: Option<&HashSet<i64>>,
    k: usize,
) -> Result<Vec<(i64, f32)>> {
    match (allowed, allowed_set) {
        (Some(allowed), _) if allowed.len() <= EXACT_SCAN_MAX => {
            let mut scored: Vec<(i64, f32)> = allowed
                .iter()
                .filter_map(|&id| {
                    let v = index.get(id)?;
                    Some((id, v.iter().zip(query).map(|(a, b)| a * b).sum()))
                })
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1));
            scored.truncate(k);
            Ok(scored)
        }
        (_, Some(allowed)) => index.search(query, k, Some(&|id| allowed.contains(&id))),
        _ => index.search(query, k, None),
    }
}

/// `found` as (chunk id, note id, similarity); vectors of chunks deleted
/// since the index was saved are dropped here. `index` (the one that found
/// them) remembers the notes of chunks it met before.
fn with_notes(
    conn: &Connection,
    index: &VectorIndex,
    found: Vec<(i64, f32)>,
) -> Result<Vec<(i64, i64, f32)>> {
    let ids: Vec<i64> = found.iter().map(|(id, _)| *id).collect();
    let notes = index.notes_of_chunks(conn, &ids)?;
    Ok(found
        .into_iter()
        .filter_map(|(chunk_id, similarity)| {
            notes
                .get(&chunk_id)
                .map(|&note_id| (chunk_id, note_id, similarity))
        })
        .collect())
}

/// Share of the query's terms found in each chunk (title, aliases, headings
/// and the body as a reader sees it), by the one word rule.
fn term_coverage(conn: &Connection, chunk_ids: &[i64], terms: &Terms) -> Result<HashMap<i64, f64>> {
    let matcher = terms.matcher();
    if matcher.len() < 2 {
        return Ok(HashMap::new());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT c.context, c.body, n.ext FROM chunks c JOIN notes n ON n.id = c.note_id
         WHERE c.id = ?1",
    )?;
    let mut out = HashMap::with_capacity(chunk_ids.len());
    for &id in chunk_ids {
        let row: Option<(String, String, String)> = stmt
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        if let Some((context, body, ext)) = row {
            let text = format!(
                "{context}\n{}",
                reader_text(&body, is_markdown_ext(&ext)).text
            );
            out.insert(id, matcher.coverage(&text));
        }
    }
    Ok(out)
}

pub(crate) fn build_hits(
    conn: &Connection,
    ranked: &[RankedNote],
    terms: &TermSet,
) -> Result<Vec<Hit>> {
    let load = |ids: &mut dyn Iterator<Item = i64>| -> Result<HashMap<i64, StoredChunk>> {
        let ids: Vec<i64> = ids.collect();
        Ok(tables::load_chunks(conn, &ids)?
            .into_iter()
            .map(|c| (c.id, c))
            .collect())
    };
    let best = load(&mut ranked.iter().map(|r| r.chunk_id))?;
    let highlighted = |parts: &[SnippetPart]| parts.iter().any(|p| p.highlight);
    let mut shown: Vec<Option<(i64, Snippet)>> = map_in_two(ranked, |r| {
        let c = best.get(&r.chunk_id)?;
        Some((c.id, snippet_and_line(c, terms)))
    });
    // A best chunk matched by its heading path alone (a one-line list item
    // under the heading) shows a chunk of the note that holds the word: those
    // notes' other chunks are read, the others' are not.
    let unlit = |s: &Option<(i64, Snippet)>| {
        !terms.is_empty()
            && s.as_ref()
                .is_some_and(|(_, (parts, _, _))| !highlighted(parts))
    };
    let others = if shown.iter().any(unlit) {
        load(
            &mut ranked
                .iter()
                .zip(&shown)
                .filter(|(_, s)| unlit(s))
                .flat_map(|(r, _)| r.other_chunks.iter().copied()),
        )?
    } else {
        HashMap::new()
    };
    for (r, s) in ranked.iter().zip(shown.iter_mut()) {
        if !unlit(s) {
            continue;
        }
        if let Some(other) = r
            .other_chunks
            .iter()
            .filter_map(|id| others.get(id))
            .map(|c| (c.id, snippet_and_line(c, terms)))
            .find(|(_, (parts, _, _))| highlighted(parts))
        {
            *s = Some(other);
        }
    }
    Ok(shown
        .into_iter()
        .zip(ranked)
        .filter_map(|(s, r)| {
            let (id, (snippet, line, page)) = s?;
            let c = best.get(&id).or_else(|| others.get(&id))?;
            Some(Hit {
                path: c.rel_path.clone(),
                abs_path: Path::new(&c.root)
                    .join(&c.rel_path)
                    .to_string_lossy()
                    .into_owned(),
                root: c.root.clone(),
                title: c.title.clone(),
                // The H1 is usually the title: don't say it twice.
                heading_path: match c.heading_path.split_first() {
                    Some((first, rest)) if *first == c.title => rest.to_vec(),
                    _ => c.heading_path.clone(),
                },
                line,
                page,
                snippet,
                score: r.score,
                keyword_rank: r.keyword_rank,
                vector_similarity: r.vector_similarity,
                tags: c.tags.clone(),
                aliases: c.aliases.clone(),
                modified: c.modified,
                note_date: c.note_date,
                date_source: DateSource::Modified,
                ext: c.ext.clone(),
                chunk_id: c.id,
            })
        })
        .collect())
}

/// `f` over `items` in order, the second half on the search's second
/// thread: a page's snippets (rendering and matching ten chunk bodies) are
/// the largest part of a search left once both rankers have answered.
fn map_in_two<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    if items.len() < 4 {
        return items.iter().map(f).collect();
    }
    let (first, second) = items.split_at(items.len() / 2);
    let (later, mut out) = beside(
        || second.iter().map(&f).collect::<Vec<U>>(),
        || first.iter().map(&f).collect::<Vec<U>>(),
    );
    out.extend(later);
    out
}

/// A hit's snippet, line and page (see [`snippet_and_line`]).
type Snippet = (Vec<SnippetPart>, usize, Option<u32>);

/// The snippet of a hit, the line and (documents) the page it points at. A panic while building them
/// (a bug; the panic hook logs it) leaves the hit with the chunk's opening
/// text, unhighlighted, at the chunk's first line: the other hits still come.
fn snippet_and_line(c: &StoredChunk, terms: &TermSet) -> Snippet {
    crate::panics::catch(
        || format!("building the snippet of {}", c.rel_path),
        || {
            let snippet = make_snippet(&c.body, is_markdown_ext(&c.ext), terms);
            let before = c.body.get(..snippet.first_match).unwrap_or("");
            let line = c.line_start + before.matches('\n').count();
            // Pages are separated by a form feed in the extracted text.
            let page = c.page.map(|p| p + before.matches('\x0c').count() as u32);
            // Nothing a reader would see (markup only): show the source text
            // rather than an empty snippet.
            let parts = if snippet.parts.iter().all(|p| p.text.trim().is_empty()) {
                plain_snippet(&c.body)
            } else {
                snippet.parts
            };
            (parts, line, page)
        },
    )
    .unwrap_or_else(|_| (plain_snippet(&c.body), c.line_start, c.page))
}

/// The opening of `body` on one line (about a snippet's length, cut between
/// characters).
fn plain_snippet(body: &str) -> Vec<SnippetPart> {
    const CHARS: usize = 200;
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut text: String = line.chars().take(CHARS).collect();
    if line.chars().nth(CHARS).is_some() {
        text.push('…');
    }
    vec![SnippetPart {
        text,
        highlight: false,
    }]
}
