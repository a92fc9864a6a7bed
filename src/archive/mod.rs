//! Taking the index elsewhere: a portable archive of one data folder
//! ([`export`] / [`import`], format in [`format`] and docs/archive-format.md)
//! and exports for vector databases ([`PeerFormat`]: Qdrant, Chroma).
//!
//! An archive holds what was paid for and what took time: notes' metadata,
//! chunks with their ranges and heading paths, the vectors with their
//! embedder, the cost ledger and the settings (which hold no secrets). The
//! keyword index and the vector file are derived and rebuilt on import.
//! A file name ending in `.gz` is written and read gzip-compressed.

mod export;
mod format;
mod import;
mod peers;

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

pub use export::{ArchiveProgress, ExportReport};
pub use format::{
    decode_vector, encode_vector, ChunkLine, Counts, EmbedderInfo, EndLine, Header, LedgerLine,
    Line, NoteLine, RootLine, VectorLine, ARCHIVE_FORMAT, ARCHIVE_VERSION, VECTOR_ENCODING,
};
pub use import::{import, read_header, ImportOptions, ImportReport};
pub use peers::{PeerFormat, BATCH as PEER_BATCH};

use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// A Sift archive, to import into another data folder.
    Sift,
    /// Points for a vector database.
    Peer(PeerFormat),
}

/// Writes the index of `engine` to `path` in `format`, from one snapshot of
/// the store (indexing may go on meanwhile). The file appears whole or not at
/// all: it is written under a temporary name beside `path` and renamed.
/// `embedder` chooses whose vectors a peer export carries (default: the
/// engine's embedder, else the only one with vectors).
pub fn export(
    engine: &Engine,
    path: &Path,
    format: ExportFormat,
    embedder: Option<&str>,
    progress: &dyn Fn(&ArchiveProgress),
) -> Result<ExportReport> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::new(
            ErrorKind::BadPath,
            format!(
                "cannot write {}: {} is not a folder",
                path.display(),
                dir.display()
            ),
        ));
    }
    let tmp = tempfile::Builder::new()
        .prefix(".sift-export")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    let gzip = path.extension().is_some_and(|e| e == "gz");
    let sink = Sink::new(
        tmp.as_file().try_clone().map_err(|e| Error::io(dir, e))?,
        gzip,
    );
    let settings = engine.settings();
    let active = engine.embedder().map(|e| e.id().to_string());
    let (sink, counts, embedders) = engine.store().read(|conn| {
        // One read transaction: every line comes from the same snapshot.
        let tx = conn.unchecked_transaction()?;
        match format {
            ExportFormat::Sift => export::write_archive(
                &tx,
                engine.data_dir(),
                &settings,
                active.as_deref(),
                sink,
                progress,
            ),
            ExportFormat::Peer(peer) => {
                let used = export::used_embedders(&tx)?;
                let chosen = choose_embedder(embedder.or(active.as_deref()), &used)?;
                let (sink, points) = peers::write_peer(&tx, &chosen.id, peer, sink, progress)?;
                let counts = Counts {
                    chunks: points,
                    vectors: points,
                    ..Counts::default()
                };
                Ok((sink, counts, vec![chosen]))
            }
        }
    })?;
    let file = sink.finish().map_err(export::write_err)?;
    file.sync_all().map_err(export::write_err)?;
    let bytes = file.metadata().map_err(|e| Error::io(path, e))?.len();
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(ExportReport {
        counts,
        embedders,
        bytes,
    })
}

/// The embedder a peer export is for: `wanted` if it has vectors, else the
/// only embedder that has.
fn choose_embedder(wanted: Option<&str>, used: &[EmbedderInfo]) -> Result<EmbedderInfo> {
    let listed = || {
        used.iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(id) = wanted {
        if let Some(e) = used.iter().find(|e| e.id == id) {
            return Ok(e.clone());
        }
    }
    match used {
        [only] if wanted.is_none() => Ok(only.clone()),
        [] => Err(Error::new(
            ErrorKind::InvalidInput,
            "the index holds no vectors yet: index the folders first",
        )),
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "no vectors of {}; choose one of the embedders with vectors: {}",
                wanted.unwrap_or("the current embedder"),
                listed()
            ),
        )),
    }
}

/// A file, gzip-compressed or not.
enum Sink {
    Plain(BufWriter<File>),
    Gzip(Box<flate2::write::GzEncoder<BufWriter<File>>>),
}

impl Sink {
    fn new(file: File, gzip: bool) -> Sink {
        let out = BufWriter::with_capacity(1 << 20, file);
        if gzip {
            Sink::Gzip(Box::new(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::default(),
            )))
        } else {
            Sink::Plain(out)
        }
    }

    fn finish(self) -> std::io::Result<File> {
        let out = match self {
            Sink::Plain(out) => out,
            Sink::Gzip(gz) => gz.finish()?,
        };
        out.into_inner().map_err(|e| e.into_error())
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
        }
    }
}

/// The lines of the archive at `path`, gunzipped when it starts as gzip does.
fn open_lines(path: &Path) -> Result<import::Lines> {
    let file = File::open(path).map_err(|e| {
        Error::new(
            ErrorKind::BadPath,
            format!("cannot read the archive {}: {e}", path.display()),
        )
    })?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let gzip = reader
        .fill_buf()
        .map_err(|e| Error::io(path, e))?
        .starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(reader)))
    } else {
        Box::new(reader)
    };
    Ok(import::Lines::new(reader))
}
