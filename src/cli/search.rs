//! `sift search QUERY` and `sift related NOTE`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde_json::json;
use sift::search::DateSource;
use sift::{Hit, Mode, Query, MAX_LIMIT};

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// What to look for (words, "quoted phrases", or a question).
    #[arg(required = true)]
    pub query: Vec<String>,
    /// hybrid (default), keyword or semantic.
    #[arg(long, default_value = "hybrid")]
    pub mode: Mode,
    /// Keyword share of hybrid ranking, 0..1 (default: the setting, 0.5).
    #[arg(long, value_parser = parse_weight)]
    pub keyword_weight: Option<f32>,
    /// Only notes under this folder (relative to the indexed folder).
    #[arg(long)]
    pub folder: Option<String>,
    /// Only notes with this tag (repeatable: all must match).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Only notes dated on or after this day (YYYY-MM-DD).
    #[arg(long)]
    pub after: Option<String>,
    /// Only notes dated on or before this day (YYYY-MM-DD).
    #[arg(long)]
    pub before: Option<String>,
    /// Which date --after/--before look at: modified (the file's, default) or
    /// front-matter (the note's `date:` or `created:`, else modified).
    #[arg(long, default_value = "modified")]
    pub date: DateSource,
    /// Only this file type (repeatable), e.g. md, txt.
    #[arg(long = "ext")]
    pub exts: Vec<String>,
    /// Most notes to show (at most 1000).
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RelatedArgs {
    /// A note file inside an indexed folder.
    pub note: PathBuf,
    /// Most notes to show (at most 1000).
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

pub fn run_search(data_dir: &Path, args: SearchArgs) -> Result<ExitCode> {
    let engine = super::open_engine(data_dir, args.mode != Mode::Keyword)?;
    note_if_clamped(args.limit);
    let query = Query {
        text: args.query.join(" "),
        mode: args.mode,
        limit: args.limit,
        keyword_weight: args.keyword_weight,
        folder: args.folder,
        tags: args.tags,
        exts: args.exts,
        after: args.after,
        before: args.before,
        date: args.date,
    };
    let results = engine.search(&query)?;
    // Kept for `sift compare`; a history that cannot be written is no reason
    // to fail the search.
    let _ = engine.remember_search(&query.text);
    if args.json {
        let hits: Vec<_> = results.hits.iter().map(hit_json).collect();
        let doc = json!({
            "query": query.text,
            "mode": results.mode,
            "took_ms": results.took_ms,
            "warning": results.warning,
            "hits": hits,
        });
        out!("{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(warning) = &results.warning {
        eprintln!("note: {warning}");
    }
    if results.hits.is_empty() {
        out!("no notes match")?;
    }
    print_hits(&results.hits)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_related(data_dir: &Path, args: RelatedArgs) -> Result<ExitCode> {
    let engine = super::open_engine(data_dir, true)?;
    note_if_clamped(args.limit);
    let hits = engine.related(&args.note, args.limit)?;
    if args.json {
        let hits: Vec<_> = hits.iter().map(hit_json).collect();
        out!(
            "{}",
            serde_json::to_string_pretty(&json!({ "hits": hits }))?
        )?;
    } else if hits.is_empty() {
        let waiting = engine.status()?.chunks_without_vectors;
        if waiting > 0 {
            out!(
                "no related notes found ({waiting} chunks have no vectors yet: run `sift index`)"
            )?;
        } else {
            out!("no related notes found")?;
        }
    } else {
        print_hits(&hits)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_backlinks(data_dir: &Path, args: RelatedArgs) -> Result<ExitCode> {
    let engine = super::open_engine(data_dir, false)?;
    note_if_clamped(args.limit);
    let hits = engine.backlinks(&args.note, args.limit)?;
    if args.json {
        let hits: Vec<_> = hits.iter().map(hit_json).collect();
        out!(
            "{}",
            serde_json::to_string_pretty(&json!({ "hits": hits }))?
        )?;
    } else if hits.is_empty() {
        out!("no notes link here")?;
    } else {
        print_hits(&hits)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A keyword weight: a number from 0 to 1.
fn parse_weight(text: &str) -> Result<f32, String> {
    match text.trim().parse::<f32>() {
        Ok(w) if w.is_finite() && (0.0..=1.0).contains(&w) => Ok(w),
        _ => Err(format!(
            "'{text}' is not a number from 0 to 1 (0: meaning only, 1: keywords only)"
        )),
    }
}

/// Says when `limit` is more than the engine returns (it lowers it).
fn note_if_clamped(limit: usize) {
    if limit > MAX_LIMIT {
        eprintln!(
            "note: --limit {limit} is more than Sift returns; showing at most {MAX_LIMIT} notes"
        );
    }
}

pub fn hit_json(hit: &Hit) -> serde_json::Value {
    let snippet: String = hit.snippet.iter().map(|p| p.text.as_str()).collect();
    let mut highlights = Vec::new();
    let mut at = 0;
    for part in &hit.snippet {
        if part.highlight {
            highlights.push([at, at + part.text.len()]);
        }
        at += part.text.len();
    }
    json!({
        "path": hit.path,
        "abs_path": hit.abs_path,
        "root": hit.root,
        "title": hit.title,
        "heading_path": hit.heading_path,
        "line": hit.line,
        "page": hit.page,
        "score": hit.score,
        "keyword_rank": hit.keyword_rank,
        "vector_similarity": hit.vector_similarity,
        "snippet": snippet,
        "highlights": highlights,
        "tags": hit.tags,
        "aliases": hit.aliases,
        "modified": hit.modified,
        "note_date": hit.note_date,
        "date_source": hit.date_source,
        "ext": hit.ext,
    })
}

fn print_hits(hits: &[Hit]) -> std::io::Result<()> {
    let color = std::io::IsTerminal::is_terminal(&std::io::stdout());
    for (i, hit) in hits.iter().enumerate() {
        let headings = if hit.heading_path.is_empty() {
            String::new()
        } else {
            format!(" › {}", hit.heading_path.join(" › "))
        };
        let place = match hit.page {
            Some(page) => format!("p. {page}"),
            None => hit.line.to_string(),
        };
        out!(
            "{:>2}. {}{}  ({}:{place})",
            i + 1,
            hit.title,
            headings,
            hit.path
        )?;
        let snippet: String = hit
            .snippet
            .iter()
            .map(|p| match (p.highlight, color) {
                (true, true) => format!("\x1b[1;33m{}\x1b[0m", p.text),
                (true, false) => format!("[{}]", p.text),
                _ => p.text.clone(),
            })
            .collect();
        out!("    {snippet}")?;
        if !hit.aliases.is_empty() {
            out!("    also known as: {}", hit.aliases.join(", "))?;
        }
        if let (DateSource::FrontMatter, Some(date)) = (hit.date_source, hit.note_date) {
            out!("    dated {} (front matter)", day(date))?;
        }
        let mut why = Vec::new();
        if let Some(rank) = hit.keyword_rank {
            why.push(format!("keyword #{rank}"));
        }
        if let Some(sim) = hit.vector_similarity {
            why.push(format!("similarity {sim:.2}"));
        }
        // Backlinks are ordered by their number of links, not scored.
        if !why.is_empty() {
            out!("    score {:.4} ({})", hit.score, why.join(", "))?;
        }
    }
    Ok(())
}

/// `YYYY-MM-DD` of Unix seconds.
fn day(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}
