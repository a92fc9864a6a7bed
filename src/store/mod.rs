//! Metadata, full text and the embedding cache, in one SQLite database.
//!
//! One writer connection (the indexer) and a small pool of reader connections
//! (searches). WAL mode lets readers work during a long indexing run and see
//! only committed notes.

mod cache;
mod checkpoint;
mod chunks;
mod generation;
mod notes;
mod prune;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags};

pub use cache::{decode_cached, decode_vector, encode_cached, encode_vector};
pub use checkpoint::BackgroundCheckpoints;
pub use chunks::{ChunkRow, StoredChunk};
pub use notes::{FileStateRow, NoteContent, NoteRow};
pub use prune::PruneReport;

use crate::encryption::DataKey;
use crate::error::{Error, ErrorKind, Result};

/// The SQLite database of one data folder.
pub struct Store {
    path: PathBuf,
    /// The SQLCipher key of an encrypted database.
    key: Option<DataKey>,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Shared hold of the data folder's open lock: no one re-encrypts the
    /// database under this process.
    _open: Option<std::fs::File>,
}

impl Store {
    /// Opens (creating and migrating if needed) the database at `path`.
    /// An encrypted database is opened with its key from the OS keychain.
    pub fn open(path: &Path) -> Result<Store> {
        let open = path.parent().and_then(crate::lock::share_open);
        let key = crate::encryption::key_for_db(path)?;
        let mut conn = open_connection(path, false, key.as_ref())?;
        schema::migrate(&mut conn).map_err(|e| e.in_database(path))?;
        Ok(Store {
            path: path.to_path_buf(),
            key,
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            _open: open,
        })
    }

    /// The data key when the database is encrypted (the vector files are
    /// sealed with it too).
    pub fn key(&self) -> Option<&DataKey> {
        self.key.as_ref()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The single writer connection. Hold it only for short transactions.
    pub fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` with a read-only connection from the pool.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match conn {
            Some(conn) => conn,
            None => open_connection(&self.path, true, self.key.as_ref())?,
        };
        let out = f(&conn).map_err(|e| match e.kind() {
            ErrorKind::IndexCorrupt | ErrorKind::ReadOnly => e.in_database(&self.path),
            _ => e,
        });
        let mut pool = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < 4 {
            pool.push(conn);
        }
        out
    }
}

/// How long a statement waits for another connection's write lock.
pub(crate) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn open_connection(path: &Path, read_only: bool, key: Option<&DataKey>) -> Result<Connection> {
    open_sqlite(path, read_only, key).map_err(|e| Error::from(e).in_database(path))
}

fn open_sqlite(
    path: &Path,
    read_only: bool,
    key: Option<&DataKey>,
) -> rusqlite::Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    if let Some(key) = key {
        crate::encryption::migrate::apply_key(&conn, key)?;
    }
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // A WAL that grew during a long run is cut back when it starts over.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -32_000)?;
    // Readers do not map the database (`mmap_size` stays 0): a page missing
    // from the page cache then costs a fault, and the kernel reads around a
    // faulting page up to the disk's read-ahead (8 MB on some disks), so a
    // first search after a boot read 528 MB of a 100k-chunk database for a
    // hundred scattered rows (0.74-1.24 s; 0.28-0.30 s with read() calls).
    // Warm searches time the same either way (BENCHMARKS.md, issue 12).
    Ok(conn)
}

/// Public accessors grouped by table.
pub mod tables {
    pub use super::cache::*;
    pub use super::chunks::*;
    pub use super::generation::*;
    pub use super::notes::*;
    pub use super::prune::*;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_read_without_mapping_and_still_see_later_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("sift.db")).unwrap();
        let roots = |s: &Store| {
            s.read(|c| Ok(c.query_row("SELECT count(*) FROM roots", [], |r| r.get::<_, i64>(0))?))
                .unwrap()
        };
        assert_eq!(roots(&store), 0);
        let mapped: i64 = store
            .read(|c| Ok(c.query_row("PRAGMA mmap_size", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(mapped, 0, "a mapped reader's faults read around each page");
        // The pooled reader sees a commit made after it opened.
        store
            .writer()
            .execute("INSERT INTO roots(path) VALUES ('/notes')", [])
            .unwrap();
        assert_eq!(roots(&store), 1);
    }
}
