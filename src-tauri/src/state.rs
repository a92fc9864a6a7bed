//! What the shell holds: the engine in use, the background runs and the watcher.
//!
//! Searches always use the current engine (`RwLock<Arc<Engine>>`, cloned per
//! command). A provider switch builds a second engine and indexes it in the
//! background while the old one keeps answering; the worker swaps it in when
//! it is done (see `runs.rs`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use sift::watch::{Changes, WatchOptions, Watcher};
use sift::{Engine, Settings, Status};
use tauri::{AppHandle, Manager};

use crate::embedder::EmbedderFactory;
use crate::runs::{spawn_worker, Job, Runs};

/// The shell's state, managed by Tauri.
pub struct AppState {
    data_dir: PathBuf,
    embedders: EmbedderFactory,
    current: RwLock<Arc<Engine>>,
    runs: Mutex<Runs>,
    watcher: Mutex<Option<Watcher>>,
}

impl AppState {
    /// Opens the engine over `data_dir` with the saved settings. Without a
    /// usable embedder (no model, no key) it opens keyword-only and says why.
    pub fn open(data_dir: PathBuf, embedders: EmbedderFactory) -> sift::Result<AppState> {
        std::fs::create_dir_all(&data_dir).map_err(|e| sift::Error::io(&data_dir, e))?;
        let settings = Settings::load(&data_dir)?;
        let embedder = match embedders.build(&settings.provider) {
            Ok(e) => Some(e),
            Err(err) => {
                eprintln!("sift: meaning search is off: {err}");
                None
            }
        };
        let engine = Arc::new(Engine::open_with(&data_dir, settings, embedder)?);
        // The first searches after a boot should not wait for the disk.
        engine.warm_up();
        Ok(AppState {
            data_dir,
            embedders,
            current: RwLock::new(engine),
            runs: Mutex::new(Runs::default()),
            watcher: Mutex::new(None),
        })
    }

    /// The engine answering searches now.
    pub fn engine(&self) -> Arc<Engine> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Builds embedders (keychain, bundled model).
    pub fn embedders(&self) -> &EmbedderFactory {
        &self.embedders
    }

    /// The current engine's status; `indexing` covers every background run.
    pub fn status(&self) -> sift::Result<Status> {
        let mut status = self.engine().status()?;
        status.indexing |= self.with_runs(|runs| runs.busy());
        Ok(status)
    }

    /// Saves the page's `settings` by read-modify-write of the settings file,
    /// all but the folders (added and removed by their own commands, here or
    /// by another process). Every engine alive (one being switched to, too)
    /// reloads the file when it next reads its settings. Returns what was saved.
    pub fn save_settings(&self, settings: &Settings) -> sift::Result<Settings> {
        let engine = self.engine();
        engine.update_settings(|s| {
            let folders = std::mem::take(&mut s.folders);
            *s = settings.clone();
            s.folders = folders;
            Ok(())
        })?;
        Ok(engine.settings())
    }

    /// Switches to the embedder `settings.provider` names: saves the settings,
    /// opens a second engine with it and indexes that in the background while the
    /// current one keeps answering. With `strict`, an embedder that cannot be built
    /// (no key, no model) is an error and nothing is saved; otherwise the new
    /// engine is keyword-only.
    pub fn switch_provider(
        &self,
        app: &AppHandle,
        settings: Settings,
        strict: bool,
    ) -> sift::Result<()> {
        let embedder = match self.embedders.build(&settings.provider) {
            Ok(e) => Some(e),
            Err(err) if !strict => {
                eprintln!("sift: meaning search is off: {err}");
                None
            }
            Err(err) => return Err(err),
        };
        let settings = self.save_settings(&settings)?;
        let engine = Arc::new(Engine::open_with(&self.data_dir, settings, embedder)?);
        engine.warm_up();
        self.enqueue(app, Job::Switch(engine));
        Ok(())
    }

    /// Indexes every folder in the background (after the run in flight).
    pub fn request_index(&self, app: &AppHandle) {
        self.enqueue(app, Job::Full);
    }

    /// Stops the run in flight unless it is a provider switch; `true` when one
    /// was asked to stop.
    pub fn stop_index_run(&self) -> bool {
        self.with_runs(|runs| runs.stop_current())
    }

    /// Pauses or resumes indexing (the watcher keeps collecting changes; a
    /// resume indexes them). Not saved: a restart resumes.
    pub fn set_paused(&self, app: &AppHandle, paused: bool) {
        if self.with_runs(|runs| runs.set_paused(paused)) {
            spawn_worker(app);
        }
    }

    /// Whether indexing is paused.
    pub fn paused(&self) -> bool {
        self.with_runs(|runs| runs.paused())
    }

    /// (Re)starts watching the indexed folders; changes are indexed in the
    /// background and announced with `notes-changed`. Failing to watch (e.g. the
    /// OS limit on watches) is logged: `reindex` still works.
    pub fn watch(&self, app: &AppHandle) {
        let settings = self.engine().settings();
        let mut slot = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
        // Stop the old watcher first (this waits for a callback under way).
        slot.take();
        if settings.folders.is_empty() {
            return;
        }
        let options = WatchOptions {
            scan: settings.scan.clone(),
            // The shell runs its own full catch-up run at launch and on add_folder.
            rescan_at_start: false,
            ..WatchOptions::default()
        };
        let handle = app.clone();
        let on_changes = move |changes: Changes| {
            for warning in &changes.warnings {
                eprintln!("sift: {warning}");
            }
            let job = Job::Changes {
                paths: changes.paths,
                rescan: changes.rescan,
            };
            handle.state::<AppState>().enqueue(&handle, job);
        };
        match Watcher::start(&settings.folders, options, on_changes) {
            Ok(watcher) => *slot = Some(watcher),
            Err(err) => eprintln!("sift: not following changes live: {err}"),
        }
    }

    /// Stops following the folders (before everything is deleted).
    pub fn stop_watching(&self) {
        self.watcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// Runs `f` on the run queue.
    pub fn with_runs<T>(&self, f: impl FnOnce(&mut Runs) -> T) -> T {
        f(&mut self.runs())
    }

    /// Makes `engine` the one answering searches.
    pub fn swap_in(&self, engine: Arc<Engine>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = engine;
    }

    fn runs(&self) -> MutexGuard<'_, Runs> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enqueue(&self, app: &AppHandle, job: Job) {
        if self.with_runs(|runs| runs.add(job)) {
            spawn_worker(app);
        }
    }
}
