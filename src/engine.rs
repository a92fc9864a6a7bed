//! The engine: one data folder (settings, SQLite store, vector index) and the
//! operations the CLI and the desktop shell call. Cheap to share behind an `Arc`:
//! searches run concurrently with an index run (one writer, many readers).
//!
//! Several processes may open the same data folder (the app, `sift watch`,
//! `sift index`, `sift search`). Each index run first takes the writer lock
//! ([`crate::lock`]), waiting for another process's run to end, so only one
//! process writes and embeds at a time. Before each search, an engine compares
//! the store's generation with the one its vector index matches and catches up
//! from the store when another process wrote. Settings are changed by
//! read-modify-write under a lock and reloaded when another process saved them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{file_stamp, FileStamp, Settings, SETTINGS_FILE};
use crate::embed::Embedder;
use crate::error::{Error, ErrorKind, Result};
use crate::index::{self, IndexContext, IndexReport, Phase, Progress};
use crate::keyword_index::KeywordIndex;
use crate::lock::{busy_error, Held, LockFile, WRITER_LOCK};
use crate::search::{self, terms::Terms, Hit, Mode, Query, SearchResults};
use crate::store::{tables, FileStateRow, Store};
use crate::vectors::{OpenReport, VectorIndex};

/// The fast keyword index's folder inside the data folder.
pub const KEYWORDS_DIR: &str = "keywords";

/// How often runs of [`Engine::index_changed`] save the vector index (full runs
/// save at their end, and the engine saves when it closes).
pub const VECTOR_SAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Most notes a search or a related-notes list returns; larger limits are
/// lowered to it (candidate lists are sized from the limit, and a limit taken
/// as is from a command line or IPC once asked for 137 GB).
pub const MAX_LIMIT: usize = 1000;

/// How long a cached vector no chunk uses is kept: an undo, a branch switch
/// or a note moved out and back within it embeds nothing again.
pub const CACHE_GRACE_SECS: i64 = 7 * 24 * 3600;

/// Latest entries of the vector removal log kept after a prune: a process or
/// vector file at most this far behind catches up without a rebuild.
pub const REMOVAL_LOG_KEEP: i64 = 10_000;

/// When and how much [`Engine::prune`] deletes.
#[derive(Debug, Clone, Copy)]
pub struct PrunePolicy {
    /// The time to judge by (Unix seconds).
    pub now: i64,
    /// See [`CACHE_GRACE_SECS`].
    pub cache_grace_secs: i64,
    /// See [`REMOVAL_LOG_KEEP`].
    pub removal_log_keep: i64,
}

impl Default for PrunePolicy {
    fn default() -> Self {
        PrunePolicy {
            now: chrono::Utc::now().timestamp(),
            cache_grace_secs: CACHE_GRACE_SECS,
            removal_log_keep: REMOVAL_LOG_KEEP,
        }
    }
}

/// Index state for status displays.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Indexed folders.
    pub folders: Vec<String>,
    /// Notes indexed.
    pub notes: u64,
    /// Chunks stored.
    pub chunks: u64,
    /// Vectors in the active index.
    pub vectors: u64,
    /// Notes waiting to be (re)indexed.
    pub pending: u64,
    /// Files skipped, with reasons in `file_states`.
    pub skipped: u64,
    /// Files that failed.
    pub failed: u64,
    /// Chunks still without a vector for the active embedder.
    pub chunks_without_vectors: u64,
    /// Active embedder.
    pub embedder_id: Option<String>,
    /// Whether an embedder is available (semantic search works).
    pub model_available: bool,
    /// Latest time a note was indexed (Unix seconds).
    pub last_indexed: Option<i64>,
    /// Whether an index run is in progress.
    pub indexing: bool,
    /// Another Sift process is indexing this data folder right now (what it is,
    /// for people), e.g. "indexing is running in another Sift process (pid 42)".
    pub other_writer: Option<String>,
    /// Times the vector file was rebuilt from the embedding cache (damaged,
    /// from another database or out of step with it).
    pub vector_rebuilds: u64,
    /// The fast keyword index holds exactly the store's chunks (otherwise
    /// keyword search is answered by SQLite's full-text index, slower, until
    /// the next index run catches it up).
    pub keyword_index_current: bool,
    /// The database and vector files are encrypted (key in the OS keychain).
    pub encrypted: bool,
    /// Problems found with the data folder's files (a damaged settings file set
    /// aside), for people.
    pub warnings: Vec<String>,
    /// Indexed folders that cannot be reached now ("folder unavailable": moved,
    /// or on a drive that is not mounted); their notes stay in the index and the
    /// other folders are indexed as usual.
    pub unavailable_folders: Vec<String>,
    /// The monthly cap on remote embedding, when set.
    pub budget_usd: Option<f64>,
    /// Spent on remote embedding this month (the ledger of every process): the
    /// figure the cap is checked against.
    pub month_spent_usd: f64,
    /// Indexing is paused by the monthly cap: the last run stopped at it, or
    /// this month's spending reached it. Keyword search works meanwhile.
    pub budget_reached: bool,
    /// The data folder.
    pub data_dir: String,
    /// Indexed folders that are Obsidian vaults or lie inside one (notes there
    /// can be opened in Obsidian, see `Settings::open_in_obsidian`).
    pub obsidian_vaults: Vec<String>,
    /// Set when most notes are not in English and the local English model is
    /// in use: a sentence for people suggesting a multilingual provider.
    pub language_hint: Option<String>,
}

/// Where "open" takes a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenTarget {
    /// The file, in an editor or the default app.
    File(PathBuf),
    /// A URL for another app (`obsidian://open?...`).
    Url(String),
}

/// One note whole: its text and what Sift knows of it.
#[derive(Debug, Clone, Serialize)]
pub struct NoteView {
    /// The indexed folder holding it.
    pub root: String,
    /// Path relative to that folder, `/`-separated.
    pub path: String,
    /// Absolute path (symlinks resolved).
    pub abs_path: String,
    /// Display title.
    pub title: String,
    /// Tags, lower case.
    pub tags: Vec<String>,
    /// Aliases from front matter.
    pub aliases: Vec<String>,
    /// Modification time when indexed (Unix seconds).
    pub modified: i64,
    /// Date from front matter (Unix seconds), when it has one.
    pub note_date: Option<i64>,
    /// The text: the file as is, or the extracted text of a document.
    pub text: String,
}

/// Sift's engine over one data folder.
pub struct Engine {
    data_dir: PathBuf,
    settings: RwLock<Settings>,
    /// The version of settings.json the settings in memory came from or went to.
    settings_stamp: Mutex<Option<FileStamp>>,
    warnings: Mutex<Vec<String>>,
    wait_for_writer: AtomicBool,
    stopped_by_cap: AtomicBool,
    store: Store,
    embedder: Option<Arc<dyn Embedder>>,
    vectors: RwLock<Option<VectorIndex>>,
    vector_report: OpenReport,
    /// The fast keyword index (None: it cannot be opened here, FTS5 answers).
    keywords: RwLock<Option<KeywordIndex>>,
    index_lock: Mutex<()>,
    indexing: AtomicBool,
    /// This process's index run holds the writer lock: whatever is new in the
    /// store is its own work, whose vectors it adds itself a batch behind the
    /// cache, so searches skip catching up (they would otherwise add each
    /// freshly cached batch on their own time, holding the write lock).
    writing_here: AtomicBool,
    vectors_saved: Mutex<Instant>,
    query_vectors: Mutex<HashMap<String, Vec<f32>>>,
}

/// What [`Engine::warm_up`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarmUp {
    /// The index files read through into the page cache.
    pub read: crate::page_cache::Prefetched,
    /// Notes whose rows were read.
    pub notes: i64,
    /// Whether every chunk's note was read into memory.
    pub chunk_notes: bool,
}

impl Engine {
    /// Opens the data folder with its saved settings and the given embedder
    /// (`None`: keyword search only).
    pub fn open(data_dir: &Path, embedder: Option<Arc<dyn Embedder>>) -> Result<Engine> {
        crate::data_dir::ensure(data_dir)?;
        let (settings, warning) = Settings::load_reporting(data_dir)?;
        let engine = Engine::open_with(data_dir, settings, embedder)?;
        engine.warn(warning);
        Ok(engine)
    }

    /// Opens the data folder with explicit settings (not saved until changed).
    pub fn open_with(
        data_dir: &Path,
        settings: Settings,
        embedder: Option<Arc<dyn Embedder>>,
    ) -> Result<Engine> {
        crate::data_dir::ensure(data_dir)?;
        // The settings given match the file's version only if they are what it
        // holds; otherwise another process saved since the caller read them
        // (or they are explicit), and the file's version is reloaded when read.
        let settings_stamp = match Settings::load_stamped(data_dir) {
            Ok((on_disk, stamp, _)) if on_disk == settings => stamp,
            _ => None,
        };
        // Encryption turned on or off (here or by another process) is applied
        // before the database opens, when no other process has it open.
        match crate::encryption::reconcile(data_dir, settings.encrypt_at_rest) {
            Ok(crate::encryption::Reconciled::Encrypted) => {
                eprintln!("sift: the index is now encrypted (key in the OS keychain)")
            }
            Ok(crate::encryption::Reconciled::Decrypted) => {
                eprintln!("sift: the index is no longer encrypted")
            }
            Ok(crate::encryption::Reconciled::Waiting) => eprintln!(
                "sift: encryption is turned {} once no other Sift process has this data folder open",
                if settings.encrypt_at_rest { "on" } else { "off" }
            ),
            Ok(crate::encryption::Reconciled::Unchanged) => {}
            // The database stays as it was and opens as such (an encrypted
            // one without its key fails below with that reason).
            Err(e) => eprintln!(
                "sift: warning: could not turn encryption {}: {e}",
                if settings.encrypt_at_rest { "on" } else { "off" }
            ),
        }
        let store = Store::open(&data_dir.join(crate::data_dir::DB_FILE))?;
        let (vectors, vector_report) = match &embedder {
            Some(e) => {
                // Only the writer may write the vector file: reconciled here in
                // memory, saved only when no other process is indexing.
                let mut lock = LockFile::open(data_dir, WRITER_LOCK).ok();
                let held = lock.as_mut().and_then(|l| l.try_hold().ok().flatten());
                let conn = store.writer();
                // A rebuild of a large index takes minutes: said as it goes
                // (it carries on from its last save if interrupted).
                let said = std::cell::Cell::new(Instant::now());
                let (vi, report) = VectorIndex::open_with_progress(
                    &data_dir.join("vectors"),
                    e.id(),
                    e.dimensions(),
                    &conn,
                    held.is_some(),
                    store.key(),
                    &|p| {
                        if said.get().elapsed() >= Duration::from_secs(5) {
                            eprintln!(
                                "sift: rebuilding the vector index from the embedding cache: {} of {} vectors",
                                p.done, p.total
                            );
                            said.set(Instant::now());
                        }
                    },
                )?;
                (Some(vi), report)
            }
            None => (None, OpenReport::default()),
        };
        if let Some(reason) = &vector_report.rebuild_reason {
            match vector_report.resumed_from {
                Some(from) => eprintln!(
                    "sift: rebuilt the vector index from the embedding cache ({reason}; carried on from {from} vectors)"
                ),
                None => eprintln!("sift: rebuilt the vector index from the embedding cache: {reason}"),
            }
        }
        if let Some(err) = &vector_report.save_error {
            eprintln!("sift: warning: could not save the vector index (it works in memory): {err}");
        }
        // An encrypted index keeps its keywords in the encrypted database
        // (FTS5): tantivy's files would hold every word in the clear.
        let keywords = if store.key().is_some() {
            None
        } else {
            match KeywordIndex::open(&data_dir.join(KEYWORDS_DIR)) {
                Ok(ki) => Some(ki),
                Err(e) => {
                    eprintln!("sift: warning: keyword search uses SQLite's index only: {e}");
                    None
                }
            }
        };
        Ok(Engine {
            data_dir: data_dir.to_path_buf(),
            settings: RwLock::new(settings),
            settings_stamp: Mutex::new(settings_stamp),
            warnings: Mutex::new(Vec::new()),
            wait_for_writer: AtomicBool::new(true),
            stopped_by_cap: AtomicBool::new(false),
            store,
            embedder,
            vectors: RwLock::new(vectors),
            vector_report,
            keywords: RwLock::new(keywords),
            index_lock: Mutex::new(()),
            indexing: AtomicBool::new(false),
            writing_here: AtomicBool::new(false),
            vectors_saved: Mutex::new(Instant::now()),
            query_vectors: Mutex::new(HashMap::new()),
        })
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// How the vector index was opened (rebuilt? reconciled?).
    pub fn vector_open_report(&self) -> &OpenReport {
        &self.vector_report
    }

    /// The active embedder, if any.
    pub fn embedder(&self) -> Option<&Arc<dyn Embedder>> {
        self.embedder.as_ref()
    }

    /// A copy of the current settings (reloaded first when another process
    /// saved them since).
    pub fn settings(&self) -> Settings {
        let now = file_stamp(&self.data_dir.join(SETTINGS_FILE));
        let mut stamp = self
            .settings_stamp
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if now.is_some() && now != *stamp {
            if let Ok((fresh, fresh_stamp, warning)) = Settings::load_stamped(&self.data_dir) {
                *self.settings.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                *stamp = fresh_stamp;
                self.warn(warning);
            }
        }
        drop(stamp);
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces and saves the settings, all of them (see
    /// [`Engine::update_settings`] to change some).
    pub fn save_settings(&self, settings: Settings) -> Result<()> {
        self.update_settings(|s| {
            *s = settings;
            Ok(())
        })
    }

    /// Changes the settings by read-modify-write under the settings lock: a
    /// change another process saved meanwhile (a folder it added) is kept.
    pub fn update_settings(&self, f: impl FnOnce(&mut Settings) -> Result<()>) -> Result<()> {
        let mut stamp = self
            .settings_stamp
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let ours = self
            .settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (saved, new_stamp, ()) =
            Settings::update(&self.data_dir, Some((&ours, *stamp)), |s| {
                f(s)?;
                // Exclusion patterns that do not compile are refused, not saved.
                crate::patterns::check(&s.scan.exclude)?;
                crate::patterns::check(&s.scan.include)
            })?;
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = saved;
        *stamp = new_stamp;
        Ok(())
    }

    /// Whether index runs wait for another process's run to end (the default)
    /// or fail at once with [`ErrorKind::Busy`] (`sift index --no-wait`).
    pub fn set_wait_for_writer(&self, wait: bool) {
        self.wait_for_writer.store(wait, Ordering::SeqCst);
    }

    /// Adds a notes folder to the settings (not indexed until [`Engine::index`]).
    pub fn add_folder(&self, path: &Path) -> Result<PathBuf> {
        let path = canonical_folder(path)?;
        self.update_settings(|settings| {
            if !settings.folders.contains(&path) {
                settings.folders.push(path.clone());
            }
            Ok(())
        })?;
        Ok(path)
    }

    /// Removes a notes folder and everything indexed from it. Its cached
    /// vectors no other note uses stay for [`CACHE_GRACE_SECS`]: adding the
    /// folder back within that embeds (and pays for) nothing.
    pub fn remove_folder(&self, path: &Path) -> Result<()> {
        self.remove_folder_with(path, false)
    }

    /// Removes a notes folder like [`Engine::remove_folder`] and deletes its
    /// cached vectors that no other note uses at once (`sift forget <folder>`).
    pub fn forget_folder(&self, path: &Path) -> Result<()> {
        self.remove_folder_with(path, true)
    }

    fn remove_folder_with(&self, path: &Path, forget_vectors: bool) -> Result<()> {
        let _run = self.index_lock.lock().unwrap_or_else(|e| e.into_inner());
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.update_settings(|settings| {
            settings.folders.retain(|f| f != &path);
            Ok(())
        })?;
        let never = AtomicBool::new(false);
        let mut lock = LockFile::open(&self.data_dir, WRITER_LOCK)?;
        let _held = self.hold_writer(&mut lock, &|_| {}, &never)?;
        let mut conn = self.store.writer();
        if let Some(root_id) = tables::find_root(&conn, &path)? {
            let tx = conn.transaction()?;
            let hashes = tables::delete_root(&tx, root_id)?;
            if forget_vectors {
                tables::forget_unused_vectors(&tx, &hashes)?;
            }
            tx.commit()?;
        }
        drop(conn);
        // The keyword index applies the removals before the log is trimmed.
        self.catch_up_keywords();
        self.save_and_prune(&PrunePolicy::default())?;
        Ok(())
    }

    /// Saves the vector index, then deletes what nothing uses any more:
    /// cached vectors unused for the grace period and the old part of the
    /// vector removal log (index runs do this when they save).
    pub fn prune(&self, policy: &PrunePolicy) -> Result<crate::store::PruneReport> {
        let _run = self.index_lock.lock().unwrap_or_else(|e| e.into_inner());
        let never = AtomicBool::new(false);
        let mut lock = LockFile::open(&self.data_dir, WRITER_LOCK)?;
        let _held = self.hold_writer(&mut lock, &|_| {}, &never)?;
        self.save_and_prune(policy)
    }

    /// [`Engine::prune`] for a caller holding the writer lock.
    fn save_and_prune(&self, policy: &PrunePolicy) -> Result<crate::store::PruneReport> {
        let conn = self.store.writer();
        // The removal log is trimmed only up to what the saved vector file
        // applied; without a vector index here, other files rebuild if behind.
        let applied = match self
            .vectors
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            Some(vi) => {
                vi.save(&conn)?;
                vi.removal_seq()
            }
            None => i64::MAX,
        };
        let tx = conn.unchecked_transaction()?;
        let report = tables::prune(
            &tx,
            policy.now,
            policy.cache_grace_secs,
            policy.removal_log_keep,
            applied,
        )?;
        tx.commit()?;
        Ok(report)
    }

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

    /// Answers a query. Hybrid and semantic fall back to keyword results (with a
    /// warning) when there is no model or embedding the query fails.
    pub fn search(&self, query: &Query) -> Result<SearchResults> {
        let started = Instant::now();
        check_keyword_weight(query.keyword_weight)?;
        let filters = query.filters()?;
        let terms = Terms::parse(&query.text);
        let mut mode = query.mode;
        let mut warning = None;
        let query_vector = if mode == Mode::Keyword || query.text.trim().is_empty() {
            None
        } else {
            match self.query_vector(&query.text) {
                Ok(v) => Some(v),
                Err(e) => {
                    warning = Some(format!(
                        "meaning search unavailable, showing keyword results: {e}"
                    ));
                    mode = Mode::Keyword;
                    None
                }
            }
        };
        let keyword_weight = query
            .keyword_weight
            .unwrap_or_else(|| self.settings().keyword_weight);
        if query_vector.is_some() {
            self.catch_up_vectors()?;
        }
        let vectors = self.vectors.read().unwrap_or_else(|e| e.into_inner());
        let keywords = self.current_keywords(mode);
        let hits = self.store.read(|conn| {
            crate::panics::catch(
                || format!("searching for \"{}\"", query.text),
                || {
                    search::rank_notes(
                        conn,
                        keywords.as_ref().and_then(|k| k.as_ref()),
                        vectors.as_ref(),
                        query_vector.as_deref(),
                        &terms,
                        &filters,
                        mode,
                        query.limit.clamp(1, MAX_LIMIT),
                        keyword_weight,
                    )
                },
            )?
        })?;
        let mut hits = hits;
        if filters.date == search::DateSource::FrontMatter {
            for hit in hits.iter_mut().filter(|h| h.note_date.is_some()) {
                hit.date_source = search::DateSource::FrontMatter;
            }
        }
        Ok(SearchResults {
            hits,
            took_ms: started.elapsed().as_secs_f64() * 1000.0,
            mode,
            warning,
        })
    }

    /// Readies a long-lived process (the app, `sift watch`, the MCP server)
    /// for its first searches, in the background: the vector file and the
    /// keyword index are read through once into the OS's page cache, so that
    /// the first searches after a boot do not wait for the disk (see
    /// [`crate::page_cache`]); the notes table is read once (the same for its
    /// pages in the SQLite store); the embedder readies itself for queries
    /// (the local model packs its weights for bfloat16 products: a query's
    /// embedding in a third of the time); then every chunk's note is read into
    /// memory (what its second search would otherwise do: 0.1 s at 1M chunks).
    pub fn warm_up(self: &Arc<Self>) -> Option<std::thread::JoinHandle<WarmUp>> {
        let mut files: Vec<PathBuf> = self
            .vectors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|v| v.file_path().to_path_buf())
            .into_iter()
            .collect();
        if let Ok(dir) = std::fs::read_dir(self.data_dir.join(KEYWORDS_DIR)) {
            files.extend(dir.filter_map(|e| Some(e.ok()?.path())));
        }
        // Not a strong reference: the engine's last owner drops it (and saves
        // its vector index) on closing, whether or not this has finished.
        let engine = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("sift-warm-up".into())
            .spawn(move || {
                crate::background::lower_this_thread_priority();
                let mut done = WarmUp {
                    read: crate::page_cache::prefetch(&files),
                    ..WarmUp::default()
                };
                let Some(engine) = engine.upgrade() else {
                    return done;
                };
                // A keyword search reads its candidates' notes: on a cold
                // cache at 1M chunks, half its time (BENCHMARKS.md).
                done.notes = engine.store.read(tables::read_every_note).unwrap_or(0);
                if let Some(embedder) = engine.embedder.as_deref() {
                    embedder.prepare_for_queries();
                }
                let vectors = engine.vectors.read().unwrap_or_else(|e| e.into_inner());
                if let Some(vectors) = vectors.as_ref() {
                    done.chunk_notes = engine
                        .store
                        .read(|conn| vectors.read_chunk_notes(conn))
                        .unwrap_or(false);
                }
                done
            })
            .ok()
    }

    /// Notes closest in meaning to the note at `path` (absolute, or relative to
    /// the current folder).
    pub fn related(&self, path: &Path, limit: usize) -> Result<Vec<Hit>> {
        let limit = limit.clamp(1, MAX_LIMIT);
        let (root_id, rel_path) = self.locate_note(path)?;
        self.catch_up_vectors()?;
        let vectors = self.vectors.read().unwrap_or_else(|e| e.into_inner());
        let Some(vectors) = vectors.as_ref() else {
            return Err(Error::new(
                ErrorKind::ModelMissing,
                "related notes need the local model: run `sift model fetch`",
            ));
        };
        self.store.read(|conn| {
            let note_id = comparable_note(conn, root_id, &rel_path, path)?;
            crate::panics::catch(
                || format!("finding notes related to {}", path.display()),
                || search::related_notes(conn, vectors, note_id, limit),
            )?
        })
    }

    /// Notes of the same indexed folder linking to the note at `path`
    /// (wikilinks, embeds, Markdown links), most links first.
    pub fn backlinks(&self, path: &Path, limit: usize) -> Result<Vec<Hit>> {
        let limit = limit.clamp(1, MAX_LIMIT);
        let (root_id, rel_path) = self.locate_note(path)?;
        self.store.read(|conn| {
            let Some(note_id) = tables::find_note(conn, root_id, &rel_path)? else {
                return Err(Error::new(
                    ErrorKind::NotIndexed,
                    format!("{} is not indexed yet: run `sift index`", path.display()),
                ));
            };
            search::backlinks(conn, note_id, &rel_path, limit)
        })
    }

    /// How to open the indexed note at `path`: in Obsidian when the setting
    /// asks for it and the note is in a vault, else as a file.
    pub fn open_target(&self, path: &Path) -> Result<OpenTarget> {
        let file = self.indexed_note(path)?;
        if self.settings().open_in_obsidian {
            if let Some(url) = crate::obsidian::open_url(&file) {
                return Ok(OpenTarget::Url(url));
            }
        }
        Ok(OpenTarget::File(file))
    }

    /// Counts and state for status displays.
    pub fn status(&self) -> Result<Status> {
        self.catch_up_vectors()?;
        let embedder_id = self.embedder.as_ref().map(|e| e.id().to_string());
        let indexing = self.indexing.load(Ordering::SeqCst);
        let other_writer = if indexing {
            None
        } else {
            crate::lock::writer_busy(&self.data_dir).map(|h| h.describe())
        };
        let settings = self.settings();
        let warnings = self
            .warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let month_spent_usd = self.month_spent()?;
        let budget_reached = self.stopped_by_cap.load(Ordering::SeqCst)
            || settings
                .budget_usd
                .is_some_and(|cap| month_spent_usd >= cap - 1e-12);
        let vectors = self
            .vectors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |v| v.len() as u64);
        let keyword_index_current = self.current_keywords(Mode::Keyword).is_some();
        self.store.read(|conn| {
            let (notes, pending, skipped, failed) = tables::state_counts(conn)?;
            let chunks = tables::count_chunks(conn)?;
            let chunks_without_vectors = match &embedder_id {
                Some(id) => tables::count_missing_vectors(conn, id)?,
                None => chunks,
            };
            Ok(Status {
                folders: settings
                    .folders
                    .iter()
                    .map(|f| f.to_string_lossy().into_owned())
                    .collect(),
                notes,
                chunks,
                vectors,
                pending,
                skipped,
                failed,
                chunks_without_vectors,
                model_available: embedder_id.is_some(),
                embedder_id: embedder_id.clone(),
                last_indexed: tables::last_indexed(conn)?,
                indexing,
                other_writer: other_writer.clone(),
                vector_rebuilds: tables::vector_rebuilds(conn)?.max(0) as u64,
                keyword_index_current,
                encrypted: self.store.key().is_some(),
                warnings: warnings.clone(),
                unavailable_folders: settings
                    .folders
                    .iter()
                    .filter(|f| !f.is_dir())
                    .map(|f| f.to_string_lossy().into_owned())
                    .collect(),
                budget_usd: settings.budget_usd,
                month_spent_usd,
                budget_reached,
                obsidian_vaults: settings
                    .folders
                    .iter()
                    .filter(|f| crate::obsidian::is_in_vault(f))
                    .map(|f| f.to_string_lossy().into_owned())
                    .collect(),
                data_dir: self.data_dir.to_string_lossy().into_owned(),
                language_hint: crate::language::hint(conn, embedder_id.as_deref())?,
            })
        })
    }

    /// Files of each readable type in the indexed folders, enabled or not.
    pub fn file_type_counts(&self) -> Vec<crate::file_types::TypeCount> {
        let settings = self.settings();
        crate::file_types::count_types(&settings.folders, &settings.scan)
    }

    /// What exclusion patterns would do before they are saved (Settings'
    /// live count): the notes each pattern matches in the indexed folders, and
    /// how many the rules together leave out. Nothing is changed.
    pub fn preview_exclusions(
        &self,
        exclude: &[String],
        include: &[String],
    ) -> crate::patterns::PatternPreview {
        let settings = self.settings();
        let mut scan = settings.scan.clone();
        scan.exclude.clear();
        scan.include.clear();
        let notes: Vec<(PathBuf, Vec<String>)> = settings
            .folders
            .iter()
            .filter(|f| f.is_dir())
            .map(|f| {
                let files = crate::scan::scan_folder(f, &scan).files;
                (f.clone(), files.into_iter().map(|n| n.rel_path).collect())
            })
            .collect();
        crate::patterns::preview(&notes, exclude, include)
    }

    /// Every file's state, or only those not indexed.
    pub fn file_states(&self, only_problems: bool) -> Result<Vec<FileStateRow>> {
        self.store
            .read(|conn| tables::file_states(conn, only_problems))
    }

    /// The real path of the note at `path` (absolute) if Sift indexed it: after
    /// resolving symlinks it lies inside an indexed folder and the store holds
    /// it as indexed. Anything else (a file Sift skipped or never saw, a path
    /// outside the folders, a folder) is refused with `NotIndexed`.
    pub fn indexed_note(&self, path: &Path) -> Result<PathBuf> {
        let refuse = || {
            Error::new(
                ErrorKind::NotIndexed,
                format!("{} is not a note Sift indexed", path.display()),
            )
        };
        if !path.is_absolute() {
            return Err(refuse());
        }
        let real = std::fs::canonicalize(path).map_err(|_| refuse())?;
        if !real.is_file() {
            return Err(refuse());
        }
        let folders = self.settings().folders;
        let root = folders
            .iter()
            .filter(|f| real.starts_with(f))
            .max_by_key(|f| f.as_os_str().len())
            .ok_or_else(refuse)?;
        let rel = crate::scan::relative_path(&real, root);
        let state = self
            .store
            .read(|conn| match tables::find_root(conn, root)? {
                Some(root_id) => Ok(tables::note_state(conn, root_id, &rel)?.map(|(_, s, _)| s)),
                None => Ok(None),
            })?;
        match state.as_deref() {
            Some("indexed") => Ok(real),
            _ => Err(refuse()),
        }
    }

    /// A note path as a person or an assistant gives it: absolute as is;
    /// relative, joined to the first indexed folder holding such a file (else
    /// left as is, for the caller to refuse with a reason).
    pub fn resolve_note_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        self.settings()
            .folders
            .iter()
            .map(|f| f.join(path))
            .find(|p| p.is_file())
            .unwrap_or_else(|| path.to_path_buf())
    }

    /// The whole text of an indexed note with what Sift knows of it (`get
    /// note` for AI assistants). `path` is absolute, or relative to an indexed
    /// folder; only notes Sift indexed are read (see [`Engine::indexed_note`]),
    /// so `../` or a link cannot lead outside the folders. Converted documents
    /// (PDF, DOCX, ...) give their extracted text.
    pub fn note(&self, path: &Path) -> Result<NoteView> {
        let folders = self.settings().folders;
        let real = self.indexed_note(&self.resolve_note_path(path))?;
        let root = folders
            .iter()
            .filter(|f| real.starts_with(f))
            .max_by_key(|f| f.as_os_str().len())
            .cloned()
            .unwrap_or_default();
        let rel = crate::scan::relative_path(&real, &root);
        let meta = self
            .store
            .read(|conn| match tables::find_root(conn, &root)? {
                Some(root_id) => tables::note_meta(conn, root_id, &rel),
                None => Ok(None),
            })?;
        let meta = meta.ok_or_else(|| {
            Error::new(
                ErrorKind::NotIndexed,
                format!("{} is not a note Sift indexed", path.display()),
            )
        })?;
        let scan = self.settings().scan;
        let read = match crate::extract::read_document(&real, &meta.ext, &scan) {
            Some(doc) => doc.map(|d| d.note.text),
            None => {
                crate::note::read_note_text(&real, scan.max_bytes_for(&meta.ext)).map(|n| n.text)
            }
        };
        let text = read.map_err(|failure| {
            let why = match failure {
                crate::note::ReadFailure::Vanished => {
                    "it was deleted since it was indexed".to_string()
                }
                crate::note::ReadFailure::Skipped(reason) => reason,
            };
            Error::new(
                ErrorKind::BadPath,
                format!("cannot read {}: {why}", real.display()),
            )
        })?;
        Ok(NoteView {
            root: root.to_string_lossy().into_owned(),
            path: rel,
            abs_path: real.to_string_lossy().into_owned(),
            title: meta.title,
            tags: meta.tags,
            aliases: meta.aliases,
            modified: meta.mtime_ns.div_euclid(1_000_000_000),
            note_date: meta.note_date,
            text,
        })
    }

    /// Whether `path` lies inside an indexed folder (for opening files safely).
    pub fn is_inside_indexed_folder(&self, path: &Path) -> bool {
        let Ok(path) = std::fs::canonicalize(path) else {
            return false;
        };
        self.settings().folders.iter().any(|f| path.starts_with(f))
    }

    /// The store (for tools and tests).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Number of vectors in the active index (after catching up with the store).
    pub fn vector_count(&self) -> usize {
        let _ = self.catch_up_vectors();
        self.vectors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |v| v.len())
    }

    /// The fast keyword index when it holds exactly what the store holds
    /// (reloaded first if another process committed to it); None when the
    /// query needs no keywords or FTS5 must answer (behind, missing, or being
    /// caught up by this process's index run: a search does not wait for that).
    fn current_keywords(&self, mode: Mode) -> Option<RwLockReadGuard<'_, Option<KeywordIndex>>> {
        if mode == Mode::Semantic {
            return None;
        }
        let current = |ki: &KeywordIndex| self.store.read(|c| ki.is_current(c)).unwrap_or(false);
        {
            let guard = try_lock(self.keywords.try_read())?;
            match guard.as_ref() {
                None => return None,
                Some(ki) if current(ki) => return Some(guard),
                Some(_) => {}
            }
        }
        {
            let mut guard = try_lock(self.keywords.try_write())?;
            if let Some(ki) = guard.as_mut() {
                ki.reload();
            }
        }
        let guard = try_lock(self.keywords.try_read())?;
        guard.as_ref().is_some_and(current).then_some(guard)
    }

    /// Brings the fast keyword index up to the store. Only while holding the
    /// writer lock. A failure is reported, not raised: FTS5 answers meanwhile,
    /// and the next run tries again (a damaged index is started afresh).
    fn catch_up_keywords(&self) {
        let mut guard = self.keywords.write().unwrap_or_else(|e| e.into_inner());
        let Some(ki) = guard.as_mut() else { return };
        let result = self.store.read(|conn| ki.catch_up(conn));
        if let Err(e) = result {
            eprintln!("sift: warning: rebuilding the keyword index after: {e}");
            let retried = ki
                .reset()
                .and_then(|()| self.store.read(|conn| ki.catch_up(conn)));
            if let Err(e) = retried {
                eprintln!("sift: warning: keyword search uses SQLite's index only: {e}");
            }
        }
    }

    /// Brings the vector index up to the store's generation when another process
    /// (or another engine) wrote: one small read when nothing changed.
    fn catch_up_vectors(&self) -> Result<()> {
        if self.writing_here.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(current) = self
            .vectors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(VectorIndex::generation)
        else {
            return Ok(());
        };
        if self.store.read(tables::generation)? == current {
            return Ok(());
        }
        // Not this process's run: another process is indexing (searches keep
        // to one thread meanwhile, see `background::foreground`).
        crate::background::note_work_elsewhere();
        let mut vectors = self.vectors.write().unwrap_or_else(|e| e.into_inner());
        if let Some(vi) = vectors.as_mut() {
            // The other run's newest vectors join the graph here, on this
            // thread alone while that run holds the cores.
            crate::background::foreground(|| self.store.read(|conn| vi.catch_up(conn)))?;
        }
        Ok(())
    }

    /// Takes the writer lock, waiting (with a progress report saying why) while
    /// another process holds it, unless told not to wait or cancelled.
    fn hold_writer<'l>(
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

    fn warn(&self, warning: Option<String>) {
        if let Some(w) = warning {
            let mut warnings = self.warnings.lock().unwrap_or_else(|e| e.into_inner());
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
    }

    fn query_vector(&self, text: &str) -> Result<Vec<f32>> {
        let Some(embedder) = &self.embedder else {
            return Err(Error::new(
                ErrorKind::ModelMissing,
                "no embedding model: run `sift model fetch`",
            ));
        };
        let key = text.trim().to_string();
        if let Some(v) = self
            .query_vectors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(v.clone());
        }
        let v = crate::panics::catch(
            || format!("embedding the query with {}", embedder.id()),
            || embedder.embed_query(&key),
        )??;
        let mut cache = self.query_vectors.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 256 {
            cache.clear();
        }
        cache.insert(key, v.clone());
        Ok(v)
    }

    fn locate_note(&self, path: &Path) -> Result<(i64, String)> {
        let abs = match std::fs::canonicalize(path) {
            Ok(abs) if abs.is_dir() => {
                return Err(Error::new(
                    ErrorKind::BadPath,
                    format!("{} is a folder: give a note file", path.display()),
                ))
            }
            Ok(abs) => abs,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::new(
                    ErrorKind::BadPath,
                    format!(
                        "{} does not exist: check the path (a note file inside an indexed folder)",
                        path.display()
                    ),
                ))
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let roots = self.store.read(tables::roots)?;
        for (root_id, root) in roots {
            if let Ok(rel) = abs.strip_prefix(&root) {
                return Ok((root_id, crate::scan::relative_path(rel, Path::new(""))));
            }
        }
        Err(Error::new(
            ErrorKind::NotIndexed,
            format!(
                "{} is not inside an indexed folder: add its folder with `sift index <folder>`",
                path.display()
            ),
        ))
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Shutdown: persist the vector index so the next start need not
        // reconcile, unless another process is the writer now.
        let Some(vi) = self
            .vectors
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        else {
            return;
        };
        let Ok(mut lock) = LockFile::open(&self.data_dir, WRITER_LOCK) else {
            return;
        };
        let held = lock.try_hold();
        if let Ok(Some(_held)) = &held {
            let _ = self.store.read(|conn| vi.save(conn));
        }
    }
}

/// A lock taken without waiting: `None` while another thread holds it (a
/// poisoned lock is taken as it is, as everywhere here).
fn try_lock<G>(r: std::sync::TryLockResult<G>) -> Option<G> {
    match r {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

struct ResetOnDrop<'a>(&'a AtomicBool);

impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

fn canonical_folder(path: &Path) -> Result<PathBuf> {
    let canonical = std::fs::canonicalize(path).map_err(|e| {
        Error::new(
            ErrorKind::BadPath,
            format!("cannot use {}: {e}", path.display()),
        )
    })?;
    if !canonical.is_dir() {
        return Err(Error::new(
            ErrorKind::BadPath,
            format!("{} is not a folder", path.display()),
        ));
    }
    // Folders are kept by name as text: a name that is not text would be
    // changed on the way in and never found again.
    if canonical.to_str().is_none() {
        return Err(Error::new(
            ErrorKind::BadPath,
            format!(
                "cannot index {}: its path is not valid UTF-8; rename the folder",
                crate::scan::display_path(&canonical)
            ),
        ));
    }
    Ok(canonical)
}

/// Refuses a keyword weight that is not a number from 0 to 1 (NaN would
/// make every score NaN).
fn check_keyword_weight(weight: Option<f32>) -> Result<()> {
    match weight {
        Some(w) if !(w.is_finite() && (0.0..=1.0).contains(&w)) => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("keyword weight must be a number from 0 to 1, not {w}"),
        )),
        _ => Ok(()),
    }
}

/// The id of the note at `rel_path` if it is indexed and has text, else why
/// not (`shown` is the path as the user gave it). A note whose chunks have no
/// vectors yet (embedding still to come) has no related notes, without error.
fn comparable_note(
    conn: &rusqlite::Connection,
    root_id: i64,
    rel_path: &str,
    shown: &Path,
) -> Result<i64> {
    let shown = shown.display();
    let not_indexed = |why: String| Error::new(ErrorKind::NotIndexed, why);
    let Some((note_id, state, reason)) = tables::note_state(conn, root_id, rel_path)? else {
        return Err(not_indexed(format!(
            "{shown} is not indexed yet: run `sift index`"
        )));
    };
    match state.as_str() {
        "indexed" => {}
        "skipped" | "failed" => {
            return Err(not_indexed(format!(
            "{shown} is not indexed ({state}: {}); `sift status --files` lists every file's state",
            reason.unwrap_or_default()
        )))
        }
        _ => {
            return Err(not_indexed(format!(
                "{shown} is not indexed yet: run `sift index`"
            )))
        }
    }
    let chunks = tables::chunk_ids_of_note(conn, note_id)?;
    if chunks.is_empty() {
        return Err(Error::new(
            ErrorKind::EmptyNote,
            format!("{shown} has no text to compare with other notes (it is empty or holds only front matter)"),
        ));
    }
    Ok(note_id)
}
