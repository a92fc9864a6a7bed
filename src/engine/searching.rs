//! Searches, related notes and backlinks, each first catching up with what
//! other processes wrote; the query vector cache and the first-search warm-up.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLockReadGuard};
use std::time::Instant;

use super::{
    check_keyword_weight, comparable_note, try_lock, Engine, OpenTarget, WarmUp, KEYWORDS_DIR,
    MAX_LIMIT,
};
use crate::error::{Error, ErrorKind, Result};
use crate::keyword_index::KeywordIndex;
use crate::search::{self, terms::Terms, Hit, Mode, Query, SearchResults};
use crate::store::tables;
use crate::vectors::VectorIndex;

impl Engine {
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

    /// The fast keyword index when it holds exactly what the store holds
    /// (reloaded first if another process committed to it); None when the
    /// query needs no keywords or FTS5 must answer (behind, missing, or being
    /// caught up by this process's index run: a search does not wait for that).
    pub(super) fn current_keywords(
        &self,
        mode: Mode,
    ) -> Option<RwLockReadGuard<'_, Option<KeywordIndex>>> {
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
    pub(super) fn catch_up_keywords(&self) {
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
    pub(super) fn catch_up_vectors(&self) -> Result<()> {
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
}
