//! `sift export <file> [--format sift|qdrant|chroma]` and `sift import <file>`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use sift::archive::{self, ArchiveProgress, ExportFormat, ImportOptions, PeerFormat};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// A Sift archive (JSON Lines; `.gz` compresses), for `sift import`.
    Sift,
    /// Qdrant points, one upsert body per line.
    Qdrant,
    /// Chroma records, one `collection.add` per line.
    Chroma,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// File to write (replaced whole; a name ending in .gz is compressed).
    pub file: PathBuf,
    /// What to write.
    #[arg(long, value_enum, default_value = "sift")]
    pub format: FormatArg,
    /// Whose vectors a Qdrant or Chroma export carries (default: the current
    /// embedder, or the only one with vectors).
    #[arg(long)]
    pub embedder: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The archive (`sift export` wrote it).
    pub file: PathBuf,
    /// OLD=NEW: the notes folders at or under OLD are now under NEW (repeat
    /// for several).
    #[arg(long, value_parser = parse_remap)]
    pub remap: Vec<(PathBuf, PathBuf)>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_remap(s: &str) -> std::result::Result<(PathBuf, PathBuf), String> {
    let (old, new) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: write OLD=NEW, e.g. /home/me/notes=/Users/me/notes"))?;
    let (old, new) = (PathBuf::from(old), PathBuf::from(new));
    if !old.is_absolute() || !new.is_absolute() {
        return Err(format!("{s:?}: both folders must be absolute paths"));
    }
    // The new folder by its real name when it exists, as Sift keeps folders.
    let new = std::fs::canonicalize(&new).unwrap_or(new);
    Ok((old, new))
}

fn bar(hidden: bool, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if hidden {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{msg:10} [{bar:40}] {pos}/{len} lines {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

pub fn run_export(data_dir: &Path, args: ExportArgs) -> Result<ExitCode> {
    let engine = super::open_engine(data_dir, true)?;
    let format = match args.format {
        FormatArg::Sift => ExportFormat::Sift,
        FormatArg::Qdrant => ExportFormat::Peer(PeerFormat::Qdrant),
        FormatArg::Chroma => ExportFormat::Peer(PeerFormat::Chroma),
    };
    let bar = bar(args.json, "exporting");
    let progress = |p: &ArchiveProgress| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    };
    let report = archive::export(
        &engine,
        &args.file,
        format,
        args.embedder.as_deref(),
        &progress,
    );
    bar.finish_and_clear();
    let report = report?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let c = report.counts;
    let size = report.bytes as f64 / 1e6;
    match format {
        ExportFormat::Sift => out!(
            "wrote {} ({size:.1} MB): {} notes, {} chunks, {} vectors, {} ledger days",
            args.file.display(),
            c.notes,
            c.chunks,
            c.vectors,
            c.ledger
        )?,
        ExportFormat::Peer(_) => {
            let e = &report.embedders[0];
            out!(
                "wrote {} ({size:.1} MB): {} points of {} ({} dimensions, cosine distance)",
                args.file.display(),
                c.vectors,
                e.id,
                e.dimensions
            )?
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_import(data_dir: &Path, args: ImportArgs) -> Result<ExitCode> {
    let (header, settings) = archive::read_header(&args.file)?;
    // The embedder the imported folder will search with: the archive's
    // provider settings on this machine. Unknown (no key or model here yet)
    // means unchecked: vectors stay keyed by embedder id either way.
    let embedder = super::test_embedder::from_env().or_else(|| {
        sift::embed::build_embedder(&settings.provider, &sift::keys::KeyStore::os()).ok()
    });
    let options = ImportOptions {
        remap: args.remap,
        embedder: embedder.map(|e| (e.id().to_string(), e.dimensions())),
    };
    let bar = bar(args.json, "importing");
    let progress = |p: &ArchiveProgress| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    };
    let report = archive::import(data_dir, &args.file, &options, &progress);
    bar.finish_and_clear();
    let report = report?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let c = header.counts;
    out!(
        "imported {} notes, {} chunks, {} vectors into {}",
        c.notes,
        c.chunks,
        c.vectors,
        data_dir.display()
    )?;
    for folder in &report.folders {
        let note = if folder.is_dir() {
            ""
        } else {
            " (not found here: use --remap OLD=NEW)"
        };
        out!("folder: {}{note}", folder.display())?;
    }
    if options.embedder.is_none() && !header.embedders.is_empty() {
        out!(
            "meaning search starts once {} is available here (its vectors were imported)",
            header
                .active_embedder
                .as_deref()
                .unwrap_or(&header.embedders[0].id)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
