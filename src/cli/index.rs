//! `sift index [FOLDER]`

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sift::{Phase, Progress};

use super::progress_lines::ProgressLines;

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Folder to index (added to the indexed folders); all indexed folders if omitted.
    pub folder: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Show what embedding would send after the cache (chunks, tokens, dollars)
    /// without sending anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Set the index aside (into the data folder's old-index-<time>) and build
    /// it again from the notes of every indexed folder: the way out of a
    /// damaged index. Settings are kept, and so are the cached vectors and the
    /// cost ledger where the old index can still be read.
    #[arg(long, conflicts_with = "dry_run")]
    pub rebuild: bool,
    /// Fail at once when another Sift process is indexing this data folder,
    /// instead of waiting for its run to end.
    #[arg(long)]
    pub no_wait: bool,
    /// How much of the CPU indexing may use: all cores, half, or one (saved as
    /// the setting for later runs and the app). Indexing threads always run at
    /// lowered priority, so searches stay quick meanwhile.
    #[arg(long, value_enum)]
    pub cpu: Option<CpuArg>,
}

/// `--cpu` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CpuArg {
    All,
    Half,
    One,
}

impl From<CpuArg> for sift::CpuShare {
    fn from(arg: CpuArg) -> Self {
        match arg {
            CpuArg::All => sift::CpuShare::All,
            CpuArg::Half => sift::CpuShare::Half,
            CpuArg::One => sift::CpuShare::One,
        }
    }
}

pub fn run(data_dir: &Path, args: IndexArgs) -> Result<ExitCode> {
    if args.rebuild {
        if let Some(rebuilt) = sift::data_dir::rebuild_index(data_dir)? {
            eprintln!(
                "note: the old index is now in {} ({} cached vectors and {} days of the cost ledger carried over); delete it once the new index serves you well",
                rebuilt.old_index.display(),
                rebuilt.vectors_kept,
                rebuilt.ledger_days_kept
            );
        }
    }
    let engine = super::open_engine(data_dir, true)?;
    engine.set_wait_for_writer(!args.no_wait);
    if let Some(cpu) = args.cpu {
        engine.update_settings(|s| {
            s.indexing_cpu = cpu.into();
            Ok(())
        })?;
    }
    let folders = match &args.folder {
        Some(folder) if !args.rebuild => vec![engine.add_folder(folder)?],
        Some(folder) => {
            engine.add_folder(folder)?;
            engine.settings().folders
        }
        None => engine.settings().folders,
    };
    if folders.is_empty() {
        anyhow::bail!("no folder to index: run `sift index <folder>`");
    }
    if args.dry_run {
        let estimate = engine.estimate(&folders, &|_| {})?;
        if args.json {
            out!("{}", serde_json::to_string_pretty(&estimate)?)?;
        } else {
            out!(
                "would embed {} chunks, {} tokens, {} with {} (nothing sent)",
                estimate.chunks,
                estimate.tokens,
                estimate.dollars.map_or(
                    "an unknown price (set one with `sift cost set-price`)".to_string(),
                    sift::cost::format_usd
                ),
                engine.embedder().map_or("no embedder", |e| e.id())
            )?;
            if let Some(cap) = estimate.budget_usd {
                let spent = sift::cost::format_usd(estimate.month_spent_usd);
                let cap = sift::cost::format_usd(cap);
                if estimate.stopped_by_cap {
                    out!(
                        "the monthly cap of {cap} ({spent} spent this month) would stop this run \
                         before it is done; raise the cap to finish"
                    )?;
                } else {
                    out!("fits under the monthly cap of {cap} ({spent} spent this month)")?;
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let bar = ProgressBar::new(0);
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    // No terminal to draw the bar on (a log, a pipe): plain lines instead.
    let lines = (bar.is_hidden() && !args.json).then(ProgressLines::default);
    let progress = |p: &Progress| draw(&bar, lines.as_ref(), p);
    let cancel = AtomicBool::new(false);
    let report = engine.index_paths(&folders, &progress, &cancel);
    bar.finish_and_clear();
    let report = report?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "indexed {} notes ({} unchanged, {} removed) in {:.1}s; {} chunks embedded, {} from cache",
        report.notes_indexed,
        report.notes_unchanged,
        report.notes_removed,
        report.elapsed_ms as f64 / 1000.0,
        report.chunks_embedded,
        report.chunks_from_cache,
    )?;
    if report.chunks_without_vectors > 0 {
        out!(
            "{} chunks have no vectors yet (keyword search only): run `sift model fetch`, then `sift index`",
            report.chunks_without_vectors
        )?;
    }
    for folder in &report.unavailable {
        println!("folder unavailable: {folder} (skipped; its notes stay in the index)");
    }
    if !report.skipped.is_empty() {
        out!("skipped {} files:", report.skipped.len())?;
        for (path, reason) in report.skipped.iter().take(20) {
            out!("  {path}: {reason}")?;
        }
        if report.skipped.len() > 20 {
            out!("  … see `sift status --files`")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn draw(bar: &ProgressBar, lines: Option<&ProgressLines>, p: &Progress) {
    let (label, done, total) = match p.phase {
        Phase::Waiting => {
            bar.suspend(|| eprintln!("{}", p.current.as_deref().unwrap_or("waiting")));
            return;
        }
        Phase::Scanning => ("scanning", 0, 0),
        Phase::Indexing => ("reading notes", p.files_done, p.files_total),
        Phase::Embedding => ("embedding chunks", p.chunks_done, p.chunks_total),
        Phase::Saving => ("saving", 0, 0),
        Phase::Done => return,
    };
    if let Some(lines) = lines {
        lines.show(p.phase, label, done, total, &pace(p));
        return;
    }
    if bar.length() != Some(total as u64) {
        bar.set_length(total as u64);
        bar.set_style(
            ProgressStyle::with_template("{msg:18} [{bar:40}] {pos}/{len} {prefix}")
                .expect("valid template")
                .progress_chars("=> "),
        );
    }
    bar.set_message(label);
    bar.set_prefix(pace(p));
    bar.set_position(done as u64);
}

/// "12.3 chunks/s, 4m 05s left" while embedding; the time left otherwise.
fn pace(p: &Progress) -> String {
    let left = p.eta_ms.map(|ms| {
        let s = ms / 1000;
        if s >= 3600 {
            format!("{}h {:02}m left", s / 3600, s / 60 % 60)
        } else if s >= 60 {
            format!("{}m {:02}s left", s / 60, s % 60)
        } else {
            format!("{s}s left")
        }
    });
    match (p.chunks_per_sec, left) {
        (Some(rate), Some(left)) => format!("{rate:.1} chunks/s, {left}"),
        (Some(rate), None) => format!("{rate:.1} chunks/s"),
        (None, Some(left)) => left,
        (None, None) => String::new(),
    }
}
