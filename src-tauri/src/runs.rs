//! Background index runs: one at a time, on a worker thread, with their events.
//!
//! Work waiting is merged, not queued: a full run requested three times runs
//! once; paths the watcher reports pile up into one incremental run; a provider
//! switch supersedes whatever runs (it indexes everything itself). Events:
//! `index-progress` (throttled), then `index-done` or `index-error`; watcher
//! runs end with `notes-changed` and stay quiet unless they last.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sift::{Engine, ErrorKind, Phase, Progress};
use tauri::{AppHandle, Emitter, Manager};

use crate::error::IpcError;
use crate::state::AppState;

/// Event names (docs/ipc.md).
pub mod events {
    /// Payload: `Progress`.
    pub const INDEX_PROGRESS: &str = "index-progress";
    /// Payload: `Status`.
    pub const INDEX_DONE: &str = "index-done";
    /// Payload: `{ code, message }`.
    pub const INDEX_ERROR: &str = "index-error";
    /// Payload: `{ paths }`.
    pub const NOTES_CHANGED: &str = "notes-changed";
}

/// Progress events go out at most this often (phase changes always do).
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Watcher runs show progress only when they take longer than this.
const QUIET_FOR: Duration = Duration::from_secs(1);

/// What is running and what waits.
#[derive(Default)]
pub struct Runs {
    /// A worker thread is alive.
    busy: bool,
    /// Index every folder of the current engine.
    full: bool,
    /// Paths the watcher reported, and folders it asked to rescan.
    changed: BTreeSet<PathBuf>,
    rescan: BTreeSet<PathBuf>,
    /// An engine to index and swap in (newest wins).
    switch_to: Option<Arc<Engine>>,
    /// The engine being indexed for a switch right now.
    switching: Option<Arc<Engine>>,
    /// Stops the run in flight.
    cancel: Arc<AtomicBool>,
    /// Indexing is paused (tray menu, Settings): work waits, switches still run.
    paused: bool,
    /// The last `index-done` told the UI more work waited: the run that
    /// follows must end with one too, even a quiet watcher run, or the UI
    /// keeps showing a run that is over.
    told_waiting: bool,
}

/// One unit of work for the worker.
pub enum Job {
    /// Every folder of the current engine.
    Full,
    /// Changed paths and folders to rescan (from the watcher).
    Changes {
        paths: Vec<PathBuf>,
        rescan: Vec<PathBuf>,
    },
    /// Index this engine, then make it the current one.
    Switch(Arc<Engine>),
}

impl Runs {
    /// Adds `job` to the waiting work; `true` when a worker must be started.
    pub fn add(&mut self, job: Job) -> bool {
        match job {
            Job::Full => self.full = true,
            Job::Changes { paths, rescan } => {
                self.changed.extend(paths);
                self.rescan.extend(rescan);
            }
            Job::Switch(engine) => {
                // Whatever runs now is stale: the switch indexes everything.
                self.switch_to = Some(engine);
                self.cancel.store(true, Ordering::SeqCst);
            }
        }
        if self.paused && self.switch_to.is_none() {
            return false;
        }
        !std::mem::replace(&mut self.busy, true)
    }

    /// Pauses (stopping the run in flight, keeping what waits) or resumes
    /// indexing; `true` when a worker must be started. Resuming runs a full
    /// pass, which only redoes what changed (a stopped run left the rest done).
    pub fn set_paused(&mut self, paused: bool) -> bool {
        self.paused = paused;
        if paused {
            self.stop_current();
            return false;
        }
        self.full = true;
        !std::mem::replace(&mut self.busy, true)
    }

    /// Whether indexing is paused.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Whether work is running or waiting.
    pub fn busy(&self) -> bool {
        self.busy
    }

    /// Stops the run in flight unless it is a switch; `true` when one was asked
    /// to stop.
    pub fn stop_current(&self) -> bool {
        let stop = self.busy && self.switching.is_none();
        if stop {
            self.cancel.store(true, Ordering::SeqCst);
        }
        stop
    }

    /// Whether a run that ended well sends `index-done`: when it showed
    /// progress, or when the last `index-done` said it was coming.
    fn must_announce(&self, showed_progress: bool) -> bool {
        showed_progress || self.told_waiting
    }

    /// Records an `index-done` going out; returns whether it says more
    /// work waits.
    fn announce_done(&mut self) -> bool {
        self.told_waiting = self.waiting();
        self.told_waiting
    }

    fn waiting(&self) -> bool {
        self.full || self.switch_to.is_some() || !self.changed.is_empty() || !self.rescan.is_empty()
    }

    fn next(&mut self) -> Option<(Job, Arc<AtomicBool>)> {
        self.switching = None;
        let cancel = Arc::new(AtomicBool::new(false));
        self.cancel = Arc::clone(&cancel);
        let job = if let Some(engine) = self.switch_to.take() {
            self.switching = Some(Arc::clone(&engine));
            Job::Switch(engine)
        } else if self.paused {
            self.busy = false;
            return None;
        } else if std::mem::take(&mut self.full) {
            // A full run covers whatever the watcher reported meanwhile.
            self.changed.clear();
            self.rescan.clear();
            Job::Full
        } else if self.waiting() {
            Job::Changes {
                paths: std::mem::take(&mut self.changed).into_iter().collect(),
                rescan: std::mem::take(&mut self.rescan).into_iter().collect(),
            }
        } else {
            self.busy = false;
            return None;
        };
        Some((job, cancel))
    }
}

/// Starts the worker thread.
pub fn spawn_worker(app: &AppHandle) {
    let app = app.clone();
    std::thread::Builder::new()
        .name("sift-index".into())
        .spawn(move || run_jobs(&app))
        .expect("start the index thread");
}

/// The worker: runs jobs until none waits.
fn run_jobs(app: &AppHandle) {
    let state = app.state::<AppState>();
    while let Some((job, cancel)) = state.with_runs(Runs::next) {
        match job {
            Job::Full => {
                let engine = state.engine();
                let progress = Throttle::new(app.clone(), Duration::ZERO);
                let result = engine.index(&|p| progress.send(p), &cancel);
                finish(app, &state, result.map(drop), &cancel, true);
            }
            Job::Changes { paths, rescan } => {
                let engine = state.engine();
                let progress = Throttle::new(app.clone(), QUIET_FOR);
                let send = |p: &Progress| progress.send(p);
                let mut result = Ok(());
                if !rescan.is_empty() {
                    result = engine.index_paths(&rescan, &send, &cancel).map(drop);
                }
                if result.is_ok() && !paths.is_empty() {
                    result = engine.index_changed(&paths, &send, &cancel).map(drop);
                }
                if result.is_ok() {
                    let changed: Vec<String> = paths
                        .iter()
                        .chain(&rescan)
                        .map(|p| p.to_string_lossy().into_owned())
                        .collect();
                    let _ = app.emit(
                        events::NOTES_CHANGED,
                        serde_json::json!({ "paths": changed }),
                    );
                }
                finish(app, &state, result, &cancel, progress.sent_any());
            }
            Job::Switch(engine) => {
                let progress = Throttle::new(app.clone(), Duration::ZERO);
                let result = if engine.settings().folders.is_empty() {
                    Ok(())
                } else {
                    engine.index(&|p| progress.send(p), &cancel).map(drop)
                };
                // A failed switch still takes effect: the settings name the new
                // provider, and the next run resumes where this one stopped.
                if !cancel.load(Ordering::SeqCst) {
                    state.swap_in(engine);
                }
                finish(app, &state, result, &cancel, true);
            }
        }
    }
}

/// Reports how a run ended. A cancelled run was superseded (a switch, a folder
/// removed) and says nothing.
fn finish(
    app: &AppHandle,
    state: &AppState,
    result: sift::Result<()>,
    cancel: &AtomicBool,
    announce: bool,
) {
    match result {
        Err(err) if err.kind() == ErrorKind::Cancelled || cancel.load(Ordering::SeqCst) => {}
        Err(err) => {
            eprintln!("sift: indexing failed: {err}");
            let _ = app.emit(events::INDEX_ERROR, IpcError::from(err));
        }
        Ok(()) if state.with_runs(|runs| runs.must_announce(announce)) => match state.status() {
            Ok(mut status) => {
                status.indexing = state.with_runs(Runs::announce_done);
                let _ = app.emit(events::INDEX_DONE, status);
            }
            Err(err) => {
                let _ = app.emit(events::INDEX_ERROR, IpcError::from(err));
            }
        },
        Ok(()) => {}
    }
}

/// Sends progress events: none during the first `quiet_for`, then at most one
/// per [`PROGRESS_EVERY`] within a phase.
struct Throttle {
    app: AppHandle,
    started: Instant,
    quiet_for: Duration,
    last: Mutex<Option<(Instant, Phase)>>,
}

impl Throttle {
    fn new(app: AppHandle, quiet_for: Duration) -> Self {
        Throttle {
            app,
            started: Instant::now(),
            quiet_for,
            last: Mutex::new(None),
        }
    }

    fn send(&self, p: &Progress) {
        if self.started.elapsed() < self.quiet_for {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let due = match *last {
            None => true,
            Some((at, phase)) => {
                phase != p.phase || p.phase == Phase::Done || at.elapsed() >= PROGRESS_EVERY
            }
        };
        if due {
            *last = Some((Instant::now(), p.phase));
            let _ = self.app.emit(events::INDEX_PROGRESS, p);
        }
    }

    fn sent_any(&self) -> bool {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(job: &Job) -> &'static str {
        match job {
            Job::Full => "full",
            Job::Changes { .. } => "changes",
            Job::Switch(_) => "switch",
        }
    }

    #[test]
    fn waiting_work_is_merged() {
        let mut runs = Runs::default();
        assert!(runs.add(Job::Full), "the first job starts a worker");
        assert!(!runs.add(Job::Full), "the worker is already there");
        let changes = |p: &str| Job::Changes {
            paths: vec![PathBuf::from(p)],
            rescan: vec![],
        };
        runs.add(changes("/n/a.md"));
        runs.add(changes("/n/b.md"));
        let (job, _) = runs.next().unwrap();
        assert_eq!(kind(&job), "full", "a full run covers the changes");
        assert!(runs.next().is_none());
        assert!(!runs.busy());

        runs.add(changes("/n/a.md"));
        runs.add(changes("/n/b.md"));
        runs.add(changes("/n/a.md"));
        let Some((Job::Changes { paths, rescan }, _)) = runs.next() else {
            panic!("expected one merged change run")
        };
        assert_eq!(paths, [PathBuf::from("/n/a.md"), PathBuf::from("/n/b.md")]);
        assert!(rescan.is_empty());
        assert!(runs.next().is_none());
    }

    #[test]
    fn paused_work_waits_and_resuming_catches_up() {
        let mut runs = Runs::default();
        runs.add(Job::Full);
        let (_, cancel) = runs.next().unwrap();
        assert!(!runs.set_paused(true), "pausing starts nothing");
        assert!(cancel.load(Ordering::SeqCst), "the run in flight stops");
        assert!(runs.next().is_none(), "nothing runs while paused");
        assert!(!runs.busy());
        let change = Job::Changes {
            paths: vec![PathBuf::from("/n/a.md")],
            rescan: vec![],
        };
        assert!(!runs.add(change), "no worker while paused");
        assert!(runs.next().is_none());

        assert!(runs.set_paused(false), "resuming starts a worker");
        let (job, _) = runs.next().unwrap();
        assert_eq!(kind(&job), "full", "a full pass covers what waited");
        assert!(runs.next().is_none());
    }

    #[test]
    fn a_quiet_run_after_a_done_that_said_more_waits_announces_its_end() {
        let mut runs = Runs::default();
        runs.add(Job::Full);
        runs.next().unwrap();
        assert!(!runs.must_announce(false), "a quiet run stays quiet");
        // The watcher reports a change while the full run finishes.
        runs.add(Job::Changes {
            paths: vec![PathBuf::from("/n/a.md")],
            rescan: vec![],
        });
        assert!(runs.announce_done(), "the full run's done says more waits");
        runs.next().unwrap();
        assert!(
            runs.must_announce(false),
            "the UI was told a run waits: its end must be told too"
        );
        assert!(!runs.announce_done(), "nothing waits any more");
        assert!(runs.next().is_none());
        assert!(!runs.must_announce(false));
    }

    #[test]
    fn only_a_plain_run_is_stopped() {
        let mut runs = Runs::default();
        runs.add(Job::Full);
        let (_, cancel) = runs.next().unwrap();
        assert!(runs.stop_current());
        assert!(cancel.load(Ordering::SeqCst));
    }
}
