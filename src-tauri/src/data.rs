//! "Own your data" in Settings: export the index to a file the user picks,
//! and delete everything of Sift's after a typed confirmation. Both are one
//! engine call (sift::archive, sift::forget); the shell only asks where and
//! stops its own runs first.

use serde::Serialize;
use sift::archive::{ArchiveProgress, ExportFormat, ExportReport, PeerFormat};
use sift::forget::{ForgetOptions, Forgotten, CONFIRM_PHRASE};
use sift::ErrorKind;
use tauri::{AppHandle, Emitter, Manager};

use crate::error::{blocking, CmdResult, IpcError};
use crate::state::AppState;

/// Where an export went and what it holds.
#[derive(Debug, Clone, Serialize)]
pub struct Exported {
    /// The file written.
    pub path: String,
    /// Counts and size.
    pub report: ExportReport,
}

/// Asks where to save (native dialog: no path comes from the page), then
/// writes the index there as a Sift archive (`sift`), or as Qdrant or Chroma
/// points. Progress comes as `export-progress` events. `null`: cancelled.
#[tauri::command]
pub async fn export_index(app: AppHandle, format: String) -> CmdResult<Option<Exported>> {
    use tauri_plugin_dialog::DialogExt;
    let (format, name) = match format.as_str() {
        "sift" => (ExportFormat::Sift, "sift-index.jsonl.gz"),
        "qdrant" => (ExportFormat::Peer(PeerFormat::Qdrant), "sift-qdrant.jsonl"),
        "chroma" => (ExportFormat::Peer(PeerFormat::Chroma), "sift-chroma.jsonl"),
        other => {
            return Err(IpcError::new(
                ErrorKind::InvalidInput,
                format!("unknown export format {other:?}: sift, qdrant or chroma"),
            ))
        }
    };
    let handle = app.clone();
    let picked = blocking(move || {
        Ok(handle
            .dialog()
            .file()
            .set_title("Export the Sift index")
            .set_file_name(name)
            .blocking_save_file())
    })
    .await?;
    let Some(picked) = picked else {
        return Ok(None);
    };
    let path = picked.into_path().map_err(|e| {
        IpcError::new(
            ErrorKind::BadPath,
            format!("the dialog returned no file path: {e}"),
        )
    })?;
    let engine = app.state::<AppState>().engine();
    let handle = app.clone();
    blocking(move || {
        let progress = |p: &ArchiveProgress| {
            let _ = handle.emit("export-progress", p);
        };
        let report = sift::archive::export(&engine, &path, format, None, &progress)?;
        Ok(Some(Exported {
            path: path.to_string_lossy().into_owned(),
            report,
        }))
    })
    .await
}

/// Deletes everything of Sift's (the data folder, the app's storage, and on
/// request the downloaded model and the API keys) once the user typed
/// [`CONFIRM_PHRASE`], then closes the app: nothing of Sift's is written after.
#[tauri::command]
pub async fn forget_everything(
    app: AppHandle,
    confirmation: String,
    model: bool,
    keys: bool,
) -> CmdResult<Forgotten> {
    if confirmation.trim() != CONFIRM_PHRASE {
        return Err(IpcError::new(
            ErrorKind::InvalidInput,
            format!("type \"{CONFIRM_PHRASE}\" to confirm; nothing was deleted"),
        ));
    }
    let state = app.state::<AppState>();
    state.stop_index_run();
    state.stop_watching();
    let handle = app.clone();
    let forgotten = blocking(move || {
        let state = handle.state::<AppState>();
        // Wait for the run in flight to stop: it holds the writer lock.
        for _ in 0..600 {
            if !state.with_runs(|runs| runs.busy()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        sift::forget::forget_all(
            state.data_dir(),
            ForgetOptions { model, keys },
            state.embedders().keys(),
        )
    })
    .await?;
    let exit = app.clone();
    // Let the answer reach the page, then close.
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        exit.exit(0);
    });
    Ok(forgotten)
}

/// Restarts the app, so settings applied at start (encryption at rest) take
/// effect: the database is rewritten while no process has it open.
#[tauri::command]
pub fn restart_app(app: AppHandle) {
    let state = app.state::<AppState>();
    state.stop_watching();
    state.stop_index_run();
    // Started at login (hidden in the tray): the user restarting from the
    // window wants the window back, so the new process starts without it.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == crate::tray::IN_TRAY_ARG) {
        if let Ok(exe) = std::env::current_exe() {
            let rest = args.iter().filter(|a| *a != crate::tray::IN_TRAY_ARG);
            if std::process::Command::new(exe).args(rest).spawn().is_ok() {
                app.exit(0);
                return;
            }
        }
    }
    app.restart();
}

/// The phrase the page shows and the user types.
#[tauri::command]
pub async fn forget_phrase() -> CmdResult<String> {
    Ok(CONFIRM_PHRASE.to_string())
}
