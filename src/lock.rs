//! Locks in the data folder that coordinate Sift processes sharing it (the app,
//! `sift watch`, `sift index`, `sift search`), like SQLite's WAL and tantivy's
//! `IndexWriter` lock file:
//!
//! - [`WRITER_LOCK`]: the process that holds it is the writer. Only the writer
//!   changes notes and chunks, embeds (so no chunk is ever paid for twice) and
//!   writes the vector file; it holds the lock for one index run, so a `sift
//!   index` beside `sift watch` waits for the batch in flight, not for the watch.
//!   Every other process only reads, and catches up from the store's generation.
//! - [`SETTINGS_LOCK`]: held for a read-modify-write of `settings.json`, so two
//!   processes adding folders at once both keep theirs.
//!
//! Both are OS advisory locks (`flock` on Unix, `LockFileEx` on Windows) through
//! `fd-lock`: the OS releases them when their holder exits, SIGKILL included,
//! so a dead writer never blocks the next one. The writer lock file holds the
//! writer's process id, for the message others show while they wait.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// File name of the writer lock in the data folder.
pub const WRITER_LOCK: &str = "writer.lock";

/// File name of the settings lock in the data folder.
pub const SETTINGS_LOCK: &str = "settings.lock";

/// File name of the open lock: every process with the database open holds it
/// shared; turning encryption on or off needs it alone ([`try_open_exclusive`]).
pub const OPEN_LOCK: &str = "open.lock";

/// How often a waiting process tries the lock again (and checks for cancel).
const POLL: Duration = Duration::from_millis(25);

/// A lock file in the data folder, not yet held.
#[derive(Debug)]
pub struct LockFile {
    lock: fd_lock::RwLock<File>,
    path: PathBuf,
}

/// Holds a [`LockFile`] until dropped.
#[derive(Debug)]
pub struct Held<'a> {
    _guard: fd_lock::RwLockWriteGuard<'a, File>,
}

/// Who holds a lock someone is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// Process id of the holder, when it wrote one.
    pub pid: Option<u32>,
}

impl Holder {
    /// `indexing is running in another Sift process (pid N)`, or in this process.
    pub fn describe(&self) -> String {
        match self.pid {
            Some(pid) if pid == std::process::id() => {
                "another index run of this process is writing the index".to_string()
            }
            Some(pid) => format!("indexing is running in another Sift process (pid {pid})"),
            None => "indexing is running in another Sift process".to_string(),
        }
    }
}

/// Lock files live in the data folder: a read-only one gets the hint to fix it.
fn open_error(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem {
        Error::new(
            ErrorKind::ReadOnly,
            format!(
                "{}: cannot be written (read-only file system): make the data folder writable or choose another (--data-dir or SIFT_DATA_DIR)",
                path.display()
            ),
        )
    } else {
        Error::io(path, e)
    }
}

impl LockFile {
    /// Opens (creating) the lock file `name` in `data_dir`.
    pub fn open(data_dir: &Path, name: &str) -> Result<LockFile> {
        let path = data_dir.join(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| open_error(&path, e))?;
        Ok(LockFile {
            lock: fd_lock::RwLock::new(file),
            path,
        })
    }

    /// Takes the lock if nobody holds it; `None` when another holder has it.
    pub fn try_hold(&mut self) -> Result<Option<Held<'_>>> {
        let path = self.path.clone();
        match self.lock.try_write() {
            Ok(guard) => Ok(Some(Held::new(guard))),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Takes the lock, waiting for its holder to let go. While it waits,
    /// `on_busy` is called with the holder every few milliseconds; an error from
    /// it (a cancel, "do not wait") stops the wait.
    pub fn hold(&mut self, on_busy: &mut dyn FnMut(Holder) -> Result<()>) -> Result<Held<'_>> {
        // Taken in one step: a check, then a second try, let another process
        // take it in between ("the lock was free a moment ago").
        let this: *mut Self = self;
        loop {
            // SAFETY: the borrow of a failed try ends with it; only a taken
            // lock is returned, and nothing else touches `self` meanwhile.
            // (The borrow checker cannot see that the failed branch's borrow
            // ends: NLL problem case #3.)
            if let Some(held) = unsafe { &mut *this }.try_hold()? {
                return Ok(held);
            }
            on_busy(unsafe { &*this }.holder())?;
            std::thread::sleep(POLL);
        }
    }

    /// Who holds the lock, as its file says.
    pub fn holder(&self) -> Holder {
        let pid = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        Holder { pid }
    }
}

impl<'a> Held<'a> {
    fn new(mut guard: fd_lock::RwLockWriteGuard<'a, File>) -> Self {
        // Best effort: a full disk must not stop the run, only the message.
        let file: &mut File = &mut guard;
        let _ = file
            .set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(std::process::id().to_string().as_bytes()));
        Held { _guard: guard }
    }
}

/// Whether some process holds the writer lock of `data_dir` right now.
pub fn writer_busy(data_dir: &Path) -> Option<Holder> {
    let mut lock = LockFile::open(data_dir, WRITER_LOCK).ok()?;
    let busy = lock.try_hold().ok()?.is_none();
    busy.then(|| lock.holder())
}

/// Reads a whole small file, `None` when it does not exist.
pub(crate) fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    match File::open(path) {
        Ok(mut f) => {
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
            Ok(Some(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The error of a process told not to wait for the writer.
pub fn busy_error(holder: Holder) -> Error {
    Error::new(
        ErrorKind::Busy,
        format!(
            "{}; run again when it is done (or let this one wait)",
            holder.describe()
        ),
    )
}

/// Holds [`OPEN_LOCK`] shared while the returned file lives, waiting while
/// encryption is being turned on or off. `None` where the lock file cannot
/// be made (a read-only data folder): then nothing can migrate it either.
pub fn share_open(data_dir: &Path) -> Option<File> {
    let file = open_lock_file(data_dir).ok()?;
    file.lock_shared().ok()?;
    Some(file)
}

/// [`OPEN_LOCK`] held alone, or `None` while any process has the database
/// open (this one included).
pub fn try_open_exclusive(data_dir: &Path) -> Result<Option<File>> {
    let path = data_dir.join(OPEN_LOCK);
    let file = open_lock_file(data_dir).map_err(|e| open_error(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(path, e)),
    }
}

fn open_lock_file(data_dir: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(data_dir.join(OPEN_LOCK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_even_within_a_process() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = LockFile::open(dir.path(), WRITER_LOCK).unwrap();
        let mut b = LockFile::open(dir.path(), WRITER_LOCK).unwrap();
        let held = a.try_hold().unwrap();
        assert!(held.is_some());
        assert!(b.try_hold().unwrap().is_none(), "flock is per open file");
        assert_eq!(b.holder().pid, Some(std::process::id()));
        assert!(writer_busy(dir.path()).is_some());
        let mut calls = 0;
        let err = b
            .hold(&mut |h| {
                calls += 1;
                if calls == 3 {
                    Err(busy_error(h))
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Busy);
        drop(held);
        assert!(writer_busy(dir.path()).is_none());
        assert!(b.hold(&mut |_| panic!("free")).is_ok());
    }
}
