//! WAL checkpoints beside an index run.
//!
//! SQLite checkpoints on the committing connection once the WAL passes 1000
//! pages: the indexer's writer stopped inside its batches to copy pages into
//! the database file and sync it (6.6% of the CPU of indexing a 50k-note
//! vault, all of it on the writer, which is what stage 1 waits for, plus its
//! waits on the disk; BENCHMARKS.md, issue 13, round 9). During a run a
//! thread with its own connection checkpoints instead, PASSIVE (it never
//! blocks the writer or a reader), and the writer checkpoints itself only if
//! the WAL still grows past [`WRITER_PAGES_DURING_RUN`] (the thread starved
//! or a reader holding old pages), which also lets the WAL start over.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{open_connection, Store};

/// How often the thread checkpoints what the writer committed.
const EVERY: Duration = Duration::from_millis(250);

/// The writer's own checkpoint threshold during a run (pages of 4 KiB). The
/// thread's checkpoints rarely finish the WAL (the writer appends meanwhile),
/// and only a finished one lets the WAL start over from its beginning: the
/// writer's, copying the little the thread has not, does that every 64 MB.
const WRITER_PAGES_DURING_RUN: i64 = 16_000;

/// SQLite's default, restored when the run ends.
const WRITER_PAGES: i64 = 1000;

/// Checkpoints in the background until dropped.
#[must_use = "checkpoints stop when this is dropped"]
pub struct BackgroundCheckpoints<'a> {
    store: &'a Store,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Store {
    /// Moves WAL checkpoints off the writer's thread until the returned
    /// guard is dropped. If the thread cannot start, the writer goes on
    /// checkpointing as usual.
    pub fn checkpoints_beside(&self) -> BackgroundCheckpoints<'_> {
        let mut guard = BackgroundCheckpoints {
            store: self,
            stop: None,
            thread: None,
        };
        let (path, key) = (self.path.clone(), self.key.clone());
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sift-checkpoint".into())
            .spawn(move || {
                crate::background::lower_this_thread_priority();
                // Opened at the first round: a run shorter than that (a saved
                // edit) costs no connection and no checkpoint of its own; what
                // a run leaves in the WAL the writer checkpoints as before.
                let mut conn = None;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    if conn.is_none() {
                        match open_connection(&path, false, key.as_ref()) {
                            Ok(c) => conn = Some(c),
                            // The writer checkpoints at its raised threshold.
                            Err(_) => return,
                        }
                    }
                    if let Some(conn) = &conn {
                        // Busy or failed: the next round (or the writer) does it.
                        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    }
                }
            });
        if let Ok(thread) = thread {
            set_writer_pages(self, WRITER_PAGES_DURING_RUN);
            guard.stop = Some(stop);
            guard.thread = Some(thread);
        }
        guard
    }
}

impl Drop for BackgroundCheckpoints<'_> {
    fn drop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        drop(self.stop.take());
        let _ = thread.join();
        set_writer_pages(self.store, WRITER_PAGES);
    }
}

fn set_writer_pages(store: &Store, pages: i64) {
    // Not fatal: the writer then checkpoints at the other threshold.
    let _ = store
        .writer()
        .pragma_update(None, "wal_autocheckpoint", pages);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer_pages(store: &Store) -> i64 {
        store
            .writer()
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn commits_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sift.db");
        let store = Store::open(&path).unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        {
            let _beside = store.checkpoints_beside();
            assert_eq!(writer_pages(&store), WRITER_PAGES_DURING_RUN);
            let before = size();
            // About 250 pages: far below the writer's threshold, so only the
            // thread can have copied them into the database file.
            let conn = store.writer();
            for i in 0..250 {
                conn.execute(
                    "INSERT INTO roots(path) VALUES (?1)",
                    [format!("/notes/{i}/{}", "x".repeat(3000))],
                )
                .unwrap();
            }
            drop(conn);
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while size() < before + 250 * 3000 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the database file stayed at {} bytes",
                    size()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        assert_eq!(writer_pages(&store), WRITER_PAGES, "restored after the run");
    }
}
