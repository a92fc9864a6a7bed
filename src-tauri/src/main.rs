//! Sift's desktop shell: a thin Tauri layer over the `sift` engine.
//!
//! The UI (`ui/`, built into `ui/dist`) talks to it only through the commands and
//! events of docs/ipc.md. Environment, for tests and power users:
//! - `SIFT_DATA_DIR`: data folder (default: the per-user data folder, shared with
//!   the `sift` CLI);
//! - `SIFT_NOTES_DIR`: a notes folder added and indexed at launch;
//! - `SIFT_MODEL_DIR`: the local model folder (else the user cache, else the copy
//!   bundled with the app);
//! - `SIFT_EDITOR`: how to open a note at a line (see `open.rs`).

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod background;
mod commands;
mod compare;
mod cost;
mod data;
mod embedder;
mod error;
mod model_download;
mod open;
mod runs;
mod shortcut;
mod state;
mod tray;

use std::path::PathBuf;

use tauri::{AppHandle, Manager};

use crate::embedder::EmbedderFactory;
use crate::state::AppState;

/// Folder of the bundled model inside the app's resources.
const BUNDLED_MODEL: &str = "model";

fn main() {
    // A bug below a command is caught and returned as an `internal` error; the
    // log gets one line naming where, not a backtrace dump.
    sift::panics::install_hook("sift-desktop");
    tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(
            tauri_plugin_opener::Builder::new()
                .open_js_links_on_click(false)
                .build(),
        )
        // Started at login: into the tray, not in the user's face.
        .plugin(
            tauri_plugin_autostart::Builder::new()
                .arg(tray::IN_TRAY_ARG)
                .build(),
        )
        .on_window_event(tray::on_window_event)
        .setup(|app| {
            setup(app.handle())?;
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::get_settings,
            commands::save_settings,
            commands::add_folder,
            commands::pick_folder,
            commands::remove_folder,
            commands::status,
            commands::file_states,
            commands::file_type_counts,
            commands::search,
            commands::related,
            commands::backlinks,
            commands::preview_exclusions,
            commands::open_note,
            commands::reindex,
            commands::key_status,
            commands::key_set,
            commands::key_delete,
            commands::cost_summary,
            commands::estimate,
            compare::compare_plan,
            compare::compare_run,
            compare::search_history,
            compare::clear_search_history,
            data::export_index,
            data::forget_everything,
            data::forget_phrase,
            model_download::model_state,
            model_download::model_download,
            background::background_state,
            background::set_indexing_paused,
            background::set_autostart,
            data::restart_app,
        ])
        .run(tauri::generate_context!())
        .expect("error while running Sift");
}

fn setup(app: &AppHandle) -> Result<(), Box<dyn std::error::Error>> {
    let data_dir = env_path("SIFT_DATA_DIR").unwrap_or_else(sift::config::default_data_dir);
    let bundled = app
        .path()
        .resource_dir()
        .ok()
        .map(|dir| dir.join(BUNDLED_MODEL));
    let embedders = EmbedderFactory::new(sift::keys::KeyStore::os(), bundled);
    if let Some(dir) = embedders.bundled_model() {
        eprintln!("sift: bundled model in {}", dir.display());
    }
    // Encryption turned on or off in Settings is applied at start; after a
    // restart the old process may hold the folder a moment longer.
    if let Ok(settings) = sift::Settings::load(&data_dir) {
        let wait = std::time::Duration::from_secs(5);
        if let Err(e) =
            sift::encryption::reconcile_within(&data_dir, settings.encrypt_at_rest, wait)
        {
            eprintln!("sift: warning: could not apply the encryption setting: {e}");
        }
    }
    let state = AppState::open(data_dir, embedders)
        .map_err(|e| format!("cannot open the Sift data folder: {e}"))?;
    eprintln!("sift: data folder {}", state.data_dir().display());
    app.manage(state);
    app.manage(model_download::ModelDownload::default());
    let state = app.state::<AppState>();

    if let Some(notes) = env_path("SIFT_NOTES_DIR") {
        let engine = state.engine();
        match engine.add_folder(&notes) {
            Ok(folder) => eprintln!("sift: indexing {} (SIFT_NOTES_DIR)", folder.display()),
            Err(err) => eprintln!("sift: SIFT_NOTES_DIR: {err}"),
        }
    }
    // Follow changes live, and catch up with what changed while the app was closed.
    state.watch(app);
    if !state.engine().settings().folders.is_empty() {
        state.request_index(app);
    }

    tray::install(app);
    if shortcut::install(app) {
        shortcut::register(app, &state.engine().settings().shortcut);
    }
    Ok(())
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}
