//! The data folder: created on first use and checked to be writable, with
//! errors that name it and say what to do; and the way out of a damaged index
//! ([`rebuild_index`]: set the old one aside, start empty, keep what can be kept).
//!
//! What lives there: `settings.json` and the price overrides (kept by a
//! rebuild), `sift.db` with its WAL files (notes, chunks, the embedding cache,
//! the cost ledger) and `vectors/` (a cache of `sift.db`).

use std::io::ErrorKind as IoKind;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::store::Store;

/// The index database inside a data folder.
pub const DB_FILE: &str = "sift.db";
/// The vector indexes inside a data folder.
pub const VECTORS_DIR: &str = "vectors";

/// Where and how to choose another data folder, for messages.
const CHOOSE_ANOTHER: &str = "choose another data folder (--data-dir or SIFT_DATA_DIR)";

/// Creates the data folder `dir` if needed; before its index exists, checks
/// that Sift can write in it. (An index on read-only media can still be
/// searched; writing to it fails with an error naming the database.)
pub fn ensure(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| create_error(dir, &e))?;
    if dir.join(DB_FILE).exists() {
        return Ok(());
    }
    // A probe file: a read-only mount or a folder without write permission is
    // reported here, with its path, rather than as SQLite's "unable to open
    // database file".
    tempfile::Builder::new()
        .prefix(".sift-write-check")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| {
            // The OS error alone: tempfile's message names its random file.
            let e = match e.kind() {
                IoKind::ReadOnlyFilesystem | IoKind::PermissionDenied => e.kind().into(),
                _ => e,
            };
            write_error(dir, &e)
        })
}

/// Why the data folder `dir` could not be created, and what to do.
fn create_error(dir: &Path, err: &std::io::Error) -> Error {
    let dir_shown = dir.display();
    match err.kind() {
        IoKind::AlreadyExists | IoKind::NotADirectory => Error::new(
            ErrorKind::BadPath,
            format!(
                "the data folder {dir_shown} cannot be created: it (or a folder above it) is a file, not a folder; move the file away or {CHOOSE_ANOTHER}"
            ),
        ),
        IoKind::ReadOnlyFilesystem | IoKind::PermissionDenied => Error::new(
            ErrorKind::ReadOnly,
            format!(
                "the data folder {dir_shown} cannot be created ({err}): {CHOOSE_ANOTHER} or make its parent writable"
            ),
        ),
        _ => Error::new(
            ErrorKind::Io,
            format!("the data folder {dir_shown} cannot be created ({err}): {CHOOSE_ANOTHER}"),
        ),
    }
}

/// Why nothing can be written in the data folder `dir`, and what to do.
fn write_error(dir: &Path, err: &std::io::Error) -> Error {
    let dir_shown = dir.display();
    match err.kind() {
        IoKind::ReadOnlyFilesystem | IoKind::PermissionDenied => Error::new(
            ErrorKind::ReadOnly,
            format!(
                "the data folder {dir_shown} is not writable ({err}); Sift keeps its index there: make it writable or {CHOOSE_ANOTHER}"
            ),
        ),
        _ => Error::new(
            ErrorKind::Io,
            format!("cannot write in the data folder {dir_shown} ({err}): {CHOOSE_ANOTHER}"),
        ),
    }
}

/// What [`rebuild_index`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rebuilt {
    /// Where the old index now is (delete it once the new one serves you well).
    pub old_index: PathBuf,
    /// Cached vectors carried over from the old index (not paid for again).
    pub vectors_kept: u64,
    /// Days of the cost ledger carried over.
    pub ledger_days_kept: u64,
}

/// Sets the index of data folder `dir` aside (into `dir/old-index-<time>/`) and
/// starts an empty one; the caller then indexes the folders again. Settings are
/// kept. What can still be read from the old database is carried over: the
/// embedding cache (so nothing is embedded, or paid for, twice) and the cost
/// ledger. Returns `None` when there was no index.
///
/// Call it with no engine open on `dir`.
pub fn rebuild_index(dir: &Path) -> Result<Option<Rebuilt>> {
    ensure(dir)?;
    let db = dir.join(DB_FILE);
    if !db.exists() {
        return Ok(None);
    }
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let mut old = dir.join(format!("old-index-{stamp}"));
    let mut n = 1;
    while old.exists() {
        n += 1;
        old = dir.join(format!("old-index-{stamp}-{n}"));
    }
    std::fs::create_dir(&old).map_err(|e| Error::io(&old, e))?;
    for name in [
        DB_FILE.to_string(),
        format!("{DB_FILE}-wal"),
        format!("{DB_FILE}-shm"),
        VECTORS_DIR.to_string(),
    ] {
        let from = dir.join(&name);
        if from.exists() {
            std::fs::rename(&from, old.join(&name)).map_err(|e| Error::io(&from, e))?;
        }
    }
    let store = Store::open(&db)?;
    let conn = store.writer();
    crate::cost::UsageLedger::migrate(&conn)?;
    let (vectors_kept, ledger_days_kept) = salvage(&conn, &old.join(DB_FILE));
    Ok(Some(Rebuilt {
        old_index: old,
        vectors_kept,
        ledger_days_kept,
    }))
}

/// Copies the embedding cache and the cost ledger from the database at `old`
/// into `conn`, each table whole or not at all; a damaged table is left behind.
fn salvage(conn: &rusqlite::Connection, old: &Path) -> (u64, u64) {
    let attached = conn.execute(
        "ATTACH DATABASE ?1 AS old",
        [old.to_string_lossy().as_ref()],
    );
    if attached.is_err() {
        return (0, 0);
    }
    let copy = |sql: &str| -> u64 {
        conn.execute_batch("SAVEPOINT salvage")
            .and_then(|()| conn.execute(sql, []))
            .and_then(|n| conn.execute_batch("RELEASE salvage").map(|()| n as u64))
            .unwrap_or_else(|_| {
                let _ = conn.execute_batch("ROLLBACK TO salvage; RELEASE salvage");
                0
            })
    };
    let vectors = copy(
        "INSERT OR IGNORE INTO main.embed_cache(embedder, hash, vector)
         SELECT embedder, hash, vector FROM old.embed_cache",
    );
    let ledger = copy(
        "INSERT OR IGNORE INTO main.usage_ledger(day, provider, model, requests, tokens_sent,
            dollars, cache_hits, cache_hit_tokens, dollars_saved)
         SELECT day, provider, model, requests, tokens_sent, dollars, cache_hits,
            cache_hit_tokens, dollars_saved FROM old.usage_ledger",
    );
    let _ = conn.execute_batch("DETACH DATABASE old");
    (vectors, ledger)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_in_place_of_the_data_folder_is_named_with_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("data");
        std::fs::write(&file, "not a folder").unwrap();
        for dir in [file.clone(), file.join("below")] {
            let err = ensure(&dir).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadPath, "{err}");
            assert!(err.message().contains(&dir.display().to_string()), "{err}");
            assert!(err.message().contains("is a file, not a folder"), "{err}");
            assert!(err.message().contains("--data-dir"), "{err}");
        }
    }

    /// Root ignores permissions, so read-only is shown with the error the OS
    /// gives on a read-only mount (tests/engine/bad_input.rs mounts one when it can).
    #[test]
    fn a_read_only_data_folder_is_named_with_what_to_do() {
        let dir = Path::new("/mnt/notes-backup/sift");
        for err in [
            write_error(dir, &std::io::Error::from(IoKind::ReadOnlyFilesystem)),
            create_error(dir, &std::io::Error::from(IoKind::PermissionDenied)),
        ] {
            assert_eq!(err.kind(), ErrorKind::ReadOnly, "{err}");
            assert!(err.message().contains("/mnt/notes-backup/sift"), "{err}");
            assert!(err.message().contains(CHOOSE_ANOTHER), "{err}");
        }
    }
}
