//! `sift cost`: what remote embedding cost, per provider and model, this month
//! and in total; `sift cost prices` and `sift cost set-price` for the price table.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;
use sift::cost::{format_usd, CostRow, CostSummary, LedgerEntry, PriceTable, UsageLedger};

#[derive(Debug, Args)]
pub struct CostArgs {
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<CostCommand>,
}

#[derive(Debug, Subcommand)]
pub enum CostCommand {
    /// The price table in use (USD per million tokens).
    Prices,
    /// Set a price, e.g. `sift cost set-price gemini/gemini-embedding-001 0.15`.
    SetPrice {
        /// provider/model, or provider/* for every model of a provider.
        key: String,
        /// US dollars per million tokens.
        usd_per_million: f64,
    },
}

pub fn run(data_dir: &Path, args: CostArgs) -> Result<ExitCode> {
    match args.command {
        None => show_summary(data_dir, args.json)?,
        Some(CostCommand::Prices) => show_prices(data_dir, args.json)?,
        Some(CostCommand::SetPrice {
            key,
            usd_per_million,
        }) => {
            PriceTable::save_override(data_dir, &key, usd_per_million)?;
            out!(
                "{key}: ${usd_per_million} per million tokens (saved in {})",
                PriceTable::file_path(data_dir).display()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(data_dir: &Path) -> Result<CostSummary> {
    let today = chrono::Local::now().date_naive();
    let db = data_dir.join("sift.db");
    if !db.exists() {
        // Nothing indexed yet: an empty ledger, without creating a database.
        let conn = rusqlite::Connection::open_in_memory()?;
        UsageLedger::migrate(&conn)?;
        return Ok(UsageLedger::new(&conn).summary(today)?);
    }
    let read = || -> sift::Result<CostSummary> {
        let conn = rusqlite::Connection::open(&db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        UsageLedger::migrate(&conn)?;
        UsageLedger::new(&conn).summary(today)
    };
    Ok(read().map_err(|e| e.in_database(&db))?)
}

fn show_summary(data_dir: &Path, json: bool) -> Result<()> {
    let s = summary(data_dir)?;
    if json {
        out!("{}", serde_json::to_string_pretty(&s)?)?;
        return Ok(());
    }
    if s.all_time.is_empty() {
        out!("nothing spent yet: no embeddings have been sent to a provider")?;
        return Ok(());
    }
    out!("This month ({}):", s.month)?;
    table(&s.this_month, &s.month_total)?;
    out!()?;
    out!("All time:")?;
    table(&s.all_time, &s.total)?;
    Ok(())
}

fn table(rows: &[CostRow], total: &LedgerEntry) -> std::io::Result<()> {
    out!(
        "  {:<42} {:>8} {:>12} {:>10} {:>10} {:>12} {:>10}",
        "provider/model",
        "requests",
        "tokens",
        "cost",
        "cache hits",
        "hit tokens",
        "saved"
    )?;
    let line = |name: &str, e: &LedgerEntry| {
        out!(
            "  {:<42} {:>8} {:>12} {:>10} {:>10} {:>12} {:>10}",
            name,
            e.requests,
            e.tokens_sent,
            format_usd(e.dollars),
            e.cache_hits,
            e.cache_hit_tokens,
            format_usd(e.dollars_saved)
        )
    };
    for r in rows {
        line(&format!("{}/{}", r.provider, r.model), &r.totals)?;
    }
    if rows.len() > 1 {
        line("total", total)?;
    }
    Ok(())
}

#[derive(Serialize)]
struct PriceLine<'a> {
    key: &'a str,
    usd_per_million_tokens: f64,
}

fn show_prices(data_dir: &Path, json: bool) -> Result<()> {
    let table = PriceTable::load(data_dir)?;
    let lines: Vec<PriceLine> = table
        .entries()
        .map(|(key, usd)| PriceLine {
            key,
            usd_per_million_tokens: usd,
        })
        .collect();
    if json {
        out!("{}", serde_json::to_string_pretty(&lines)?)?;
        return Ok(());
    }
    out!(
        "USD per million tokens (override in {}):",
        PriceTable::file_path(data_dir).display()
    )?;
    for l in lines {
        out!("  {:<40} {}", l.key, l.usd_per_million_tokens)?;
    }
    Ok(())
}
