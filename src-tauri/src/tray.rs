//! Sift in the tray: closing the window hides it and Sift keeps watching the
//! folders; the tray menu has Search (the window back, focused on the search
//! box), Pause indexing / Resume indexing, and Quit.
//!
//! On Linux the tray needs libayatana-appindicator3 (or libappindicator3),
//! loaded at run time; without it the app has no tray and closing the window
//! quits, as it would with no way back.

use tauri::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter, Manager, Runtime, Window, WindowEvent};

use crate::state::AppState;

/// Menu item ids.
const SEARCH: &str = "search";
const PAUSE: &str = "pause";
const QUIT: &str = "quit";

/// Command-line flag: start with the window hidden in the tray (start at login
/// launches Sift with it).
pub const IN_TRAY_ARG: &str = "--in-tray";

/// Event telling the window that paused/autostart changed (payload: `Background`).
pub const BACKGROUND_CHANGED: &str = "background-changed";

/// The tray, managed by Tauri once it is built.
pub struct Tray<R: Runtime> {
    pause: MenuItem<R>,
}

/// Builds the tray icon and its menu; `false` (logged) when the platform has none.
pub fn install(app: &AppHandle) -> bool {
    if !tray_library_present() {
        eprintln!(
            "sift: no tray (install libayatana-appindicator3-1): closing the window quits Sift"
        );
        return false;
    }
    match build(app) {
        Ok(tray) => {
            app.manage(tray);
            if std::env::args().any(|a| a == IN_TRAY_ARG) {
                if let Some(window) = app.get_webview_window("main") {
                    let _ = window.hide();
                }
                eprintln!("sift: started in the tray");
            }
            true
        }
        Err(err) => {
            eprintln!("sift: no tray: {err}; closing the window quits Sift");
            false
        }
    }
}

fn build(app: &AppHandle) -> tauri::Result<Tray<tauri::Wry>> {
    let search = MenuItem::with_id(app, SEARCH, "Search", true, None::<&str>)?;
    let pause = MenuItem::with_id(app, PAUSE, "Pause indexing", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, QUIT, "Quit Sift", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&search, &pause, &separator, &quit])?;
    let mut builder = TrayIconBuilder::with_id("sift")
        .tooltip("Sift")
        .menu(&menu)
        .on_menu_event(on_menu_event);
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    builder.build(app)?;
    Ok(Tray { pause })
}

fn on_menu_event(app: &AppHandle, event: MenuEvent) {
    match event.id().as_ref() {
        SEARCH => crate::shortcut::show_main_window(app),
        PAUSE => {
            let paused = app.state::<AppState>().paused();
            set_paused(app, !paused);
        }
        QUIT => {
            eprintln!("sift: quit from the tray");
            app.exit(0);
        }
        _ => {}
    }
}

/// Pauses or resumes indexing (the tray menu's item and the Settings button),
/// relabels the menu item and tells the window.
pub fn set_paused(app: &AppHandle, paused: bool) {
    app.state::<AppState>().set_paused(app, paused);
    eprintln!(
        "sift: indexing {}",
        if paused { "paused" } else { "resumed" }
    );
    if let Some(tray) = app.try_state::<Tray<tauri::Wry>>() {
        let label = if paused {
            "Resume indexing"
        } else {
            "Pause indexing"
        };
        let _ = tray.pause.set_text(label);
    }
    let _ = app.emit(BACKGROUND_CHANGED, crate::background::current(app));
}

/// Whether Sift has a tray to live in when the window is closed.
pub fn present(app: &AppHandle) -> bool {
    app.try_state::<Tray<tauri::Wry>>().is_some()
}

/// Closing the main window hides it while a tray holds the app (watching goes on).
pub fn on_window_event(window: &Window, event: &WindowEvent) {
    if let WindowEvent::CloseRequested { api, .. } = event {
        if window.label() == "main" && present(window.app_handle()) {
            api.prevent_close();
            let _ = window.hide();
            eprintln!("sift: window closed; still running in the tray");
        }
    }
}

/// Whether the tray library can be loaded (it is loaded at run time, and the
/// crate that loads it panics when it is missing).
#[cfg(target_os = "linux")]
fn tray_library_present() -> bool {
    ["libayatana-appindicator3.so.1", "libappindicator3.so.1"]
        .iter()
        .any(|name| {
            let name = std::ffi::CString::new(*name).expect("no NUL");
            // SAFETY: dlopen with a valid C string; nothing from the library is
            // used here. The handle is kept (not closed): the tray loads it next.
            !unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) }.is_null()
        })
}

#[cfg(not(target_os = "linux"))]
fn tray_library_present() -> bool {
    true
}
