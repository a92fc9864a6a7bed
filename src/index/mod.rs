//! Indexing: note files -> chunks in SQLite (keyword-searchable at once) ->
//! vectors for chunks that lack them (from the cache, else the embedder).
//!
//! Two stages, both resumable because their work list is derived from the store:
//! 1. [`sync_root`] (`notes.rs`) makes SQLite match the folder: new and changed notes are
//!    marked `pending`, then read, chunked and written one batch transaction at a
//!    time (readers see whole notes or none); deleted notes leave.
//! 2. [`embed_missing`] (`embedding.rs`) embeds chunks whose text has no cached vector, those of
//!    the most recently modified notes first (every note is already keyword
//!    searchable by then), caches each batch before using it, and adds vectors
//!    to the index. A crash loses at most the batch in flight; nothing cached
//!    is ever requested again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;
use std::time::Instant;

use serde::Serialize;

use crate::config::Settings;
use crate::embed::Embedder;
use crate::error::{Error, ErrorKind, Result};
use crate::store::Store;
use crate::vectors::VectorIndex;

mod embedding;
mod notes;

pub(crate) use embedding::{embed_missing, estimate_missing, save_vectors};
pub(crate) use notes::{sync_paths, sync_root};

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
