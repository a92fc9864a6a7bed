//! Encryption at rest (opt-in, the `encrypt_at_rest` setting).
//!
//! When it is on, nothing in the data folder holds note text in the clear:
//!
//! - the database (notes, chunks, FTS5, the embedding cache, the ledger) is a
//!   SQLCipher database (AES-256 pages, `PRAGMA key` on every connection);
//! - each vector file is sealed whole with ChaCha20-Poly1305 ([`seal`]);
//! - the tantivy keyword index is not kept: keyword search uses the FTS5
//!   index inside the encrypted database (tantivy writes its own files,
//!   which Sift cannot encrypt page by page).
//!
//! The 256-bit data key lives in the OS keychain ([`key`]); the data folder
//! holds only a random key id (`encryption.json`), so the folder can move.
//! Turning it on or off rewrites the database beside itself and renames it
//! over the old one ([`migrate`]): a crash leaves the old file whole, and the
//! next open finishes the job. Whether a database is encrypted is read from
//! its first bytes, never from a setting, so every process agrees.

pub mod key;
pub mod migrate;
pub mod seal;

use std::io::Read;
use std::path::Path;

pub use key::DataKey;
pub use migrate::{reconcile, reconcile_within, set_encrypted, Reconciled};

use crate::error::Result;

/// The first 16 bytes of every plain SQLite database.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Whether the database at `db` is encrypted: it exists, does not start with
/// SQLite's plain header, and its folder names a data key. (Garbage over a
/// plain database is damage, for SQLite to report, not encryption.)
pub fn db_is_encrypted(db: &Path) -> Result<bool> {
    let data_dir = db.parent().unwrap_or(Path::new("."));
    if !data_dir.join(key::KEY_ID_FILE).exists() {
        return Ok(false);
    }
    let mut file = match std::fs::File::open(db) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(crate::error::Error::io(db, e)),
    };
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(crate::error::Error::io(db, e)),
        }
    }
    Ok(read == head.len() && &head != SQLITE_HEADER)
}

/// The key to open the database at `db` with: `None` for a plain database,
/// the keychain's key for an encrypted one (an error if it is not there).
pub fn key_for_db(db: &Path) -> Result<Option<DataKey>> {
    if !db_is_encrypted(db)? {
        return Ok(None);
    }
    let data_dir = db.parent().unwrap_or(Path::new("."));
    key::load(data_dir).map(Some)
}

/// Whether the data folder's database is encrypted (status, Settings).
pub fn is_on(data_dir: &Path) -> bool {
    db_is_encrypted(&data_dir.join(crate::data_dir::DB_FILE)).unwrap_or(false)
}
