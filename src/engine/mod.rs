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
//!
//! This file opens the data folder and keeps settings and folders; the
//! operations live by concern in `indexing.rs` (index runs, the writer lock),
//! `searching.rs` (search, related notes, backlinks, catching up) and
//! `notes.rs` (status, file states, notes looked up by path).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{file_stamp, FileStamp, Settings, SETTINGS_FILE};
use crate::embed::Embedder;
use crate::error::{Error, ErrorKind, Result};
use crate::keyword_index::KeywordIndex;
use crate::lock::{LockFile, WRITER_LOCK};
use crate::store::{tables, Store};
use crate::vectors::{OpenReport, VectorIndex};

mod indexing;
mod notes;
mod searching;

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
    /// What the local model multiplies in on this CPU (e.g. "8-bit integers,
    /// AVX-512 VNNI"), when it is the active embedder.
    pub local_arithmetic: Option<String>,
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

    fn warn(&self, warning: Option<String>) {
        if let Some(w) = warning {
            let mut warnings = self.warnings.lock().unwrap_or_else(|e| e.into_inner());
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
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
