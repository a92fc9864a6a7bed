//! Stage 1 of an index run: the store made to match the files, one batch
//! transaction at a time, every note keyword-searchable when it ends.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::embedding::sync_vectors;
use super::{ChangeKind, IndexContext, IndexReport, NoteChange, Phase};
use crate::chunk::{chunk_note, Chunk};
use crate::config::ScanSettings;
use crate::error::{Error, ErrorKind, Result};
use crate::note::{display_title, is_markdown_ext, parse_note, read_note_text, ReadFailure};
use crate::scan::{relative_path, scan_folder, scan_paths, ScanOutcome, ScannedFile, SkippedFile};
use crate::store::{tables, NoteContent, NoteRow};

/// Files read and chunked per write transaction.
const FILE_BATCH: usize = 64;
/// Batches read and chunked ahead of the one being written.
const PREPARED_AHEAD: usize = 2;

/// A note read and chunked, ready to be written.
enum Prepared {
    Note {
        content: NoteContent,
        chunks: Vec<Chunk>,
    },
    Skipped(String),
    Failed(String),
    Vanished,
}

/// Stage 1: makes the store match the files under `root`.
pub(crate) fn sync_root(
    ctx: &IndexContext<'_>,
    root: &Path,
    report: &mut IndexReport,
) -> Result<()> {
    ctx.report(
        Phase::Scanning,
        (0, 0),
        (0, 0),
        Some(root.display().to_string()),
    );
    if !root.is_dir() {
        // A drive unplugged or a folder moved: not a reason to forget its notes
        // or to stop the other folders.
        report.unavailable.push(root.display().to_string());
        return Ok(());
    }
    let scan = scan_folder(root, &ctx.settings.scan);
    let (root_id, existing) = {
        let conn = ctx.store.writer();
        let root_id = tables::ensure_root(&conn, root)?;
        (root_id, tables::notes_of_root(&conn, root_id)?)
    };
    let before = (report.notes_indexed, report.notes_removed);
    apply_scan(ctx, root_id, &scan, &existing, report)?;
    // Template boilerplate is counted again when the folder changed (a
    // full run with nothing new redoes nothing), before anything is embedded.
    let changed = before != (report.notes_indexed, report.notes_removed);
    let enabled = ctx.settings.scan.strip_boilerplate;
    let counted = ctx
        .store
        .read(|c| crate::boilerplate::counted(c, root_id))?;
    if changed || counted != Some(enabled) {
        let now = chrono::Utc::now().timestamp();
        let (_, new_ids) =
            crate::boilerplate::refresh(&mut ctx.store.writer(), root_id, enabled, now)?;
        sync_vectors(ctx, &new_ids)?;
    }
    Ok(())
}

/// Stage 1 for a few paths under `root` (files or folders, changed, created or
/// gone): the store is made to match the files at and under those paths only,
/// with the same rules and the same transactions as [`sync_root`].
pub(crate) fn sync_paths(
    ctx: &IndexContext<'_>,
    root: &Path,
    paths: &[PathBuf],
    report: &mut IndexReport,
) -> Result<()> {
    if paths.iter().any(|p| p.as_path() == root) || !root.is_dir() {
        return sync_root(ctx, root, report);
    }
    let scan = scan_paths(root, paths, &ctx.settings.scan);
    let (root_id, existing) = {
        let conn = ctx.store.writer();
        let root_id = tables::ensure_root(&conn, root)?;
        let mut existing = HashMap::new();
        for path in paths {
            if let Ok(rel) = path.strip_prefix(root) {
                let rel = relative_path(rel, Path::new(""));
                existing.extend(tables::notes_at_or_under(&conn, root_id, &rel)?);
            }
        }
        (root_id, existing)
    };
    apply_scan(ctx, root_id, &scan, &existing, report)
}

/// Makes the stored notes in `existing` (all that the scan covered) match `scan`:
/// gone files leave, skips are recorded, new and changed files are marked
/// `pending` in one transaction, then read and written batch by batch.
fn apply_scan(
    ctx: &IndexContext<'_>,
    root_id: i64,
    scan: &ScanOutcome,
    existing: &HashMap<String, NoteRow>,
    report: &mut IndexReport,
) -> Result<()> {
    report.files_seen += scan.files.len();
    let seen: HashSet<&str> = scan
        .files
        .iter()
        .map(|f| f.rel_path.as_str())
        .chain(scan.skipped.iter().map(|s| s.rel_path.as_str()))
        .collect();
    let todo: Vec<&ScannedFile> = scan
        .files
        .iter()
        .filter(|f| {
            existing.get(&f.rel_path).is_none_or(|n| {
                n.state != "indexed" || n.size != f.size || n.mtime_ns != f.mtime_ns
            })
        })
        .collect();
    report.notes_unchanged += scan.files.len() - todo.len();

    // One transaction: forget deleted files, record scan skips, queue the work.
    {
        let mut conn = ctx.store.writer();
        let tx = conn.transaction()?;
        for (rel_path, row) in existing {
            if !seen.contains(rel_path.as_str()) {
                tables::delete_note(&tx, row.id)?;
                report.notes_removed += 1;
                report.changes.push(NoteChange {
                    path: rel_path.clone(),
                    kind: ChangeKind::Removed,
                });
            }
        }
        for skip in &scan.skipped {
            let old = existing.get(&skip.rel_path);
            record_skip(&tx, root_id, skip, old)?;
            report
                .skipped
                .push((skip.rel_path.clone(), skip.reason.clone()));
            if !skip.rel_path.is_empty() && old.is_none_or(|o| o.state != "skipped") {
                report.changes.push(NoteChange {
                    path: skip.rel_path.clone(),
                    kind: ChangeKind::Skipped(skip.reason.clone()),
                });
            }
        }
        for f in &todo {
            set_file_state(&tx, root_id, f, "pending", None)?;
        }
        tx.commit()?;
    }
    sync_vectors(ctx, &[])?;

    let total = todo.len();
    let scan = &ctx.settings.scan;
    let batches: Vec<&[&ScannedFile]> = todo.chunks(FILE_BATCH).collect();
    // With two threads or more, batches are read and chunked on one thread
    // while another writes them (SQLite has one writer), PREPARED_AHEAD
    // batches ahead: in step (one batch prepared while one is written) each
    // side waited for the other whenever a batch was slower on its side than
    // the last, and each core stood idle a quarter of the time (BENCHMARKS.md,
    // issue 13, round 8).
    let queued = crate::background::threads() >= 2 && batches.len() >= 2;
    let batches = &batches;
    std::thread::scope(|s| -> Result<()> {
        // The queue of prepared batches, and the writer's word after each.
        let mut feed = None;
        if queued {
            let (ready, prepared) = std::sync::mpsc::sync_channel(PREPARED_AHEAD);
            let (written_tx, written) = std::sync::mpsc::channel::<()>();
            // Ends when every batch is sent or the writer stops listening.
            s.spawn(move || {
                let mut written_so_far = 0;
                for (batch_no, batch) in batches.iter().enumerate() {
                    let threads = crate::background::threads();
                    // Down to one thread (on battery): the next batch is read
                    // only once the writer is done with every earlier one.
                    while threads < 2 && written_so_far < batch_no {
                        if written.recv().is_err() {
                            return;
                        }
                        written_so_far += 1;
                    }
                    while written.try_recv().is_ok() {
                        written_so_far += 1;
                    }
                    // The writer keeps one of the run's threads.
                    let prepared = prepare_batch(batch, scan, threads.saturating_sub(1).max(1));
                    if ready.send(prepared).is_err() {
                        break;
                    }
                }
            });
            feed = Some((prepared, written_tx));
        }
        for (batch_no, batch) in batches.iter().enumerate() {
            ctx.check_cancel()?;
            report_batch(ctx, batch_no, batch, total);
            let prepared = match &feed {
                Some((prepared, _)) => prepared.recv().map_err(|_| {
                    Error::new(ErrorKind::Internal, "the thread reading notes stopped")
                })?,
                None => prepare_batch(batch, scan, crate::background::threads()),
            };
            let new_ids = write_batch(ctx, root_id, batch, prepared, existing, report)?;
            sync_vectors(ctx, &new_ids)?;
            if let Some((_, written)) = &feed {
                // The reader may be waiting for this (one thread); or gone.
                let _ = written.send(());
            }
        }
        Ok(())
    })?;
    ctx.report(Phase::Indexing, (total, total), (0, 0), None);
    Ok(())
}

/// Says which batch the writer is at.
fn report_batch(ctx: &IndexContext<'_>, batch_no: usize, batch: &[&ScannedFile], total: usize) {
    ctx.report(
        Phase::Indexing,
        (batch_no * FILE_BATCH, total),
        (0, 0),
        batch.first().map(|f| f.rel_path.clone()),
    );
}

/// Reads, parses and chunks `batch` on the background pool with `threads`.
fn prepare_batch(batch: &[&ScannedFile], scan: &ScanSettings, threads: usize) -> Vec<Prepared> {
    crate::background::install_with(threads, || {
        batch.par_iter().map(|f| prepare(f, scan)).collect()
    })
}

/// Reads, parses and chunks one file (no store access: runs in parallel). A
/// panic in the parser or splitter fails this note only, not the run.
fn prepare(file: &ScannedFile, scan: &ScanSettings) -> Prepared {
    crate::panics::catch(|| "indexing".into(), || prepare_note(file, scan))
        .unwrap_or_else(|err| Prepared::Failed(err.message().to_string()))
}

fn prepare_note(file: &ScannedFile, scan: &ScanSettings) -> Prepared {
    // PDF, DOCX, ODT, HTML: converted to plain text with headings and pages.
    let (note, info, markdown, document) =
        match crate::extract::read_document(&file.abs_path, &file.ext, scan) {
            Some(Ok(doc)) => (doc.note, doc.info, false, Some(doc.extracted)),
            Some(Err(ReadFailure::Vanished)) => return Prepared::Vanished,
            Some(Err(ReadFailure::Skipped(reason))) => return Prepared::Skipped(reason),
            None => {
                let note = match read_note_text(&file.abs_path, scan.max_bytes_for(&file.ext)) {
                    Ok(note) => note,
                    Err(ReadFailure::Vanished) => return Prepared::Vanished,
                    Err(ReadFailure::Skipped(reason)) => return Prepared::Skipped(reason),
                };
                let markdown = is_markdown_ext(&file.ext);
                let info = parse_note(&note.text, markdown);
                (note, info, markdown, None)
            }
        };
    let mut chunks = chunk_note(&note.text, &info, markdown);
    if let Some(doc) = &document {
        for chunk in &mut chunks {
            chunk.page = doc.page_at(chunk.byte_start);
        }
    }
    let script = crate::language::prose_script(chunks.iter().map(|c| c.body.as_str()));
    Prepared::Note {
        content: NoteContent {
            script,
            title: display_title(&info, &file.rel_path),
            tags: info.tags,
            aliases: info.aliases,
            date: info.date,
            content_hash: note.content_hash,
            links: info
                .links
                .iter()
                .filter_map(|link| {
                    crate::links::link_key(&file.rel_path, link)
                        .map(|(key, exact)| (key, exact, link.offset))
                })
                .collect(),
        },
        chunks,
    }
}

/// Writes one batch of prepared notes in one transaction; returns new chunk ids.
/// Each note is written under a savepoint: a note the store refuses is marked
/// `failed` with the error and the rest of the batch goes on.
fn write_batch(
    ctx: &IndexContext<'_>,
    root_id: i64,
    files: &[&ScannedFile],
    prepared: Vec<Prepared>,
    existing: &HashMap<String, NoteRow>,
    report: &mut IndexReport,
) -> Result<Vec<i64>> {
    let now = chrono::Utc::now().timestamp();
    let strip = ctx.settings.scan.strip_boilerplate;
    let mut new_ids = Vec::new();
    let mut conn = ctx.store.writer();
    let mut tx = conn.transaction()?;
    // Written after every note's savepoint, so FTS5 flushes them once.
    let mut keyword_rows = tables::KeywordRows::default();
    for (file, prepared) in files.iter().zip(prepared) {
        let old = existing.get(&file.rel_path);
        let written = {
            let sp = tx.savepoint()?;
            let written = crate::panics::catch(
                || "indexing".into(),
                || write_note(&sp, root_id, file, prepared, old, now, strip),
            );
            match written.and_then(|w| w) {
                Ok(written) => {
                    sp.commit()?;
                    Ok(written)
                }
                // Dropping the savepoint rolls this note back.
                Err(err) => Err(err),
            }
        };
        let written = written.or_else(|err| -> Result<Written> {
            let reason = match err.kind() {
                ErrorKind::Internal => err.message().to_string(),
                _ => format!("could not be stored: {}", err.message()),
            };
            set_file_state(&tx, root_id, file, "failed", Some(&reason))?;
            Ok(Written::Failed(reason))
        })?;
        let kind = match written {
            Written::Indexed(ids, rows) => {
                keyword_rows.append(rows);
                report.notes_indexed += 1;
                let kind = ChangeKind::Indexed(ids.len());
                new_ids.extend(ids);
                Some(kind)
            }
            Written::Unchanged => {
                report.notes_unchanged += 1;
                None
            }
            Written::Skipped(reason) => {
                report.skipped.push((file.rel_path.clone(), reason.clone()));
                Some(ChangeKind::Skipped(reason))
            }
            Written::Failed(reason) => Some(ChangeKind::Failed(reason)),
            Written::Removed => {
                report.notes_removed += 1;
                old.is_some().then_some(ChangeKind::Removed)
            }
        };
        if let Some(kind) = kind {
            report.changes.push(NoteChange {
                path: file.rel_path.clone(),
                kind,
            });
        }
    }
    keyword_rows.write(&tx)?;
    tx.commit()?;
    Ok(new_ids)
}

/// What writing one note did.
enum Written {
    /// New chunk ids, and their keyword rows (written once the note's
    /// savepoint is released).
    Indexed(Vec<i64>, tables::KeywordRows),
    Unchanged,
    Skipped(String),
    Failed(String),
    Removed,
}

fn write_note(
    tx: &rusqlite::Connection,
    root_id: i64,
    file: &ScannedFile,
    prepared: Prepared,
    old: Option<&NoteRow>,
    now: i64,
    strip_boilerplate: bool,
) -> Result<Written> {
    let id = set_file_state(tx, root_id, file, "pending", None)?;
    let (state, reason) = match prepared {
        Prepared::Note { content, chunks } => {
            let unchanged = old.is_some_and(|o| {
                o.state == "indexed" && o.content_hash.as_deref() == Some(&content.content_hash[..])
            });
            if unchanged {
                // Touched but not edited: keep chunks and vectors; the upsert
                // records the new size and mtime with the state.
                set_file_state(tx, root_id, file, "indexed", None)?;
                return Ok(Written::Unchanged);
            }
            // Template lines already known in this folder are not embedded.
            let mut chunks = chunks;
            if strip_boilerplate {
                crate::boilerplate::Boilerplate::load(tx, root_id)?.apply(&mut chunks);
            }
            let (ids, keyword_rows) =
                tables::replace_chunks(tx, id, &content.title, &content.aliases, &chunks)?;
            tables::set_indexed(tx, id, &content, now)?;
            return Ok(Written::Indexed(ids, keyword_rows));
        }
        Prepared::Vanished => {
            tables::delete_note(tx, id)?;
            return Ok(Written::Removed);
        }
        Prepared::Skipped(reason) => ("skipped", reason),
        Prepared::Failed(reason) => ("failed", reason),
    };
    tables::delete_chunks_of_note(tx, id)?;
    set_file_state(tx, root_id, file, state, Some(&reason))?;
    Ok(if state == "failed" {
        Written::Failed(reason)
    } else {
        Written::Skipped(reason)
    })
}

/// The row of a scanned file, with its size and mtime, in `state`; its id.
fn set_file_state(
    conn: &rusqlite::Connection,
    root_id: i64,
    file: &ScannedFile,
    state: &str,
    reason: Option<&str>,
) -> Result<i64> {
    tables::upsert_state(
        conn,
        root_id,
        &file.rel_path,
        &file.ext,
        file.size,
        file.mtime_ns,
        state,
        reason,
    )
}

fn record_skip(
    conn: &rusqlite::Connection,
    root_id: i64,
    skip: &SkippedFile,
    old: Option<&NoteRow>,
) -> Result<()> {
    if skip.rel_path.is_empty() {
        return Ok(());
    }
    if let Some(old) = old {
        tables::delete_chunks_of_note(conn, old.id)?;
    }
    let ext = skip
        .rel_path
        .rsplit_once('.')
        .map_or("", |(_, e)| e)
        .to_ascii_lowercase();
    tables::upsert_state(
        conn,
        root_id,
        &skip.rel_path,
        &ext,
        0,
        0,
        "skipped",
        Some(&skip.reason),
    )?;
    Ok(())
}
