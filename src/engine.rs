//! The engine: one data folder (settings, SQLite store, vector index) and the
//! operations the CLI and the desktop shell call. Cheap to share behind an `Arc`:
//! searches run concurrently with an index run (one writer, many readers).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde::Serialize;

use crate::config::Settings;
use crate::embed::Embedder;
use crate::error::{Error, ErrorKind, Result};
use crate::index::{self, IndexContext, IndexReport, Phase, Progress};
use crate::search::{self, terms::Terms, Hit, Mode, Query, SearchResults};
use crate::store::{tables, FileStateRow, Store};
use crate::vectors::{OpenReport, VectorIndex};

/// How often runs of [`Engine::index_changed`] save the vector index (full runs
/// save at their end, and the engine saves when it closes).
pub const VECTOR_SAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

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
    /// The data folder.
    pub data_dir: String,
    /// Set when most notes are not in English and the local English model is
    /// in use: a sentence for people suggesting a multilingual provider.
    pub language_hint: Option<String>,
}

/// Sift's engine over one data folder.
pub struct Engine {
    data_dir: PathBuf,
    settings: RwLock<Settings>,
    store: Store,
    embedder: Option<Arc<dyn Embedder>>,
    vectors: RwLock<Option<VectorIndex>>,
    vector_report: OpenReport,
    index_lock: Mutex<()>,
    indexing: AtomicBool,
    vectors_saved: Mutex<Instant>,
    query_vectors: Mutex<HashMap<String, Vec<f32>>>,
}

impl Engine {
    /// Opens the data folder with its saved settings and the given embedder
    /// (`None`: keyword search only).
    pub fn open(data_dir: &Path, embedder: Option<Arc<dyn Embedder>>) -> Result<Engine> {
        std::fs::create_dir_all(data_dir).map_err(|e| Error::io(data_dir, e))?;
        let settings = Settings::load(data_dir)?;
        Engine::open_with(data_dir, settings, embedder)
    }

    /// Opens the data folder with explicit settings (not saved until changed).
    pub fn open_with(
        data_dir: &Path,
        settings: Settings,
        embedder: Option<Arc<dyn Embedder>>,
    ) -> Result<Engine> {
        std::fs::create_dir_all(data_dir).map_err(|e| Error::io(data_dir, e))?;
        let store = Store::open(&data_dir.join("sift.db"))?;
        let (vectors, vector_report) = match &embedder {
            Some(e) => {
                let conn = store.writer();
                let (vi, report) =
                    VectorIndex::open(&data_dir.join("vectors"), e.id(), e.dimensions(), &conn)?;
                (Some(vi), report)
            }
            None => (None, OpenReport::default()),
        };
        Ok(Engine {
            data_dir: data_dir.to_path_buf(),
            settings: RwLock::new(settings),
            store,
            embedder,
            vectors: RwLock::new(vectors),
            vector_report,
            index_lock: Mutex::new(()),
            indexing: AtomicBool::new(false),
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

    /// A copy of the current settings.
    pub fn settings(&self) -> Settings {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces and saves the settings.
    pub fn save_settings(&self, settings: Settings) -> Result<()> {
        settings.save(&self.data_dir)?;
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = settings;
        Ok(())
    }

    /// Adds a notes folder to the settings (not indexed until [`Engine::index`]).
    pub fn add_folder(&self, path: &Path) -> Result<PathBuf> {
        let path = canonical_folder(path)?;
        let mut settings = self.settings();
        if !settings.folders.contains(&path) {
            settings.folders.push(path.clone());
            self.save_settings(settings)?;
        }
        Ok(path)
    }

    /// Removes a notes folder and everything indexed from it.
    pub fn remove_folder(&self, path: &Path) -> Result<()> {
        let _run = self.index_lock.lock().unwrap_or_else(|e| e.into_inner());
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut settings = self.settings();
        settings.folders.retain(|f| f != &path);
        self.save_settings(settings)?;
        let mut conn = self.store.writer();
        if let Some(root_id) = tables::find_root(&conn, &path)? {
            let tx = conn.transaction()?;
            tables::delete_root(&tx, root_id)?;
            tx.commit()?;
        }
        if let Some(vi) = self
            .vectors
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            vi.apply_removals(&conn)?;
            vi.save()?;
        }
        Ok(())
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
        let settings = self.settings();
        let cancel = AtomicBool::new(false);
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
        index::estimate_missing(&self.store, embedder, &self.data_dir)
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
        let settings = self.settings();
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
        let result = sync(&ctx, &mut report).and_then(|()| index::embed_missing(&ctx, &mut report));
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
        result?;
        saved?;
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
        });
        Ok(report)
    }

    /// Answers a query. Hybrid and semantic fall back to keyword results (with a
    /// warning) when there is no model or embedding the query fails.
    pub fn search(&self, query: &Query) -> Result<SearchResults> {
        let started = Instant::now();
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
        let vectors = self.vectors.read().unwrap_or_else(|e| e.into_inner());
        let hits = self.store.read(|conn| {
            search::rank_notes(
                conn,
                vectors.as_ref(),
                query_vector.as_deref(),
                &terms,
                &filters,
                mode,
                query.limit.max(1),
                keyword_weight,
            )
        })?;
        Ok(SearchResults {
            hits,
            took_ms: started.elapsed().as_secs_f64() * 1000.0,
            mode,
            warning,
        })
    }

    /// Notes closest in meaning to the note at `path` (absolute, or relative to
    /// the current folder).
    pub fn related(&self, path: &Path, limit: usize) -> Result<Vec<Hit>> {
        let (root_id, rel_path) = self.locate_note(path)?;
        let vectors = self.vectors.read().unwrap_or_else(|e| e.into_inner());
        let Some(vectors) = vectors.as_ref() else {
            return Err(Error::new(
                ErrorKind::ModelMissing,
                "related notes need the local model: run `sift model fetch`",
            ));
        };
        self.store.read(|conn| {
            let note_id = tables::find_note(conn, root_id, &rel_path)?.ok_or_else(|| {
                Error::new(
                    ErrorKind::NotIndexed,
                    format!("{rel_path} is not indexed yet"),
                )
            })?;
            search::related_notes(conn, vectors, note_id, limit)
        })
    }

    /// Counts and state for status displays.
    pub fn status(&self) -> Result<Status> {
        let embedder_id = self.embedder.as_ref().map(|e| e.id().to_string());
        let vectors = self
            .vectors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |v| v.len() as u64);
        self.store.read(|conn| {
            let (notes, pending, skipped, failed) = tables::state_counts(conn)?;
            let chunks = tables::count_chunks(conn)?;
            let chunks_without_vectors = match &embedder_id {
                Some(id) => tables::count_missing_vectors(conn, id)?,
                None => chunks,
            };
            Ok(Status {
                folders: self
                    .settings()
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
                indexing: self.indexing.load(Ordering::SeqCst),
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

    /// Every file's state, or only those not indexed.
    pub fn file_states(&self, only_problems: bool) -> Result<Vec<FileStateRow>> {
        self.store
            .read(|conn| tables::file_states(conn, only_problems))
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

    /// Number of vectors in the active index.
    pub fn vector_count(&self) -> usize {
        self.vectors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |v| v.len())
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
        let v = embedder.embed_query(&key)?;
        let mut cache = self.query_vectors.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 256 {
            cache.clear();
        }
        cache.insert(key, v.clone());
        Ok(v)
    }

    fn locate_note(&self, path: &Path) -> Result<(i64, String)> {
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let roots = self.store.read(tables::roots)?;
        for (root_id, root) in roots {
            if let Ok(rel) = abs.strip_prefix(&root) {
                return Ok((root_id, crate::scan::relative_path(rel, Path::new(""))));
            }
        }
        Err(Error::new(
            ErrorKind::NotIndexed,
            format!("{} is not inside an indexed folder", path.display()),
        ))
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Shutdown: persist the vector index so the next start need not reconcile.
        let conn = self.store.writer();
        if let Some(vi) = self
            .vectors
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            let _ = vi.apply_removals(&conn).and_then(|_| vi.save());
        }
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
    Ok(canonical)
}
