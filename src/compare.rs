//! Comparing the embedder in use with another provider on the user's own
//! notes, before switching: a sample of chunks and a few searches (by default
//! the latest ones kept in [`crate::search_history`]).
//!
//! 1. [`plan`] picks the sample and says what the comparison would cost with
//!    the other provider (its chunks not yet in the embedding cache, and the
//!    queries), and what switching the whole index would cost. Nothing is sent.
//! 2. [`run`], once the user confirmed, embeds the sample with the other
//!    provider (under the monthly cap, booked in the cost ledger, kept in the
//!    embedding cache so a later switch does not pay for it again), runs each
//!    search over the sample with both embedders and reports the notes each
//!    ranks first side by side and their overlap. Settings are not touched:
//!    switching is a separate step.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::cost::{Estimate, LedgerEntry, RunAccounting};
use crate::embed::{Embedder, Outgoing, RunControl};
use crate::error::{Error, ErrorKind, Result};
use crate::store::tables;
use crate::{Engine, Mode, Query};

/// What to compare on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(default)]
pub struct CompareOptions {
    /// Chunks in the sample.
    pub sample_chunks: usize,
    /// The searches; empty: the latest `recent_searches` kept.
    pub queries: Vec<String>,
    /// How many of the latest searches to take when `queries` is empty.
    pub recent_searches: usize,
    /// Notes compared per search (overlap@k).
    pub k: usize,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            sample_chunks: 200,
            queries: Vec::new(),
            recent_searches: 20,
            k: 10,
        }
    }
}

/// Most chunks a sample may hold, and most searches.
pub const MAX_SAMPLE_CHUNKS: usize = 5000;
/// See [`MAX_SAMPLE_CHUNKS`].
pub const MAX_QUERIES: usize = 100;
/// Chunks each search brings into the sample (its best keyword matches), so
/// the notes it is about are there to be found; the rest is spread evenly
/// over the index. Keyword matches favour neither embedder.
const SEEDS_PER_QUERY: usize = 5;

/// What a comparison would do and cost; nothing is sent to make it.
#[derive(Debug, Clone, Serialize)]
pub struct ComparePlan {
    /// The embedder in use.
    pub current_id: String,
    /// The other provider's embedder (as the estimate names it).
    pub other_id: String,
    /// The sample's chunk ids.
    pub chunk_ids: Vec<i64>,
    /// The searches.
    pub queries: Vec<String>,
    /// Notes compared per search.
    pub k: usize,
    /// What the comparison sends to the other provider: the sample's texts
    /// not in its cache yet, and the queries (tokens, dollars, the cap).
    pub estimate: Estimate,
    /// What switching the whole index to the other provider would send.
    pub switch_estimate: Estimate,
}

/// One note in a ranking.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RankedNote {
    /// Path relative to its indexed folder.
    pub path: String,
    /// Title.
    pub title: String,
    /// 1-based first line of its best chunk.
    pub line: usize,
    /// The start of its best chunk's text (plain text).
    pub snippet: String,
    /// Cosine similarity of its best chunk to the query.
    pub score: f32,
}

/// One search ranked by both embedders.
#[derive(Debug, Clone, Serialize)]
pub struct QueryComparison {
    /// The search.
    pub query: String,
    /// Notes the embedder in use ranks first.
    pub current: Vec<RankedNote>,
    /// Notes the other provider ranks first.
    pub other: Vec<RankedNote>,
    /// Notes in both lists.
    pub shared: usize,
    /// `shared` over the length of the lists (overlap@k, 0 to 1).
    pub overlap: f64,
}

/// The comparison's results.
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    /// The embedder in use.
    pub current_id: String,
    /// The other provider's embedder.
    pub other_id: String,
    /// Chunks in the sample.
    pub chunks: usize,
    /// Notes compared per search.
    pub k: usize,
    /// Each search.
    pub queries: Vec<QueryComparison>,
    /// Mean overlap over the searches (0 without any).
    pub mean_overlap: f64,
    /// What the comparison sent to the other provider and what it cost, as
    /// booked in the cost ledger.
    pub spent: LedgerEntry,
    /// Sample texts found in the other provider's cache (nothing sent).
    pub from_cache: usize,
    /// What switching the whole index would send now (the sample is cached).
    pub switch_estimate: Estimate,
}

/// Picks the sample and estimates, with `other` (an estimator will do:
/// nothing is embedded), what comparing and switching would cost.
pub fn plan(
    engine: &Engine,
    other: &dyn Embedder,
    options: &CompareOptions,
) -> Result<ComparePlan> {
    let current = current_embedder(engine)?;
    check(options)?;
    let queries: Vec<String> = if options.queries.is_empty() {
        engine.recent_searches(options.recent_searches.min(MAX_QUERIES))?
    } else {
        options
            .queries
            .iter()
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty())
            .collect()
    };
    if queries.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "no searches to compare with: search your notes a few times first, or give the searches to run",
        ));
    }
    let chunk_ids = sample(engine, &queries, options.sample_chunks)?;
    if chunk_ids.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "nothing is indexed yet to compare on: add a folder and let it index",
        ));
    }
    let texts = missing_texts(engine, other.id(), &chunk_ids)?;
    let settings = engine.settings();
    let accounting = RunAccounting::new(engine.data_dir(), other, None)?;
    let mut sent = texts;
    sent.extend(queries.iter().cloned());
    let spent = engine.month_spent()?;
    let estimate = accounting
        .estimate(&sent)
        .with_cap(settings.budget_usd, spent);
    let switch_estimate = crate::index::estimate_missing(engine.store(), other, engine.data_dir())?
        .with_cap(settings.budget_usd, spent);
    Ok(ComparePlan {
        current_id: current.id().to_string(),
        other_id: other.id().to_string(),
        chunk_ids,
        queries,
        k: options.k,
        estimate,
        switch_estimate,
    })
}

/// Runs the comparison `plan` describes with `other` (an embedder that can
/// embed). Stops before a request that would cross the monthly cap.
pub fn run(engine: &Engine, other: &dyn Embedder, plan: &ComparePlan) -> Result<CompareReport> {
    let current = current_embedder(engine)?;
    let rows = engine
        .store()
        .read(|conn| tables::chunk_hashes(conn, &plan.chunk_ids))?;
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    let hashes: Vec<[u8; 32]> = rows.iter().map(|(_, h)| *h).collect();
    let texts = engine
        .store()
        .read(|conn| tables::embed_texts(conn, &ids))?;
    let budget = engine.settings().budget_usd;

    let (current_vectors, _, _) = vectors_for(engine, current.as_ref(), &hashes, &texts, budget)?;
    let (other_vectors, spent, from_cache) = vectors_for(engine, other, &hashes, &texts, budget)?;

    // The queries, embedded by both and booked like any remote spending.
    let mut comparisons = Vec::with_capacity(plan.queries.len());
    let accounting = RunAccounting::new(engine.data_dir(), other, budget)?;
    let mut query_spent = LedgerEntry::default();
    let meta = engine
        .store()
        .read(|conn| tables::load_chunks(conn, &ids))?;
    let meta: HashMap<i64, &crate::store::StoredChunk> = meta.iter().map(|c| (c.id, c)).collect();
    for query in &plan.queries {
        let q_current = current.embed_query(query)?;
        accounting.admit(&Outgoing {
            texts: 1,
            tokens: other.count_tokens(query) as u64,
        })?;
        let q_other = other.embed_query(query);
        let booked = accounting.book(&engine.store().writer(), &[] as &[String])?;
        add_entry(&mut query_spent, &booked);
        let q_other = q_other?;
        let current_list = rank(&q_current, &ids, &hashes, &current_vectors, &meta, plan.k);
        let other_list = rank(&q_other, &ids, &hashes, &other_vectors, &meta, plan.k);
        let ours: HashSet<&str> = current_list.iter().map(|n| n.path.as_str()).collect();
        let shared = other_list
            .iter()
            .filter(|n| ours.contains(n.path.as_str()))
            .count();
        let len = current_list.len().max(other_list.len());
        comparisons.push(QueryComparison {
            query: query.clone(),
            current: current_list,
            other: other_list,
            shared,
            overlap: if len == 0 {
                0.0
            } else {
                shared as f64 / len as f64
            },
        });
    }
    let mean_overlap = if comparisons.is_empty() {
        0.0
    } else {
        comparisons.iter().map(|c| c.overlap).sum::<f64>() / comparisons.len() as f64
    };
    let mut total = spent;
    add_entry(&mut total, &query_spent);
    let switch_estimate = crate::index::estimate_missing(engine.store(), other, engine.data_dir())?
        .with_cap(budget, engine.month_spent()?);
    Ok(CompareReport {
        current_id: current.id().to_string(),
        other_id: other.id().to_string(),
        chunks: ids.len(),
        k: plan.k,
        queries: comparisons,
        mean_overlap,
        spent: total,
        from_cache,
        switch_estimate,
    })
}

fn current_embedder(engine: &Engine) -> Result<std::sync::Arc<dyn Embedder>> {
    engine.embedder().cloned().ok_or_else(|| {
        Error::new(
            ErrorKind::ModelMissing,
            "meaning search is off, so there is nothing to compare with: run `sift model fetch` or choose a provider",
        )
    })
}

fn check(options: &CompareOptions) -> Result<()> {
    let bad = |what: String| Err(Error::new(ErrorKind::InvalidInput, what));
    if options.sample_chunks == 0 || options.sample_chunks > MAX_SAMPLE_CHUNKS {
        return bad(format!(
            "the sample must hold 1 to {MAX_SAMPLE_CHUNKS} chunks, not {}",
            options.sample_chunks
        ));
    }
    if options.queries.len() > MAX_QUERIES || options.recent_searches > MAX_QUERIES {
        return bad(format!("compare with at most {MAX_QUERIES} searches"));
    }
    if options.k == 0 || options.k > 100 {
        return bad(format!(
            "compare 1 to 100 notes per search, not {}",
            options.k
        ));
    }
    Ok(())
}

/// The best keyword matches of each search, then chunks spread evenly over
/// the index, up to `size` chunks.
fn sample(engine: &Engine, queries: &[String], size: usize) -> Result<Vec<i64>> {
    let mut chosen = Vec::new();
    let mut seen = HashSet::new();
    for q in queries {
        let hits = engine.search(&Query {
            text: q.clone(),
            mode: Mode::Keyword,
            limit: SEEDS_PER_QUERY,
            ..Query::default()
        })?;
        for hit in hits.hits {
            if chosen.len() < size && seen.insert(hit.chunk_id) {
                chosen.push(hit.chunk_id);
            }
        }
    }
    let all: Vec<i64> = engine.store().read(|conn| {
        let mut stmt = conn.prepare("SELECT id FROM chunks ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    })?;
    let room = size.saturating_sub(chosen.len());
    if room > 0 && !all.is_empty() {
        let step = (all.len() as f64 / room as f64).max(1.0);
        let mut at = 0.0;
        while (at as usize) < all.len() && chosen.len() < size {
            let id = all[at as usize];
            if seen.insert(id) {
                chosen.push(id);
            }
            at += step;
        }
    }
    Ok(chosen)
}

/// The sample's texts with no cached vector for `embedder_id`, once each.
fn missing_texts(engine: &Engine, embedder_id: &str, ids: &[i64]) -> Result<Vec<String>> {
    engine.store().read(|conn| {
        let rows = tables::chunk_hashes(conn, ids)?;
        let hashes: Vec<[u8; 32]> = rows.iter().map(|(_, h)| *h).collect();
        let cached = tables::cached_vectors(conn, embedder_id, &hashes)?;
        let texts = tables::embed_texts(conn, &rows.iter().map(|(id, _)| *id).collect::<Vec<_>>())?;
        let mut seen = HashSet::new();
        Ok(rows
            .iter()
            .zip(texts)
            .filter(|((_, h), _)| !cached.contains_key(h) && seen.insert(*h))
            .map(|(_, t)| t)
            .collect())
    })
}

/// Vectors by the hash of their embedded text.
type VectorsByHash = HashMap<[u8; 32], Vec<f32>>;

/// Vectors of the sample's texts for `embedder`: from the cache, the rest
/// embedded (under the cap), cached and booked. Returns them by text hash,
/// what was booked, and how many texts the cache served.
fn vectors_for(
    engine: &Engine,
    embedder: &dyn Embedder,
    hashes: &[[u8; 32]],
    texts: &[String],
    budget: Option<f64>,
) -> Result<(VectorsByHash, LedgerEntry, usize)> {
    let mut vectors = engine
        .store()
        .read(|conn| tables::cached_vectors(conn, embedder.id(), hashes))?;
    let from_cache = vectors.len();
    let mut unique: Vec<([u8; 32], String)> = Vec::new();
    let mut seen = HashSet::new();
    for (hash, text) in hashes.iter().zip(texts) {
        if !vectors.contains_key(hash) && seen.insert(*hash) {
            unique.push((*hash, text.clone()));
        }
    }
    let accounting = RunAccounting::new(engine.data_dir(), embedder, budget)?;
    let gate = |o: &Outgoing| accounting.admit(o);
    let control = RunControl::new().with_gate(&gate);
    let to_send: Vec<String> = unique.iter().map(|(_, t)| t.clone()).collect();
    let result = embedder.embed_documents_with(&to_send, &control, &mut |offset, batch| {
        let part = unique.get(offset..offset + batch.len()).ok_or_else(|| {
            Error::new(
                ErrorKind::Internal,
                "embedder delivered a batch out of range",
            )
        })?;
        if batch.iter().any(|v| v.len() != embedder.dimensions()) {
            return Err(Error::new(
                ErrorKind::WrongDimensions,
                format!(
                    "{} returned vectors of the wrong length (expected {})",
                    embedder.id(),
                    embedder.dimensions()
                ),
            ));
        }
        // Cached at once: paid for, never asked for again (a switch later
        // finds them).
        let mut conn = engine.store().writer();
        let tx = conn.transaction()?;
        let items: Vec<([u8; 32], &[f32])> = part
            .iter()
            .zip(&batch)
            .map(|((h, _), v)| (*h, v.as_slice()))
            .collect();
        tables::put_vectors(&tx, embedder.id(), &items)?;
        tx.commit()?;
        for ((hash, _), v) in part.iter().zip(batch) {
            vectors.insert(*hash, v);
        }
        Ok(())
    });
    // Booked even when the run stopped part-way: what was sent was paid for.
    let booked = accounting.book(&engine.store().writer(), &[] as &[String])?;
    result?;
    Ok((vectors, booked, from_cache))
}

/// The `k` notes whose best sample chunk is nearest to `query`.
fn rank(
    query: &[f32],
    ids: &[i64],
    hashes: &[[u8; 32]],
    vectors: &VectorsByHash,
    meta: &HashMap<i64, &crate::store::StoredChunk>,
    k: usize,
) -> Vec<RankedNote> {
    let mut best: HashMap<(String, String), (f32, i64)> = HashMap::new();
    for (id, hash) in ids.iter().zip(hashes) {
        let (Some(v), Some(chunk)) = (vectors.get(hash), meta.get(id)) else {
            continue;
        };
        let score: f32 = query.iter().zip(v).map(|(a, b)| a * b).sum();
        let key = (chunk.root.clone(), chunk.rel_path.clone());
        let entry = best.entry(key).or_insert((f32::NEG_INFINITY, *id));
        if score > entry.0 {
            *entry = (score, *id);
        }
    }
    let mut ranked: Vec<(f32, i64)> = best.into_values().collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked
        .into_iter()
        .take(k)
        .filter_map(|(score, id)| {
            let c = meta.get(&id)?;
            Some(RankedNote {
                path: c.rel_path.clone(),
                title: c.title.clone(),
                line: c.line_start,
                snippet: c.body.chars().take(200).collect(),
                score,
            })
        })
        .collect()
}

fn add_entry(total: &mut LedgerEntry, more: &LedgerEntry) {
    total.requests += more.requests;
    total.tokens_sent += more.tokens_sent;
    total.dollars += more.dollars;
    total.cache_hits += more.cache_hits;
    total.cache_hit_tokens += more.cache_hit_tokens;
    total.dollars_saved += more.dollars_saved;
}
