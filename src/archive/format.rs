//! The lines of a Sift archive (docs/archive-format.md): JSON Lines, one
//! object per line, tagged by `type`. The order is fixed: header, settings,
//! prices (optional), roots, notes, chunks, vectors, ledger, end. Readers
//! refuse a newer [`ARCHIVE_VERSION`] instead of guessing.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// The `format` of every archive header.
pub const ARCHIVE_FORMAT: &str = "sift-archive";

/// Version of the archive layout this Sift writes and the newest it reads;
/// bump it (and document the change) whenever a line changes.
pub const ARCHIVE_VERSION: u32 = 1;

/// How vectors are written: the little-endian f32 bytes, base64 (standard
/// alphabet, padded). At 100k chunks of 384 dimensions this is 2.3x smaller
/// than JSON float arrays (BENCHMARKS.md, "Archive").
pub const VECTOR_ENCODING: &str = "f32le-base64";

/// One line of an archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    /// First line: what the archive holds.
    Header(Header),
    /// The settings of the data folder (they hold no secrets: API keys live
    /// only in the keychain).
    Settings {
        /// As in `settings.json`.
        settings: serde_json::Value,
    },
    /// Price overrides (`prices.json`), when the data folder has them.
    Prices {
        /// As in `prices.json`.
        prices: serde_json::Value,
    },
    /// An indexed folder.
    Root(RootLine),
    /// A note (indexed, or pending, skipped or failed with its reason).
    Note(NoteLine),
    /// A chunk of a note.
    Chunk(ChunkLine),
    /// A cached vector of a text some chunk embeds.
    Vector(VectorLine),
    /// One day of the cost ledger for one provider and model.
    Ledger(LedgerLine),
    /// Last line: its presence tells a whole archive from a cut one.
    End(EndLine),
}

/// The first line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`ARCHIVE_FORMAT`].
    pub format: String,
    /// [`ARCHIVE_VERSION`] of the writer.
    pub version: u32,
    /// The Sift that wrote it.
    pub sift_version: String,
    /// When (RFC 3339).
    pub created: String,
    /// The embedder the data folder searched with when exported, if any.
    pub active_embedder: Option<String>,
    /// Every embedder with vectors in the archive.
    pub embedders: Vec<EmbedderInfo>,
    /// [`VECTOR_ENCODING`].
    pub vector_encoding: String,
    /// How many lines of each kind follow.
    pub counts: Counts,
}

/// An embedder whose vectors the archive holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedderInfo {
    /// Sift's embedder id, e.g. `local/all-MiniLM-L6-v2`.
    pub id: String,
    /// Length of its vectors.
    pub dimensions: usize,
    /// Vector lines for it.
    pub vectors: u64,
}

/// Lines of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Root lines.
    pub roots: u64,
    /// Note lines.
    pub notes: u64,
    /// Chunk lines.
    pub chunks: u64,
    /// Vector lines.
    pub vectors: u64,
    /// Ledger lines.
    pub ledger: u64,
}

/// An indexed folder, by id (notes refer to it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootLine {
    /// Id within the archive.
    pub id: i64,
    /// Absolute path when exported (`sift import --remap` moves it).
    pub path: String,
}

/// A note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteLine {
    /// Id within the archive (chunks refer to it).
    pub id: i64,
    /// Its root's id.
    pub root: i64,
    /// Path relative to the root, `/`-separated.
    pub path: String,
    /// Extension, lower case.
    pub ext: String,
    /// Size in bytes when indexed.
    pub size: u64,
    /// Modification time when indexed (ns since the Unix epoch).
    pub mtime_ns: i64,
    /// SHA-256 of the bytes indexed (hex), if indexed.
    pub content_hash: Option<String>,
    /// Display title.
    pub title: String,
    /// Tags, lower case.
    pub tags: Vec<String>,
    /// Aliases.
    pub aliases: Vec<String>,
    /// Front-matter date (Unix seconds).
    pub date: Option<i64>,
    /// indexed | pending | skipped | failed.
    pub state: String,
    /// Why skipped or failed.
    pub reason: Option<String>,
    /// When indexed (Unix seconds).
    pub indexed_at: Option<i64>,
}

/// A chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkLine {
    /// Id within the archive (the vector key in Sift; Qdrant/Chroma ids too).
    pub id: i64,
    /// Its note's id.
    pub note: i64,
    /// Position within the note (0-based).
    pub seq: i64,
    /// Byte range in the note's text.
    pub byte_start: i64,
    /// End of the byte range (exclusive).
    pub byte_end: i64,
    /// First line (1-based).
    pub line_start: i64,
    /// Last line.
    pub line_end: i64,
    /// Page where it starts (paged documents).
    pub page: Option<i64>,
    /// Headings in effect, outermost first.
    pub heading_path: Vec<String>,
    /// Title, aliases and headings as the keyword index sees them.
    pub context: String,
    /// What the embedder saw before the body (title, headings).
    pub embed_prefix: String,
    /// The chunk's text.
    pub body: String,
    /// SHA-256 of the embedded text (hex): the key of its vectors.
    pub embed_hash: String,
}

/// A cached vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorLine {
    /// Embedder id (one of the header's `embedders`).
    pub embedder: String,
    /// The `embed_hash` of the chunks it belongs to (hex).
    pub hash: String,
    /// The vector in [`VECTOR_ENCODING`].
    pub vector: String,
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerLine {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Provider name.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Requests sent.
    pub requests: u64,
    /// Tokens sent.
    pub tokens_sent: u64,
    /// Dollars spent.
    pub dollars: f64,
    /// Texts served from the cache.
    pub cache_hits: u64,
    /// Tokens they would have cost.
    pub cache_hit_tokens: u64,
    /// Dollars the cache saved.
    pub dollars_saved: f64,
}

/// The last line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndLine {
    /// Lines before this one, header included.
    pub lines: u64,
}

/// A vector as [`VECTOR_ENCODING`].
pub fn encode_vector(v: &[f32]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(crate::store::encode_vector(v))
}

/// A vector from [`VECTOR_ENCODING`], checked against `dimensions`.
pub fn decode_vector(text: &str, dimensions: usize) -> Result<Vec<f32>> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| bad_archive(format!("a vector is not valid base64 ({e})")))?;
    if bytes.len() != dimensions * 4 {
        return Err(bad_archive(format!(
            "a vector has {} bytes, {dimensions} dimensions need {}",
            bytes.len(),
            dimensions * 4
        )));
    }
    Ok(crate::store::decode_vector(&bytes))
}

/// A 32-byte hash from hex.
pub fn decode_hash(text: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)
        .map_err(|e| bad_archive(format!("{text:?} is not a SHA-256 in hex ({e})")))?;
    Ok(out)
}

/// An archive Sift cannot import, with why.
pub(crate) fn bad_archive(why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::IncompatibleArchive,
        format!("cannot import this archive: {why}"),
    )
}
