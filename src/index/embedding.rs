//! Stage 2 of an index run: vectors for chunks that lack them, from the
//! cache or the embedder, newest notes first; and the vector index kept in
//! step with what stage 1 wrote.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::RwLock;
use std::time::Instant;

use super::{with_vectors, ChangeKind, IndexContext, IndexReport, NoteChange, Phase};
use crate::cost::RunAccounting;
use crate::embed::{Embedder, Outgoing, RunControl};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{tables, Store};
use crate::vectors::VectorIndex;

/// Chunks sent to the embedder per call.
const EMBED_BATCH: usize = 128;
/// Save the vector index at least this often during long runs.
const SAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
/// Vectors added per hold of the vector index's write lock while indexing.
const ADD_GROUP: usize = 32;

/// Brings the live vector index up to date after a write: replays removals and
/// adds cached vectors for `new_ids` (renames and repeated text cost nothing, and
/// are booked in the ledger as cache hits: texts served instead of sent).
pub(super) fn sync_vectors(ctx: &IndexContext<'_>, new_ids: &[i64]) -> Result<usize> {
    let Some(embedder) = ctx.embedder else {
        return Ok(0);
    };
    let conn = ctx.store.writer();
    let rows = tables::chunk_hashes(&conn, new_ids)?;
    let hashes: Vec<[u8; 32]> = rows.iter().map(|(_, h)| *h).collect();
    let cached = tables::cached_vectors(&conn, embedder.id(), &hashes)?;
    let items: Vec<(i64, &[f32])> = rows
        .iter()
        .filter_map(|(id, hash)| cached.get(hash).map(|v| (*id, v.as_slice())))
        .collect();
    let added = ctx.with_vectors(|vi| {
        vi.apply_removals(&conn)?;
        vi.add_many(&items)?;
        Ok(items.len())
    })?;
    if !items.is_empty() {
        let ids: Vec<i64> = items.iter().map(|(id, _)| *id).collect();
        let hits = tables::embed_texts(&conn, &ids)?;
        let data_dir = ctx.store.path().parent().unwrap_or(Path::new("."));
        RunAccounting::new(data_dir, embedder, None)?.book(&conn, &hits)?;
    }
    Ok(added.unwrap_or(0))
}

/// Stage 2: gives every chunk a vector from the active embedder.
pub(crate) fn embed_missing(ctx: &IndexContext<'_>, report: &mut IndexReport) -> Result<()> {
    let Some(embedder) = ctx.embedder else {
        report.chunks_without_vectors = ctx.store.read(tables::count_chunks)? as usize;
        return Ok(());
    };
    // The work list, newest notes first, is taken once: ids are small, and the
    // order stays put while earlier batches fill the cache.
    let todo = ctx
        .store
        .read(|c| tables::missing_vector_ids_newest_first(c, embedder.id()))?;
    let total = todo.len();
    let mut done = 0;
    let mut last_save = Instant::now();
    let data_dir = ctx.store.path().parent().unwrap_or(Path::new("."));
    let accounting = RunAccounting::new(data_dir, embedder, ctx.settings.budget_usd)?;
    let embedding_started = Instant::now();
    ctx.report_embedding((0, total), embedding_started);
    // One batch: embedded, cached (durable), its vectors left in `waiting`
    // for the index.
    let mut embed_batch = |ids: &[i64], waiting: &mut Vec<(i64, Vec<f32>)>| -> Result<()> {
        let rows = ctx
            .store
            .read(|c| tables::chunks_still_missing(c, embedder.id(), ids))?;
        if rows.is_empty() {
            done += ids.len();
            ctx.report_embedding((done.min(total), total), embedding_started);
            return Ok(());
        }

        // Identical texts are embedded once.
        let mut unique: Vec<([u8; 32], String)> = Vec::new();
        let mut seen = HashSet::new();
        for row in &rows {
            if seen.insert(row.embed_hash) {
                unique.push((row.embed_hash, row.embed_text.clone()));
            }
        }
        let texts: Vec<String> = unique.iter().map(|(_, t)| t.clone()).collect();
        // Each finished batch is cached and indexed as it arrives, so a failure,
        // a cancel or a budget stop later in the call loses nothing paid for.
        let gate = |o: &Outgoing| accounting.admit(o);
        let control = RunControl::new().with_cancel(ctx.cancel);
        // Without a cap the gate would only cost a count of every text's tokens.
        let control = if accounting.has_budget() {
            control.with_gate(&gate)
        } else {
            control
        };
        let mut delivered = 0;
        let mut stored = vec![false; texts.len()];
        let result = crate::panics::catch(
            || format!("embedding with {}", embedder.id()),
            || {
                embedder.embed_documents_with(&texts, &control, &mut |offset, vectors| {
                    let part = unique.get(offset..offset + vectors.len()).ok_or_else(|| {
                        Error::new(
                            ErrorKind::Internal,
                            "embedder delivered a batch out of range",
                        )
                    })?;
                    waiting.extend(cache_batch(ctx, embedder, part, &vectors)?);
                    stored[offset..offset + vectors.len()].fill(true);
                    delivered += vectors.len();
                    Ok(())
                })
            },
        );
        // A panic (a bug in the embedder, set off by some text) fails only the
        // notes holding the texts that set it off: the rest go one at a time.
        let result = match result {
            Ok(result) => result,
            Err(_) => embed_one_by_one(ctx, embedder, &unique, &stored, &control, report)
                .map(|n| delivered += n),
        };
        // Book what was sent (even if the call failed part-way) and the texts
        // that needed no request because an identical chunk was in this batch.
        let mut first = HashSet::new();
        let duplicates: Vec<&str> = rows
            .iter()
            .filter(|r| !first.insert(r.embed_hash))
            .map(|r| r.embed_text.as_str())
            .collect();
        {
            let conn = ctx.store.writer();
            accounting.book(&conn, &duplicates)?;
        }
        report.chunks_embedded += delivered;
        result?;
        report.chunks_from_cache += rows.len() - texts.len();
        done += ids.len();
        ctx.report_embedding((done.min(total), total), embedding_started);
        Ok(())
    };
    // Vectors cached but not yet in the index. With two threads or more, a
    // batch's vectors go into the index (on the background pool) while the
    // next batch is embedded and cached: the cache's writes are one thread's
    // work and left the other core idle (BENCHMARKS.md, issue 13).
    let mut waiting: Vec<(i64, Vec<f32>)> = Vec::new();
    let (store, vectors) = (ctx.store, ctx.vectors);
    let mut run = || -> Result<()> {
        for ids in todo.chunks(EMBED_BATCH) {
            ctx.check_cancel()?;
            let adding = std::mem::take(&mut waiting);
            let threads = crate::background::threads();
            let last_save = &mut last_save;
            let (embedded, added) = std::thread::scope(|s| {
                if threads < 2 {
                    let added = index_vectors(store, vectors, &adding, last_save);
                    return (embed_batch(ids, &mut waiting), added);
                }
                let adder = s.spawn(|| {
                    crate::background::install_for_graph(threads, || {
                        index_vectors(store, vectors, &adding, last_save)
                    })
                });
                let embedded = embed_batch(ids, &mut waiting);
                let added = adder.join().unwrap_or_else(|_| {
                    Err(Error::new(ErrorKind::Internal, "adding vectors panicked"))
                });
                (embedded, added)
            });
            added?;
            embedded?;
        }
        Ok(())
    };
    let outcome = run();
    // Whatever stopped the run, what was cached reaches the index.
    let added = index_vectors(store, vectors, &waiting, &mut last_save);
    outcome.and(added)
}

/// Embeds the texts of `unique` not yet `stored`, each alone; a text whose
/// embedding panics fails the notes holding it (reason "internal error while
/// indexing: ..."), recorded in `report`. Returns the texts embedded.
fn embed_one_by_one(
    ctx: &IndexContext<'_>,
    embedder: &dyn Embedder,
    unique: &[([u8; 32], String)],
    stored: &[bool],
    control: &RunControl<'_>,
    report: &mut IndexReport,
) -> Result<usize> {
    let mut delivered = 0;
    let mut last_save = Instant::now();
    for (i, done) in stored.iter().enumerate() {
        if *done {
            continue;
        }
        let one = &unique[i..i + 1];
        let texts = [one[0].1.clone()];
        let outcome = crate::panics::catch(
            || "indexing".into(),
            || {
                embedder.embed_documents_with(&texts, control, &mut |_, vectors| {
                    store_batch(ctx, embedder, one, &vectors, &mut last_save)
                })
            },
        );
        match outcome {
            Ok(result) => {
                result?;
                delivered += 1;
            }
            Err(panic) => {
                let mut conn = ctx.store.writer();
                let tx = conn.transaction()?;
                let failed = tables::fail_notes_with_chunk_hash(&tx, &one[0].0, panic.message())?;
                tx.commit()?;
                for path in failed {
                    report.changes.push(NoteChange {
                        path,
                        kind: ChangeKind::Failed(panic.message().to_string()),
                    });
                }
            }
        }
    }
    Ok(delivered)
}

/// Caches one delivered batch of vectors (durable first), then gives every chunk
/// with those texts its vector in the index.
fn store_batch(
    ctx: &IndexContext<'_>,
    embedder: &dyn Embedder,
    part: &[([u8; 32], String)],
    vectors: &[Vec<f32>],
    last_save: &mut Instant,
) -> Result<()> {
    let items = cache_batch(ctx, embedder, part, vectors)?;
    index_vectors(ctx.store, ctx.vectors, &items, last_save)
}

/// Caches one delivered batch of vectors (durable once this returns) and
/// returns each chunk with those texts and its vector, for the vector index.
fn cache_batch(
    ctx: &IndexContext<'_>,
    embedder: &dyn Embedder,
    part: &[([u8; 32], String)],
    vectors: &[Vec<f32>],
) -> Result<Vec<(i64, Vec<f32>)>> {
    if vectors.len() != part.len() || vectors.iter().any(|v| v.len() != embedder.dimensions()) {
        return Err(Error::new(
            ErrorKind::WrongDimensions,
            format!(
                "{} returned vectors of the wrong shape (expected {} of {} dimensions)",
                embedder.id(),
                part.len(),
                embedder.dimensions()
            ),
        ));
    }
    // Encoded once, before the writer is taken: the cache stores these bytes
    // and the index gets the vectors back from them (f16), as a rebuild from
    // the cache would.
    let encoded: Vec<([u8; 32], Vec<u8>)> = part
        .iter()
        .zip(vectors)
        .map(|((h, _), v)| (*h, crate::store::encode_cached(v)))
        .collect();
    let ids = {
        let mut conn = ctx.store.writer();
        let tx = conn.transaction()?;
        tables::put_encoded(&tx, embedder.id(), &encoded)?;
        tx.commit()?;
        let hashes: Vec<[u8; 32]> = part.iter().map(|(h, _)| *h).collect();
        tables::chunks_with_hashes(&conn, &hashes)?
    };
    let by_hash: HashMap<[u8; 32], Vec<f32>> = encoded
        .iter()
        .map(|(h, bytes)| (*h, crate::store::decode_cached(bytes)))
        .collect();
    Ok(ids
        .iter()
        .filter_map(|(id, hash)| by_hash.get(hash).map(|v| (*id, v.clone())))
        .collect())
}

/// Adds cached vectors to the live vector index (saved every [`SAVE_EVERY`]).
fn index_vectors(
    store: &Store,
    vectors: &RwLock<Option<VectorIndex>>,
    items: &[(i64, Vec<f32>)],
    last_save: &mut Instant,
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let items: Vec<(i64, &[f32])> = items.iter().map(|(id, v)| (*id, v.as_slice())).collect();
    // A few vectors per hold of the write lock: a search waits for one group's
    // adds (a millisecond or two), not a whole batch's.
    for group in items.chunks(ADD_GROUP) {
        with_vectors(vectors, |vi| vi.add_many(group))?;
    }
    if last_save.elapsed() > SAVE_EVERY {
        save_live(store, vectors)?;
        *last_save = Instant::now();
    }
    Ok(())
}

/// What embedding every chunk that lacks a vector would send after the cache
/// (unique texts), for `sift index --dry-run` and the desktop estimate.
pub(crate) fn estimate_missing(
    store: &Store,
    embedder: &dyn Embedder,
    data_dir: &Path,
) -> Result<crate::cost::Estimate> {
    let accounting = RunAccounting::new(data_dir, embedder, None)?;
    let mut texts = Vec::new();
    let mut seen = HashSet::new();
    let mut after = 0;
    loop {
        let rows = store.read(|c| tables::chunks_missing_vectors(c, embedder.id(), after, 4096))?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for row in rows {
            if seen.insert(row.embed_hash) {
                texts.push(row.embed_text);
            }
        }
    }
    Ok(accounting.estimate(&texts))
}

/// Saves the vector index (end of a run, shutdown).
pub(crate) fn save_vectors(ctx: &IndexContext<'_>) -> Result<()> {
    ctx.report(Phase::Saving, (0, 0), (0, 0), None);
    save_live(ctx.store, ctx.vectors)
}

/// Saves the live vector index, writing its file under the read lock only:
/// searches meanwhile waited 20-40 ms at 10k vectors for a save under the
/// write lock (more at 1M). One run at a time saves (the run's lock), so no
/// other save writes the same temp file meanwhile.
fn save_live(store: &Store, vectors: &RwLock<Option<VectorIndex>>) -> Result<()> {
    let Some(Some(ticket)) = with_vectors(vectors, |vi| store.read(|conn| vi.save_begin(conn)))?
    else {
        return Ok(());
    };
    if let Some(vi) = vectors.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        vi.write_shared()?;
    }
    with_vectors(vectors, |vi| {
        vi.save_end(ticket);
        Ok(())
    })?;
    Ok(())
}
