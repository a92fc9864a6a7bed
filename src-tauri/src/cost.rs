//! Cost figures for the UI, from `sift::cost`: the ledger summary and what
//! re-embedding every chunk with another provider would send after the cache.
//!
//! The engine has no "estimate for a provider" call yet, so the walk over chunks
//! lacking a cached vector lives here, on the store's public paging query.

use std::collections::HashSet;

use sift::cost::{CostSummary, Estimate, LedgerEntry, PriceTable, UsageLedger};
use sift::embed::ProviderConfig;
use sift::store::tables;
use sift::Engine;

use crate::embedder::EmbedderFactory;

/// Chunks read per page while estimating.
const PAGE: usize = 512;

/// This month's and all-time spending per provider and model. Its month total
/// is the figure the monthly cap enforces (`sift::cost::month_spent`: the same
/// ledger, the same day). Reads only: with no ledger yet, nothing was spent.
pub fn summary(engine: &Engine) -> sift::Result<CostSummary> {
    let today = sift::cost::today();
    engine.store().read(|conn| {
        if UsageLedger::exists(conn)? {
            UsageLedger::new(conn).summary(today)
        } else {
            Ok(CostSummary {
                month: today.format("%Y-%m").to_string(),
                this_month: Vec::new(),
                month_total: LedgerEntry::default(),
                all_time: Vec::new(),
                total: LedgerEntry::default(),
            })
        }
    })
}

/// What indexing everything with `provider` would send: chunks whose text has no
/// cached vector for its embedder, their tokens, and their price (`None` when the
/// model has no price in the table).
pub fn estimate(
    engine: &Engine,
    embedders: &EmbedderFactory,
    provider: &ProviderConfig,
) -> sift::Result<Estimate> {
    let embedder = match engine.embedder() {
        Some(e) if engine.settings().provider == *provider => e.clone(),
        _ => {
            embedders.build_estimator(provider, &engine.store().read(tables::cached_embedders)?)?
        }
    };
    let prices = PriceTable::load(engine.data_dir())?;
    let (mut chunks, mut tokens) = (0usize, 0u64);
    // The indexer embeds each distinct text once.
    let mut seen = HashSet::new();
    let mut after = 0;
    loop {
        let rows = engine
            .store()
            .read(|conn| tables::chunks_missing_vectors(conn, embedder.id(), after, PAGE))?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        let texts: Vec<String> = rows
            .into_iter()
            .filter(|r| seen.insert(r.embed_hash))
            .map(|r| r.embed_text)
            .collect();
        let page = sift::cost::estimate(&texts, embedder.as_ref(), &prices);
        chunks += page.chunks;
        tokens += page.tokens;
    }
    let estimate = Estimate {
        chunks,
        tokens,
        dollars: prices.dollars(embedder.provider(), embedder.model(), tokens),
        budget_usd: None,
        month_spent_usd: 0.0,
        stopped_by_cap: false,
    };
    Ok(estimate.with_cap(engine.settings().budget_usd, engine.month_spent()?))
}
