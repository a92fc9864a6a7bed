//! `sift status [--files] [--json]`

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// List every file's state (indexed, pending, skipped, failed) with reasons.
    #[arg(long)]
    pub files: bool,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

pub fn run(data_dir: &Path, args: StatusArgs) -> Result<ExitCode> {
    let engine = super::open_engine(data_dir, !args.files)?;
    if args.files {
        let files = engine.file_states(false)?;
        if args.json {
            out!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "files": files }))?
            )?;
        } else {
            for f in files {
                match f.reason {
                    Some(reason) => out!("{:8} {}  ({reason})", f.state, f.path)?,
                    None => out!("{:8} {}", f.state, f.path)?,
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let status = engine.status()?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&status)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    out!("data folder: {}", status.data_dir)?;
    for folder in &status.folders {
        out!("folder:      {folder}")?;
    }
    out!(
        "notes:       {} indexed, {} pending, {} skipped, {} failed",
        status.notes,
        status.pending,
        status.skipped,
        status.failed
    )?;
    out!(
        "chunks:      {} ({} with vectors, {} without)",
        status.chunks,
        status.vectors,
        status.chunks_without_vectors
    )?;
    out!(
        "keywords:    {}",
        if status.keyword_index_current {
            "fast index current"
        } else if status.encrypted {
            "SQLite's full-text index, inside the encrypted database"
        } else {
            "answered by SQLite's full-text index until the next index run"
        }
    )?;
    out!(
        "encryption:  {}",
        if status.encrypted {
            "on (database and vector files; key in the OS keychain)"
        } else {
            "off"
        }
    )?;
    out!(
        "embedder:    {}{}",
        status
            .embedder_id
            .as_deref()
            .unwrap_or("none (keyword search only)"),
        status
            .local_arithmetic
            .as_deref()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default()
    )?;
    for folder in &status.unavailable_folders {
        out!("unavailable: {folder} (folder unavailable; its notes stay in the index)")?;
    }
    if let Some(cap) = status.budget_usd {
        out!(
            "budget:      {} of {} this month{}",
            sift::cost::format_usd(status.month_spent_usd),
            sift::cost::format_usd(cap),
            if status.budget_reached {
                " (reached: indexing with the remote provider is paused; keyword search works)"
            } else {
                ""
            }
        )?;
    }
    if let Some(writer) = &status.other_writer {
        out!("writer:      {writer}")?;
    }
    for warning in &status.warnings {
        out!("warning:     {warning}")?;
    }
    if let Some(t) = status.last_indexed {
        let when = chrono::DateTime::from_timestamp(t, 0).map(|d| d.to_rfc3339());
        out!("last index:  {}", when.unwrap_or_default())?;
    }
    if let Some(hint) = &status.language_hint {
        println!("note:        {hint}");
    }
    Ok(ExitCode::SUCCESS)
}
