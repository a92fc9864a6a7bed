//! Reading a Sift archive into a new data folder. Everything is checked
//! before anything is written (format, version, embedder), rows go into a
//! database beside the real one and that database is moved into place only
//! when the archive ended whole: a refused or cut archive leaves nothing.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};

use super::export::{ArchiveProgress, PROGRESS_EVERY};
use super::format::*;
use crate::config::Settings;
use crate::data_dir::DB_FILE;
use crate::error::{Error, ErrorKind, Result};
use crate::lock::{LockFile, WRITER_LOCK};
use crate::store::Store;

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Folder moves: each root at or under the first path is taken to be at
    /// the same place under the second (the notes folder moved, or another
    /// machine).
    pub remap: Vec<(PathBuf, PathBuf)>,
    /// The embedder that will search the imported folder (id, dimensions):
    /// an archive whose vectors are another embedder's is refused, since
    /// every chunk would have to be embedded (and paid for) again.
    pub embedder: Option<(String, usize)>,
}

/// What an import brought in.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportReport {
    /// The archive's header.
    pub header: Header,
    /// The indexed folders, as remapped.
    pub folders: Vec<PathBuf>,
    /// Vectors put into the vector index of the searching embedder.
    pub vectors_indexed: usize,
}

/// Reads the header and the settings of the archive at `path` (to choose an
/// embedder before importing, or to show what it holds); refuses what is not
/// an archive this Sift can read.
pub fn read_header(path: &Path) -> Result<(Header, Settings)> {
    let mut lines = super::open_lines(path)?;
    let header = first_header(path, &mut lines)?;
    match lines.next()? {
        Some(Line::Settings { settings }) => Ok((header, parse_settings(settings, 2)?)),
        _ => Err(bad_archive("its second line is not its settings")),
    }
}

fn parse_settings(value: serde_json::Value, at: u64) -> Result<Settings> {
    serde_json::from_value(value)
        .map_err(|e| bad_archive(format!("line {at}: the settings are not valid ({e})")))
}

/// Imports the archive at `archive` into `data_dir`, which must not hold an
/// index yet. With `options.embedder`, the vector index of that embedder is
/// built from the archive's vectors: search works at once, nothing is embedded.
pub fn import(
    data_dir: &Path,
    archive: &Path,
    options: &ImportOptions,
    progress: &dyn Fn(&ArchiveProgress),
) -> Result<ImportReport> {
    let mut lines = super::open_lines(archive)?;
    let header = first_header(archive, &mut lines)?;
    check_embedder(&header, options.embedder.as_ref())?;
    crate::data_dir::ensure(data_dir)?;
    let mut lock = LockFile::open(data_dir, WRITER_LOCK)?;
    let _held = lock.hold(&mut |holder| Err(crate::lock::busy_error(holder)))?;
    let db = data_dir.join(DB_FILE);
    if db.exists() {
        return Err(Error::new(
            ErrorKind::BadPath,
            format!(
                "the data folder {} already holds an index: import into a new data folder (--data-dir), or empty this one first with `sift forget --all`",
                data_dir.display()
            ),
        ));
    }
    let temp = data_dir.join(format!("{DB_FILE}.importing"));
    remove_db_files(&temp);
    let result = fill(&temp, &header, &mut lines, options, progress);
    let (settings, prices) = match result {
        Ok(found) => found,
        Err(e) => {
            remove_db_files(&temp);
            return Err(e);
        }
    };
    // Settings first, the database last: a database in place means the
    // import finished.
    settings.save(data_dir)?;
    if let Some(prices) = prices {
        let bytes = serde_json::to_vec_pretty(&prices)
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        crate::fsutil::write_atomic(&data_dir.join(crate::cost::prices::PRICES_FILE), &bytes)?;
    }
    std::fs::rename(&temp, &db).map_err(|e| Error::io(&db, e))?;
    let mut vectors_indexed = 0;
    if let Some((id, dimensions)) = &options.embedder {
        let store = Store::open(&db)?;
        let conn = store.writer();
        vectors_indexed = crate::vectors::VectorIndex::create_from_cache(
            &data_dir.join(crate::data_dir::VECTORS_DIR),
            id,
            *dimensions,
            &conn,
            store.key(),
        )?;
    }
    Ok(ImportReport {
        header,
        folders: settings.folders,
        vectors_indexed,
    })
}

/// An archive's lines, numbered from 1, read one at a time.
pub(super) struct Lines {
    pub(super) reader: Box<dyn BufRead>,
    pub(super) number: u64,
    buf: String,
}

impl Lines {
    pub(super) fn new(reader: Box<dyn BufRead>) -> Lines {
        Lines {
            reader,
            number: 0,
            buf: String::new(),
        }
    }

    /// The next line parsed, `None` at the end of the file.
    fn next(&mut self) -> Result<Option<Line>> {
        self.buf.clear();
        let n = self.reader.read_line(&mut self.buf).map_err(|e| {
            bad_archive(format!(
                "it cannot be read after line {} ({e})",
                self.number
            ))
        })?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        serde_json::from_str(self.buf.trim_end())
            .map(Some)
            .map_err(|e| {
                bad_archive(format!(
                    "line {} is not a valid archive line ({e})",
                    self.number
                ))
            })
    }
}

fn first_header(path: &Path, lines: &mut Lines) -> Result<Header> {
    let not_archive = || {
        Error::new(
            ErrorKind::IncompatibleArchive,
            format!(
                "{} is not a Sift archive (make one with `sift export <file>`)",
                path.display()
            ),
        )
    };
    let header = match lines.next() {
        Ok(Some(Line::Header(h))) if h.format == ARCHIVE_FORMAT => h,
        _ => return Err(not_archive()),
    };
    if header.version > ARCHIVE_VERSION {
        return Err(bad_archive(format!(
            "it was written by a newer Sift ({}, archive format {}); this Sift reads formats up to {ARCHIVE_VERSION}: update Sift, then import it",
            header.sift_version, header.version
        )));
    }
    if header.version == 0 || header.vector_encoding != VECTOR_ENCODING {
        return Err(bad_archive(format!(
            "its format {} with vectors as {:?} is not one Sift wrote",
            header.version, header.vector_encoding
        )));
    }
    Ok(header)
}

fn check_embedder(header: &Header, embedder: Option<&(String, usize)>) -> Result<()> {
    let Some((id, dimensions)) = embedder else {
        return Ok(());
    };
    if header.embedders.is_empty() {
        return Ok(());
    }
    let made_by = header
        .active_embedder
        .clone()
        .unwrap_or_else(|| header.embedders[0].id.clone());
    match header.embedders.iter().find(|e| &e.id == id) {
        Some(e) if e.dimensions == *dimensions => Ok(()),
        Some(e) => Err(bad_archive(format!(
            "its vectors of {id} have {} dimensions, this Sift's {id} makes {dimensions}",
            e.dimensions
        ))),
        None => Err(bad_archive(format!(
            "its vectors were made by {made_by}, and this Sift embeds with {id}: importing would embed every chunk again. Choose the provider and model the archive was made with, then import"
        ))),
    }
}

/// Reads every line after the header into a new database at `temp`; returns
/// the settings (folders remapped) and the price overrides.
fn fill(
    temp: &Path,
    header: &Header,
    lines: &mut Lines,
    options: &ImportOptions,
    progress: &dyn Fn(&ArchiveProgress),
) -> Result<(Settings, Option<serde_json::Value>)> {
    let store = Store::open(temp)?;
    let mut conn = store.writer();
    crate::cost::UsageLedger::migrate(&conn)?;
    let tx = conn.transaction()?;
    let dims: HashMap<&str, usize> = header
        .embedders
        .iter()
        .map(|e| (e.id.as_str(), e.dimensions))
        .collect();
    let c = &header.counts;
    let total = c.roots + c.notes + c.chunks + c.vectors + c.ledger + 3;
    let mut seen = Counts::default();
    let mut settings = None;
    let mut prices = None;
    let mut remaps_used = vec![false; options.remap.len()];
    let mut roots = Vec::new();
    let mut ended = false;
    while let Some(line) = lines.next()? {
        let at = lines.number;
        if ended {
            return Err(bad_archive(format!("line {at} follows the end line")));
        }
        if at.is_multiple_of(PROGRESS_EVERY) {
            progress(&ArchiveProgress { done: at, total });
        }
        let in_line = |e: Error| match e.kind() {
            ErrorKind::IncompatibleArchive => e,
            _ => bad_archive(format!("line {at}: {e}")),
        };
        match line {
            Line::Header(_) => return Err(bad_archive(format!("line {at} is a second header"))),
            Line::Settings { settings: value } => {
                settings = Some(parse_settings(value, at)?);
            }
            Line::Prices { prices: value } => prices = Some(value),
            Line::Root(root) => {
                let path = remap(Path::new(&root.path), &options.remap, &mut remaps_used);
                insert_root(&tx, root.id, &path).map_err(in_line)?;
                roots.push(path);
                seen.roots += 1;
            }
            Line::Note(note) => {
                insert_note(&tx, &note).map_err(in_line)?;
                seen.notes += 1;
            }
            Line::Chunk(chunk) => {
                insert_chunk(&tx, &chunk).map_err(in_line)?;
                seen.chunks += 1;
            }
            Line::Vector(v) => {
                let Some(&d) = dims.get(v.embedder.as_str()) else {
                    return Err(bad_archive(format!(
                        "line {at} holds a vector of {}, which the header does not list",
                        v.embedder
                    )));
                };
                let vector = decode_vector(&v.vector, d).map_err(in_line)?;
                let hash = decode_hash(&v.hash).map_err(in_line)?;
                crate::store::tables::put_vectors(&tx, &v.embedder, &[(hash, vector.as_slice())])
                    .map_err(in_line)?;
                seen.vectors += 1;
            }
            Line::Ledger(l) => {
                insert_ledger(&tx, &l).map_err(in_line)?;
                seen.ledger += 1;
            }
            Line::End(end) => {
                if end.lines != at - 1 {
                    return Err(bad_archive(format!(
                        "its end line counts {} lines, it has {}",
                        end.lines,
                        at - 1
                    )));
                }
                ended = true;
            }
        }
    }
    if !ended {
        return Err(bad_archive(format!(
            "it ends after line {} without its end line (cut short while copying?)",
            lines.number
        )));
    }
    if seen != header.counts {
        return Err(bad_archive(format!(
            "its header announces {:?}, it holds {:?}",
            header.counts, seen
        )));
    }
    if let Some(i) = remaps_used.iter().position(|used| !used) {
        let shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "--remap {}: no folder of the archive is at or under it (its folders: {})",
                options.remap[i].0.display(),
                shown.join(", ")
            ),
        ));
    }
    let mut settings = settings.ok_or_else(|| bad_archive("it has no settings line"))?;
    let mut ignored = vec![false; options.remap.len()];
    settings.folders = settings
        .folders
        .iter()
        .map(|f| remap(f, &options.remap, &mut ignored))
        .collect();
    tx.commit()?;
    Ok((settings, prices))
}

/// `path` moved by the first remap it is at or under.
fn remap(path: &Path, remaps: &[(PathBuf, PathBuf)], used: &mut [bool]) -> PathBuf {
    for (i, (from, to)) in remaps.iter().enumerate() {
        if let Ok(rest) = path.strip_prefix(from) {
            used[i] = true;
            return if rest.as_os_str().is_empty() {
                to.clone()
            } else {
                to.join(rest)
            };
        }
    }
    path.to_path_buf()
}

fn insert_root(conn: &Connection, id: i64, path: &Path) -> Result<()> {
    conn.execute(
        "INSERT INTO roots(id, path) VALUES (?1, ?2)",
        params![id, path.to_string_lossy()],
    )?;
    Ok(())
}

fn insert_note(conn: &Connection, n: &NoteLine) -> Result<()> {
    let hash = n.content_hash.as_deref().map(decode_hash).transpose()?;
    conn.prepare_cached(
        "INSERT INTO notes(id, root_id, rel_path, ext, size, mtime_ns, content_hash, title,
                           tags, aliases, note_date, state, reason, indexed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        n.id,
        n.root,
        n.path,
        n.ext,
        n.size as i64,
        n.mtime_ns,
        hash.as_ref().map(|h| &h[..]),
        n.title,
        serde_json::to_string(&n.tags).unwrap_or_default(),
        serde_json::to_string(&n.aliases).unwrap_or_default(),
        n.date,
        n.state,
        n.reason,
        n.indexed_at,
    ])?;
    let mut tags =
        conn.prepare_cached("INSERT OR IGNORE INTO note_tags(note_id, tag) VALUES (?1, ?2)")?;
    for tag in &n.tags {
        tags.execute(params![n.id, tag])?;
    }
    Ok(())
}

fn insert_chunk(conn: &Connection, c: &ChunkLine) -> Result<()> {
    let hash = decode_hash(&c.embed_hash)?;
    conn.prepare_cached(
        "INSERT INTO chunks(id, note_id, seq, byte_start, byte_end, line_start, line_end,
                            heading_path, context, embed_prefix, body, embed_hash, page)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        c.id,
        c.note,
        c.seq,
        c.byte_start,
        c.byte_end,
        c.line_start,
        c.line_end,
        serde_json::to_string(&c.heading_path).unwrap_or_default(),
        c.context,
        c.embed_prefix,
        c.body,
        &hash[..],
        c.page,
    ])?;
    let ext: String = conn
        .prepare_cached("SELECT ext FROM notes WHERE id = ?1")?
        .query_row([c.note], |r| r.get(0))?;
    // The keyword index is derived: written by the same rule as indexing does.
    crate::store::tables::insert_keyword_terms(
        conn,
        c.id,
        &c.context,
        &c.body,
        crate::note::is_markdown_ext(&ext),
    )
}

fn insert_ledger(conn: &Connection, l: &LedgerLine) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO usage_ledger(day, provider, model, requests, tokens_sent, dollars,
                                  cache_hits, cache_hit_tokens, dollars_saved)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        l.day,
        l.provider,
        l.model,
        l.requests as i64,
        l.tokens_sent as i64,
        l.dollars,
        l.cache_hits as i64,
        l.cache_hit_tokens as i64,
        l.dollars_saved,
    ])?;
    Ok(())
}

fn remove_db_files(db: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}
