//! The cost ledger: what each provider and model was sent, per day, what it cost,
//! and what the embedding cache saved. One SQLite table beside the index.

use chrono::{Datelike, NaiveDate};
use rusqlite::{params, Connection};
use serde::Serialize;

use crate::error::Result;

/// One day's (or one call's) activity for a provider and model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LedgerEntry {
    /// Successful requests sent.
    pub requests: u64,
    /// Tokens sent in them.
    pub tokens_sent: u64,
    /// What they cost, USD.
    pub dollars: f64,
    /// Texts served from the embedding cache instead of being sent.
    pub cache_hits: u64,
    /// Tokens those texts would have cost.
    pub cache_hit_tokens: u64,
    /// Dollars the cache saved.
    pub dollars_saved: f64,
}

impl LedgerEntry {
    fn add(&mut self, other: &LedgerEntry) {
        self.requests += other.requests;
        self.tokens_sent += other.tokens_sent;
        self.dollars += other.dollars;
        self.cache_hits += other.cache_hits;
        self.cache_hit_tokens += other.cache_hit_tokens;
        self.dollars_saved += other.dollars_saved;
    }

    /// True when nothing happened.
    pub fn is_empty(&self) -> bool {
        self.requests == 0 && self.tokens_sent == 0 && self.cache_hits == 0
    }
}

/// Totals of one provider and model over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostRow {
    /// `openai`, `gemini`, `compatible`, `local`.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// The figures.
    #[serde(flatten)]
    pub totals: LedgerEntry,
}

/// What `sift cost` shows: this month and all time, per provider and model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostSummary {
    /// The month, `YYYY-MM`.
    pub month: String,
    /// Rows of this month.
    pub this_month: Vec<CostRow>,
    /// Sum of this month's rows.
    pub month_total: LedgerEntry,
    /// Rows since the ledger began.
    pub all_time: Vec<CostRow>,
    /// Sum of all rows.
    pub total: LedgerEntry,
}

/// The usage ledger over an open database.
#[derive(Debug, Clone, Copy)]
pub struct UsageLedger<'c> {
    conn: &'c Connection,
}

impl<'c> UsageLedger<'c> {
    /// Creates the ledger's table when missing. Idempotent.
    pub fn migrate(conn: &Connection) -> Result<()> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS usage_ledger (
                day TEXT NOT NULL,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                requests INTEGER NOT NULL DEFAULT 0,
                tokens_sent INTEGER NOT NULL DEFAULT 0,
                dollars REAL NOT NULL DEFAULT 0,
                cache_hits INTEGER NOT NULL DEFAULT 0,
                cache_hit_tokens INTEGER NOT NULL DEFAULT 0,
                dollars_saved REAL NOT NULL DEFAULT 0,
                PRIMARY KEY (day, provider, model)
            ) WITHOUT ROWID;",
        )?;
        Ok(())
    }

    /// Whether `conn` has a ledger yet (it is created by the first booking), for
    /// readers that must not create it.
    pub fn exists(conn: &Connection) -> Result<bool> {
        Ok(conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'usage_ledger'",
            [],
            |r| r.get(0),
        )?)
    }

    /// The ledger in `conn` (call [`UsageLedger::migrate`] once first).
    pub fn new(conn: &'c Connection) -> Self {
        UsageLedger { conn }
    }

    /// Adds `entry` to the row of `day`, `provider`, `model`.
    pub fn record(
        &self,
        day: NaiveDate,
        provider: &str,
        model: &str,
        entry: &LedgerEntry,
    ) -> Result<()> {
        if entry.is_empty() {
            return Ok(());
        }
        self.conn.execute(
            "INSERT INTO usage_ledger (day, provider, model, requests, tokens_sent, dollars,
                                       cache_hits, cache_hit_tokens, dollars_saved)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (day, provider, model) DO UPDATE SET
                requests = requests + excluded.requests,
                tokens_sent = tokens_sent + excluded.tokens_sent,
                dollars = dollars + excluded.dollars,
                cache_hits = cache_hits + excluded.cache_hits,
                cache_hit_tokens = cache_hit_tokens + excluded.cache_hit_tokens,
                dollars_saved = dollars_saved + excluded.dollars_saved",
            params![
                day.format("%Y-%m-%d").to_string(),
                provider,
                model,
                entry.requests as i64,
                entry.tokens_sent as i64,
                entry.dollars,
                entry.cache_hits as i64,
                entry.cache_hit_tokens as i64,
                entry.dollars_saved,
            ],
        )?;
        Ok(())
    }

    /// Per provider and model: the month of `today`, and all time.
    pub fn summary(&self, today: NaiveDate) -> Result<CostSummary> {
        let first = month_start(today);
        let this_month = self.rows(Some(first))?;
        let all_time = self.rows(None)?;
        let sum = |rows: &[CostRow]| {
            let mut t = LedgerEntry::default();
            rows.iter().for_each(|r| t.add(&r.totals));
            t
        };
        Ok(CostSummary {
            month: today.format("%Y-%m").to_string(),
            month_total: sum(&this_month),
            total: sum(&all_time),
            this_month,
            all_time,
        })
    }

    /// Dollars spent from `from` (inclusive) on, over every provider and model.
    pub fn spent_since(&self, from: NaiveDate) -> Result<f64> {
        let dollars: f64 = self.conn.query_row(
            "SELECT COALESCE(SUM(dollars), 0) FROM usage_ledger WHERE day >= ?1",
            params![from.format("%Y-%m-%d").to_string()],
            |r| r.get(0),
        )?;
        Ok(dollars)
    }

    fn rows(&self, from: Option<NaiveDate>) -> Result<Vec<CostRow>> {
        let from = from.map_or_else(String::new, |d| d.format("%Y-%m-%d").to_string());
        let mut stmt = self.conn.prepare(
            "SELECT provider, model, SUM(requests), SUM(tokens_sent), SUM(dollars),
                    SUM(cache_hits), SUM(cache_hit_tokens), SUM(dollars_saved)
             FROM usage_ledger WHERE day >= ?1
             GROUP BY provider, model ORDER BY provider, model",
        )?;
        let rows = stmt
            .query_map(params![from], |r| {
                Ok(CostRow {
                    provider: r.get(0)?,
                    model: r.get(1)?,
                    totals: LedgerEntry {
                        requests: r.get::<_, i64>(2)? as u64,
                        tokens_sent: r.get::<_, i64>(3)? as u64,
                        dollars: r.get(4)?,
                        cache_hits: r.get::<_, i64>(5)? as u64,
                        cache_hit_tokens: r.get::<_, i64>(6)? as u64,
                        dollars_saved: r.get(7)?,
                    },
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

/// The first day of `day`'s month.
pub fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn records_add_up_per_day_and_month() {
        let conn = Connection::open_in_memory().unwrap();
        UsageLedger::migrate(&conn).unwrap();
        UsageLedger::migrate(&conn).unwrap();
        let ledger = UsageLedger::new(&conn);
        let sent = LedgerEntry {
            requests: 2,
            tokens_sent: 1000,
            dollars: 0.00002,
            ..Default::default()
        };
        let hits = LedgerEntry {
            cache_hits: 3,
            cache_hit_tokens: 300,
            dollars_saved: 0.000006,
            ..Default::default()
        };
        ledger
            .record(d("2025-05-31"), "openai", "text-embedding-3-small", &sent)
            .unwrap();
        ledger
            .record(d("2025-06-01"), "openai", "text-embedding-3-small", &sent)
            .unwrap();
        ledger
            .record(d("2025-06-01"), "openai", "text-embedding-3-small", &hits)
            .unwrap();
        ledger
            .record(d("2025-06-02"), "gemini", "text-embedding-004", &sent)
            .unwrap();
        ledger
            .record(d("2025-06-02"), "local", "x", &LedgerEntry::default())
            .unwrap();

        let s = ledger.summary(d("2025-06-15")).unwrap();
        assert_eq!(s.month, "2025-06");
        assert_eq!(s.this_month.len(), 2);
        let openai = &s.this_month[1];
        assert_eq!(openai.provider, "openai");
        assert_eq!(openai.totals.requests, 2);
        assert_eq!(openai.totals.tokens_sent, 1000);
        assert_eq!(openai.totals.cache_hits, 3);
        assert_eq!(openai.totals.cache_hit_tokens, 300);
        assert_eq!(s.all_time.len(), 2);
        assert_eq!(s.all_time[1].totals.tokens_sent, 2000);
        assert_eq!(s.total.tokens_sent, 3000);
        assert_eq!(s.month_total.tokens_sent, 2000);
        let spent = ledger.spent_since(d("2025-06-01")).unwrap();
        assert!((spent - 0.00004).abs() < 1e-12);
    }
}
