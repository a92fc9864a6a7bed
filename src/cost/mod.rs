//! What remote embedding costs: token counts, the price table, the usage ledger,
//! dry-run estimates and the budget cap.
//!
//! The indexer's loop, for each run:
//! 1. look texts up in the embedding cache; the misses are what would be sent;
//! 2. `--dry-run`: print [`estimate`] of the misses and stop;
//! 3. with a cap: build a [`Budget`] (the monthly cap of the settings reads the
//!    month's spending from the ledger before every request, so runs of every
//!    process and every watcher batch count against one figure) and pass
//!    `&|o| budget.admit(o)` as the gate
//!    of the [`RunControl`](crate::embed::RunControl) of
//!    [`Embedder::embed_documents_with`](crate::embed::Embedder::embed_documents_with):
//!    it refuses the first request that would cross the cap, before it is sent;
//! 4. after each delivered batch (and once for the cache hits) call
//!    [`record_usage`], which books what the embedder really sent.

pub mod ledger;
pub mod prices;
pub mod tokens;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::NaiveDate;
use serde::Serialize;

pub use ledger::{CostRow, CostSummary, LedgerEntry, UsageLedger};
pub use prices::PriceTable;

use crate::embed::{Embedder, Outgoing, Usage};
use crate::error::{Error, ErrorKind, Result};

/// What an index run would send after the cache.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// Chunks to embed.
    pub chunks: usize,
    /// Their tokens, as the embedder counts them.
    pub tokens: u64,
    /// What they would cost, USD; `None` when the model has no price in the table.
    pub dollars: Option<f64>,
    /// The monthly cap, when one is set.
    pub budget_usd: Option<f64>,
    /// Spent this month so far (the ledger, every process), USD.
    pub month_spent_usd: f64,
    /// Whether the cap would stop this run before it is done (the spending
    /// this month plus the estimate is over the cap, or the price is unknown).
    pub stopped_by_cap: bool,
}

impl Estimate {
    /// This estimate judged against a monthly cap of `budget_usd` with
    /// `month_spent_usd` spent so far.
    pub fn with_cap(mut self, budget_usd: Option<f64>, month_spent_usd: f64) -> Estimate {
        self.budget_usd = budget_usd;
        self.month_spent_usd = month_spent_usd;
        self.stopped_by_cap = budget_usd.is_some_and(|cap| {
            self.chunks > 0
                && self
                    .dollars
                    .is_none_or(|d| month_spent_usd + d > cap + 1e-12)
        });
        self
    }
}

/// Dollars spent from the first day of `today`'s month on, over every
/// provider and model, as the ledger in `conn` has them (0 without a ledger).
/// The one figure the monthly cap enforces and the app shows.
pub fn month_spent(conn: &rusqlite::Connection, today: NaiveDate) -> Result<f64> {
    if !UsageLedger::exists(conn)? {
        return Ok(0.0);
    }
    UsageLedger::new(conn).spent_since(ledger::month_start(today))
}

/// Today, in the calendar the ledger books days in.
pub fn today() -> NaiveDate {
    chrono::Local::now().date_naive()
}

/// What sending `texts_to_send` (the cache misses) to `embedder` would cost.
pub fn estimate(
    texts_to_send: &[String],
    embedder: &dyn Embedder,
    prices: &PriceTable,
) -> Estimate {
    let tokens = texts_to_send
        .iter()
        .map(|t| embedder.count_tokens(t) as u64)
        .sum();
    Estimate {
        chunks: texts_to_send.len(),
        tokens,
        dollars: prices.dollars(embedder.provider(), embedder.model(), tokens),
        budget_usd: None,
        month_spent_usd: 0.0,
        stopped_by_cap: false,
    }
}

/// Books in the ledger, for today, what `embedder` sent since the last call
/// ([`Embedder::take_usage`]) and the texts served from the cache instead.
///
/// Returns what was booked. A model with no price is booked at $0 (and
/// [`estimate`] reports its price as unknown).
pub fn record_usage<S: AsRef<str>>(
    ledger: &UsageLedger<'_>,
    day: NaiveDate,
    embedder: &dyn Embedder,
    prices: &PriceTable,
    cache_hits: &[S],
) -> Result<LedgerEntry> {
    let entry = ledger_entry(embedder, prices, embedder.take_usage(), cache_hits);
    ledger.record(day, embedder.provider(), embedder.model(), &entry)?;
    Ok(entry)
}

/// The ledger entry for `usage` and `cache_hits` of `embedder`, without booking it.
pub fn ledger_entry<S: AsRef<str>>(
    embedder: &dyn Embedder,
    prices: &PriceTable,
    usage: Usage,
    cache_hits: &[S],
) -> LedgerEntry {
    let (provider, model) = (embedder.provider(), embedder.model());
    let hit_tokens: u64 = cache_hits
        .iter()
        .map(|t| embedder.count_tokens(t.as_ref()) as u64)
        .sum();
    LedgerEntry {
        requests: usage.requests,
        tokens_sent: usage.tokens_sent,
        dollars: prices
            .dollars(provider, model, usage.tokens_sent)
            .unwrap_or(0.0),
        cache_hits: cache_hits.len() as u64,
        cache_hit_tokens: hit_tokens,
        dollars_saved: prices.dollars(provider, model, hit_tokens).unwrap_or(0.0),
    }
}

/// A spending cap for one embedder: refuses any request that would take spending
/// over the cap, before it is sent.
///
/// Requests are reserved at the price table's rate as they are admitted, so
/// concurrent requests cannot overshoot together.
pub struct Budget {
    cap: f64,
    spent: Spent,
    period: String,
    label: String,
    usd_per_million: f64,
    /// Admitted and not yet booked in the ledger.
    reserved: Mutex<f64>,
}

/// Where a budget learns what was spent before its requests.
enum Spent {
    /// A figure given once.
    Fixed(f64),
    /// The ledger's month-to-date spending, read before every request (its own
    /// read-only connection to the database at this path).
    Ledger {
        db: PathBuf,
        conn: Mutex<Option<rusqlite::Connection>>,
    },
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("cap", &self.cap)
            .field("period", &self.period)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl Spent {
    fn now(&self) -> Result<f64> {
        match self {
            Spent::Fixed(usd) => Ok(*usd),
            Spent::Ledger { db, conn } => {
                let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                if conn.is_none() {
                    let c = rusqlite::Connection::open_with_flags(
                        db,
                        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )?;
                    c.busy_timeout(std::time::Duration::from_secs(10))?;
                    *conn = Some(c);
                }
                let conn = conn.as_ref().expect("opened above");
                month_spent(conn, today())
            }
        }
    }
}

impl Budget {
    /// A cap of `cap_usd` on all spending this month (as the ledger has it on
    /// `today`), for a run of `embedder`.
    pub fn monthly(
        ledger: &UsageLedger<'_>,
        today: NaiveDate,
        cap_usd: f64,
        embedder: &dyn Embedder,
        prices: &PriceTable,
    ) -> Result<Budget> {
        let spent = ledger.spent_since(ledger::month_start(today))?;
        Self::new(cap_usd, spent, "this month", embedder, prices)
    }

    /// A cap of `cap_usd` on all spending this month as the ledger of the
    /// database at `db` has it, read again before every request: what other
    /// runs and other processes spend meanwhile counts too.
    pub fn monthly_live(
        db: &Path,
        cap_usd: f64,
        embedder: &dyn Embedder,
        prices: &PriceTable,
    ) -> Result<Budget> {
        let mut budget = Self::new(cap_usd, 0.0, "this month", embedder, prices)?;
        budget.spent = Spent::Ledger {
            db: db.to_path_buf(),
            conn: Mutex::new(None),
        };
        Ok(budget)
    }

    /// A cap of `cap_usd` given `spent_usd` already spent in `period`
    /// (e.g. `"this run"` with 0).
    pub fn new(
        cap_usd: f64,
        spent_usd: f64,
        period: &str,
        embedder: &dyn Embedder,
        prices: &PriceTable,
    ) -> Result<Budget> {
        let (provider, model) = (embedder.provider(), embedder.model());
        let usd_per_million = prices.per_million(provider, model).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "no price is known for {provider}/{model}, so the budget cap cannot be \
                     enforced: add it with `sift cost set-price {provider}/{model} <usd per \
                     million tokens>` (or edit prices.json in the data folder)"
                ),
            )
        })?;
        Ok(Budget {
            cap: cap_usd,
            spent: Spent::Fixed(spent_usd),
            period: period.to_string(),
            label: format!("{provider}/{model}"),
            usd_per_million,
            reserved: Mutex::new(0.0),
        })
    }

    /// Dollars left under the cap, after what this budget admitted so far.
    pub fn remaining(&self) -> f64 {
        let reserved = *self.reserved.lock().unwrap_or_else(|e| e.into_inner());
        let spent = self.spent.now().unwrap_or(self.cap);
        (self.cap - spent - reserved).max(0.0)
    }

    /// Admits (and reserves) `next`, or refuses it with `BudgetExceeded`.
    pub fn admit(&self, next: &Outgoing) -> Result<()> {
        let cost = self.usd_per_million * next.tokens as f64 / 1_000_000.0;
        let mut reserved = self.reserved.lock().unwrap_or_else(|e| e.into_inner());
        let spent = self.spent.now()?;
        let after = spent + *reserved + cost;
        // A hair of tolerance so float noise never stops a run exactly at the cap.
        if after > self.cap + 1e-12 {
            return Err(Error::new(
                ErrorKind::BudgetExceeded,
                format!(
                    "stopped before exceeding your budget: the next request to {} ({} chunks, \
                     {} tokens, {}) would bring spending {} to {}, over the cap of {}. \
                     Everything embedded so far is saved; raise the cap, or run `sift index` \
                     again when the cap allows, and it resumes where it stopped",
                    self.label,
                    next.texts,
                    next.tokens,
                    format_usd(cost),
                    self.period,
                    format_usd(after),
                    format_usd(self.cap),
                ),
            ));
        }
        *reserved += cost;
        Ok(())
    }

    /// What was admitted so far is now booked in the ledger (which a live
    /// budget reads), so it is no longer counted apart.
    pub fn settle(&self) {
        if matches!(self.spent, Spent::Ledger { .. }) {
            *self.reserved.lock().unwrap_or_else(|e| e.into_inner()) = 0.0;
        }
    }

    /// Whether a run of `estimate` fits in what is left (for `--dry-run`
    /// reports; a real run sends what fits and stops at the cap).
    pub fn fits(&self, estimate: &Estimate) -> bool {
        estimate
            .dollars
            .is_none_or(|d| d <= self.remaining() + 1e-12)
    }
}

/// Everything an index run needs for its accounting, in one place: the price
/// table, the optional per-run cap and the ledger day.
///
/// ```ignore
/// let acct = RunAccounting::new(data_dir, embedder, settings.budget_usd)?;
/// let gate = |o: &Outgoing| acct.admit(o);
/// let control = RunControl::new().with_cancel(cancel).with_gate(&gate);
/// embedder.embed_documents_with(&misses, &control, &mut |first, vectors| {
///     store(first, vectors)?;           // cache + vector index
///     acct.book(&conn, &[] as &[String])?; // what this batch cost
///     Ok(())
/// })?;
/// acct.book(&conn, &cache_hit_texts)?;
/// ```
pub struct RunAccounting<'e> {
    embedder: &'e dyn Embedder,
    prices: PriceTable,
    budget: Option<Budget>,
}

impl std::fmt::Debug for RunAccounting<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunAccounting")
            .field("embedder", &self.embedder.id())
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl<'e> RunAccounting<'e> {
    /// Prices from `data_dir` (defaults overlaid with `prices.json`); with
    /// `budget_usd`, a monthly cap checked before every request against the
    /// month's spending in the ledger of `data_dir`'s database (`sift.db`).
    pub fn new(
        data_dir: &Path,
        embedder: &'e dyn Embedder,
        budget_usd: Option<f64>,
    ) -> Result<Self> {
        let prices = PriceTable::load(data_dir)?;
        let budget = match budget_usd {
            Some(cap) => Some(Budget::monthly_live(
                &data_dir.join("sift.db"),
                cap,
                embedder,
                &prices,
            )?),
            None => None,
        };
        Ok(RunAccounting {
            embedder,
            prices,
            budget,
        })
    }

    /// What sending `texts` would cost (for `--dry-run`).
    pub fn estimate(&self, texts: &[String]) -> Estimate {
        estimate(texts, self.embedder, &self.prices)
    }

    /// The gate of the run: refuses a request that would cross the cap.
    pub fn admit(&self, next: &Outgoing) -> Result<()> {
        match &self.budget {
            Some(b) => b.admit(next),
            None => Ok(()),
        }
    }

    /// Whether there is a cap to check requests against.
    pub fn has_budget(&self) -> bool {
        self.budget.is_some()
    }

    /// Whether a run of `estimate` fits under the cap (always without one).
    pub fn fits(&self, estimate: &Estimate) -> bool {
        self.budget.as_ref().is_none_or(|b| b.fits(estimate))
    }

    /// Books what the embedder sent since the last call, and `cache_hits`, in
    /// the ledger of `conn` (creating its table when missing).
    pub fn book<S: AsRef<str>>(
        &self,
        conn: &rusqlite::Connection,
        cache_hits: &[S],
    ) -> Result<LedgerEntry> {
        UsageLedger::migrate(conn)?;
        let entry = record_usage(
            &UsageLedger::new(conn),
            today(),
            self.embedder,
            &self.prices,
            cache_hits,
        )?;
        if let Some(budget) = &self.budget {
            budget.settle();
        }
        Ok(entry)
    }

    /// The price table in use.
    pub fn prices(&self) -> &PriceTable {
        &self.prices
    }
}

/// Dollars for people: `$0.13`, `$0.0004`, `$0.000002`.
pub fn format_usd(usd: f64) -> String {
    if usd == 0.0 {
        "$0.00".to_string()
    } else if usd >= 1.0 {
        format!("${usd:.2}")
    } else if usd >= 0.0001 {
        format!("${usd:.4}")
    } else {
        format!("${usd:.6}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_formatting() {
        assert_eq!(format_usd(0.0), "$0.00");
        assert_eq!(format_usd(12.345), "$12.35");
        assert_eq!(format_usd(0.13), "$0.1300");
        assert_eq!(format_usd(0.000002), "$0.000002");
    }
}
