//! The usearch vector index of one embedder, saved beside the database.
//!
//! One file per embedder, `vectors/<slug>.vectors`: the usearch graph (f16), then
//! a label (embedder id, dimensions, vector count, the last applied entry of the
//! `vector_removals` log, the store generation and store id it matches, and a
//! CRC-32 of the graph bytes), then the label's length and a magic trailer. The
//! file is written whole under a temp name and renamed, so the graph and its
//! label change together or not at all.
//!
//! SQLite is the source of truth. Opening checks the label against the store: a
//! file of another database, from a later generation than the database, with a
//! wrong checksum (garbage written over it) or a wrong count is rebuilt from the
//! embedding cache, never re-embedded (counted in the store, reported by
//! [`OpenReport`]); an older generation is caught up (removals replayed, missing
//! vectors added from the cache).
//!
//! Only the process holding the writer lock ([`crate::lock`]) saves the file.
//! Every process catches its in-memory index up with the store when the store's
//! generation moves ([`VectorIndex::catch_up`]): removals from the log, new
//! chunks whose text has a cached vector, and chunks that were waiting for one.

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::config::VECTOR_FORMAT_VERSION;
use crate::encryption::{seal, DataKey};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{decode_vector, tables};

/// How hard graph construction looks for neighbours. usearch's default is 128;
/// 64 builds about 1.5x faster with recall@10 within 0.005 of it on our
/// synthetic benchmark (BENCHMARKS.md), since searches look harder (64) anyway.
const EXPANSION_ADD: usize = 64;

/// Up to this many vectors, searches compare the query with every vector.
const EXACT_SEARCH_MAX: usize = 10_000;

/// Below this many vectors, adding on one thread beats fanning out.
const PARALLEL_ADDS: usize = 16;

/// Why a vector file could not be loaded when there is none.
const NO_FILE: &str = "no vector file";

/// Last bytes of every vector file.
const MAGIC: &[u8; 8] = b"SIFTVEC2";

#[derive(Debug, Serialize, Deserialize)]
struct Label {
    format: u32,
    embedder_id: String,
    dimensions: usize,
    count: usize,
    removal_seq: i64,
    generation: i64,
    store_id: i64,
    graph_bytes: u64,
    crc32: u32,
}

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
    /// Saving the reconciled index failed (a full disk): the index in memory is
    /// right and the next writer saves it.
    pub save_error: Option<String>,
}

/// An approximate nearest-neighbour index of chunk vectors for one embedder.
pub struct VectorIndex {
    index: Index,
    embedder_id: String,
    dimensions: usize,
    path: PathBuf,
    removal_seq: i64,
    dirty: bool,
    /// The store generation the vectors in memory match.
    generation: i64,
    /// The generation of the file on disk as this process last saw or wrote it.
    saved_generation: i64,
    store_id: i64,
    /// Highest chunk id looked at.
    max_chunk_id: i64,
    /// Chunks looked at that had no cached vector yet, with their text hash.
    pending: HashMap<i64, [u8; 32]>,
    /// Seals the file when the data folder is encrypted.
    key: Option<DataKey>,
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
        if may_save {
            // A full disk is reported by the save below, not here.
            let _ = std::fs::create_dir_all(dir);
        }
        let slug = file_slug(embedder_id);
        let path = dir.join(format!("{slug}.vectors"));
        if may_save {
            remove_stale_files(dir, &slug);
        }
        let mut report = OpenReport::default();
        let mut vi = VectorIndex {
            index: new_index(dimensions)?,
            embedder_id: embedder_id.to_string(),
            dimensions,
            path,
            removal_seq: 0,
            dirty: false,
            generation: 0,
            saved_generation: -1,
            store_id: 0,
            max_chunk_id: 0,
            pending: HashMap::new(),
            key: key.cloned(),
        };
        {
            // One snapshot of the store for the whole reconciliation.
            let tx = conn.unchecked_transaction()?;
            vi.store_id = tables::store_id(&tx)?;
            let generation = tables::generation(&tx)?;
            let loaded = load_file(&vi.path, embedder_id, dimensions, vi.store_id, key)
                .and_then(|(index, label)| {
                    if label.generation > generation {
                        Err(format!(
                            "the vector file is from generation {}, the database is at {generation}",
                            label.generation
                        ))
                    } else {
                        Ok((index, label))
                    }
                });
            match loaded {
                Ok((index, label)) => {
                    vi.index = index;
                    vi.saved_generation = label.generation;
                    if label.generation < generation
                        && label.removal_seq < tables::removals_pruned_through(&tx)?
                    {
                        report.rebuilt = true;
                        report.rebuild_reason = Some(
                            "removals the vector file had not applied were trimmed from the log"
                                .into(),
                        );
                        report.added = vi.rebuild_from_cache(&tx)?;
                    } else if label.generation < generation {
                        // Caught up from the removal log and the cache.
                        vi.removal_seq = label.removal_seq;
                        report.removed = vi.apply_removals(&tx)?;
                        report.added = vi.add_missing_from_cache(&tx)?;
                        vi.dirty = true;
                    }
                }
                Err(reason) => {
                    // A data folder with no vectors yet has nothing to rebuild.
                    report.added = vi.add_missing_from_cache(&tx)?;
                    if reason != NO_FILE || report.added > 0 {
                        report.rebuilt = true;
                        report.rebuild_reason = Some(reason);
                    }
                    vi.dirty = true;
                }
            }
            vi.removal_seq = tables::max_removal_seq(&tx)?;
            vi.max_chunk_id = tables::max_chunk_id(&tx)?;
            vi.pending = tables::chunks_without_vectors(&tx, embedder_id)?;
            let expected = tables::count_chunks(&tx)? as usize - vi.pending.len();
            if vi.index.size() != expected {
                report.rebuilt = true;
                report.rebuild_reason = Some(format!(
                    "the vector file holds {} vectors, the database {expected}",
                    vi.index.size()
                ));
                vi.index = new_index(dimensions)?;
                vi.add_missing_from_cache(&tx)?;
                vi.dirty = true;
            }
            vi.generation = generation;
        }
        if may_save {
            // Neither the count nor the save may stop a search on a full disk:
            // the index in memory is right either way.
            let counted = if report.rebuilt {
                tables::count_vector_rebuild(conn)
            } else {
                Ok(())
            };
            if let Err(err) = counted.and_then(|()| vi.write_file()) {
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
        let mut vi = VectorIndex {
            index: new_index(dimensions)?,
            embedder_id: embedder_id.to_string(),
            dimensions,
            path: dir.join(format!("{}.vectors", file_slug(embedder_id))),
            removal_seq: tables::max_removal_seq(&tx)?,
            dirty: true,
            generation: tables::generation(&tx)?,
            saved_generation: -1,
            store_id: tables::store_id(&tx)?,
            max_chunk_id: tables::max_chunk_id(&tx)?,
            pending: HashMap::new(),
            key: key.cloned(),
        };
        let added = vi.add_missing_from_cache(&tx)?;
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
        self.apply_removals(&tx)?;
        for (id, hash) in tables::chunks_after(&tx, self.max_chunk_id)? {
            self.max_chunk_id = self.max_chunk_id.max(id);
            if !self.index.contains(id as u64) {
                self.pending.insert(id, hash);
            }
        }
        // Added meanwhile by this process's own index run.
        let index = &self.index;
        self.pending.retain(|id, _| !index.contains(*id as u64));
        let hashes: Vec<[u8; 32]> = self
            .pending
            .values()
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let cached = tables::cached_vectors(&tx, &self.embedder_id, &hashes)?;
        let found: Vec<(i64, Vec<f32>)> = self
            .pending
            .iter()
            .filter_map(|(id, hash)| cached.get(hash).map(|v| (*id, v.clone())))
            .collect();
        let items: Vec<(i64, &[f32])> = found
            .iter()
            .filter(|(_, v)| v.len() == self.dimensions)
            .map(|(id, v)| (*id, v.as_slice()))
            .collect();
        self.add_many(&items)?;
        for (id, _) in &found {
            self.pending.remove(id);
        }
        self.generation = generation;
        Ok(items.len())
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

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.index.size()
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
        if self.index.contains(id as u64) {
            self.index.remove(id as u64).map_err(vec_err)?;
        }
        self.reserve_for(1)?;
        self.index.add(id as u64, vector).map_err(vec_err)?;
        self.dirty = true;
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
        let mut keys = HashSet::with_capacity(items.len());
        if items.len() < PARALLEL_ADDS || !items.iter().all(|(id, _)| keys.insert(*id)) {
            // Few vectors, or one id twice (the last one wins, in order).
            for (id, v) in items {
                self.add(*id, v)?;
            }
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
            .try_for_each(|(id, v)| index.add(*id as u64, v).map_err(vec_err))?;
        self.dirty = true;
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
        if self.index.remove(id as u64).map_err(vec_err)? > 0 {
            self.dirty = true;
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
            .map(|(key, distance)| (key as i64, 1.0 - distance))
            .collect())
    }

    /// The stored vector of chunk `id` (f16 precision).
    pub fn get(&self, id: i64) -> Option<Vec<f32>> {
        let mut out = vec![0f32; self.dimensions];
        match self.index.get(id as u64, &mut out) {
            Ok(n) if n > 0 => Some(out),
            _ => None,
        }
    }

    /// Removes vectors of chunks deleted since the last call (the removal log).
    /// When the log was trimmed past what this index applied, it is rebuilt
    /// from the cache instead (no embedding; returns 0 then).
    pub fn apply_removals(&mut self, conn: &Connection) -> Result<usize> {
        if self.removal_seq < tables::removals_pruned_through(conn)? {
            self.rebuild_from_cache(conn)?;
            return Ok(0);
        }
        let mut removed = 0;
        for (seq, chunk_id) in tables::removals_after(conn, self.removal_seq)? {
            removed += self.index.remove(chunk_id as u64).map_err(vec_err)?;
            self.pending.remove(&chunk_id);
            self.removal_seq = seq;
            self.dirty = true;
        }
        Ok(removed)
    }

    /// Replaces the vectors in memory with those the cache holds for the
    /// store's chunks now; returns how many.
    fn rebuild_from_cache(&mut self, conn: &Connection) -> Result<usize> {
        self.index = new_index(self.dimensions)?;
        let added = self.add_missing_from_cache(conn)?;
        self.removal_seq = tables::max_removal_seq(conn)?;
        self.max_chunk_id = tables::max_chunk_id(conn)?;
        self.pending = tables::chunks_without_vectors(conn, &self.embedder_id)?;
        self.dirty = true;
        Ok(added)
    }

    /// The last entry of the removal log this index has applied.
    pub fn removal_seq(&self) -> i64 {
        self.removal_seq
    }

    /// Catches up with the store and writes the vector file if it changed since
    /// the last save. Only the holder of the writer lock may call this.
    pub fn save(&mut self, conn: &Connection) -> Result<()> {
        self.catch_up(conn)?;
        if !self.dirty && self.saved_generation == self.generation {
            return Ok(());
        }
        self.write_file()
    }

    /// Sets how hard searches look (higher: better recall, slower).
    pub fn set_expansion_search(&self, expansion: usize) {
        self.index.change_expansion_search(expansion);
    }

    /// Writes graph and label as one file: graph to a temp file (per process),
    /// label and trailer appended, fsync, rename over the old file.
    fn write_file(&mut self) -> Result<()> {
        let tmp = self
            .path
            .with_extension(format!("vectors.{}.tmp", std::process::id()));
        let result = self
            .write_temp(&tmp)
            .and_then(|()| std::fs::rename(&tmp, &self.path).map_err(|e| Error::io(&self.path, e)));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result?;
        self.saved_generation = self.generation;
        self.dirty = false;
        Ok(())
    }

    fn write_temp(&self, tmp: &Path) -> Result<()> {
        if let Some(key) = &self.key {
            return self.write_sealed(tmp, key);
        }
        let save_err =
            |e: String| Error::new(ErrorKind::Vectors, format!("cannot save vectors: {e}"));
        self.index
            .save(&tmp.to_string_lossy())
            .map_err(|e| save_err(e.to_string()))?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(tmp)
            .map_err(|e| Error::io(tmp, e))?;
        let (graph_bytes, crc32) = checksum(&mut file, None).map_err(|e| Error::io(tmp, e))?;
        let trailer = self.trailer(graph_bytes, crc32)?;
        file.write_all(&trailer)
            .and_then(|()| file.sync_all())
            .map_err(|e| save_err(format!("{}: {e}", tmp.display())))
    }

    /// The label of a graph of `graph_bytes` with checksum `crc32`, then its
    /// length and the magic: what follows the graph in a vector file.
    fn trailer(&self, graph_bytes: u64, crc32: u32) -> Result<Vec<u8>> {
        let label = Label {
            format: VECTOR_FORMAT_VERSION,
            embedder_id: self.embedder_id.clone(),
            dimensions: self.dimensions,
            count: self.index.size(),
            removal_seq: self.removal_seq,
            generation: self.generation,
            store_id: self.store_id,
            graph_bytes,
            crc32,
        };
        let mut trailer = serde_json::to_vec(&label)
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        trailer.extend_from_slice(&(trailer.len() as u32).to_le_bytes());
        trailer.extend_from_slice(MAGIC);
        Ok(trailer)
    }

    /// The same file, built in memory and sealed whole: no plain byte of it
    /// reaches the disk.
    fn write_sealed(&self, tmp: &Path, key: &DataKey) -> Result<()> {
        let save_err =
            |e: String| Error::new(ErrorKind::Vectors, format!("cannot save vectors: {e}"));
        let mut bytes = vec![0u8; self.index.serialized_length()];
        self.index
            .save_to_buffer(&mut bytes)
            .map_err(|e| save_err(e.to_string()))?;
        let trailer = self.trailer(bytes.len() as u64, crc32fast::hash(&bytes))?;
        bytes.extend_from_slice(&trailer);
        let sealed = seal::seal(key, &bytes);
        let mut file = std::fs::File::create(tmp).map_err(|e| Error::io(tmp, e))?;
        file.write_all(&sealed)
            .and_then(|()| file.sync_all())
            .map_err(|e| save_err(format!("{}: {e}", tmp.display())))
    }

    fn add_missing_from_cache(&mut self, conn: &Connection) -> Result<usize> {
        // Added in batches: holding every vector in f32 before adding cost
        // 1.5 KB a chunk on top of the index (150 MB at 100k chunks).
        const BATCH: usize = 8192;
        let mut pending: Vec<(i64, Vec<f32>)> = Vec::with_capacity(BATCH);
        let mut added = 0;
        let flush = |vi: &mut VectorIndex, pending: &mut Vec<(i64, Vec<f32>)>| -> Result<usize> {
            let items: Vec<(i64, &[f32])> =
                pending.iter().map(|(id, v)| (*id, v.as_slice())).collect();
            vi.add_many(&items)?;
            let n = items.len();
            pending.clear();
            Ok(n)
        };
        tables::for_each_chunk_vector(conn, &self.embedder_id.clone(), |id, bytes| {
            if !self.index.contains(id as u64) {
                let vector = decode_vector(bytes);
                if vector.len() == self.dimensions {
                    pending.push((id, vector));
                }
            }
            if pending.len() == BATCH {
                added += flush(self, &mut pending)?;
            }
            Ok(())
        })?;
        added += flush(self, &mut pending)?;
        Ok(added)
    }
}

/// Deletes temp files that killed processes left mid-save (a live save takes
/// well under a minute, so older ones are abandoned) and the two files of the
/// format before this one (graph and label apart), which the new file replaces.
fn remove_stale_files(dir: &Path, slug: &str) {
    let _ = std::fs::remove_file(dir.join(format!("{slug}.usearch")));
    let _ = std::fs::remove_file(dir.join(format!("{slug}.json")));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefixes = [format!("{slug}.usearch."), format!("{slug}.vectors.")];
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default().as_secs() > 60);
        if prefixes.iter().any(|p| name.starts_with(p)) && name.ends_with(".tmp") && stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// CRC-32 of the first `len` bytes of `file` (all of it when `None`), and that length.
fn checksum(file: &mut std::fs::File, len: Option<u64>) -> std::io::Result<(u64, u32)> {
    file.seek(SeekFrom::Start(0))?;
    let len = match len {
        Some(len) => len,
        None => file.metadata()?.len(),
    };
    let mut reader = BufReader::with_capacity(1 << 20, (&*file).take(len));
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hasher.finalize()))
}

/// Reads the label from the end of the vector file at `path`.
fn read_label(file: &mut std::fs::File) -> std::result::Result<Label, String> {
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if len < 12 {
        return Err("the vector file is truncated".into());
    }
    let mut tail = [0u8; 12];
    file.seek(SeekFrom::Start(len - 12))
        .and_then(|_| file.read_exact(&mut tail))
        .map_err(|e| e.to_string())?;
    let label_len = label_len(&tail, len)?;
    let mut json = vec![0u8; label_len as usize];
    file.seek(SeekFrom::Start(len - 12 - label_len))
        .and_then(|_| file.read_exact(&mut json))
        .map_err(|e| e.to_string())?;
    decode_label(&json, len)
}

/// The label at the end of a whole vector file held in memory.
fn label_in(bytes: &[u8]) -> std::result::Result<Label, String> {
    let len = bytes.len() as u64;
    if len < 12 {
        return Err("the vector file is truncated".into());
    }
    let tail: &[u8; 12] = bytes[bytes.len() - 12..].try_into().expect("12 bytes");
    let label_len = label_len(tail, len)?;
    decode_label(
        &bytes[(len - 12 - label_len) as usize..bytes.len() - 12],
        len,
    )
}

/// The label's length, from the last 12 bytes of a file of `len` bytes.
fn label_len(tail: &[u8; 12], len: u64) -> std::result::Result<u64, String> {
    if &tail[4..] != MAGIC {
        return Err("the vector file has no label (damaged or of an older Sift)".into());
    }
    let label_len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
    if label_len + 12 > len {
        return Err("the vector file's label is damaged".into());
    }
    Ok(label_len)
}

/// The label from its JSON, checked against the length of its file.
fn decode_label(json: &[u8], len: u64) -> std::result::Result<Label, String> {
    let label: Label = serde_json::from_slice(json)
        .map_err(|e| format!("the vector file's label is damaged: {e}"))?;
    if label.graph_bytes + json.len() as u64 + 12 != len {
        return Err("the vector file's length does not match its label".into());
    }
    Ok(label)
}

/// The index and its label when it holds the vectors the label counts.
fn counted(index: Index, label: Label) -> std::result::Result<(Index, Label), String> {
    if index.size() == label.count {
        Ok((index, label))
    } else {
        Err(format!(
            "the vector file holds {} vectors, its label says {}",
            index.size(),
            label.count
        ))
    }
}

/// Whether the label fits this embedder and database.
fn check_label(
    label: &Label,
    embedder_id: &str,
    dimensions: usize,
    store_id: i64,
) -> std::result::Result<(), String> {
    if label.format != VECTOR_FORMAT_VERSION
        || label.embedder_id != embedder_id
        || label.dimensions != dimensions
    {
        return Err("the vector file's label does not match this embedder".into());
    }
    if label.store_id != store_id {
        return Err("the vector file belongs to another database".into());
    }
    Ok(())
}

/// Loads a sealed vector file (an encrypted data folder).
fn load_sealed(
    mut file: std::fs::File,
    key: Option<&DataKey>,
    embedder_id: &str,
    dimensions: usize,
    store_id: i64,
) -> std::result::Result<(Index, Label), String> {
    let Some(key) = key else {
        return Err("the vector file is encrypted but the database is not".into());
    };
    let mut sealed = Vec::new();
    file.read_to_end(&mut sealed).map_err(|e| e.to_string())?;
    let bytes = seal::open(key, &sealed).map_err(|e| format!("the vector file: {e}"))?;
    let label = label_in(&bytes)?;
    check_label(&label, embedder_id, dimensions, store_id)?;
    let graph = &bytes[..label.graph_bytes as usize];
    if crc32fast::hash(graph) != label.crc32 {
        return Err("the vector file is damaged (checksum mismatch)".into());
    }
    let index = new_index(dimensions).map_err(|e| e.to_string())?;
    index
        .load_from_buffer(graph)
        .map_err(|e| format!("the vector file is damaged: {e}"))?;
    Ok((index, label))
}

fn load_file(
    path: &Path,
    embedder_id: &str,
    dimensions: usize,
    store_id: i64,
    key: Option<&DataKey>,
) -> std::result::Result<(Index, Label), String> {
    // A writer may rename a new file over this one while it is read: the
    // checksum is taken on an open handle, and the load is redone if the
    // path no longer names that file afterwards.
    for _ in 0..3 {
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(NO_FILE.into()),
            Err(e) => return Err(format!("cannot read the vector file: {e}")),
        };
        let mut head = [0u8; 8];
        if file.read_exact(&mut head).is_ok() && seal::is_sealed(&head) {
            // Read whole from one handle: a rename over it cannot tear it.
            file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
            return load_sealed(file, key, embedder_id, dimensions, store_id)
                .and_then(|(index, label)| counted(index, label));
        }
        let label = read_label(&mut file)?;
        check_label(&label, embedder_id, dimensions, store_id)?;
        let (_, crc) = checksum(&mut file, Some(label.graph_bytes)).map_err(|e| e.to_string())?;
        if crc != label.crc32 {
            return Err("the vector file is damaged (checksum mismatch)".into());
        }
        let index = new_index(dimensions).map_err(|e| e.to_string())?;
        index
            .load(&path.to_string_lossy())
            .map_err(|e| format!("the vector file is damaged: {e}"))?;
        if !same_file(&file, path) {
            continue;
        }
        return counted(index, label);
    }
    Err("the vector file kept changing while it was read".into())
}

/// Whether `path` still names the file open as `file`.
fn same_file(file: &std::fs::File, path: &Path) -> bool {
    let (Ok(a), Ok(b)) = (file.metadata(), std::fs::metadata(path)) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        a.ino() == b.ino() && a.dev() == b.dev()
    }
    #[cfg(not(unix))]
    {
        a.len() == b.len() && a.modified().ok() == b.modified().ok()
    }
}

fn new_index(dimensions: usize) -> Result<Index> {
    let options = IndexOptions {
        dimensions,
        metric: MetricKind::Cos,
        quantization: ScalarKind::F16,
        connectivity: 16,
        expansion_add: EXPANSION_ADD,
        expansion_search: 64,
        multi: false,
    };
    let index = Index::new(&options).map_err(vec_err)?;
    index.reserve(1024).map_err(vec_err)?;
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
