//! Turning encryption on or off in place.
//!
//! The database is exported by SQLCipher (`sqlcipher_export`) into a file
//! beside it, which is then renamed over it: a crash before the rename leaves
//! the old database whole (the half-written copy is deleted next time); after
//! it, the new one. The vector files then follow the database (sealed or
//! opened), and the data key is deleted only once nothing needs it, so every
//! step can be redone after a crash. It needs the data folder to itself: no
//! other Sift process may have the database open ([`crate::lock::OPEN_LOCK`]).

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::{db_is_encrypted, key, seal, DataKey};
use crate::data_dir::{DB_FILE, VECTORS_DIR};
use crate::error::{Error, ErrorKind, Result};

/// Suffix of the database copy being written.
const COPY_SUFFIX: &str = "crypt-tmp";

/// What [`reconcile`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// The data folder already was as asked.
    Unchanged,
    /// The database (and vector files) were encrypted.
    Encrypted,
    /// The database (and vector files) were decrypted, the key deleted.
    Decrypted,
    /// Other Sift processes have the data folder open: nothing was changed;
    /// the next open after they close does it.
    Waiting,
}

/// Brings the data folder to `want` (encrypted or not) if this process can
/// have it to itself; [`Reconciled::Waiting`] if another process has it open.
pub fn reconcile(data_dir: &Path, want: bool) -> Result<Reconciled> {
    match set_encrypted(data_dir, want) {
        Err(e) if e.kind() == ErrorKind::Busy => Ok(Reconciled::Waiting),
        other => other,
    }
}

/// [`reconcile`], trying again for up to `wait` while another process has the
/// folder open (the app restarting itself: the old process is still leaving).
pub fn reconcile_within(
    data_dir: &Path,
    want: bool,
    wait: std::time::Duration,
) -> Result<Reconciled> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let done = reconcile(data_dir, want)?;
        if done != Reconciled::Waiting || std::time::Instant::now() >= deadline {
            return Ok(done);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Encrypts (`on`) or decrypts the data folder's database and vector files in
/// place. A [`ErrorKind::Busy`] error when another Sift process (or an engine
/// of this one) has the database open.
pub fn set_encrypted(data_dir: &Path, on: bool) -> Result<Reconciled> {
    let db = data_dir.join(DB_FILE);
    if !needs_work(data_dir, on)? {
        return Ok(Reconciled::Unchanged);
    }
    let Some(_alone) = crate::lock::try_open_exclusive(data_dir)? else {
        return Err(Error::new(
            ErrorKind::Busy,
            "other Sift windows or commands have this data folder open: close them, \
             then turn encryption on or off again (or it happens at the next start)",
        ));
    };
    let copy = copy_path(&db);
    remove_if_there(&copy)?;
    let encrypted = db_is_encrypted(&db)?;
    let mut changed = false;
    if on && !encrypted {
        let key = key::load_or_create(data_dir)?;
        if db.exists() {
            export(&db, None, &copy, Some(&key))?;
            replace(&copy, &db)?;
        } else {
            create_encrypted(&db, &key)?;
        }
        changed = true;
    } else if !on && encrypted {
        let key = key::load(data_dir)?;
        export(&db, Some(&key), &copy, None)?;
        replace(&copy, &db)?;
        changed = true;
    }
    // The files beside the database follow it (also after a crash between).
    if on {
        let key = key::load(data_dir)?;
        reseal_vectors(data_dir, |bytes| {
            (!seal::is_sealed(bytes)).then(|| Ok(seal::seal(&key, bytes)))
        })?;
        let keywords = data_dir.join(crate::engine::KEYWORDS_DIR);
        if keywords.exists() {
            std::fs::remove_dir_all(&keywords).map_err(|e| Error::io(&keywords, e))?;
        }
    } else {
        if let Ok(key) = key::load(data_dir) {
            reseal_vectors(data_dir, |bytes| {
                seal::is_sealed(bytes)
                    .then(|| seal::open(&key, bytes).map_err(|e| Error::new(ErrorKind::Vectors, e)))
            })?;
        }
        key::delete(data_dir)?;
    }
    Ok(match (changed, on) {
        (false, _) => Reconciled::Unchanged,
        (true, true) => Reconciled::Encrypted,
        (true, false) => Reconciled::Decrypted,
    })
}

/// Whether anything is left to do: the database, a vector file, the keyword
/// folder or the key is not yet as `on` wants.
fn needs_work(data_dir: &Path, on: bool) -> Result<bool> {
    let db = data_dir.join(DB_FILE);
    if db_is_encrypted(&db)? != on || copy_path(&db).exists() {
        return Ok(true);
    }
    if on && data_dir.join(crate::engine::KEYWORDS_DIR).exists() {
        return Ok(true);
    }
    if !on && data_dir.join(key::KEY_ID_FILE).exists() {
        return Ok(true);
    }
    for file in vector_files(data_dir) {
        let mut head = [0u8; 8];
        let sealed = std::fs::File::open(&file)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            .is_ok()
            && seal::is_sealed(&head);
        if sealed != on {
            return Ok(true);
        }
    }
    Ok(false)
}

fn copy_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".");
    name.push(COPY_SUFFIX);
    PathBuf::from(name)
}

fn remove_if_there(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Applies `key` to a fresh connection (SQLCipher's raw-key form).
pub(crate) fn apply_key(conn: &Connection, key: &DataKey) -> rusqlite::Result<()> {
    conn.execute_batch(&format!("PRAGMA key = \"{}\";", key.sqlcipher_pragma()))
}

/// Copies the database `src` into a new file `dst`, with `dst_key` (or plain).
fn export(
    src: &Path,
    src_key: Option<&DataKey>,
    dst: &Path,
    dst_key: Option<&DataKey>,
) -> Result<()> {
    let in_db = |e: rusqlite::Error| Error::from(e).in_database(src);
    {
        let conn = Connection::open(src).map_err(in_db)?;
        if let Some(k) = src_key {
            apply_key(&conn, k).map_err(in_db)?;
        }
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(in_db)?;
        let attach_key = dst_key.map(DataKey::sqlcipher_pragma).unwrap_or_default();
        conn.execute(
            "ATTACH DATABASE ?1 AS migrated KEY ?2",
            rusqlite::params![dst.to_string_lossy(), attach_key],
        )
        .map_err(in_db)?;
        conn.query_row("SELECT sqlcipher_export('migrated')", [], |_| Ok(()))
            .map_err(in_db)?;
        conn.execute_batch(&format!(
            "PRAGMA migrated.user_version = {version}; DETACH DATABASE migrated;"
        ))
        .map_err(in_db)?;
        // Closing the last connection checkpoints the old WAL into `src`.
    }
    let wal = PathBuf::from(format!("{}-wal", src.display()));
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(Error::new(
            ErrorKind::Busy,
            format!(
                "{} still has unsaved pages: another process has the database open",
                src.display()
            ),
        ));
    }
    std::fs::File::open(dst)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(dst, e))
}

/// A new, empty encrypted database at `db`.
fn create_encrypted(db: &Path, key: &DataKey) -> Result<()> {
    let conn = Connection::open(db).map_err(|e| Error::from(e).in_database(db))?;
    apply_key(&conn, key).map_err(|e| Error::from(e).in_database(db))?;
    // Writing anything makes SQLCipher write the (encrypted) first page.
    conn.execute_batch("CREATE TABLE sift_new(x); DROP TABLE sift_new;")
        .map_err(|e| Error::from(e).in_database(db))
}

/// Renames `copy` over `db` and drops the old database's side files.
fn replace(copy: &Path, db: &Path) -> Result<()> {
    std::fs::rename(copy, db).map_err(|e| Error::io(db, e))?;
    if let Some(dir) = db.parent() {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    for side in ["-wal", "-shm"] {
        remove_if_there(&PathBuf::from(format!("{}{side}", db.display())))?;
    }
    Ok(())
}

fn vector_files(data_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(data_dir.join(VECTORS_DIR)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "vectors"))
        .collect()
}

/// Rewrites each vector file for which `convert` gives new bytes.
fn reseal_vectors(
    data_dir: &Path,
    convert: impl Fn(&[u8]) -> Option<Result<Vec<u8>>>,
) -> Result<()> {
    for file in vector_files(data_dir) {
        let bytes = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
        if let Some(new) = convert(&bytes) {
            crate::fsutil::write_atomic(&file, &new?)?;
        }
    }
    Ok(())
}
