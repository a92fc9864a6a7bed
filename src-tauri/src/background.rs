//! Sift in the background: indexing paused or not, started at login or not
//! (Settings' "Background" card; the tray menu pauses through the same
//! function). Start at login is the OS's own record, written by
//! tauri-plugin-autostart (on Linux `~/.config/autostart/Sift.desktop`), so it
//! is read from there, never from Sift's settings file.

use serde::Serialize;
use sift::ErrorKind;
use tauri::{AppHandle, Emitter, Manager};
use tauri_plugin_autostart::ManagerExt;

use crate::error::{blocking, CmdResult};
use crate::state::AppState;

/// What the Background card shows.
#[derive(Debug, Clone, Serialize)]
pub struct Background {
    /// Indexing is paused (changes wait; a resume indexes them).
    pub paused: bool,
    /// Sift starts when you log in.
    pub autostart: bool,
    /// A tray icon holds Sift when the window is closed (else closing quits).
    pub tray: bool,
}

/// The current state; an unreadable autostart record counts as off (logged).
pub fn current(app: &AppHandle) -> Background {
    let autostart = match app.try_state::<tauri_plugin_autostart::AutoLaunchManager>() {
        Some(_) => app.autolaunch().is_enabled().unwrap_or_else(|err| {
            eprintln!("sift: cannot read the start-at-login setting: {err}");
            false
        }),
        None => false,
    };
    Background {
        paused: app.state::<AppState>().paused(),
        autostart,
        tray: crate::tray::present(app),
    }
}

#[tauri::command]
pub async fn background_state(app: AppHandle) -> CmdResult<Background> {
    blocking(move || Ok(current(&app))).await
}

/// Pauses or resumes indexing (like the tray menu's item).
#[tauri::command]
pub async fn set_indexing_paused(app: AppHandle, paused: bool) -> CmdResult<Background> {
    blocking(move || {
        crate::tray::set_paused(&app, paused);
        Ok(current(&app))
    })
    .await
}

/// Starts Sift at login, or stops doing so.
#[tauri::command]
pub async fn set_autostart(app: AppHandle, enabled: bool) -> CmdResult<Background> {
    blocking(move || {
        let manager = app.autolaunch();
        let result = if enabled {
            manager.enable()
        } else {
            manager.disable()
        };
        result.map_err(|err| {
            sift::Error::new(
                ErrorKind::Io,
                format!("could not change start at login: {err}"),
            )
        })?;
        let now = current(&app);
        let _ = app.emit(crate::tray::BACKGROUND_CHANGED, now.clone());
        Ok(now)
    })
    .await
}
