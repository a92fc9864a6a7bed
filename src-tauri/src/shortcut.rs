//! The global shortcut that brings the window up (`Settings.shortcut`).
//!
//! Registration can fail for reasons outside the app (another program holds the
//! keys, no X keyboard grab under Wayland or Xvfb): the app logs it and goes on
//! without a shortcut.

use std::str::FromStr;

use sift::ErrorKind;
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tauri_plugin_global_shortcut::{GlobalShortcutExt, Shortcut, ShortcutState};

use crate::error::IpcError;

/// Installs the plugin with a handler that shows and focuses the main window.
/// `false` when the platform offers no global shortcuts.
pub fn install<R: Runtime>(app: &AppHandle<R>) -> bool {
    let plugin = tauri_plugin_global_shortcut::Builder::new()
        .with_handler(|app, _shortcut, event| {
            if event.state == ShortcutState::Pressed {
                show_main_window(app);
            }
        })
        .build();
    match app.plugin(plugin) {
        Ok(()) => true,
        Err(err) => {
            eprintln!("sift: global shortcuts are unavailable: {err}");
            false
        }
    }
}

/// Checks that `accelerator` is a shortcut the plugin understands.
pub fn parse(accelerator: &str) -> Result<Shortcut, IpcError> {
    Shortcut::from_str(accelerator.trim()).map_err(|e| {
        IpcError::new(
            ErrorKind::InvalidInput,
            format!("'{accelerator}' is not a shortcut like CmdOrCtrl+Shift+Space: {e}"),
        )
    })
}

/// Replaces the registered shortcut with `accelerator`; failures are logged.
pub fn register<R: Runtime>(app: &AppHandle<R>, accelerator: &str) {
    let Some(shortcuts) = app.try_state::<tauri_plugin_global_shortcut::GlobalShortcut<R>>() else {
        return;
    };
    if let Err(err) = shortcuts.unregister_all() {
        eprintln!("sift: could not release the old global shortcut: {err}");
    }
    let shortcut = match parse(accelerator) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("sift: {}", err.message);
            return;
        }
    };
    match app.global_shortcut().register(shortcut) {
        Ok(()) => eprintln!("sift: global shortcut {accelerator} shows the window"),
        Err(err) => eprintln!("sift: global shortcut {accelerator} is not available: {err}"),
    }
}

/// Event asking the window to show the search view with the box focused.
pub const FOCUS_SEARCH: &str = "focus-search";

/// Shows, unminimizes and focuses the main window, on the search box.
pub fn show_main_window<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
        let _ = app.emit(FOCUS_SEARCH, ());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_both_spellings_of_the_default() {
        assert!(parse("CmdOrCtrl+Shift+Space").is_ok());
        assert!(parse("CommandOrControl+Shift+Space").is_ok());
        assert_eq!(parse("Shift+").unwrap_err().code, "invalid_input");
    }
}
