//! Following notes folders live: file-system events from notify, debounced by
//! notify-debouncer-full, filtered with the scan's rules and handed to a callback
//! in batches.
//!
//! The watcher knows nothing of the index. A caller passes each [`Changes`] to
//! [`crate::Engine::index_changed`] (paths) and [`crate::Engine::index_paths`]
//! (folders to rescan). The callback runs on the watcher's own thread, one batch
//! at a time; whatever happens while it runs is merged into the next batch, so a
//! burst (a `git checkout` of a thousand files) arrives as a few large batches
//! rather than a thousand small ones.
//!
//! Paths are reported, not event kinds: the indexer looks at what is on disk when
//! the batch is handled. An editor's atomic save (write a temp file, rename it
//! over the note) therefore indexes the note once, however its events are split,
//! and a rename is a path that is gone plus a path that appeared.
//!
//! When events may have been lost (the OS queue overflowed, the backend failed),
//! the batch asks for a rescan of the folder instead, as does a change to an
//! ignore file. No thread spins while nothing changes: the watcher thread sleeps
//! on a channel and the debouncer wakes a few times a second to age its queue.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{
    new_debouncer, DebounceEventResult, DebouncedEvent, Debouncer, RecommendedCache,
};

use crate::config::ScanSettings;
use crate::error::{Error, ErrorKind, Result};
use crate::scan::{note_extension, relative_path, PathRules};

/// How a [`Watcher`] behaves.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Which files are notes (the same rules as the scan).
    pub scan: ScanSettings,
    /// Quiet time a path needs before its events are delivered: long enough to
    /// see an editor's save as one change, short enough to feel live.
    pub debounce: Duration,
    /// Deliver a rescan of every folder first: whatever changed while nobody was
    /// watching is found while the watch is already on, so nothing falls between.
    pub rescan_at_start: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            scan: ScanSettings::default(),
            debounce: Duration::from_millis(150),
            rescan_at_start: true,
        }
    }
}

/// One batch of changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Changed paths, absolute and sorted: note files or folders, which may no
    /// longer exist (deleted, moved away). Paths under a folder in `rescan` are
    /// left out.
    pub paths: Vec<PathBuf>,
    /// Folders to reconcile whole: at start, after lost events (queue overflow)
    /// or when an ignore file changed.
    pub rescan: Vec<PathBuf>,
    /// Problems the watcher met, for people (e.g. the OS watch limit).
    pub warnings: Vec<String>,
}

impl Changes {
    /// Whether there is nothing to do or say.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.rescan.is_empty() && self.warnings.is_empty()
    }
}

/// Watches folders until dropped.
pub struct Watcher {
    debouncer: Option<Debouncer<RecommendedWatcher, RecommendedCache>>,
    worker: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Watcher {
    /// Starts watching `folders` (recursively) and calls `on_changes` with each
    /// batch, on a thread of its own.
    ///
    /// Dropping the watcher stops it: no callback starts after that, and drop
    /// waits for a callback under way to return (so cancel a long index run
    /// first, e.g. through the flag the callback passes to the engine).
    pub fn start(
        folders: &[PathBuf],
        options: WatchOptions,
        on_changes: impl FnMut(Changes) + Send + 'static,
    ) -> Result<Watcher> {
        let (tx, rx) = mpsc::channel::<DebounceEventResult>();
        let mut debouncer = new_debouncer(options.debounce, None, tx).map_err(watch_error)?;
        let mut unavailable = Vec::new();
        for folder in folders {
            if !folder.is_dir() {
                // Moved or unmounted: the others are watched; its index is kept.
                unavailable.push(format!(
                    "folder unavailable: {} (not watched; its notes stay in the index)",
                    folder.display()
                ));
                continue;
            }
            debouncer
                .watch(folder, RecursiveMode::Recursive)
                .map_err(|e| {
                    Error::new(
                        ErrorKind::BadPath,
                        format!("cannot watch {}: {e}", folder.display()),
                    )
                })?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut batcher = Batcher {
            folders: folders.to_vec(),
            scan: options.scan,
            pending: Pending::default(),
        };
        batcher.pending.warnings = unavailable;
        if options.rescan_at_start {
            batcher.pending.rescan.extend(folders.iter().cloned());
        }
        let worker = std::thread::Builder::new()
            .name("sift-watch".into())
            .spawn({
                let stop = stop.clone();
                move || batcher.run(&rx, &stop, on_changes)
            })
            .map_err(|e| Error::new(ErrorKind::Internal, format!("cannot start watcher: {e}")))?;
        Ok(Watcher {
            debouncer: Some(debouncer),
            worker: Some(worker),
            stop,
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Stopping the debouncer ends its thread, which drops the channel's
        // sender, which ends the worker once its callback returns.
        if let Some(debouncer) = self.debouncer.take() {
            debouncer.stop();
        }
        if let Some(worker) = self.worker.take() {
            if worker.thread().id() != std::thread::current().id() {
                let _ = worker.join();
            }
        }
    }
}

/// Changes gathered and not yet delivered.
#[derive(Default)]
struct Pending {
    paths: BTreeSet<PathBuf>,
    rescan: BTreeSet<PathBuf>,
    warnings: Vec<String>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.rescan.is_empty() && self.warnings.is_empty()
    }

    fn take(&mut self) -> Changes {
        let pending = std::mem::take(self);
        Changes {
            paths: pending
                .paths
                .into_iter()
                .filter(|p| !pending.rescan.iter().any(|r| p.starts_with(r)))
                .collect(),
            rescan: pending.rescan.into_iter().collect(),
            warnings: pending.warnings,
        }
    }
}

/// Turns debounced events into batches of paths.
struct Batcher {
    folders: Vec<PathBuf>,
    scan: ScanSettings,
    pending: Pending,
}

impl Batcher {
    fn run(
        &mut self,
        rx: &mpsc::Receiver<DebounceEventResult>,
        stop: &AtomicBool,
        mut on_changes: impl FnMut(Changes),
    ) {
        loop {
            if self.pending.is_empty() {
                // Sleeps until the debouncer has something.
                match rx.recv() {
                    Ok(result) => self.add(result),
                    Err(_) => return,
                }
            }
            // Everything that piled up while the last batch was handled.
            while let Ok(result) = rx.try_recv() {
                self.add(result);
            }
            if stop.load(Ordering::SeqCst) {
                return;
            }
            if !self.pending.is_empty() {
                on_changes(self.pending.take());
            }
        }
    }

    fn add(&mut self, result: DebounceEventResult) {
        match result {
            Ok(events) => {
                let mut rules: Vec<PathRules<'_>> = self
                    .folders
                    .iter()
                    .map(|f| PathRules::new(f, &self.scan))
                    .collect();
                for event in &events {
                    classify(
                        event,
                        &self.folders,
                        &self.scan,
                        &mut rules,
                        &mut self.pending,
                    );
                }
            }
            Err(errors) => {
                for error in errors {
                    if matches!(error.kind, notify::ErrorKind::MaxFilesWatch) {
                        self.pending.warnings.push(
                            "the system's limit on watched folders was reached: changes in some \
                             folders are found only at the next start (raise \
                             fs.inotify.max_user_watches)"
                                .into(),
                        );
                    } else {
                        // Events may have been lost with it: reconcile to be sure.
                        self.pending.warnings.push(format!("watch error: {error}"));
                        self.pending.rescan.extend(self.folders.iter().cloned());
                    }
                }
            }
        }
    }
}

/// Files whose change alters which files are notes.
const IGNORE_FILES: [&str; 2] = [".gitignore", ".ignore"];

/// Adds what `event` means for the index to `pending`.
fn classify(
    event: &DebouncedEvent,
    folders: &[PathBuf],
    scan: &ScanSettings,
    rules: &mut [PathRules<'_>],
    pending: &mut Pending,
) {
    if event.need_rescan() {
        pending.rescan.extend(folders.iter().cloned());
        return;
    }
    match event.kind {
        // Opening and reading (our own reads included) change nothing.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) | EventKind::Other => return,
        _ => {}
    }
    for path in &event.paths {
        let Some((i, folder)) = folders
            .iter()
            .enumerate()
            .filter(|(_, f)| path.starts_with(f))
            .max_by_key(|(_, f)| f.as_os_str().len())
        else {
            continue;
        };
        if path == folder {
            // The folder itself was moved, deleted or touched.
            pending.rescan.insert(folder.clone());
            continue;
        }
        let rel = relative_path(path, folder);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if IGNORE_FILES.contains(&name) || rel.ends_with(".git/info/exclude") {
            pending.rescan.insert(folder.clone());
            continue;
        }
        if is_relevant(path, &rel, scan, &mut rules[i]) {
            pending.paths.insert(path.clone());
        }
    }
}

/// Whether a changed path may concern a note: a note file the scan would take, a
/// folder, or something gone (which may have been a folder of notes).
fn is_relevant(path: &Path, rel: &str, scan: &ScanSettings, rules: &mut PathRules<'_>) -> bool {
    let meta = std::fs::symlink_metadata(path);
    let is_dir = std::fs::metadata(path).is_ok_and(|m| m.is_dir());
    if rules.excludes(rel, is_dir) {
        return false;
    }
    is_dir || meta.is_err() || note_extension(path, &scan.extensions).is_some()
}

fn watch_error(err: notify::Error) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("cannot watch for file changes: {err}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, Flag, ModifyKind, RenameMode};
    use notify::Event;

    fn batch(root: &Path, events: Vec<Event>) -> Changes {
        let folders = vec![root.to_path_buf()];
        let scan = ScanSettings::default();
        let mut rules = vec![PathRules::new(root, &scan)];
        let mut pending = Pending::default();
        for event in events {
            let event = DebouncedEvent::new(event, std::time::Instant::now());
            classify(&event, &folders, &scan, &mut rules, &mut pending);
        }
        pending.take()
    }

    #[test]
    fn notes_folders_and_gone_paths_count_the_rest_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(root.join(".obsidian")).unwrap();
        std::fs::write(root.join("a.md"), "a").unwrap();
        std::fs::write(root.join("image.png"), "x").unwrap();
        std::fs::write(root.join(".obsidian/workspace.md"), "x").unwrap();
        let create =
            |p: &str| Event::new(EventKind::Create(CreateKind::Any)).add_path(root.join(p));
        let changes = batch(
            root,
            vec![
                create("a.md"),
                create("image.png"),
                create(".obsidian/workspace.md"),
                create("sub"),
                Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::Both)))
                    .add_path(root.join("gone.md"))
                    .add_path(root.join("a.md")),
                Event::new(EventKind::Access(AccessKind::Open(AccessMode::Any)))
                    .add_path(root.join("a.md")),
            ],
        );
        assert_eq!(
            changes.paths,
            vec![root.join("a.md"), root.join("gone.md"), root.join("sub")]
        );
        assert!(changes.rescan.is_empty());
    }

    #[test]
    fn overflow_and_ignore_file_changes_ask_for_a_rescan() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let overflow = Event::new(EventKind::Other).set_flag(Flag::Rescan);
        let changes = batch(root, vec![overflow]);
        assert_eq!(changes.rescan, vec![root.to_path_buf()]);

        std::fs::write(root.join("n.md"), "n").unwrap();
        let changes = batch(
            root,
            vec![
                Event::new(EventKind::Create(CreateKind::File)).add_path(root.join("n.md")),
                Event::new(EventKind::Create(CreateKind::File)).add_path(root.join(".gitignore")),
            ],
        );
        assert_eq!(changes.rescan, vec![root.to_path_buf()]);
        assert!(changes.paths.is_empty(), "covered by the rescan");
    }
}
