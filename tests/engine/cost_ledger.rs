//! Ledger accuracy against a loopback OpenAI server: tokens booked equal the
//! tiktoken counts of what the server received, dollars equal price × tokens,
//! reruns book cache hits and send nothing, and a budget cap stops before it is
//! crossed with nothing lost.

use crate::common;
use crate::loopback;

use std::collections::HashMap;

use chrono::NaiveDate;
use loopback::{Fault, Server};
use rusqlite::Connection;
use sift::cost::tokens::count_tokens;
use sift::cost::{self, Budget, PriceTable, UsageLedger};
use sift::embed::remote::{RemoteEmbedder, RemoteOptions};
use sift::embed::{openai, Embedder, RunControl};
use sift::keys::ApiKey;
use sift::ErrorKind;

const KEY: &str = "test-key-123";

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 14).unwrap()
}

fn embedder(server: &Server, model: &str) -> RemoteEmbedder {
    let dims = (model != "text-embedding-ada-002").then_some(16);
    common::loopback_openai(
        &server.openai_base(),
        model,
        dims,
        KEY,
        common::quick_retries(10),
    )
}

fn notes(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "Note {i}: {}",
                "thoughts on retrieval and meaning ".repeat(i % 7 + 1)
            )
        })
        .collect()
}

/// What an indexer does: cache lookup, embed the misses batch by batch (each
/// stored and booked as it arrives), book the cache hits.
struct MiniIndexer<'a> {
    cache: HashMap<String, Vec<f32>>,
    ledger: UsageLedger<'a>,
    prices: PriceTable,
}

impl MiniIndexer<'_> {
    fn run(
        &mut self,
        e: &dyn Embedder,
        texts: &[String],
        budget: Option<&Budget>,
    ) -> sift::Result<()> {
        let (hits, misses): (Vec<String>, Vec<String>) = texts
            .iter()
            .cloned()
            .partition(|t| self.cache.contains_key(t));
        let mut misses_unique = misses.clone();
        misses_unique.dedup();
        let gate = |o: &sift::embed::Outgoing| budget.map_or(Ok(()), |b| b.admit(o));
        let control = RunControl::new().with_gate(&gate);
        let (cache, ledger, prices) = (&mut self.cache, &self.ledger, &self.prices);
        let result = e.embed_documents_with(&misses_unique, &control, &mut |first, vectors| {
            for (k, v) in vectors.into_iter().enumerate() {
                cache.insert(misses_unique[first + k].clone(), v);
            }
            cost::record_usage(ledger, day(), e, prices, &[] as &[String])?;
            Ok(())
        });
        // Whatever happened, book what was sent and the hits.
        cost::record_usage(&self.ledger, day(), e, &self.prices, &hits)?;
        result
    }
}

fn sent_tokens(server: &Server) -> u64 {
    server
        .successes()
        .iter()
        .flat_map(|l| l.inputs.iter())
        .map(|t| count_tokens(t) as u64)
        .sum()
}

#[test]
fn ledger_equals_what_was_sent_and_reruns_are_cache_hits() {
    let server = Server::start(Some(KEY));
    let conn = Connection::open_in_memory().unwrap();
    UsageLedger::migrate(&conn).unwrap();
    let mut ix = MiniIndexer {
        cache: HashMap::new(),
        ledger: UsageLedger::new(&conn),
        prices: PriceTable::default(),
    };
    let e = embedder(&server, "text-embedding-3-small");
    let texts = notes(35);
    let estimate = cost::estimate(&texts, &e, &ix.prices);

    ix.run(&e, &texts, None).unwrap();
    let s = ix.ledger.summary(day()).unwrap();
    assert_eq!(s.this_month.len(), 1);
    let row = &s.this_month[0];
    assert_eq!(
        (row.provider.as_str(), row.model.as_str()),
        ("openai", "text-embedding-3-small")
    );
    let tokens = sent_tokens(&server);
    assert_eq!(
        row.totals.tokens_sent, tokens,
        "booked = tiktoken count of what was sent"
    );
    assert_eq!(
        estimate.tokens, tokens,
        "the dry-run estimate is what a run sends"
    );
    assert_eq!(estimate.chunks, 35);
    assert_eq!(row.totals.requests as usize, server.successes().len());
    assert_eq!(server.successes().len(), 4, "35 texts in batches of 10");
    let dollars = 0.02 * tokens as f64 / 1e6;
    assert!(
        (row.totals.dollars - dollars).abs() < 1e-12,
        "{} vs {dollars}",
        row.totals.dollars
    );
    assert!((estimate.dollars.unwrap() - dollars).abs() < 1e-12);
    assert_eq!(row.totals.cache_hits, 0);

    // Second run over the same notes: nothing sent, everything a cache hit.
    server.clear_log();
    ix.run(&e, &texts, None).unwrap();
    assert!(server.log().is_empty(), "nothing sent on the second run");
    let row = &ix.ledger.summary(day()).unwrap().this_month[0];
    assert_eq!(row.totals.tokens_sent, tokens, "zero tokens added");
    assert_eq!(row.totals.cache_hits, 35);
    assert_eq!(row.totals.cache_hit_tokens, tokens);
    assert!((row.totals.dollars_saved - dollars).abs() < 1e-12);
}

#[test]
fn rerun_after_failure_pays_only_for_batches_not_done() {
    let server = Server::start(Some(KEY));
    let conn = Connection::open_in_memory().unwrap();
    UsageLedger::migrate(&conn).unwrap();
    let mut ix = MiniIndexer {
        cache: HashMap::new(),
        ledger: UsageLedger::new(&conn),
        prices: PriceTable::default(),
    };
    let e = embedder(&server, "text-embedding-3-large");
    let texts = notes(60);
    // Every request from the fourth on fails (retries too) until the server recovers.
    for seq in 4..40 {
        server.fail_at(seq, Fault::status(503));
    }
    let err = ix.run(&e, &texts, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProviderDown);
    let done = ix.cache.len();
    assert!(done > 0 && done < 60, "{done} embedded before the failure");
    let first = ix.ledger.summary(day()).unwrap().this_month[0].totals;
    assert_eq!(first.tokens_sent, sent_tokens(&server));

    // The provider is back: the rerun sends only the texts not yet embedded.
    server.reset_faults();
    server.clear_log();
    ix.run(&e, &texts, None).unwrap();
    let resent: Vec<String> = server
        .successes()
        .iter()
        .flat_map(|l| l.inputs.clone())
        .collect();
    assert_eq!(resent.len(), 60 - done, "only what was missing");
    let total = ix.ledger.summary(day()).unwrap().this_month[0].totals;
    let all_tokens: u64 = texts.iter().map(|t| count_tokens(t) as u64).sum();
    assert_eq!(
        total.tokens_sent, all_tokens,
        "each text paid for exactly once"
    );
    assert!((total.dollars - 0.13 * all_tokens as f64 / 1e6).abs() < 1e-12);
    assert_eq!(total.cache_hits as usize, done);
}

#[test]
fn budget_cap_stops_before_crossing_and_the_next_run_resumes() {
    let server = Server::start(Some(KEY));
    let conn = Connection::open_in_memory().unwrap();
    UsageLedger::migrate(&conn).unwrap();
    let mut ix = MiniIndexer {
        cache: HashMap::new(),
        ledger: UsageLedger::new(&conn),
        prices: PriceTable::default(),
    };
    let e = embedder(&server, "text-embedding-ada-002");
    let texts = notes(50);
    let full = cost::estimate(&texts, &e, &ix.prices).dollars.unwrap();
    // A cap of 40% of the run.
    let cap = full * 0.4;
    let budget = Budget::new(cap, 0.0, "in this run", &e, &ix.prices).unwrap();
    assert!(!budget.fits(&cost::estimate(&texts, &e, &ix.prices)));
    let err = ix.run(&e, &texts, Some(&budget)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BudgetExceeded);
    assert!(err.message().contains("over the cap"), "{}", err.message());
    assert!(err.message().contains("resumes"), "{}", err.message());
    let spent = ix.ledger.summary(day()).unwrap().total.dollars;
    assert!(spent <= cap + 1e-12, "spent {spent} > cap {cap}");
    assert!(spent > 0.0);
    let done = ix.cache.len();
    assert_eq!(
        done,
        server
            .successes()
            .iter()
            .map(|l| l.inputs.len())
            .sum::<usize>()
    );

    // A monthly cap that counts what the ledger already has.
    let monthly = Budget::monthly(&ix.ledger, day(), full, &e, &ix.prices).unwrap();
    assert!((monthly.remaining() - (full - spent)).abs() < 1e-12);
    ix.run(&e, &texts, Some(&monthly)).unwrap();
    assert_eq!(ix.cache.len(), 50);
    let total = ix.ledger.summary(day()).unwrap().total;
    assert!(total.dollars <= full + 1e-12);
    let all_tokens: u64 = texts.iter().map(|t| count_tokens(t) as u64).sum();
    assert_eq!(total.tokens_sent, all_tokens);
}

#[test]
fn unknown_price_cannot_be_capped_but_can_be_set() {
    let server = Server::start(Some(KEY));
    let e = openai::embedder(
        "text-embedding-4-hypothetical",
        Some(32),
        Some(&server.openai_base()),
        ApiKey::new(KEY).unwrap(),
        RemoteOptions::default(),
    )
    .unwrap();
    let mut prices = PriceTable::default();
    assert_eq!(
        cost::estimate(&["x".to_string()], &e, &prices).dollars,
        None
    );
    let err = Budget::new(1.0, 0.0, "in this run", &e, &prices).unwrap_err();
    assert!(err
        .message()
        .contains("sift cost set-price openai/text-embedding-4-hypothetical"));
    prices
        .set("openai/text-embedding-4-hypothetical", 0.5)
        .unwrap();
    assert!(Budget::new(1.0, 0.0, "in this run", &e, &prices).is_ok());
}
