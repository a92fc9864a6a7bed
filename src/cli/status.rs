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
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "files": files }))?
            );
        } else {
            for f in files {
                match f.reason {
                    Some(reason) => println!("{:8} {}  ({reason})", f.state, f.path),
                    None => println!("{:8} {}", f.state, f.path),
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let status = engine.status()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("data folder: {}", status.data_dir);
    for folder in &status.folders {
        println!("folder:      {folder}");
    }
    println!(
        "notes:       {} indexed, {} pending, {} skipped, {} failed",
        status.notes, status.pending, status.skipped, status.failed
    );
    println!(
        "chunks:      {} ({} with vectors, {} without)",
        status.chunks, status.vectors, status.chunks_without_vectors
    );
    println!(
        "embedder:    {}",
        status
            .embedder_id
            .as_deref()
            .unwrap_or("none (keyword search only)")
    );
    if let Some(t) = status.last_indexed {
        let when = chrono::DateTime::from_timestamp(t, 0).map(|d| d.to_rfc3339());
        println!("last index:  {}", when.unwrap_or_default());
    }
    if let Some(hint) = &status.language_hint {
        println!("note:        {hint}");
    }
    Ok(ExitCode::SUCCESS)
}
