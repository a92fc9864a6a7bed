//! `sift watch [FOLDER]`: follow folders live in the foreground, printing each
//! change handled, until Ctrl-C (or SIGTERM).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use sift::{
    ChangeKind, Changes, Engine, ErrorKind, IndexReport, Phase, Progress, WatchOptions, Watcher,
};

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Folder to watch (added to the indexed folders); all indexed folders if omitted.
    pub folder: Option<PathBuf>,
    /// Quiet time before a change is indexed, in milliseconds.
    #[arg(long, default_value_t = 150)]
    pub debounce_ms: u64,
}

pub fn run(data_dir: &Path, args: WatchArgs) -> Result<ExitCode> {
    let engine = Arc::new(super::open_engine(data_dir, true)?);
    // A watcher stays up: searches through the folder's index should not
    // wait for the disk after a boot.
    engine.warm_up();
    let folders = match &args.folder {
        Some(folder) => vec![engine.add_folder(folder)?],
        None => engine.settings().folders,
    };
    if folders.is_empty() {
        anyhow::bail!("no folder to watch: run `sift watch <folder>`");
    }
    let cancel = Arc::new(AtomicBool::new(false));
    // Set when stdout is gone (`sift watch | head`): nobody reads any more.
    let output_gone = Arc::new(tokio::sync::Notify::new());
    let options = WatchOptions {
        scan: engine.settings().scan,
        debounce: Duration::from_millis(args.debounce_ms.max(1)),
        rescan_at_start: true,
    };
    let watcher = Watcher::start(&folders, options, {
        let engine = engine.clone();
        let cancel = cancel.clone();
        let output_gone = output_gone.clone();
        move |changes| {
            if let Err(err) = handle(&engine, changes, &cancel) {
                if err.kind() != std::io::ErrorKind::BrokenPipe {
                    eprintln!("error: cannot write the output: {err}");
                }
                output_gone.notify_one();
            }
        }
    })?;
    for folder in &folders {
        out!("watching {} (Ctrl-C to stop)", folder.display())?;
    }
    wait_for_stop_signal(&output_gone)?;
    // Stop a long run at its next batch; finished work is kept.
    cancel.store(true, Ordering::SeqCst);
    drop(watcher);
    // The last reference: closing the engine saves the vector index.
    drop(engine);
    out!("stopped")?;
    Ok(ExitCode::SUCCESS)
}

/// Says why a batch waits: another process holds the writer lock.
fn progress(p: &Progress) {
    if p.phase == Phase::Waiting {
        eprintln!("{}", p.current.as_deref().unwrap_or("waiting"));
    }
}

/// Indexes one batch of changes and prints what it did.
fn handle(engine: &Engine, changes: Changes, cancel: &AtomicBool) -> std::io::Result<()> {
    for warning in &changes.warnings {
        eprintln!("warning: {warning}");
    }
    if !changes.rescan.is_empty() {
        let started = Instant::now();
        match engine.index_paths(&changes.rescan, &progress, cancel) {
            Ok(report) => {
                print_changes(&report)?;
                let status = engine.status().ok();
                out!(
                    "up to date: {} notes, {} chunks (checked {} files in {:.1}s)",
                    status.as_ref().map_or(0, |s| s.notes),
                    status.as_ref().map_or(0, |s| s.chunks),
                    report.files_seen,
                    started.elapsed().as_secs_f64()
                )?;
            }
            Err(err) => report_error(&err),
        }
    }
    if !changes.paths.is_empty() {
        match engine.index_changed(&changes.paths, &progress, cancel) {
            Ok(report) => print_changes(&report)?,
            Err(err) => report_error(&err),
        }
    }
    Ok(())
}

fn print_changes(report: &IndexReport) -> std::io::Result<()> {
    for folder in &report.unavailable {
        out!("folder unavailable: {folder} (skipped; its notes stay in the index)")?;
    }
    for change in &report.changes {
        match &change.kind {
            ChangeKind::Indexed(chunks) => out!("indexed  {} ({chunks} chunks)", change.path)?,
            ChangeKind::Removed => out!("removed  {}", change.path)?,
            ChangeKind::Skipped(reason) => out!("skipped  {} ({reason})", change.path)?,
            ChangeKind::Failed(error) => out!("failed   {} ({error})", change.path)?,
        }
    }
    if report.chunks_embedded + report.chunks_from_cache > 0 {
        out!(
            "embedded {} chunks, {} from cache ({} ms)",
            report.chunks_embedded,
            report.chunks_from_cache,
            report.elapsed_ms
        )?;
    }
    Ok(())
}

fn report_error(err: &sift::Error) {
    if err.kind() != ErrorKind::Cancelled {
        eprintln!("error: {err} (will retry with the next change)");
    }
}

/// Blocks until SIGINT or SIGTERM, or until `output_gone` is notified,
/// without spinning.
fn wait_for_stop_signal(output_gone: &tokio::sync::Notify) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = term.recv() => Ok(()),
                _ = output_gone.notified() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = output_gone.notified() => Ok(()),
            }
        }
    })?;
    Ok(())
}
