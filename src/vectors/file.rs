//! The vector file: usearch's serialized index (the vectors, then the graph's
//! links), then a label (JSON), the label's length and a magic trailer.
//!
//! Opening checks the label against the store and checksums against the
//! bytes. A plain file is served as a memory-mapped view: nothing is copied,
//! pages are read as searches touch them. Its links (what a search follows:
//! damage there could send it astray in memory) are checked at every open;
//! the vectors (damage there changes scores only) are checked whole when the
//! file is small, and always before it is loaded to be changed. A sealed file
//! (encrypted folder) is unsealed into memory and checked whole.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use memmap2::Mmap;
use serde::{Deserialize, Serialize};
use usearch::{Index, IndexOptions};

use super::hnsw::{METRIC, STORAGE};
use crate::config::VECTOR_FORMAT_VERSION;
use crate::encryption::{seal, DataKey};

/// Why a vector file could not be loaded when there is none.
pub(super) const NO_FILE: &str = "no vector file";

/// Last bytes of every vector file.
const MAGIC: &[u8; 8] = b"SIFTVEC2";

/// Files up to this size have every byte checked at open (about 20 ms).
const WHOLE_CHECK_MAX: u64 = 64 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Label {
    pub format: u32,
    pub embedder_id: String,
    pub dimensions: usize,
    pub count: usize,
    pub removal_seq: i64,
    pub generation: i64,
    pub store_id: i64,
    pub graph_bytes: u64,
    pub crc32: u32,
    /// CRC-32 of the graph's links (the bytes after the vectors).
    #[serde(default)]
    pub links_crc32: Option<u32>,
    /// Chunks of the store that had no vector when the file was written.
    #[serde(default)]
    pub pending: Option<usize>,
    /// Set while a rebuild from the embedding cache is under way: the file
    /// holds the vectors of the chunks up to this id (the rebuild reads them
    /// in id order), and the next open carries on from there.
    #[serde(default)]
    pub rebuild_through: Option<i64>,
}

/// An opened vector file.
pub(super) struct Opened {
    pub index: Index,
    pub label: Label,
    /// The mapping `index` is a view of (`None`: loaded into memory).
    pub map: Option<Mmap>,
}

/// Opens the vector file at `path` as a view when it can be (a plain,
/// complete file), loaded into memory otherwise (sealed, or a rebuild's
/// progress, which the rebuild carries on).
pub(super) fn open(
    path: &Path,
    embedder_id: &str,
    dimensions: usize,
    store_id: i64,
    key: Option<&DataKey>,
) -> Result<Opened, String> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(NO_FILE.into()),
        Err(e) => return Err(format!("cannot read the vector file: {e}")),
    };
    let mut head = [0u8; 8];
    if file.read_exact(&mut head).is_ok() && seal::is_sealed(&head) {
        // Read whole from one handle: a rename over it cannot tear it.
        file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        return load_sealed(file, key, embedder_id, dimensions, store_id);
    }
    // Writers replace the file by renaming a new one over it, never write into
    // it: the mapping of this handle stays whole whatever they do.
    // SAFETY: as above; a file truncated in place by something else than Sift
    // would fault on access, like any mapped file.
    let map =
        unsafe { Mmap::map(&file) }.map_err(|e| format!("cannot map the vector file: {e}"))?;
    let label = label_in(&map)?;
    check_label(&label, embedder_id, dimensions, store_id)?;
    let graph = &map[..label.graph_bytes as usize];
    let load_it = label.rebuild_through.is_some();
    if load_it || label.links_crc32.is_none() || map.len() as u64 <= WHOLE_CHECK_MAX {
        check_whole(graph, &label)?;
    } else {
        let links =
            links_range(graph).ok_or("the vector file is damaged (its vectors overrun it)")?;
        if Some(crc32fast::hash(&graph[links])) != label.links_crc32 {
            return Err(
                "the vector file is damaged (checksum mismatch in the graph's links)".into(),
            );
        }
    }
    if load_it {
        let index = load(graph)?;
        return counted(Opened {
            index,
            label,
            map: None,
        });
    }
    let index = new_like(graph)?;
    // SAFETY: the mapping is kept beside the index (`Opened::map`, then
    // `VectorIndex::mapped`) and dropped after it.
    unsafe { index.view_from_buffer(graph) }
        .map_err(|e| format!("the vector file is damaged: {e}"))?;
    counted(Opened {
        index,
        label,
        map: Some(map),
    })
}

/// Loads the index a view of `map` shows into memory, every byte checked.
pub(super) fn load_mapped(map: &Mmap, label: &Label) -> Result<Index, String> {
    let graph = &map[..label.graph_bytes as usize];
    check_whole(graph, label)?;
    load(graph)
}

fn check_whole(graph: &[u8], label: &Label) -> Result<(), String> {
    if crc32fast::hash(graph) != label.crc32 {
        return Err("the vector file is damaged (checksum mismatch)".into());
    }
    Ok(())
}

/// A new index with the storage, metric and dimensions of the serialized one,
/// when it stores vectors as this Sift does: a file of another storage (f16 or
/// bf16, before i8) is rebuilt from the embedding cache, not served as it is.
fn new_like(graph: &[u8]) -> Result<Index, String> {
    let meta = Index::metadata_from_buffer(graph)
        .map_err(|e| format!("the vector file is damaged: {e}"))?;
    if meta.quantization != STORAGE {
        let name = |kind| format!("{kind:?}").to_lowercase();
        return Err(format!(
            "the vector file stores {} vectors, this Sift stores {}",
            name(meta.quantization),
            name(STORAGE)
        ));
    }
    if meta.metric != METRIC {
        return Err(format!(
            "the vector file compares vectors by {:?}, this Sift by {METRIC:?}",
            meta.metric
        ));
    }
    Index::new(&IndexOptions::from(meta)).map_err(|e| e.to_string())
}

fn load(graph: &[u8]) -> Result<Index, String> {
    let index = new_like(graph)?;
    index
        .load_from_buffer(graph)
        .map_err(|e| format!("the vector file is damaged: {e}"))?;
    Ok(index)
}

/// Where the graph's links start and end in a serialized index: after the
/// vectors (rows and columns as two u32s, then rows x columns bytes).
pub(super) fn links_range(graph: &[u8]) -> Option<Range<usize>> {
    let start = links_start(graph)?;
    (start <= graph.len()).then_some(start..graph.len())
}

/// Where the links start, from the first 8 bytes of a serialized index.
pub(super) fn links_start(head: &[u8]) -> Option<usize> {
    let rows = u32::from_le_bytes(head.get(0..4)?.try_into().ok()?) as usize;
    let cols = u32::from_le_bytes(head.get(4..8)?.try_into().ok()?) as usize;
    rows.checked_mul(cols)?.checked_add(8)
}

/// CRC-32 of bytes `range` of `file`.
pub(super) fn checksum(file: &mut std::fs::File, range: Range<u64>) -> std::io::Result<u32> {
    file.seek(SeekFrom::Start(range.start))?;
    let mut reader = BufReader::with_capacity(1 << 20, (&*file).take(range.end - range.start));
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize())
}

/// The label, its length and the magic: what follows the graph in a file.
pub(super) fn trailer(label: &Label) -> Result<Vec<u8>, String> {
    let mut trailer = serde_json::to_vec(label).map_err(|e| e.to_string())?;
    trailer.extend_from_slice(&(trailer.len() as u32).to_le_bytes());
    trailer.extend_from_slice(MAGIC);
    Ok(trailer)
}

/// The label at the end of a whole vector file.
fn label_in(bytes: &[u8]) -> Result<Label, String> {
    let len = bytes.len() as u64;
    if len < 12 {
        return Err("the vector file is truncated".into());
    }
    let tail: &[u8; 12] = bytes[bytes.len() - 12..].try_into().expect("12 bytes");
    if &tail[4..] != MAGIC {
        return Err("the vector file has no label (damaged or of an older Sift)".into());
    }
    let label_len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
    if label_len + 12 > len {
        return Err("the vector file's label is damaged".into());
    }
    let json = &bytes[(len - 12 - label_len) as usize..bytes.len() - 12];
    let label: Label = serde_json::from_slice(json)
        .map_err(|e| format!("the vector file's label is damaged: {e}"))?;
    if label.graph_bytes + label_len + 12 != len {
        return Err("the vector file's length does not match its label".into());
    }
    Ok(label)
}

/// The file when its index holds the vectors its label counts.
fn counted(opened: Opened) -> Result<Opened, String> {
    if opened.index.size() == opened.label.count {
        Ok(opened)
    } else {
        Err(format!(
            "the vector file holds {} vectors, its label says {}",
            opened.index.size(),
            opened.label.count
        ))
    }
}

/// Whether the label fits this embedder and database.
fn check_label(
    label: &Label,
    embedder_id: &str,
    dimensions: usize,
    store_id: i64,
) -> Result<(), String> {
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

/// Loads a sealed vector file (an encrypted data folder) into memory.
fn load_sealed(
    mut file: std::fs::File,
    key: Option<&DataKey>,
    embedder_id: &str,
    dimensions: usize,
    store_id: i64,
) -> Result<Opened, String> {
    let Some(key) = key else {
        return Err("the vector file is encrypted but the database is not".into());
    };
    let mut sealed = Vec::new();
    file.read_to_end(&mut sealed).map_err(|e| e.to_string())?;
    let bytes = seal::open(key, &sealed).map_err(|e| format!("the vector file: {e}"))?;
    let label = label_in(&bytes)?;
    check_label(&label, embedder_id, dimensions, store_id)?;
    let graph = &bytes[..label.graph_bytes as usize];
    check_whole(graph, &label)?;
    let index = load(graph)?;
    counted(Opened {
        index,
        label,
        map: None,
    })
}

/// Deletes temp files that killed processes left mid-save (a live save takes
/// well under a minute, so older ones are abandoned) and the two files of the
/// format before this one (graph and label apart), which the new file replaces.
pub(super) fn remove_stale_files(dir: &Path, slug: &str) {
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
