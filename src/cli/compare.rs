//! `sift compare --provider ...`: the embedder in use beside another provider
//! on a sample of your notes and your latest searches (see `sift::compare`).
//! Without `--yes` it only says what the comparison would cost.
//! `sift history`: the searches kept for it, and `--clear` to forget them.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde_json::json;
use sift::compare::{self, CompareOptions};
use sift::cost::{format_usd, Estimate};
use sift::embed::ProviderConfig;

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The provider to compare with: openai, gemini or compatible.
    #[arg(long)]
    pub provider: String,
    /// Its model (default: the provider's default).
    #[arg(long)]
    pub model: Option<String>,
    /// A proxy, gateway or OpenAI-compatible server address.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Shorter vectors, for models that offer them.
    #[arg(long)]
    pub dimensions: Option<usize>,
    /// Chunks in the sample.
    #[arg(long, default_value_t = 200)]
    pub sample: usize,
    /// A search to compare on (repeatable); default: your latest searches.
    #[arg(long = "query")]
    pub queries: Vec<String>,
    /// How many of your latest searches to use when no --query is given.
    #[arg(long, default_value_t = 20)]
    pub recent: usize,
    /// Notes compared per search.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Run it: send the sample and the searches to the provider (without
    /// this, only the cost is shown).
    #[arg(long)]
    pub yes: bool,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Forget every search kept.
    #[arg(long)]
    pub clear: bool,
}

pub fn run(data_dir: &Path, args: CompareArgs) -> Result<ExitCode> {
    let provider = provider_config(&args)?;
    let engine = super::open_engine(data_dir, true)?;
    let options = CompareOptions {
        sample_chunks: args.sample,
        queries: args.queries.clone(),
        recent_searches: args.recent,
        k: args.k,
    };
    let cached = engine.store().read(sift::store::tables::cached_embedders)?;
    let estimator = sift::embed::build_estimator(&provider, &cached)?;
    let plan = compare::plan(&engine, estimator.as_ref(), &options)?;
    if !args.yes {
        if args.json {
            out!("{}", serde_json::to_string_pretty(&plan)?)?;
        } else {
            out!(
                "comparing {} with {} on {} chunks and {} searches would send {}",
                plan.current_id,
                plan.other_id,
                plan.chunk_ids.len(),
                plan.queries.len(),
                describe(&plan.estimate)
            )?;
            out!(
                "switching the whole index would send {}",
                describe(&plan.switch_estimate)
            )?;
            out!("run it with --yes; nothing is switched either way")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let other = sift::embed::build_embedder(&provider, &sift::keys::KeyStore::os())?;
    let report = compare::run(&engine, other.as_ref(), &plan)?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for q in &report.queries {
        out!("\n{}  (overlap {:.0}%)", q.query, q.overlap * 100.0)?;
        for i in 0..q.current.len().max(q.other.len()) {
            let name = |list: &[compare::RankedNote]| {
                list.get(i).map_or(String::new(), |n| n.path.clone())
            };
            out!(
                "  {:>2}. {:<40} {}",
                i + 1,
                name(&q.current),
                name(&q.other)
            )?;
        }
    }
    out!(
        "\n{} vs {}: mean overlap@{} {:.2} over {} searches on {} chunks",
        report.current_id,
        report.other_id,
        report.k,
        report.mean_overlap,
        report.queries.len(),
        report.chunks
    )?;
    out!(
        "spent {} ({} tokens, {} requests); {} sample texts came from the cache",
        format_usd(report.spent.dollars),
        report.spent.tokens_sent,
        report.spent.requests,
        report.from_cache
    )?;
    out!(
        "switching the whole index would send {} (nothing was switched)",
        describe(&report.switch_estimate)
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_history(data_dir: &Path, args: HistoryArgs) -> Result<ExitCode> {
    let engine = super::open_engine(data_dir, false)?;
    if args.clear {
        let n = engine.clear_search_history()?;
        out!("forgot {n} searches")?;
    } else {
        for q in engine.recent_searches(sift::search_history::KEEP)? {
            out!("{q}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn provider_config(args: &CompareArgs) -> Result<ProviderConfig> {
    let mut cfg = json!({ "provider": args.provider });
    if let Some(m) = &args.model {
        cfg["model"] = json!(m);
    }
    if let Some(u) = &args.base_url {
        cfg["base_url"] = json!(u);
    }
    if let Some(d) = args.dimensions {
        cfg["dimensions"] = json!(d);
    }
    serde_json::from_value(cfg).map_err(|e| {
        sift::Error::new(
            sift::ErrorKind::InvalidInput,
            format!("cannot compare with that provider: {e} (openai, gemini or compatible with --base-url and --model)"),
        )
        .into()
    })
}

fn describe(e: &Estimate) -> String {
    let dollars = e.dollars.map_or("an unknown price".into(), format_usd);
    let cap = if e.stopped_by_cap {
        " (over your monthly cap)"
    } else {
        ""
    };
    format!("{} texts, {} tokens, {dollars}{cap}", e.chunks, e.tokens)
}
