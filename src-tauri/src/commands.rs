//! The commands of docs/ipc.md. Each takes the engine in use (an `Arc` clone),
//! runs one engine call on a blocking thread and maps errors to `{ code, message }`.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sift::cost::{CostSummary, Estimate};
use sift::embed::ProviderConfig;
use sift::store::FileStateRow;
use sift::{ErrorKind, Hit, OpenTarget, Query, SearchResults, Settings, Status};
use tauri::{AppHandle, Manager, State};
use tauri_plugin_opener::OpenerExt;

use crate::error::{blocking, CmdResult, IpcError};
use crate::state::AppState;

/// Whether a provider has an API key in the keychain.
#[derive(Debug, Clone, Serialize)]
pub struct KeyState {
    /// `openai`, `gemini` or `compatible`.
    pub provider: String,
    /// A key is stored.
    pub present: bool,
    /// The key, masked (e.g. `sk-…abcd (51 chars)`).
    pub masked: Option<String>,
    /// The base URL the key is sent to; `None`: the provider's own API.
    pub saved_for: Option<String>,
}

impl From<sift::keys::KeyStatus> for KeyState {
    fn from(k: sift::keys::KeyStatus) -> Self {
        KeyState {
            provider: k.provider,
            present: k.masked.is_some(),
            masked: k.masked,
            saved_for: k.saved_for,
        }
    }
}

#[tauri::command]
pub async fn get_settings(state: State<'_, AppState>) -> CmdResult<Settings> {
    Ok(state.engine().settings())
}

/// Saves settings. A changed provider is switched to in the background (the UI
/// showed its estimate first); a changed shortcut is registered at once. The
/// folders are not changed here (add_folder and remove_folder do that): the
/// ones on disk are kept, with any another process added meanwhile.
#[tauri::command]
pub async fn save_settings(app: AppHandle, settings: Settings) -> CmdResult<Settings> {
    crate::shortcut::parse(&settings.shortcut)?;
    let before = app.state::<AppState>().engine().settings();
    let shortcut_changed = settings.shortcut != before.shortcut;
    // File types or limits changed: index what is now in and drop what is out.
    let scan_changed = settings.scan != before.scan;
    let handle = app.clone();
    let next = settings.clone();
    blocking(move || {
        let state = handle.state::<AppState>();
        if next.provider != before.provider {
            state.switch_provider(&handle, next, true)
        } else {
            state.save_settings(&next).map(drop)
        }
    })
    .await?;
    if shortcut_changed {
        crate::shortcut::register(&app, &settings.shortcut);
    }
    if scan_changed {
        app.state::<AppState>().request_index(&app);
    }
    Ok(app.state::<AppState>().engine().settings())
}

/// Adds a typed folder path, which the user confirmed in the window
/// (`confirmed`), and starts indexing it in the background. Folders chosen with
/// the picker go through [`pick_folder`], which takes no path from the page.
#[tauri::command]
pub async fn add_folder(app: AppHandle, path: String, confirmed: bool) -> CmdResult<Settings> {
    if !confirmed {
        return Err(IpcError::new(
            ErrorKind::InvalidInput,
            "a typed folder is added only once you confirm it",
        ));
    }
    add(app, PathBuf::from(path)).await
}

/// Shows the native folder picker and adds the chosen folder (`null` when the
/// user cancels).
#[tauri::command]
pub async fn pick_folder(app: AppHandle) -> CmdResult<Option<Settings>> {
    use tauri_plugin_dialog::DialogExt;
    let handle = app.clone();
    let picked = blocking(move || {
        Ok(handle
            .dialog()
            .file()
            .set_title("Choose your notes folder")
            .blocking_pick_folder())
    })
    .await?;
    let Some(picked) = picked else {
        return Ok(None);
    };
    let path = picked.into_path().map_err(|e| {
        IpcError::new(
            ErrorKind::BadPath,
            format!("the picker returned no folder path: {e}"),
        )
    })?;
    add(app, path).await.map(Some)
}

async fn add(app: AppHandle, path: PathBuf) -> CmdResult<Settings> {
    let handle = app.clone();
    let settings = blocking(move || {
        let state = handle.state::<AppState>();
        let engine = state.engine();
        engine.add_folder(&path)?;
        state.watch(&handle);
        Ok(engine.settings())
    })
    .await?;
    app.state::<AppState>().request_index(&app);
    Ok(settings)
}

/// Removes a folder and everything indexed from it.
#[tauri::command]
pub async fn remove_folder(app: AppHandle, path: String) -> CmdResult<Settings> {
    let state = app.state::<AppState>();
    // Removing waits for the engine's index run: stop it, and resume after.
    let stopped = state.stop_index_run();
    let handle = app.clone();
    let settings = blocking(move || {
        let state = handle.state::<AppState>();
        let engine = state.engine();
        engine.remove_folder(Path::new(&path))?;
        state.watch(&handle);
        Ok(engine.settings())
    })
    .await?;
    if stopped {
        state.request_index(&app);
    }
    Ok(settings)
}

#[tauri::command]
pub async fn status(app: AppHandle) -> CmdResult<Status> {
    blocking(move || app.state::<AppState>().status()).await
}

/// Every file the index knows, with its state and the reason it was skipped or failed.
#[tauri::command]
pub async fn file_states(state: State<'_, AppState>) -> CmdResult<Vec<FileStateRow>> {
    let engine = state.engine();
    blocking(move || engine.file_states(false)).await
}

#[tauri::command]
pub async fn search(state: State<'_, AppState>, query: Query) -> CmdResult<SearchResults> {
    let engine = state.engine();
    blocking(move || {
        let results = engine.search(&query)?;
        // Kept for provider comparisons (crate::compare); never fails a search.
        let _ = engine.remember_search(&query.text);
        Ok(results)
    })
    .await
}

/// Notes closest in meaning to the note `path` (relative to `root`).
#[tauri::command]
pub async fn related(
    state: State<'_, AppState>,
    path: String,
    root: String,
    limit: usize,
) -> CmdResult<Vec<Hit>> {
    let engine = state.engine();
    blocking(move || engine.related(&Path::new(&root).join(path), limit.clamp(1, 50))).await
}

/// Notes linking to the note `path` (relative to `root`): wikilinks, embeds,
/// Markdown links.
#[tauri::command]
pub async fn backlinks(
    state: State<'_, AppState>,
    path: String,
    root: String,
    limit: usize,
) -> CmdResult<Vec<Hit>> {
    let engine = state.engine();
    blocking(move || engine.backlinks(&Path::new(&root).join(path), limit.clamp(1, 50))).await
}

/// Opens a note at a line in the user's editor or default app (in Obsidian,
/// when the setting asks for it and the note is in a vault). Only notes Sift
/// indexed, inside an indexed folder (after resolving symlinks), are opened:
/// anything else is refused with `not_indexed`; an executable file (exec bit, or
/// a type the OS would run) is refused with `invalid_input`.
#[tauri::command(rename_all = "snake_case")]
pub async fn open_note(
    app: AppHandle,
    state: State<'_, AppState>,
    abs_path: String,
    line: usize,
    page: Option<u32>,
) -> CmdResult<()> {
    let engine = state.engine();
    let requested = PathBuf::from(&abs_path);
    let target = blocking(move || {
        let target = engine.open_target(&requested)?;
        if let OpenTarget::File(file) = &target {
            crate::open::refuse_executable(file)?;
        }
        Ok(target)
    })
    .await?;
    let file = match target {
        OpenTarget::File(file) => file,
        OpenTarget::Url(url) => {
            return app
                .opener()
                .open_url(&url, None::<&str>)
                .map_err(|e| IpcError::new(ErrorKind::Io, format!("could not open {url}: {e}")))
        }
    };
    let is_document = file
        .extension()
        .is_some_and(|e| sift::extract::is_document_ext(&e.to_string_lossy().to_lowercase()));
    let command = match page {
        // A PDF at its page where the viewer takes one; else the default app.
        Some(page) if is_document => crate::open::pdf_viewer_command(&file, page.max(1)),
        // Lines of converted text mean nothing to an editor of the file.
        _ if is_document => None,
        _ => crate::open::editor_command(&file, line.max(1)),
    };
    match command {
        Some(cmd) => crate::open::spawn(&cmd).map_err(|e| {
            IpcError::new(
                ErrorKind::Io,
                format!("could not start {}: {e}", cmd.program),
            )
        }),
        None => app
            .opener()
            .open_path(file.to_string_lossy(), None::<&str>)
            .map_err(|e| {
                IpcError::new(
                    ErrorKind::Io,
                    format!("could not open {}: {e}", file.display()),
                )
            }),
    }
}

/// What exclusion patterns would leave out, before saving them (Settings'
/// live count per pattern).
#[tauri::command]
pub async fn preview_exclusions(
    state: State<'_, AppState>,
    exclude: Vec<String>,
    include: Vec<String>,
) -> CmdResult<sift::patterns::PatternPreview> {
    let engine = state.engine();
    blocking(move || Ok(engine.preview_exclusions(&exclude, &include))).await
}

/// Files of each readable type in the indexed folders, enabled or not (for
/// Settings' file type checkboxes and the type filter).
#[tauri::command]
pub async fn file_type_counts(
    state: State<'_, AppState>,
) -> CmdResult<Vec<sift::file_types::TypeCount>> {
    let engine = state.engine();
    blocking(move || Ok(engine.file_type_counts())).await
}

/// Re-indexes every folder in the background (progress via events).
#[tauri::command]
pub async fn reindex(app: AppHandle) -> CmdResult<()> {
    app.state::<AppState>().request_index(&app);
    Ok(())
}

#[tauri::command]
pub async fn key_status(app: AppHandle) -> CmdResult<Vec<KeyState>> {
    blocking(move || {
        let keys = app.state::<AppState>().embedders().keys().status()?;
        Ok(keys.into_iter().map(KeyState::from).collect())
    })
    .await
}

/// Stores an API key in the OS keychain, to be sent only to the provider's own
/// API, or with `base_url` (which the user confirmed in the window, typing the
/// key with it) only to that address. The key is never logged or returned.
#[tauri::command]
pub async fn key_set(
    app: AppHandle,
    provider: String,
    key: String,
    base_url: Option<String>,
) -> CmdResult<KeyState> {
    blocking(move || {
        let state = app.state::<AppState>();
        let keys = state.embedders().keys();
        keys.set_for_url(&provider, &key, base_url.as_deref())?;
        let masked = keys.get(&provider)?.map(|k| k.masked());
        let saved_for = keys.saved_url(&provider)?;
        rebuild_if_in_use(&app, &provider)?;
        Ok(KeyState {
            present: masked.is_some(),
            provider,
            masked,
            saved_for,
        })
    })
    .await
}

#[tauri::command]
pub async fn key_delete(app: AppHandle, provider: String) -> CmdResult<KeyState> {
    blocking(move || {
        app.state::<AppState>()
            .embedders()
            .keys()
            .delete(&provider)?;
        rebuild_if_in_use(&app, &provider)?;
        Ok(KeyState {
            provider,
            present: false,
            masked: None,
            saved_for: None,
        })
    })
    .await
}

/// A new or deleted key of the provider in use: rebuild its embedder.
fn rebuild_if_in_use(app: &AppHandle, provider: &str) -> sift::Result<()> {
    let state = app.state::<AppState>();
    let settings = state.engine().settings();
    if settings.provider.provider_name() == provider {
        state.switch_provider(app, settings, false)?;
    }
    Ok(())
}

#[tauri::command]
pub async fn cost_summary(state: State<'_, AppState>) -> CmdResult<CostSummary> {
    let engine = state.engine();
    blocking(move || crate::cost::summary(&engine)).await
}

/// What switching to `provider` would send (after the cache) and cost. Never
/// reaches the network and never uses a key, whatever base URL it names.
#[tauri::command]
pub async fn estimate(app: AppHandle, provider: ProviderConfig) -> CmdResult<Estimate> {
    blocking(move || {
        let state = app.state::<AppState>();
        crate::cost::estimate(&state.engine(), state.embedders(), &provider)
    })
    .await
}
