//! Index runs: the whole folder set, a few changed paths (the watcher), and
//! what a run would cost; one process writes at a time (the writer lock).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::{Engine, PrunePolicy, ResetOnDrop, VECTOR_SAVE_EVERY};
use crate::error::{Error, ErrorKind, Result};
use crate::index::{self, IndexContext, IndexReport, Phase, Progress};
use crate::lock::{busy_error, Held, LockFile, WRITER_LOCK};

impl Engine {
    /// Indexes every configured folder: changed notes are re-chunked, chunks
    /// lacking vectors are embedded. Only one run at a time; searches keep working.
    pub fn index(&self, progress: &dyn Fn(&Progress), cancel: &AtomicBool) -> Result<IndexReport> {
        let folders = self.settings().folders;
        self.index_paths(&folders, progress, cancel)
    }

    /// Indexes the given folders (each must be configured or is added first).
    pub fn index_paths(
        &self,
        folders: &[PathBuf],
        progress: &dyn Fn(&Progress),
        cancel: &AtomicBool,
    ) -> Result<IndexReport> {
        self.run_index(progress, cancel, true, |ctx, report| {
            for folder in folders {
                index::sync_root(ctx, folder, report)?;
            }
            Ok(())
        })
    }

    /// What indexing `folders` would send to the embedder after the cache
    /// (`sift index --dry-run`, the desktop's estimate): notes are read and
    /// chunked (that costs nothing) but nothing is embedded.
    pub fn estimate(
        &self,
        folders: &[PathBuf],
        progress: &dyn Fn(&Progress),
    ) -> Result<crate::cost::Estimate> {
        let Some(embedder) = self.embedder.as_deref() else {
            return Err(Error::new(
                ErrorKind::ModelMissing,
                "no embedder to estimate for: run `sift model fetch` or choose a provider",
            ));
        };
        let _run = self.index_lock.lock().unwrap_or_else(|e| e.into_inner());
        let cancel = AtomicBool::new(false);
        let mut lock = LockFile::open(&self.data_dir, WRITER_LOCK)?;
        let _held = self.hold_writer(&mut lock, progress, &cancel)?;
        self.catch_up_vectors()?;
        let settings = self.settings();
        let ctx = IndexContext {
            store: &self.store,
            vectors: &self.vectors,
            embedder: Some(embedder),
            settings: &settings,
            progress,
            cancel: &cancel,
            started: Instant::now(),
        };
        let mut report = IndexReport::default();
        for folder in folders {
            index::sync_root(&ctx, folder, &mut report)?;
        }
        index::save_vectors(&ctx)?;
        let estimate = index::estimate_missing(&self.store, embedder, &self.data_dir)?;
        Ok(estimate.with_cap(settings.budget_usd, self.month_spent()?))
    }

    /// Spent on remote embedding this month, over every provider, as the ledger
    /// has it: the figure the monthly cap is checked against.
    pub fn month_spent(&self) -> Result<f64> {
        self.store
            .read(|conn| crate::cost::month_spent(conn, crate::cost::today()))
    }

    /// Brings the index up to date for a few changed paths inside indexed
    /// folders, as a watcher reports them: files or folders, changed, created or
    /// gone. Only those paths are looked at, so the cost follows the change, not
    /// the folder. Paths outside every indexed folder are ignored. The vector
    /// index is saved when its last save is older than [`VECTOR_SAVE_EVERY`] and
    /// when the engine closes; a crash in between is repaired on the next open
    /// from the embedding cache.
    pub fn index_changed(
        &self,
        paths: &[PathBuf],
        progress: &dyn Fn(&Progress),
        cancel: &AtomicBool,
    ) -> Result<IndexReport> {
        let folders = self.settings().folders;
        let mut by_root: Vec<(&PathBuf, Vec<PathBuf>)> = Vec::new();
        for path in paths {
            // The innermost folder holding the path (folders may nest).
            let Some(root) = folders
                .iter()
                .filter(|f| path.starts_with(f))
                .max_by_key(|f| f.as_os_str().len())
            else {
                continue;
            };
            match by_root.iter_mut().find(|(r, _)| *r == root) {
                Some((_, list)) => list.push(path.clone()),
                None => by_root.push((root, vec![path.clone()])),
            }
        }
        let due = self
            .vectors_saved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            >= VECTOR_SAVE_EVERY;
        self.run_index(progress, cancel, due, |ctx, report| {
            for (root, paths) in &by_root {
                index::sync_paths(ctx, root, paths, report)?;
            }
            Ok(())
        })
    }

    /// One index run: `sync` makes SQLite match files, then chunks lacking
    /// vectors are embedded. Only one run at a time; searches keep working.
    fn run_index(
        &self,
        progress: &dyn Fn(&Progress),
        cancel: &AtomicBool,
        save: bool,
        sync: impl FnOnce(&IndexContext<'_>, &mut IndexReport) -> Result<()>,
    ) -> Result<IndexReport> {
        let _run = self.index_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.indexing.store(true, Ordering::SeqCst);
        let _reset = ResetOnDrop(&self.indexing);
        // One writer across processes: wait for another process's run to end,
        // then start from what it wrote.
        let mut lock = LockFile::open(&self.data_dir, WRITER_LOCK)?;
        let _held = self.hold_writer(&mut lock, progress, cancel)?;
        self.catch_up_vectors()?;
        crate::store::tables::fill_in_scripts(&mut self.store.writer())?;
        self.writing_here.store(true, Ordering::SeqCst);
        let _writing = ResetOnDrop(&self.writing_here);
        let settings = self.settings();
        crate::background::set_share(settings.indexing_cpu);
        let ctx = IndexContext {
            store: &self.store,
            vectors: &self.vectors,
            embedder: self.embedder.as_deref(),
            settings: &settings,
            progress,
            cancel,
            started: Instant::now(),
        };
        let mut report = IndexReport::default();
        let checkpoints = self.store.checkpoints_beside();
        let result = crate::panics::catch(
            || "indexing".to_string(),
            || {
                sync(&ctx, &mut report)?;
                // Every note is keyword-searchable now (FTS5). The fast keyword
                // index catches up beside the embedding stage, so searches
                // during it skip FTS5's scoring of every match a moment after
                // it starts, and the first batch does not wait for it.
                std::thread::scope(|s| {
                    let keywords = s.spawn(|| self.catch_up_keywords());
                    let embedded = index::embed_missing(&ctx, &mut report);
                    // It reports its own failure; the run's end tries again.
                    let _ = keywords.join();
                    embedded
                })
            },
        )
        .and_then(|r| r)
        .map_err(|e| e.in_database(self.store.path()));
        drop(checkpoints);
        match &result {
            Err(e) if e.kind() == ErrorKind::BudgetExceeded => {
                self.stopped_by_cap.store(true, Ordering::SeqCst)
            }
            Err(_) => {}
            Ok(()) => self.stopped_by_cap.store(false, Ordering::SeqCst),
        }
        // Save whatever was done, even when stopped or failed: finished work is kept.
        let saved = if save || result.is_err() {
            let saved = index::save_vectors(&ctx);
            if saved.is_ok() {
                *self.vectors_saved.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            }
            saved
        } else {
            Ok(())
        };
        self.catch_up_keywords();
        result?;
        saved?;
        if save {
            self.save_and_prune(&PrunePolicy::default())?;
        }
        report.elapsed_ms = ctx.started.elapsed().as_millis() as u64;
        progress(&Progress {
            phase: Phase::Done,
            files_done: report.notes_indexed,
            files_total: report.notes_indexed,
            chunks_done: report.chunks_embedded + report.chunks_from_cache,
            chunks_total: report.chunks_embedded + report.chunks_from_cache,
            current: None,
            elapsed_ms: report.elapsed_ms,
            eta_ms: None,
            chunks_per_sec: None,
        });
        Ok(report)
    }

    /// Takes the writer lock, waiting (with a progress report saying why) while
    /// another process holds it, unless told not to wait or cancelled.
    pub(super) fn hold_writer<'l>(
        &self,
        lock: &'l mut LockFile,
        progress: &dyn Fn(&Progress),
        cancel: &AtomicBool,
    ) -> Result<Held<'l>> {
        let wait = self.wait_for_writer.load(Ordering::SeqCst);
        let started = Instant::now();
        let mut told = false;
        lock.hold(&mut |holder| {
            if cancel.load(Ordering::SeqCst) {
                return Err(Error::new(
                    ErrorKind::Cancelled,
                    "stopped while waiting for another Sift process to finish indexing",
                ));
            }
            if !wait {
                return Err(busy_error(holder));
            }
            if !told {
                told = true;
                progress(&Progress {
                    phase: Phase::Waiting,
                    files_done: 0,
                    files_total: 0,
                    chunks_done: 0,
                    chunks_total: 0,
                    current: Some(format!("{}; waiting", holder.describe())),
                    elapsed_ms: started.elapsed().as_millis() as u64,
                    eta_ms: None,
                    chunks_per_sec: None,
                });
            }
            Ok(())
        })
    }
}
