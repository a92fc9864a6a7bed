//! The usearch vector index of one embedder, saved beside the database.
//!
//! One file per embedder, `vectors/<slug>.vectors` ([`file`]): the usearch
//! index (i8), then a label (embedder id, dimensions, vector count, the last
//! applied entry of the `vector_removals` log, the store generation and store
//! id it matches, checksums). The file is written whole under a temp name and
//! renamed, so the graph and its label change together or not at all
//! ([`save`]).
//!
//! SQLite is the source of truth. Opening checks the label against the store: a
//! file of another database, from a later generation than the database, with a
//! wrong checksum (garbage written over it) or a wrong count is rebuilt from the
//! embedding cache, never re-embedded (counted in the store, reported by
//! [`OpenReport`]); an older generation is caught up (removals replayed, missing
//! vectors added from the cache). A file at the store's generation is served
//! at once as a memory-mapped view (no copy, no scan of the store beyond one
//! count); it is loaded into memory the first time this process changes it.
//!
//! A rebuild saves what it has every [`CHECKPOINT_EVERY`] vectors (when this
//! process may save), marked with how far it read the cache: a rebuild that
//! is interrupted carries on from there at the next open.
//!
//! Only the process holding the writer lock ([`crate::lock`]) saves the file.
//! Every process catches its in-memory index up with the store when the store's
//! generation moves ([`VectorIndex::catch_up`]): removals from the log, new
//! chunks whose text has a cached vector, and chunks that were waiting for one.

mod chunk_notes;
mod file;
mod hnsw;
mod huge_pages;
mod save;

pub use save::SaveTicket;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use memmap2::Mmap;
use rayon::prelude::*;
use rusqlite::Connection;
use usearch::{Index, IndexOptions};

use crate::encryption::DataKey;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{decode_cached, tables};
use chunk_notes::ChunkNotes;
use file::{Label, NO_FILE};

/// Up to this many vectors, searches compare the query with every vector.
const EXACT_SEARCH_MAX: usize = 10_000;

/// Below this many vectors, adding on one thread beats fanning out.
const PARALLEL_ADDS: usize = 16;

/// Vectors a rebuild from the cache adds between two saves of its progress
/// (about a minute of graph construction on two cores; a save of 1M vectors
/// takes a few seconds). `SIFT_VECTOR_CHECKPOINT_EVERY` overrides it (tests).
pub const CHECKPOINT_EVERY: usize = 131_072;

/// How opening went, for status and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// The index was rebuilt from the embedding cache.
    pub rebuilt: bool,
    /// Why it was rebuilt.
    pub rebuild_reason: Option<String>,
    /// Vectors added from the cache while reconciling.
    pub added: usize,
    /// Vectors removed while replaying the removal log.
    pub removed: usize,
    /// A rebuild interrupted earlier was carried on from this many vectors.
    pub resumed_from: Option<usize>,
    /// Saving the reconciled index failed (a full disk): the index in memory is
    /// right and the next writer saves it.
    pub save_error: Option<String>,
}

/// How far a rebuild from the embedding cache has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildProgress {
    /// Vectors in the index so far.
    pub done: usize,
    /// Chunks in the store (the vectors the rebuild ends with, give or take
    /// chunks still waiting for theirs).
    pub total: usize,
}

/// An approximate nearest-neighbour index of chunk vectors for one embedder.
pub struct VectorIndex {
    index: Index,
    /// The file `index` is a read-only view of, while it is one. Declared
    /// after `index`: dropped after it.
    mapped: Option<(Mmap, Label)>,
    embedder_id: String,
    dimensions: usize,
    path: PathBuf,
    removal_seq: i64,
    dirty: bool,
    /// Changes made to the vectors in memory, counted so a save written under
    /// a shared borrow knows whether it still matches (`save_end`).
    changes: u64,
    /// The store generation the vectors in memory match.
    generation: i64,
    /// The generation of the file on disk as this process last saw or wrote it.
    saved_generation: i64,
    store_id: i64,
    /// Highest chunk id looked at.
    max_chunk_id: i64,
    /// Chunks looked at that had no cached vector yet, with their text hash;
    /// `None` until needed when the index was opened as a view.
    pending: Option<HashMap<i64, [u8; 32]>>,
    /// Set while a rebuild is under way: the chunk id it has read up to.
    rebuild_through: Option<i64>,
    /// A search expansion set by hand (benchmarks), instead of by size.
    expansion_search: Option<usize>,
    /// Seals the file when the data folder is encrypted.
    key: Option<DataKey>,
    /// The notes of the chunks searches meet (searches hold `&self`).
    notes: Mutex<ChunkNotes>,
}

/// What a rebuild reports to and whether it may save its progress.
struct Rebuild<'a> {
    progress: &'a dyn Fn(RebuildProgress),
    total: usize,
    save: bool,
    every: usize,
    since_save: usize,
}

impl VectorIndex {
    /// Opens the index of `embedder_id` in `dir`, reconciling it with the store.
    /// Only with `may_save` (the caller holds the writer lock) is a reconciled
    /// or rebuilt index written back; a failed save is reported, not an error.
    pub fn open(
        dir: &Path,
        embedder_id: &str,
        dimensions: usize,
        conn: &Connection,
        may_save: bool,
        key: Option<&DataKey>,
    ) -> Result<(VectorIndex, OpenReport)> {
        Self::open_with_progress(dir, embedder_id, dimensions, conn, may_save, key, &|_| {})
    }

    /// [`VectorIndex::open`], telling `progress` how a rebuild from the cache
    /// goes (after every batch of vectors).
    pub fn open_with_progress(
        dir: &Path,
        embedder_id: &str,
        dimensions: usize,
        conn: &Connection,
        may_save: bool,
        key: Option<&DataKey>,
        progress: &dyn Fn(RebuildProgress),
    ) -> Result<(VectorIndex, OpenReport)> {
        if may_save {
            // A full disk is reported by the save below, not here.
            let _ = std::fs::create_dir_all(dir);
        }
        let slug = file_slug(embedder_id);
        let path = dir.join(format!("{slug}.vectors"));
        if may_save {
            file::remove_stale_files(dir, &slug);
        }
        let mut report = OpenReport::default();
        let mut vi = VectorIndex {
            index: new_index(dimensions, 0)?,
            mapped: None,
            embedder_id: embedder_id.to_string(),
            dimensions,
            path,
            removal_seq: 0,
            dirty: false,
            changes: 0,
            generation: 0,
            saved_generation: -1,
            store_id: 0,
            max_chunk_id: 0,
            pending: None,
            rebuild_through: None,
            expansion_search: None,
            key: key.cloned(),
            notes: Mutex::default(),
        };
        let every = std::env::var("SIFT_VECTOR_CHECKPOINT_EVERY")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or(CHECKPOINT_EVERY);
        {
            // One snapshot of the store for the whole reconciliation.
            let tx = conn.unchecked_transaction()?;
            vi.store_id = tables::store_id(&tx)?;
            let generation = tables::generation(&tx)?;
            let mut rebuild = Rebuild {
                progress,
                total: 0,
                save: may_save,
                every,
                since_save: 0,
            };
            let loaded = file::open(&vi.path, embedder_id, dimensions, vi.store_id, key)
                .and_then(|opened| {
                    if opened.label.generation > generation {
                        Err(format!(
                            "the vector file is from generation {}, the database is at {generation}",
                            opened.label.generation
                        ))
                    } else {
                        Ok(opened)
                    }
                });
            // Whether the store must be counted against the index (not when
            // a file at the store's generation says how many chunks wait).
            let mut check_count = true;
            // A file an older Sift wrote at the store's generation: its label
            // lacks the counts that spare later opens a scan of every chunk.
            let mut old_label = false;
            match loaded {
                Ok(opened) => {
                    let label = opened.label.clone();
                    old_label = label.generation == generation
                        && (label.pending.is_none() || label.links_crc32.is_none());
                    vi.index = opened.index;
                    vi.mapped = opened.map.map(|m| (m, opened.label));
                    vi.saved_generation = label.generation;
                    let trimmed = label.generation < generation
                        && label.removal_seq < tables::removals_pruned_through(&tx)?;
                    if trimmed {
                        report.rebuilt = true;
                        report.rebuild_reason = Some(
                            "removals the vector file had not applied were trimmed from the log"
                                .into(),
                        );
                        rebuild.total = tables::count_chunks(&tx)? as usize;
                        report.added = vi.rebuild_from_cache(&tx, Some(&mut rebuild))?;
                    } else if let Some(through) = label.rebuild_through {
                        // A rebuild that was stopped: carried on from the last
                        // chunk its last save had read.
                        report.rebuilt = true;
                        report.rebuild_reason =
                            Some("a rebuild from the embedding cache was interrupted".into());
                        report.resumed_from = Some(vi.index.size());
                        vi.removal_seq = label.removal_seq;
                        report.removed = vi.apply_removals(&tx)?;
                        vi.generation = generation;
                        vi.removal_seq = tables::max_removal_seq(&tx)?;
                        rebuild.total = tables::count_chunks(&tx)? as usize;
                        rebuild.since_save = 0;
                        vi.rebuild_through = Some(through);
                        report.added = vi.add_from_cache(&tx, through, Some(&mut rebuild))?;
                        vi.rebuild_through = None;
                        vi.dirty = true;
                    } else if label.generation < generation {
                        if let Err(err) = vi.make_writable() {
                            // Its vectors turned out damaged when loaded.
                            report.rebuilt = true;
                            report.rebuild_reason = Some(err.to_string());
                            rebuild.total = tables::count_chunks(&tx)? as usize;
                            report.added = vi.rebuild_from_cache(&tx, Some(&mut rebuild))?;
                        } else {
                            // Caught up from the removal log and the cache.
                            vi.removal_seq = label.removal_seq;
                            report.removed = vi.apply_removals(&tx)?;
                            report.added = vi.add_from_cache(&tx, 0, None)?;
                            vi.dirty = true;
                        }
                    } else if let Some(pending) = label.pending {
                        // At the store's generation: the same chunks and
                        // vectors as when it was written. One count (not a
                        // scan of every chunk's vector) confirms it.
                        let expected =
                            (tables::count_chunks(&tx)? as usize).saturating_sub(pending);
                        check_count = vi.index.size() != expected;
                    }
                }
                Err(reason) => {
                    // A data folder with no vectors yet has nothing to rebuild.
                    vi.generation = generation;
                    vi.removal_seq = tables::max_removal_seq(&tx)?;
                    rebuild.total = tables::count_chunks(&tx)? as usize;
                    if rebuild.total > 0 {
                        vi.index = new_index(dimensions, rebuild.total)?;
                    }
                    vi.rebuild_through = Some(0);
                    report.added = vi.add_from_cache(&tx, 0, Some(&mut rebuild))?;
                    vi.rebuild_through = None;
                    if reason != NO_FILE || report.added > 0 {
                        report.rebuilt = true;
                        report.rebuild_reason = Some(reason);
                    }
                    vi.dirty = true;
                }
            }
            vi.removal_seq = tables::max_removal_seq(&tx)?;
            vi.max_chunk_id = tables::max_chunk_id(&tx)?;
            if check_count {
                let pending = tables::chunks_without_vectors(&tx, embedder_id)?;
                let expected = tables::count_chunks(&tx)? as usize - pending.len();
                vi.pending = Some(pending);
                if vi.index.size() != expected {
                    report.rebuilt = true;
                    report.rebuild_reason = Some(format!(
                        "the vector file holds {} vectors, the database {expected}",
                        vi.index.size()
                    ));
                    // Too few: the missing ones are added (chunks that got a
                    // vector while a rebuild was interrupted). Too many, or
                    // still wrong: built again from nothing.
                    if vi.index.size() < expected && vi.make_writable().is_ok() {
                        vi.add_from_cache(&tx, 0, None)?;
                    }
                    if vi.index.size() != expected {
                        vi.index = new_index(dimensions, expected)?;
                        vi.mapped = None;
                        vi.add_from_cache(&tx, 0, None)?;
                    }
                    vi.dirty = true;
                }
            }
            if may_save && old_label && !vi.dirty && vi.make_writable().is_ok() {
                // Rewritten once in the current format.
                vi.dirty = true;
            }
            vi.generation = generation;
        }
        vi.tune();
        if may_save {
            // Neither the count nor the save may stop a search on a full disk:
            // the index in memory is right either way.
            let counted = if report.rebuilt {
                tables::count_vector_rebuild(conn)
            } else {
                Ok(())
            };
            if vi.dirty || vi.saved_generation != vi.generation {
                if let Err(err) = counted.and_then(|()| vi.write_file()) {
                    report.save_error = Some(err.to_string());
                }
            } else if let Err(err) = counted {
                report.save_error = Some(err.to_string());
            }
        }
        Ok((vi, report))
    }

    /// Builds and saves the vector file of `embedder_id` from the embedding
    /// cache of a new database (an imported archive): not a rebuild of a lost
    /// file, so nothing is reported or counted. Returns the vectors added.
    /// The caller holds the writer lock.
    pub fn create_from_cache(
        dir: &Path,
        embedder_id: &str,
        dimensions: usize,
        conn: &Connection,
        key: Option<&DataKey>,
    ) -> Result<usize> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tx = conn.unchecked_transaction()?;
        let total = tables::count_chunks(&tx)? as usize;
        let mut vi = VectorIndex {
            index: new_index(dimensions, total)?,
            mapped: None,
            embedder_id: embedder_id.to_string(),
            dimensions,
            path: dir.join(format!("{}.vectors", file_slug(embedder_id))),
            removal_seq: tables::max_removal_seq(&tx)?,
            dirty: true,
            changes: 0,
            generation: tables::generation(&tx)?,
            saved_generation: -1,
            store_id: tables::store_id(&tx)?,
            max_chunk_id: tables::max_chunk_id(&tx)?,
            pending: None,
            rebuild_through: None,
            expansion_search: None,
            key: key.cloned(),
            notes: Mutex::default(),
        };
        let added = vi.add_from_cache(&tx, 0, None)?;
        vi.pending = Some(tables::chunks_without_vectors(&tx, embedder_id)?);
        vi.write_file()?;
        Ok(added)
    }

    /// Brings the index up to the store's current generation when it moved:
    /// vectors of deleted chunks leave, chunks whose text has a cached vector
    /// (new ones, and ones that were waiting) get it. Reads only; cheap when
    /// nothing changed (one row). Returns the vectors added.
    pub fn catch_up(&mut self, conn: &Connection) -> Result<usize> {
        let tx = conn.unchecked_transaction()?;
        let generation = tables::generation(&tx)?;
        if generation == self.generation {
            return Ok(0);
        }
        if self.mapped.is_some() && self.view_saved_file(&tx, generation) {
            // The writer saved the store's state: served from that file.
            return Ok(0);
        }
        if self.make_writable().is_err() {
            // A viewed file found damaged: rebuilt from the cache.
            self.rebuild_from_cache(&tx, None)?;
        }
        self.apply_removals(&tx)?;
        let mut pending = match self.pending.take() {
            Some(pending) => pending,
            // Opened as a view: the chunks it has no vector for, found once.
            None => tables::chunks_after(&tx, 0)?
                .into_iter()
                .filter(|(id, _)| *id <= self.max_chunk_id && !self.index.contains(*id as u64))
                .collect(),
        };
        for (id, hash) in tables::chunks_after(&tx, self.max_chunk_id)? {
            self.max_chunk_id = self.max_chunk_id.max(id);
            if !self.index.contains(id as u64) {
                pending.insert(id, hash);
            }
        }
        // Added meanwhile by this process's own index run.
        let index = &self.index;
        pending.retain(|id, _| !index.contains(*id as u64));
        let hashes: Vec<[u8; 32]> = pending
            .values()
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let cached = tables::cached_vectors(&tx, &self.embedder_id, &hashes)?;
        let found: Vec<(i64, Vec<f32>)> = pending
            .iter()
            .filter_map(|(id, hash)| cached.get(hash).map(|v| (*id, v.clone())))
            .collect();
        let items: Vec<(i64, &[f32])> = found
            .iter()
            .filter(|(_, v)| v.len() == self.dimensions)
            .map(|(id, v)| (*id, v.as_slice()))
            .collect();
        let added = items.len();
        let result = self.add_many(&items);
        for (id, _) in &found {
            pending.remove(id);
        }
        self.pending = Some(pending);
        result?;
        self.generation = generation;
        Ok(added)
    }

    /// Replaces the view by one of the file on disk when a writer saved it at
    /// `generation`; whether it did.
    fn view_saved_file(&mut self, conn: &Connection, generation: i64) -> bool {
        let opened = file::open(
            &self.path,
            &self.embedder_id,
            self.dimensions,
            self.store_id,
            self.key.as_ref(),
        );
        let Ok(opened) = opened else {
            return false;
        };
        let Some(map) = opened.map else {
            return false;
        };
        let label = opened.label;
        if label.generation != generation
            || label.pending.is_none()
            || label.rebuild_through.is_some()
        {
            return false;
        }
        let Ok(max_removal_seq) = tables::max_removal_seq(conn) else {
            return false;
        };
        let Ok(max_chunk_id) = tables::max_chunk_id(conn) else {
            return false;
        };
        self.index = opened.index;
        self.mapped = Some((map, label));
        // Its removals are not known here: the map is read again.
        self.notes
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.pending = None;
        self.removal_seq = max_removal_seq;
        self.max_chunk_id = max_chunk_id;
        self.generation = generation;
        self.saved_generation = generation;
        self.dirty = false;
        self.tune();
        true
    }

    /// Loads a viewed index into memory, to change it (every byte of the file
    /// checked first).
    fn make_writable(&mut self) -> Result<()> {
        let Some((map, label)) = &self.mapped else {
            return Ok(());
        };
        let index = file::load_mapped(map, label).map_err(|reason| {
            Error::new(
                ErrorKind::Vectors,
                format!("{reason}; it is rebuilt from the embedding cache when Sift next opens it"),
            )
        });
        let index = match index {
            Ok(index) => index,
            Err(err) => {
                // Not trusted again: the next open rebuilds it.
                let _ = std::fs::remove_file(&self.path);
                return Err(err);
            }
        };
        self.index = index;
        self.mapped = None;
        self.tune();
        Ok(())
    }

    /// Sets the expansions for the index's size (see [`hnsw`]).
    fn tune(&self) {
        let n = self.index.size();
        let search = self
            .expansion_search
            .unwrap_or_else(|| hnsw::expansion_search_for(n));
        if self.index.expansion_search() != search {
            self.index.change_expansion_search(search);
        }
        let add = hnsw::expansion_add_for(n);
        if self.mapped.is_none() && self.index.expansion_add() != add {
            self.index.change_expansion_add(add);
        }
    }

    /// The store generation the vectors in memory match (as of the last
    /// [`VectorIndex::catch_up`] or open).
    pub fn generation(&self) -> i64 {
        self.generation
    }

    /// Embedder whose vectors this index holds.
    pub fn embedder_id(&self) -> &str {
        &self.embedder_id
    }

    /// Vector length.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Storage, connectivity and expansions, for benchmarks and status.
    pub fn settings_summary(&self) -> String {
        let built = match self.mapped {
            Some(_) => "memory-mapped view".to_string(),
            None => format!("expansion_add {}", self.index.expansion_add()),
        };
        format!(
            "{:?} storage, connectivity {}, expansion_search {}, {built}",
            self.index.scalar_kind(),
            self.index.connectivity(),
            self.index.expansion_search(),
        )
    }

    /// Whether the index is served as a memory-mapped view of its file (not
    /// yet changed by this process).
    pub fn is_view(&self) -> bool {
        self.mapped.is_some()
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.index.size()
    }

    /// The vector file this index is saved to.
    pub fn file_path(&self) -> &Path {
        &self.path
    }

    /// Whether there are no vectors.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether chunk `id` has a vector.
    pub fn contains(&self, id: i64) -> bool {
        self.index.contains(id as u64)
    }

    /// Adds (or replaces) the vector of chunk `id`.
    pub fn add(&mut self, id: i64, vector: &[f32]) -> Result<()> {
        if vector.len() != self.dimensions {
            return Err(Error::new(
                ErrorKind::WrongDimensions,
                format!(
                    "vector of {} dimensions for an index of {}",
                    vector.len(),
                    self.dimensions
                ),
            ));
        }
        self.make_writable()?;
        if self.index.contains(id as u64) {
            self.index.remove(id as u64).map_err(vec_err)?;
        }
        self.reserve_for(1)?;
        self.index
            .add(id as u64, &hnsw::stored(vector))
            .map_err(vec_err)?;
        self.touched();
        Ok(())
    }

    /// Adds (or replaces) the vectors of many chunks at once, on every core:
    /// graph construction dominates indexing once embedding is done, and usearch
    /// accepts concurrent adds into reserved capacity.
    pub fn add_many(&mut self, items: &[(i64, &[f32])]) -> Result<()> {
        if let Some((_, v)) = items.iter().find(|(_, v)| v.len() != self.dimensions) {
            return Err(Error::new(
                ErrorKind::WrongDimensions,
                format!(
                    "vector of {} dimensions for an index of {}",
                    v.len(),
                    self.dimensions
                ),
            ));
        }
        if items.is_empty() {
            return Ok(());
        }
        self.make_writable()?;
        let mut keys = HashSet::with_capacity(items.len());
        if items.len() < PARALLEL_ADDS || !items.iter().all(|(id, _)| keys.insert(*id)) {
            // Few vectors, or one id twice (the last one wins, in order).
            for (id, v) in items {
                self.add(*id, v)?;
            }
            self.tune();
            return Ok(());
        }
        for (id, _) in items {
            if self.index.contains(*id as u64) {
                self.index.remove(*id as u64).map_err(vec_err)?;
            }
        }
        self.reserve_for(items.len())?;
        let index = &self.index;
        items
            .par_iter()
            .try_for_each(|(id, v)| index.add(*id as u64, &hnsw::stored(v)).map_err(vec_err))?;
        // Arenas mapped by these adds: the next batches fill them on huge pages.
        huge_pages::advise_arenas();
        self.touched();
        self.tune();
        Ok(())
    }

    /// Grows capacity (doubling) so `more` vectors fit without reallocating.
    fn reserve_for(&mut self, more: usize) -> Result<()> {
        let needed = self.index.size() + more;
        if needed > self.index.capacity() {
            let capacity = needed.max(self.index.capacity() * 2).max(1024);
            self.index.reserve(capacity).map_err(vec_err)?;
        }
        Ok(())
    }

    /// Removes chunk `id` (no-op if absent).
    pub fn remove(&mut self, id: i64) -> Result<()> {
        if !self.index.contains(id as u64) {
            return Ok(());
        }
        self.make_writable()?;
        if self.index.remove(id as u64).map_err(vec_err)? > 0 {
            self.touched();
        }
        Ok(())
    }

    /// The `k` nearest chunks to `query` as (chunk id, cosine similarity), best first.
    /// `allow` restricts results to chunk ids it accepts (filters).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        allow: Option<&dyn Fn(i64) -> bool>,
    ) -> Result<Vec<(i64, f32)>> {
        if self.index.size() == 0 || k == 0 {
            return Ok(Vec::new());
        }
        let (query, query_scale) = hnsw::query(query);
        let query = query.as_slice();
        let matches = match allow {
            Some(allow) => self
                .index
                .filtered_search(query, k, |key| allow(key as i64))
                .map_err(vec_err)?,
            // A small index is scanned whole (1.5 ms at 10k): exact, hence the
            // same answer whatever order the graph was built in, and immune to
            // the graph's blind spot: a query unlike most notes whose best match
            // is one paragraph inside a note on another topic, which greedy
            // descent misses (seen in benches/watch_latency.rs).
            None if self.index.size() <= EXACT_SEARCH_MAX => {
                self.index.exact_search(query, k).map_err(vec_err)?
            }
            None => self.index.search(query, k).map_err(vec_err)?,
        };
        Ok(matches
            .keys
            .into_iter()
            .zip(matches.distances)
            .map(|(key, distance)| {
                let similarity = hnsw::similarity(distance, query_scale, self.dimensions);
                (key as i64, similarity)
            })
            .collect())
    }

    /// The note of each of `ids` (chunks this index returned) that still
    /// exists, from memory after this process's first search (see
    /// `chunk_notes`).
    pub fn notes_of_chunks(&self, conn: &Connection, ids: &[i64]) -> Result<HashMap<i64, i64>> {
        match self.notes.try_lock() {
            Ok(mut notes) => notes.notes_of(conn, ids),
            // Another search is reading the map: not worth waiting for.
            Err(_) => tables::notes_of_chunks(conn, ids),
        }
    }

    /// Reads every chunk's note into memory now (a long-lived process warming
    /// up) rather than at the second search; whether it could.
    pub fn read_chunk_notes(&self, conn: &Connection) -> Result<bool> {
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        notes.read_now(conn)
    }

    /// The stored vector of chunk `id` (as rounded for storage, of about
    /// unit length).
    pub fn get(&self, id: i64) -> Option<Vec<f32>> {
        let mut out = vec![0i8; self.dimensions];
        match self.index.get(id as u64, &mut out) {
            Ok(n) if n > 0 => Some(hnsw::restored(&out)),
            _ => None,
        }
    }

    /// Removes vectors of chunks deleted since the last call (the removal log).
    /// When the log was trimmed past what this index applied, or a viewed
    /// file turns out damaged, it is rebuilt from the cache instead (no
    /// embedding; returns 0 then).
    pub fn apply_removals(&mut self, conn: &Connection) -> Result<usize> {
        if self.removal_seq < tables::removals_pruned_through(conn)? {
            self.rebuild_from_cache(conn, None)?;
            return Ok(0);
        }
        let removals = tables::removals_after(conn, self.removal_seq)?;
        if removals.is_empty() {
            return Ok(0);
        }
        if self.make_writable().is_err() {
            self.rebuild_from_cache(conn, None)?;
            return Ok(0);
        }
        let mut removed = 0;
        // Before the loop: a failure half-way still leaves it to be saved.
        self.touched();
        let notes = self.notes.get_mut().unwrap_or_else(|e| e.into_inner());
        for (seq, chunk_id) in removals {
            notes.forget(chunk_id);
            removed += self.index.remove(chunk_id as u64).map_err(vec_err)?;
            if let Some(pending) = &mut self.pending {
                pending.remove(&chunk_id);
            }
            self.removal_seq = seq;
        }
        Ok(removed)
    }

    /// Replaces the vectors in memory with those the cache holds for the
    /// store's chunks now; returns how many.
    fn rebuild_from_cache(
        &mut self,
        conn: &Connection,
        rebuild: Option<&mut Rebuild>,
    ) -> Result<usize> {
        let total = tables::count_chunks(conn)? as usize;
        self.index = new_index(self.dimensions, total)?;
        self.mapped = None;
        self.removal_seq = tables::max_removal_seq(conn)?;
        self.generation = tables::generation(conn)?;
        self.rebuild_through = Some(0);
        let added = self.add_from_cache(conn, 0, rebuild);
        self.rebuild_through = None;
        let added = added?;
        self.max_chunk_id = tables::max_chunk_id(conn)?;
        self.pending = Some(tables::chunks_without_vectors(conn, &self.embedder_id)?);
        self.touched();
        Ok(added)
    }

    /// The last entry of the removal log this index has applied.
    pub fn removal_seq(&self) -> i64 {
        self.removal_seq
    }

    fn touched(&mut self) {
        self.dirty = true;
        self.changes += 1;
    }

    /// Sets how hard searches look (higher: better recall, slower), instead
    /// of what the index's size calls for.
    pub fn set_expansion_search(&mut self, expansion: usize) {
        self.expansion_search = Some(expansion);
        self.tune();
    }

    /// Adds the cached vectors of chunks after `after_id` that the index lacks,
    /// in chunk id order. During a rebuild, reports progress after every
    /// batch and saves what it has every so often (marked with the last chunk
    /// read, `rebuild_through`), so an interrupted rebuild carries on.
    fn add_from_cache(
        &mut self,
        conn: &Connection,
        after_id: i64,
        mut rebuild: Option<&mut Rebuild>,
    ) -> Result<usize> {
        // Added in batches: holding every vector in f32 before adding cost
        // 1.5 KB a chunk on top of the index (150 MB at 100k chunks).
        const BATCH: usize = 8192;
        self.make_writable()?;
        let mut pending: Vec<(i64, Vec<f32>)> = Vec::with_capacity(BATCH);
        let mut added = 0;
        let mut last_id = after_id;
        let embedder_id = self.embedder_id.clone();
        // A batch ends where a save of the progress is due.
        let batch = rebuild
            .as_deref()
            .map_or(BATCH, |r| BATCH.min(r.every.max(1)));
        let mut flush = |vi: &mut VectorIndex,
                         pending: &mut Vec<(i64, Vec<f32>)>,
                         last_id: i64|
         -> Result<usize> {
            let items: Vec<(i64, &[f32])> =
                pending.iter().map(|(id, v)| (*id, v.as_slice())).collect();
            vi.add_many(&items)?;
            let n = items.len();
            pending.clear();
            if let Some(rebuild) = rebuild.as_deref_mut() {
                vi.rebuild_through = Some(last_id);
                rebuild.since_save += n;
                if rebuild.save && rebuild.since_save >= rebuild.every {
                    // Progress kept: a failed save only means less of it.
                    let _ = vi.write_file();
                    rebuild.since_save = 0;
                }
                (rebuild.progress)(RebuildProgress {
                    done: vi.index.size(),
                    total: rebuild.total.max(vi.index.size()),
                });
            }
            Ok(n)
        };
        tables::for_each_chunk_vector_after(conn, &embedder_id, after_id, |id, bytes| {
            if !self.index.contains(id as u64) {
                let vector = decode_cached(bytes);
                if vector.len() == self.dimensions {
                    pending.push((id, vector));
                }
            }
            last_id = id;
            if pending.len() >= batch {
                added += flush(self, &mut pending, last_id)?;
            }
            Ok(())
        })?;
        added += flush(self, &mut pending, last_id)?;
        Ok(added)
    }
}

/// A new, empty index for `expected` vectors: its connectivity is fixed now.
fn new_index(dimensions: usize, expected: usize) -> Result<Index> {
    let options = IndexOptions {
        dimensions,
        metric: hnsw::METRIC,
        quantization: hnsw::STORAGE,
        connectivity: hnsw::connectivity_for(expected),
        expansion_add: hnsw::expansion_add_for(expected),
        expansion_search: hnsw::expansion_search_for(expected),
        multi: false,
    };
    let index = Index::new(&options).map_err(vec_err)?;
    index.reserve(expected.max(1024)).map_err(vec_err)?;
    Ok(index)
}

fn vec_err(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Vectors, format!("vector index error: {e}"))
}

/// A file-name-safe name for an embedder id, unique per id.
fn file_slug(embedder_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let readable: String = embedder_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let hash = hex::encode(&Sha256::digest(embedder_id.as_bytes())[..4]);
    format!("{readable}-{hash}")
}
