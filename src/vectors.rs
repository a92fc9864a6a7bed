//! The usearch vector index of one embedder, saved beside the database.
//!
//! Files: `vectors/<slug>.usearch` (the HNSW graph, f16) and `<slug>.json`, a label
//! with embedder id, dimensions, vector count and the last applied entry of the
//! `vector_removals` log. SQLite is the source of truth: on open, the index is
//! reconciled with it (removals replayed, missing vectors added from the embedding
//! cache), and rebuilt from the cache if missing or damaged — never re-embedded.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::config::VECTOR_FORMAT_VERSION;
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

#[derive(Debug, Serialize, Deserialize)]
struct Label {
    format: u32,
    embedder_id: String,
    dimensions: usize,
    count: usize,
    removal_seq: i64,
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
}

/// An approximate nearest-neighbour index of chunk vectors for one embedder.
pub struct VectorIndex {
    index: Index,
    embedder_id: String,
    dimensions: usize,
    path: PathBuf,
    label_path: PathBuf,
    removal_seq: i64,
    dirty: bool,
}

impl VectorIndex {
    /// Opens the index of `embedder_id` in `dir`, reconciling it with the store.
    pub fn open(
        dir: &Path,
        embedder_id: &str,
        dimensions: usize,
        conn: &Connection,
    ) -> Result<(VectorIndex, OpenReport)> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let slug = file_slug(embedder_id);
        let path = dir.join(format!("{slug}.usearch"));
        let label_path = dir.join(format!("{slug}.json"));
        remove_stale_temp_files(dir, &slug);
        let mut report = OpenReport::default();

        let loaded = load_existing(&path, &label_path, embedder_id, dimensions);
        let (index, label_seq) = match loaded {
            Ok((index, label)) => (index, Some(label)),
            Err(reason) => {
                report.rebuilt = true;
                report.rebuild_reason = Some(reason);
                (new_index(dimensions)?, None)
            }
        };
        let mut vi = VectorIndex {
            index,
            embedder_id: embedder_id.to_string(),
            dimensions,
            path,
            label_path,
            removal_seq: 0,
            dirty: false,
        };
        let expected = tables::count_chunks_with_vectors(conn, embedder_id)? as usize;
        if let Some(label) = label_seq {
            let removals = tables::removals_after(conn, label.removal_seq)?;
            let unchanged =
                removals.is_empty() && label.count == expected && vi.index.size() == expected;
            if !unchanged {
                for (_, chunk_id) in &removals {
                    report.removed += vi.index.remove(*chunk_id as u64).map_err(vec_err)?;
                }
                report.added = vi.add_missing_from_cache(conn)?;
                if vi.index.size() != expected {
                    report.rebuilt = true;
                    report.rebuild_reason = Some(format!(
                        "index holds {} vectors, the database {expected}",
                        vi.index.size()
                    ));
                    vi.index = new_index(dimensions)?;
                    vi.add_missing_from_cache(conn)?;
                }
                vi.dirty = true;
            }
        } else {
            vi.add_missing_from_cache(conn)?;
            vi.dirty = true;
        }
        vi.removal_seq = tables::max_removal_seq(conn)?;
        if vi.dirty {
            vi.save_with_seq(vi.removal_seq)?;
        }
        Ok((vi, report))
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
    pub fn apply_removals(&mut self, conn: &Connection) -> Result<usize> {
        let mut removed = 0;
        for (seq, chunk_id) in tables::removals_after(conn, self.removal_seq)? {
            removed += self.index.remove(chunk_id as u64).map_err(vec_err)?;
            self.removal_seq = seq;
            self.dirty = true;
        }
        Ok(removed)
    }

    /// Saves if anything changed since the last save.
    pub fn save(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.save_with_seq(self.removal_seq)
    }

    /// Sets how hard searches look (higher: better recall, slower).
    pub fn set_expansion_search(&self, expansion: usize) {
        self.index.change_expansion_search(expansion);
    }

    fn save_with_seq(&mut self, removal_seq: i64) -> Result<()> {
        // Write to a temp name, then rename: a crash leaves the old file whole.
        // The temp name is per process: a `sift search` may save beside `sift watch`.
        let tmp = self
            .path
            .with_extension(format!("usearch.{}.tmp", std::process::id()));
        self.index
            .save(&tmp.to_string_lossy())
            .map_err(|e| Error::new(ErrorKind::Vectors, format!("cannot save vectors: {e}")))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        let label = Label {
            format: VECTOR_FORMAT_VERSION,
            embedder_id: self.embedder_id.clone(),
            dimensions: self.dimensions,
            count: self.index.size(),
            removal_seq,
        };
        let json = serde_json::to_vec_pretty(&label)
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        crate::fsutil::write_atomic(&self.label_path, &json)?;
        self.removal_seq = removal_seq;
        self.dirty = false;
        Ok(())
    }

    fn add_missing_from_cache(&mut self, conn: &Connection) -> Result<usize> {
        let mut pending: Vec<(i64, Vec<f32>)> = Vec::new();
        tables::for_each_chunk_vector(conn, &self.embedder_id, |id, bytes| {
            if !self.index.contains(id as u64) {
                let vector = decode_vector(bytes);
                if vector.len() == self.dimensions {
                    pending.push((id, vector));
                }
            }
            Ok(())
        })?;
        let items: Vec<(i64, &[f32])> = pending.iter().map(|(id, v)| (*id, v.as_slice())).collect();
        self.add_many(&items)?;
        Ok(items.len())
    }
}

/// Deletes temp files that killed processes left mid-save (a live save takes
/// well under a minute, so older ones are abandoned).
fn remove_stale_temp_files(dir: &Path, slug: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{slug}.usearch.");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default().as_secs() > 60);
        if name.starts_with(&prefix) && name.ends_with(".tmp") && stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn load_existing(
    path: &Path,
    label_path: &Path,
    embedder_id: &str,
    dimensions: usize,
) -> std::result::Result<(Index, Label), String> {
    let label: Label = std::fs::read(label_path)
        .map_err(|e| format!("no label: {e}"))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("bad label: {e}")))?;
    if label.format != VECTOR_FORMAT_VERSION
        || label.embedder_id != embedder_id
        || label.dimensions != dimensions
    {
        return Err("label does not match this embedder".into());
    }
    if !path.exists() {
        return Err("vector file missing".into());
    }
    let meta = Index::metadata(&path.to_string_lossy()).map_err(|e| format!("damaged: {e}"))?;
    if meta.dimensions as usize != dimensions {
        return Err("vector file has other dimensions".into());
    }
    let index = new_index(dimensions).map_err(|e| e.to_string())?;
    index
        .load(&path.to_string_lossy())
        .map_err(|e| format!("damaged: {e}"))?;
    if index.size() != label.count {
        return Err(format!(
            "vector file holds {} vectors, its label says {}",
            index.size(),
            label.count
        ));
    }
    Ok((index, label))
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
