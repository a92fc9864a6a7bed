//! Commands of the provider comparison (docs/ipc.md): what it would cost
//! (nothing sent), running it once the user confirmed, and the search history
//! it draws on. Nothing here switches the provider; Settings does that.

use sift::compare::{self, CompareOptions, ComparePlan, CompareReport};
use sift::embed::ProviderConfig;
use sift::store::tables;
use tauri::{AppHandle, Manager};

use crate::error::{blocking, CmdResult};
use crate::state::AppState;

/// The sample, the searches and what comparing with `provider` and switching
/// to it would cost. Never reaches the network and uses no key.
#[tauri::command]
pub async fn compare_plan(
    app: AppHandle,
    provider: ProviderConfig,
    options: CompareOptions,
) -> CmdResult<ComparePlan> {
    blocking(move || {
        let state = app.state::<AppState>();
        let engine = state.engine();
        let cached = engine.store().read(tables::cached_embedders)?;
        let estimator = state.embedders().build_estimator(&provider, &cached)?;
        compare::plan(&engine, estimator.as_ref(), &options)
    })
    .await
}

/// Runs the comparison the user confirmed: the same sample and searches as
/// [`compare_plan`] gives for these options, embedded by `provider` (its key
/// from the keychain, only for the host it was saved for).
#[tauri::command]
pub async fn compare_run(
    app: AppHandle,
    provider: ProviderConfig,
    options: CompareOptions,
) -> CmdResult<CompareReport> {
    blocking(move || {
        let state = app.state::<AppState>();
        let engine = state.engine();
        let other = state.embedders().build(&provider)?;
        let plan = compare::plan(&engine, other.as_ref(), &options)?;
        compare::run(&engine, other.as_ref(), &plan)
    })
    .await
}

/// The latest searches kept (latest first).
#[tauri::command]
pub async fn search_history(app: AppHandle) -> CmdResult<Vec<String>> {
    let engine = app.state::<AppState>().engine();
    blocking(move || engine.recent_searches(sift::search_history::KEEP)).await
}

/// Forgets every search kept; returns how many.
#[tauri::command]
pub async fn clear_search_history(app: AppHandle) -> CmdResult<usize> {
    let engine = app.state::<AppState>().engine();
    blocking(move || engine.clear_search_history()).await
}
