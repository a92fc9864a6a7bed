//! Indexing: note files -> chunks in SQLite (keyword-searchable at once) ->
//! vectors for chunks that lack them (from the cache, else the embedder).
//!
//! Two stages, both resumable because their work list is derived from the store:
//! 1. [`sync_root`] makes SQLite match the folder: new and changed notes are
//!    marked `pending`, then read, chunked and written one batch transaction at a
//!    time (readers see whole notes or none); deleted notes leave.
//! 2. [`embed_missing`] embeds chunks whose text has no cached vector, those of
//!    the most recently modified notes first (every note is already keyword
//!    searchable by then), caches each batch before using it, and adds vectors
//!    to the index. A crash loses at most the batch in flight; nothing cached
//!    is ever requested again.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::chunk::{chunk_note, Chunk};
use crate::config::{ScanSettings, Settings};
use crate::cost::RunAccounting;
use crate::embed::{Embedder, Outgoing, RunControl};
use crate::error::{Error, ErrorKind, Result};
use crate::note::{display_title, is_markdown_ext, parse_note, read_note_text, ReadFailure};
use crate::scan::{relative_path, scan_folder, scan_paths, ScanOutcome, ScannedFile, SkippedFile};
use crate::store::{tables, NoteContent, NoteRow, Store};
use crate::vectors::VectorIndex;

/// Files read and chunked per write transaction.
const FILE_BATCH: usize = 64;
/// Batches read and chunked ahead of the one being written.
const PREPARED_AHEAD: usize = 2;
/// Chunks sent to the embedder per call.
const EMBED_BATCH: usize = 128;
/// Save the vector index at least this often during long runs.
const SAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Vectors added per hold of the vector index's write lock while indexing.
const ADD_GROUP: usize = 32;

/// Where an index run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Waiting for another Sift process to finish its index run (the writer
    /// lock); `current` says who.
    Waiting,
    /// Walking folders.
    Scanning,
    /// Reading and chunking notes.
    Indexing,
    /// Computing vectors.
    Embedding,
    /// Writing the vector index.
    Saving,
    /// Finished.
    Done,
}

/// Progress of an index run, reported through one callback.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// Current phase.
    pub phase: Phase,
    /// Notes read so far in this run.
    pub files_done: usize,
    /// Notes to read in this run.
    pub files_total: usize,
    /// Chunks given vectors so far.
    pub chunks_done: usize,
    /// Chunks needing vectors in this run.
    pub chunks_total: usize,
    /// The file or step being worked on.
    pub current: Option<String>,
    /// Time since the run started.
    pub elapsed_ms: u64,
    /// Estimated time left, once there is a basis for it (while embedding: at
    /// the rate measured since embedding began).
    pub eta_ms: Option<u64>,
    /// Chunks given vectors per second since embedding began in this run.
    pub chunks_per_sec: Option<f64>,
}

/// What an index run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IndexReport {
    /// Note files found.
    pub files_seen: usize,
    /// Notes read and (re)chunked.
    pub notes_indexed: usize,
    /// Notes whose content was unchanged.
    pub notes_unchanged: usize,
    /// Notes removed because their files are gone.
    pub notes_removed: usize,
    /// Files skipped, with reasons.
    pub skipped: Vec<(String, String)>,
    /// Indexed folders that could not be reached (moved, unmounted): skipped,
    /// their index kept as it was.
    pub unavailable: Vec<String>,
    /// Chunks whose text went to the embedder.
    pub chunks_embedded: usize,
    /// Chunks whose vector came from the cache.
    pub chunks_from_cache: usize,
    /// Chunks still without a vector (no model, or stopped early).
    pub chunks_without_vectors: usize,
    /// Wall time.
    pub elapsed_ms: u64,
    /// Each note whose stored state changed, in order (for live displays such
    /// as `sift watch`; left out of JSON reports, which can be long).
    #[serde(skip)]
    pub changes: Vec<NoteChange>,
}

/// A note whose stored state changed during a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoteChange {
    /// Path relative to its folder, `/`-separated.
    pub path: String,
    /// What happened to it.
    pub kind: ChangeKind,
}

/// What happened to a note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "change", content = "detail")]
pub enum ChangeKind {
    /// New or edited text was read and chunked (this many chunks).
    Indexed(usize),
    /// The file is gone (deleted, moved away or now ignored).
    Removed,
    /// The file is no longer a note, for this reason.
    Skipped(String),
    /// Indexing it failed with this error; retried when it changes.
    Failed(String),
}

/// Shared pieces an index run works with.
pub(crate) struct IndexContext<'a> {
    pub store: &'a Store,
    pub vectors: &'a RwLock<Option<VectorIndex>>,
    pub embedder: Option<&'a dyn Embedder>,
    pub settings: &'a Settings,
    pub progress: &'a dyn Fn(&Progress),
    pub cancel: &'a AtomicBool,
    pub started: Instant,
}

impl IndexContext<'_> {
    fn report(
        &self,
        phase: Phase,
        files: (usize, usize),
        chunks: (usize, usize),
        current: Option<String>,
    ) {
        let elapsed = self.started.elapsed();
        let (done, total) = files;
        let eta_ms = (done > 0 && total > done)
            .then(|| (elapsed.as_millis() as f64 * (total - done) as f64 / done as f64) as u64);
        self.send(phase, files, chunks, current, eta_ms, None);
    }

    /// Embedding progress: rate and time left from when embedding began
    /// (`since`), not from the start of the run, whose first part (reading
    /// notes) goes at another pace.
    fn report_embedding(&self, chunks: (usize, usize), since: Instant) {
        let secs = since.elapsed().as_secs_f64();
        let (done, total) = chunks;
        let rate = (done > 0 && secs > 0.0).then(|| done as f64 / secs);
        let eta_ms = rate
            .filter(|_| total > done)
            .map(|r| ((total - done) as f64 / r * 1000.0) as u64);
        self.send(Phase::Embedding, (0, 0), chunks, None, eta_ms, rate);
    }

    fn send(
        &self,
        phase: Phase,
        files: (usize, usize),
        chunks: (usize, usize),
        current: Option<String>,
        eta_ms: Option<u64>,
        chunks_per_sec: Option<f64>,
    ) {
        (self.progress)(&Progress {
            phase,
            files_done: files.0,
            files_total: files.1,
            chunks_done: chunks.0,
            chunks_total: chunks.1,
            current,
            elapsed_ms: self.started.elapsed().as_millis() as u64,
            eta_ms,
            chunks_per_sec,
        });
    }

    fn check_cancel(&self) -> Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(Error::new(
                ErrorKind::Cancelled,
                "indexing stopped; finished work is kept and the next run resumes",
            ));
        }
        Ok(())
    }

    fn with_vectors<T>(&self, f: impl FnOnce(&mut VectorIndex) -> Result<T>) -> Result<Option<T>> {
        with_vectors(self.vectors, f)
    }
}

/// Runs `f` on the live vector index under its write lock (`None`: no index).
/// Also for threads that cannot share the [`IndexContext`] (its progress
/// callback is not `Sync`).
fn with_vectors<T>(
    vectors: &RwLock<Option<VectorIndex>>,
    f: impl FnOnce(&mut VectorIndex) -> Result<T>,
) -> Result<Option<T>> {
    let mut guard = vectors.write().unwrap_or_else(|e| e.into_inner());
    guard.as_mut().map(f).transpose()
}

/// A note read and chunked, ready to be written.
enum Prepared {
    Note {
        content: NoteContent,
        chunks: Vec<Chunk>,
    },
    Skipped(String),
    Failed(String),
    Vanished,
}

/// Stage 1: makes the store match the files under `root`.
pub(crate) fn sync_root(
    ctx: &IndexContext<'_>,
    root: &Path,
    report: &mut IndexReport,
) -> Result<()> {
    ctx.report(
        Phase::Scanning,
        (0, 0),
        (0, 0),
        Some(root.display().to_string()),
    );
    if !root.is_dir() {
        // A drive unplugged or a folder moved: not a reason to forget its notes
        // or to stop the other folders.
        report.unavailable.push(root.display().to_string());
        return Ok(());
    }
    let scan = scan_folder(root, &ctx.settings.scan);
    let (root_id, existing) = {
        let conn = ctx.store.writer();
        let root_id = tables::ensure_root(&conn, root)?;
        (root_id, tables::notes_of_root(&conn, root_id)?)
    };
    let before = (report.notes_indexed, report.notes_removed);
    apply_scan(ctx, root_id, &scan, &existing, report)?;
    // Template boilerplate is counted again when the folder changed (a
    // full run with nothing new redoes nothing), before anything is embedded.
    let changed = before != (report.notes_indexed, report.notes_removed);
    let enabled = ctx.settings.scan.strip_boilerplate;
    let counted = ctx
        .store
        .read(|c| crate::boilerplate::counted(c, root_id))?;
    if changed || counted != Some(enabled) {
        let now = chrono::Utc::now().timestamp();
        let (_, new_ids) =
            crate::boilerplate::refresh(&mut ctx.store.writer(), root_id, enabled, now)?;
        sync_vectors(ctx, &new_ids)?;
    }
    Ok(())
}

/// Stage 1 for a few paths under `root` (files or folders, changed, created or
/// gone): the store is made to match the files at and under those paths only,
/// with the same rules and the same transactions as [`sync_root`].
pub(crate) fn sync_paths(
    ctx: &IndexContext<'_>,
    root: &Path,
    paths: &[PathBuf],
    report: &mut IndexReport,
) -> Result<()> {
    if paths.iter().any(|p| p.as_path() == root) || !root.is_dir() {
        return sync_root(ctx, root, report);
    }
    let scan = scan_paths(root, paths, &ctx.settings.scan);
    let (root_id, existing) = {
        let conn = ctx.store.writer();
        let root_id = tables::ensure_root(&conn, root)?;
        let mut existing = HashMap::new();
        for path in paths {
            if let Ok(rel) = path.strip_prefix(root) {
                let rel = relative_path(rel, Path::new(""));
                existing.extend(tables::notes_at_or_under(&conn, root_id, &rel)?);
            }
        }
        (root_id, existing)
    };
    apply_scan(ctx, root_id, &scan, &existing, report)
}

/// Makes the stored notes in `existing` (all that the scan covered) match `scan`:
/// gone files leave, skips are recorded, new and changed files are marked
/// `pending` in one transaction, then read and written batch by batch.
fn apply_scan(
    ctx: &IndexContext<'_>,
    root_id: i64,
    scan: &ScanOutcome,
    existing: &HashMap<String, NoteRow>,
    report: &mut IndexReport,
) -> Result<()> {
    report.files_seen += scan.files.len();
    let seen: HashSet<&str> = scan
        .files
        .iter()
        .map(|f| f.rel_path.as_str())
        .chain(scan.skipped.iter().map(|s| s.rel_path.as_str()))
        .collect();
    let todo: Vec<&ScannedFile> = scan
        .files
        .iter()
        .filter(|f| {
            existing.get(&f.rel_path).is_none_or(|n| {
                n.state != "indexed" || n.size != f.size || n.mtime_ns != f.mtime_ns
            })
        })
        .collect();
    report.notes_unchanged += scan.files.len() - todo.len();

    // One transaction: forget deleted files, record scan skips, queue the work.
    {
        let mut conn = ctx.store.writer();
        let tx = conn.transaction()?;
        for (rel_path, row) in existing {
            if !seen.contains(rel_path.as_str()) {
                tables::delete_note(&tx, row.id)?;
                report.notes_removed += 1;
                report.changes.push(NoteChange {
                    path: rel_path.clone(),
                    kind: ChangeKind::Removed,
                });
            }
        }
        for skip in &scan.skipped {
            let old = existing.get(&skip.rel_path);
            record_skip(&tx, root_id, skip, old)?;
            report
                .skipped
                .push((skip.rel_path.clone(), skip.reason.clone()));
            if !skip.rel_path.is_empty() && old.is_none_or(|o| o.state != "skipped") {
                report.changes.push(NoteChange {
                    path: skip.rel_path.clone(),
                    kind: ChangeKind::Skipped(skip.reason.clone()),
                });
            }
        }
        for f in &todo {
            tables::upsert_state(
                &tx,
                root_id,
                &f.rel_path,
                &f.ext,
                f.size,
                f.mtime_ns,
                "pending",
                None,
            )?;
        }
        tx.commit()?;
    }
    sync_vectors(ctx, &[])?;

    let total = todo.len();
    let scan = &ctx.settings.scan;
    let batches: Vec<&[&ScannedFile]> = todo.chunks(FILE_BATCH).collect();
    // With two threads or more, batches are read and chunked on one thread
    // while another writes them (SQLite has one writer), PREPARED_AHEAD
    // batches ahead: in step (one batch prepared while one is written) each
    // side waited for the other whenever a batch was slower on its side than
    // the last, and each core stood idle a quarter of the time (BENCHMARKS.md,
    // issue 13, round 8).
    let queued = crate::background::threads() >= 2 && batches.len() >= 2;
    let batches = &batches;
    std::thread::scope(|s| -> Result<()> {
        // The queue of prepared batches, and the writer's word after each.
        let mut feed = None;
        if queued {
            let (ready, prepared) = std::sync::mpsc::sync_channel(PREPARED_AHEAD);
            let (written_tx, written) = std::sync::mpsc::channel::<()>();
            // Ends when every batch is sent or the writer stops listening.
            s.spawn(move || {
                let mut written_so_far = 0;
                for (batch_no, batch) in batches.iter().enumerate() {
                    let threads = crate::background::threads();
                    // Down to one thread (on battery): the next batch is read
                    // only once the writer is done with every earlier one.
                    while threads < 2 && written_so_far < batch_no {
                        if written.recv().is_err() {
                            return;
                        }
                        written_so_far += 1;
                    }
                    while written.try_recv().is_ok() {
                        written_so_far += 1;
                    }
                    // The writer keeps one of the run's threads.
                    let prepared = prepare_batch(batch, scan, threads.saturating_sub(1).max(1));
                    if ready.send(prepared).is_err() {
                        break;
                    }
                }
            });
            feed = Some((prepared, written_tx));
        }
        for (batch_no, batch) in batches.iter().enumerate() {
            ctx.check_cancel()?;
            report_batch(ctx, batch_no, batch, total);
            let prepared = match &feed {
                Some((prepared, _)) => prepared.recv().map_err(|_| {
                    Error::new(ErrorKind::Internal, "the thread reading notes stopped")
                })?,
                None => prepare_batch(batch, scan, crate::background::threads()),
            };
            let new_ids = write_batch(ctx, root_id, batch, prepared, existing, report)?;
            sync_vectors(ctx, &new_ids)?;
            if let Some((_, written)) = &feed {
                // The reader may be waiting for this (one thread); or gone.
                let _ = written.send(());
            }
        }
        Ok(())
    })?;
    ctx.report(Phase::Indexing, (total, total), (0, 0), None);
    Ok(())
}

/// Says which batch the writer is at.
fn report_batch(ctx: &IndexContext<'_>, batch_no: usize, batch: &[&ScannedFile], total: usize) {
    ctx.report(
        Phase::Indexing,
        (batch_no * FILE_BATCH, total),
        (0, 0),
        batch.first().map(|f| f.rel_path.clone()),
    );
}

/// Reads, parses and chunks `batch` on the background pool with `threads`.
fn prepare_batch(batch: &[&ScannedFile], scan: &ScanSettings, threads: usize) -> Vec<Prepared> {
    crate::background::install_with(threads, || {
        batch.par_iter().map(|f| prepare(f, scan)).collect()
    })
}

/// Reads, parses and chunks one file (no store access: runs in parallel). A
/// panic in the parser or splitter fails this note only, not the run.
fn prepare(file: &ScannedFile, scan: &ScanSettings) -> Prepared {
    crate::panics::catch(|| "indexing".into(), || prepare_note(file, scan))
        .unwrap_or_else(|err| Prepared::Failed(err.message().to_string()))
}

fn prepare_note(file: &ScannedFile, scan: &ScanSettings) -> Prepared {
    // PDF, DOCX, ODT, HTML: converted to plain text with headings and pages.
    let (note, info, markdown, document) =
        match crate::extract::read_document(&file.abs_path, &file.ext, scan) {
            Some(Ok(doc)) => (doc.note, doc.info, false, Some(doc.extracted)),
            Some(Err(ReadFailure::Vanished)) => return Prepared::Vanished,
            Some(Err(ReadFailure::Skipped(reason))) => return Prepared::Skipped(reason),
            None => {
                let note = match read_note_text(&file.abs_path, scan.max_bytes_for(&file.ext)) {
                    Ok(note) => note,
                    Err(ReadFailure::Vanished) => return Prepared::Vanished,
                    Err(ReadFailure::Skipped(reason)) => return Prepared::Skipped(reason),
                };
                let markdown = is_markdown_ext(&file.ext);
                let info = parse_note(&note.text, markdown);
                (note, info, markdown, None)
            }
        };
    let mut chunks = chunk_note(&note.text, &info, markdown);
    if let Some(doc) = &document {
        for chunk in &mut chunks {
            chunk.page = doc.page_at(chunk.byte_start);
        }
    }
    Prepared::Note {
        content: NoteContent {
            title: display_title(&info, &file.rel_path),
            tags: info.tags,
            aliases: info.aliases,
            date: info.date,
            content_hash: note.content_hash,
            links: info
                .links
                .iter()
                .filter_map(|link| {
                    crate::links::link_key(&file.rel_path, link)
                        .map(|(key, exact)| (key, exact, link.offset))
                })
                .collect(),
        },
        chunks,
    }
}

/// Writes one batch of prepared notes in one transaction; returns new chunk ids.
/// Each note is written under a savepoint: a note the store refuses is marked
/// `failed` with the error and the rest of the batch goes on.
fn write_batch(
    ctx: &IndexContext<'_>,
    root_id: i64,
    files: &[&ScannedFile],
    prepared: Vec<Prepared>,
    existing: &HashMap<String, NoteRow>,
    report: &mut IndexReport,
) -> Result<Vec<i64>> {
    let now = chrono::Utc::now().timestamp();
    let strip = ctx.settings.scan.strip_boilerplate;
    let mut new_ids = Vec::new();
    let mut conn = ctx.store.writer();
    let mut tx = conn.transaction()?;
    // Written after every note's savepoint, so FTS5 flushes them once.
    let mut keyword_rows = tables::KeywordRows::default();
    for (file, prepared) in files.iter().zip(prepared) {
        let old = existing.get(&file.rel_path);
        let written = {
            let sp = tx.savepoint()?;
            let written = crate::panics::catch(
                || "indexing".into(),
                || write_note(&sp, root_id, file, prepared, old, now, strip),
            );
            match written.and_then(|w| w) {
                Ok(written) => {
                    sp.commit()?;
                    Ok(written)
                }
                // Dropping the savepoint rolls this note back.
                Err(err) => Err(err),
            }
        };
        let written = written.or_else(|err| -> Result<Written> {
            let reason = match err.kind() {
                ErrorKind::Internal => err.message().to_string(),
                _ => format!("could not be stored: {}", err.message()),
            };
            tables::upsert_state(
                &tx,
                root_id,
                &file.rel_path,
                &file.ext,
                file.size,
                file.mtime_ns,
                "failed",
                Some(&reason),
            )?;
            Ok(Written::Failed(reason))
        })?;
        let kind = match written {
            Written::Indexed(ids, rows) => {
                keyword_rows.append(rows);
                report.notes_indexed += 1;
                let kind = ChangeKind::Indexed(ids.len());
                new_ids.extend(ids);
                Some(kind)
            }
            Written::Unchanged => {
                report.notes_unchanged += 1;
                None
            }
            Written::Skipped(reason) => {
                report.skipped.push((file.rel_path.clone(), reason.clone()));
                Some(ChangeKind::Skipped(reason))
            }
            Written::Failed(reason) => Some(ChangeKind::Failed(reason)),
            Written::Removed => {
                report.notes_removed += 1;
                old.is_some().then_some(ChangeKind::Removed)
            }
        };
        if let Some(kind) = kind {
            report.changes.push(NoteChange {
                path: file.rel_path.clone(),
                kind,
            });
        }
    }
    keyword_rows.write(&tx)?;
    tx.commit()?;
    Ok(new_ids)
}

/// What writing one note did.
enum Written {
    /// New chunk ids, and their keyword rows (written once the note's
    /// savepoint is released).
    Indexed(Vec<i64>, tables::KeywordRows),
    Unchanged,
    Skipped(String),
    Failed(String),
    Removed,
}

fn write_note(
    tx: &rusqlite::Connection,
    root_id: i64,
    file: &ScannedFile,
    prepared: Prepared,
    old: Option<&NoteRow>,
    now: i64,
    strip_boilerplate: bool,
) -> Result<Written> {
    let id = tables::upsert_state(
        tx,
        root_id,
        &file.rel_path,
        &file.ext,
        file.size,
        file.mtime_ns,
        "pending",
        None,
    )?;
    let (state, reason) = match prepared {
        Prepared::Note { content, chunks } => {
            let unchanged = old.is_some_and(|o| {
                o.state == "indexed" && o.content_hash.as_deref() == Some(&content.content_hash[..])
            });
            if unchanged {
                // Touched but not edited: keep chunks and vectors; the upsert
                // records the new size and mtime with the state.
                tables::upsert_state(
                    tx,
                    root_id,
                    &file.rel_path,
                    &file.ext,
                    file.size,
                    file.mtime_ns,
                    "indexed",
                    None,
                )?;
                return Ok(Written::Unchanged);
            }
            // Template lines already known in this folder are not embedded.
            let mut chunks = chunks;
            if strip_boilerplate {
                crate::boilerplate::Boilerplate::load(tx, root_id)?.apply(&mut chunks);
            }
            let (ids, keyword_rows) =
                tables::replace_chunks(tx, id, &content.title, &content.aliases, &chunks)?;
            tables::set_indexed(tx, id, &content, now)?;
            return Ok(Written::Indexed(ids, keyword_rows));
        }
        Prepared::Vanished => {
            tables::delete_note(tx, id)?;
            return Ok(Written::Removed);
        }
        Prepared::Skipped(reason) => ("skipped", reason),
        Prepared::Failed(reason) => ("failed", reason),
    };
    tables::delete_chunks_of_note(tx, id)?;
    tables::upsert_state(
        tx,
        root_id,
        &file.rel_path,
        &file.ext,
        file.size,
        file.mtime_ns,
        state,
        Some(&reason),
    )?;
    Ok(if state == "failed" {
        Written::Failed(reason)
    } else {
        Written::Skipped(reason)
    })
}

fn record_skip(
    conn: &rusqlite::Connection,
    root_id: i64,
    skip: &SkippedFile,
    old: Option<&NoteRow>,
) -> Result<()> {
    if skip.rel_path.is_empty() {
        return Ok(());
    }
    if let Some(old) = old {
        tables::delete_chunks_of_note(conn, old.id)?;
    }
    let ext = skip
        .rel_path
        .rsplit_once('.')
        .map_or("", |(_, e)| e)
        .to_ascii_lowercase();
    tables::upsert_state(
        conn,
        root_id,
        &skip.rel_path,
        &ext,
        0,
        0,
        "skipped",
        Some(&skip.reason),
    )?;
    Ok(())
}

/// Brings the live vector index up to date after a write: replays removals and
/// adds cached vectors for `new_ids` (renames and repeated text cost nothing, and
/// are booked in the ledger as cache hits: texts served instead of sent).
pub(crate) fn sync_vectors(ctx: &IndexContext<'_>, new_ids: &[i64]) -> Result<usize> {
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
    let ids = {
        let mut conn = ctx.store.writer();
        let tx = conn.transaction()?;
        let items: Vec<([u8; 32], &[f32])> = part
            .iter()
            .zip(vectors)
            .map(|((h, _), v)| (*h, v.as_slice()))
            .collect();
        tables::put_vectors(&tx, embedder.id(), &items)?;
        tx.commit()?;
        let hashes: Vec<[u8; 32]> = part.iter().map(|(h, _)| *h).collect();
        tables::chunks_with_hashes(&conn, &hashes)?
    };
    let by_hash: HashMap<[u8; 32], &Vec<f32>> = part.iter().map(|(h, _)| *h).zip(vectors).collect();
    Ok(ids
        .iter()
        .filter_map(|(id, hash)| by_hash.get(hash).map(|v| (*id, v.to_vec())))
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
