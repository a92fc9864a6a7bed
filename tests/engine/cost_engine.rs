//! The cost ledger through the real indexer (`sift::Engine` with a remote
//! embedder on the loopback OpenAI server): a rerun after a failure pays only for
//! what was not done, a budget cap stops a run before it is crossed and the next
//! run resumes, and notes whose text is already cached (unchanged, renamed,
//! moved, re-added) send nothing and are booked as cache hits.
//!
//! Every figure is checked against what the server received, counted with
//! tiktoken on the server side, never against the engine's own counts.

use crate::common;
use crate::loopback;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use loopback::{Fault, Server};
use sift::cost::{LedgerEntry, UsageLedger};
use sift::embed::Embedder;
use sift::store::tables;
use sift::{Engine, ErrorKind, Mode, Query};

const KEY: &str = "fake-cost-engine-key";
const MODEL: &str = "text-embedding-3-small";
/// USD per million tokens of [`MODEL`] in the default price table.
const PRICE: f64 = 0.02;
/// Inputs per request: a few hundred chunks make many requests.
const BATCH: usize = 10;
/// Chunks `embed_missing` pages through at a time (src/index.rs).
const EMBED_BATCH: usize = 128;

fn embedder(server: &Server) -> Arc<dyn Embedder> {
    let opts = common::quick_retries(BATCH);
    Arc::new(common::loopback_openai(
        &server.openai_base(),
        MODEL,
        Some(16),
        KEY,
        opts,
    ))
}

/// Opens (or reopens, as after a restart) the engine of `data` with its saved
/// settings and a fresh embedder on `server`.
fn open(data: &Path, server: &Server) -> Engine {
    Engine::open(data, Some(embedder(server))).unwrap()
}

fn run(engine: &Engine) -> sift::Result<sift::IndexReport> {
    engine.index(&|_| {}, &AtomicBool::new(false))
}

/// `n` notes of three sections each, every section its own chunk, no two
/// chunk texts alike.
fn write_notes(dir: &Path, n: usize) {
    const WORDS: &[&str] = &[
        "river", "lantern", "orchard", "copper", "meadow", "signal", "harbor", "pepper", "glacier",
        "violin", "compass", "thunder", "walnut", "saddle", "quartz", "ember", "falcon", "marble",
        "tundra", "velvet", "canyon", "almond", "beacon", "cobalt", "dune", "fjord", "garnet",
        "hollow", "indigo", "juniper", "kettle", "lagoon", "maple", "nectar", "oasis", "pebble",
        "quiver", "rafter", "sparrow", "thistle",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        WORDS[(seed % WORDS.len() as u64) as usize]
    };
    for i in 0..n {
        let mut text = format!("# Topic {i}\n\n");
        for part in 0..3 {
            text.push_str(&format!("## Part {part}\n\nNote {i} part {part}:"));
            for _ in 0..110 {
                text.push(' ');
                text.push_str(next());
            }
            text.push_str(".\n\n");
        }
        std::fs::write(dir.join(format!("note-{i:02}.md")), text).unwrap();
    }
}

/// Every chunk as (note path, text the embedder is given), in chunk order.
fn chunks(engine: &Engine) -> Vec<(String, String)> {
    engine
        .store()
        .read(|c| {
            // No vector is cached for this id, so every chunk is listed.
            let rows = tables::chunks_missing_vectors(c, "none/no-embedder", 0, 1_000_000)?;
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let stored = tables::load_chunks(c, &ids)?;
            assert_eq!(stored.len(), rows.len());
            Ok(stored
                .into_iter()
                .zip(rows)
                .map(|(s, r)| (s.rel_path, r.embed_text))
                .collect())
        })
        .unwrap()
}

/// The texts of every request the server answered 200, in arrival order.
fn sent(server: &Server) -> Vec<String> {
    server
        .successes()
        .into_iter()
        .flat_map(|l| l.inputs)
        .collect()
}

/// tiktoken (cl100k_base) tokens of `texts`, as the provider bills them.
fn tiktoken(texts: impl IntoIterator<Item = impl AsRef<str>>) -> u64 {
    let bpe = tiktoken_rs::cl100k_base_singleton();
    texts
        .into_iter()
        .map(|t| bpe.encode_ordinary(t.as_ref()).len() as u64)
        .sum()
}

/// Tokens in the requests the server answered 200 (its own count).
fn received_tokens(server: &Server) -> u64 {
    server.successes().iter().map(|l| l.tokens as u64).sum()
}

/// The ledger's all-time totals; every row must be this provider and model.
fn ledger(engine: &Engine) -> LedgerEntry {
    let conn = engine.store().writer();
    UsageLedger::migrate(&conn).unwrap();
    let summary = UsageLedger::new(&conn)
        .summary(chrono::Local::now().date_naive())
        .unwrap();
    for row in &summary.all_time {
        assert_eq!(
            (row.provider.as_str(), row.model.as_str()),
            ("openai", MODEL)
        );
    }
    summary.total
}

fn dollars(tokens: u64) -> f64 {
    PRICE * tokens as f64 / 1e6
}

fn assert_usd(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 1e-12, "{what}: {got} vs {want}");
}

/// Chunks stored, chunks with a cached vector, vectors in the live index.
fn counts(engine: &Engine) -> (u64, u64, usize) {
    let id = engine.embedder().unwrap().id().to_string();
    let (chunks, cached) = engine
        .store()
        .read(|c| {
            Ok((
                tables::count_chunks(c)?,
                tables::count_chunks_with_vectors(c, &id)?,
            ))
        })
        .unwrap();
    (chunks, cached, engine.vector_count())
}

fn assert_complete(engine: &Engine) {
    let (chunks, cached, vectors) = counts(engine);
    assert_eq!(
        (cached, vectors as u64),
        (chunks, chunks),
        "every chunk has its vector"
    );
    let status = engine.status().unwrap();
    assert_eq!(status.chunks_without_vectors, 0);
    assert_eq!(status.vectors, status.chunks);
}

/// Every note (or those of `only`) is found by meaning: a query with the text
/// of one of its chunks (the loopback's vectors are a hash of the text, so only
/// that chunk matches) ranks the note first. Sends queries, which are billed:
/// call after the ledger checks.
fn assert_found_by_meaning(engine: &Engine, only: Option<&[&str]>) {
    let mut first_chunk: BTreeMap<String, String> = BTreeMap::new();
    for (path, text) in chunks(engine) {
        first_chunk.entry(path).or_insert(text);
    }
    if let Some(only) = only {
        // The same note may be named twice (its chunks embedded in two runs).
        let wanted: std::collections::BTreeSet<&str> = only.iter().copied().collect();
        first_chunk.retain(|p, _| wanted.contains(p.as_str()));
        assert_eq!(first_chunk.len(), wanted.len(), "{only:?} are indexed");
    }
    assert!(!first_chunk.is_empty());
    for (path, text) in &first_chunk {
        let q = Query {
            mode: Mode::Semantic,
            limit: 3,
            ..Query::new(text)
        };
        let results = engine.search(&q).unwrap();
        assert_eq!(results.mode, Mode::Semantic, "{:?}", results.warning);
        assert_eq!(
            results.hits.first().map(|h| h.path.as_str()),
            Some(path.as_str()),
            "semantic search for a chunk of {path}"
        );
    }
}

/// Notes whose texts are all distinct, spread over more than one page of the
/// indexer and many requests.
fn fixture(notes: &Path, data: &Path, server: &Server) -> (Engine, Vec<(String, String)>) {
    write_notes(notes, 50);
    let engine = open(data, server);
    engine.add_folder(notes).unwrap();
    // Stage 1 only (reads and chunks, sends nothing): the chunk list.
    engine
        .estimate(&engine.settings().folders, &|_| {})
        .unwrap();
    assert!(server.log().is_empty());
    let all = chunks(&engine);
    let unique: HashSet<&str> = all.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(unique.len(), all.len(), "fixture texts are distinct");
    assert!(
        all.len() > EMBED_BATCH + BATCH,
        "{} chunks: more than one page",
        all.len()
    );
    (engine, all)
}

#[test]
fn rerun_after_failure_pays_only_for_batches_not_yet_done() {
    let server = Server::start(Some(KEY));
    let (notes, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (engine, all) = fixture(notes.path(), data.path(), &server);

    // Five requests succeed, then the provider is down: every later request
    // and retry answers 503.
    const OK: usize = 5;
    for seq in OK + 1..OK + 100 {
        server.fail_at(seq, Fault::status(503));
    }
    let err = run(&engine).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProviderDown, "{}", err.message());
    assert_eq!(err.kind().code(), "provider_down");
    assert_eq!(server.successes().len(), OK);
    assert!(server.log().len() > OK, "the failing requests were sent");
    let first = sent(&server);
    assert_eq!(first.len(), OK * BATCH);

    // What was paid for is kept: cached and in the vector index, and booked.
    let (chunks_n, cached, vectors) = counts(&engine);
    assert_eq!(chunks_n as usize, all.len());
    assert_eq!((cached, vectors), (first.len() as u64, first.len()));
    let booked = ledger(&engine);
    assert_eq!(booked.requests as usize, OK);
    assert_eq!(booked.tokens_sent, received_tokens(&server));
    assert_eq!(booked.tokens_sent, tiktoken(&first));
    assert_usd(booked.dollars, dollars(booked.tokens_sent), "first run");
    let first_tokens = received_tokens(&server);

    // The provider is back; the app restarts and runs again.
    drop(engine);
    server.reset_faults();
    server.clear_log();
    let engine = open(data.path(), &server);
    let report = run(&engine).unwrap();
    let second = sent(&server);
    assert_eq!(report.chunks_embedded, second.len());

    // Exactly the texts not yet embedded, none twice.
    let first_set: HashSet<&str> = first.iter().map(String::as_str).collect();
    let second_set: HashSet<&str> = second.iter().map(String::as_str).collect();
    assert_eq!(
        second_set.len(),
        second.len(),
        "no text sent twice in the rerun"
    );
    assert!(
        first_set.is_disjoint(&second_set),
        "nothing embedded before is sent again"
    );
    let expected: HashSet<&str> = all
        .iter()
        .map(|(_, t)| t.as_str())
        .filter(|t| !first_set.contains(t))
        .collect();
    assert_eq!(
        second_set, expected,
        "the rerun sends exactly what was missing"
    );

    // Each chunk's text paid for once, at the provider's count, at the price.
    let all_tokens = tiktoken(all.iter().map(|(_, t)| t));
    assert_eq!(first_tokens + received_tokens(&server), all_tokens);
    let total = ledger(&engine);
    assert_eq!(total.tokens_sent, all_tokens);
    assert_eq!(
        total.requests as usize,
        OK + server.successes().len(),
        "requests booked = requests answered"
    );
    assert_usd(total.dollars, dollars(all_tokens), "both runs");
    assert_eq!(total.cache_hits, 0, "no text was served twice");

    assert_complete(&engine);
    assert_found_by_meaning(&engine, None);
}

#[test]
fn budget_cap_stops_before_crossing_and_the_next_run_resumes() {
    let server = Server::start(Some(KEY));
    let (notes, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (engine, all) = fixture(notes.path(), data.path(), &server);
    let folders = engine.settings().folders;

    // The dry run: what a full run would send.
    let full = engine.estimate(&folders, &|_| {}).unwrap();
    let all_tokens = tiktoken(all.iter().map(|(_, t)| t));
    assert_eq!((full.chunks, full.tokens), (all.len(), all_tokens));
    assert_usd(full.dollars.unwrap(), dollars(all_tokens), "estimate");

    // A cap of 40% of that.
    let cap = full.dollars.unwrap() * 0.4;
    let mut settings = engine.settings();
    settings.budget_usd = Some(cap);
    engine.save_settings(settings).unwrap();
    let err = run(&engine).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BudgetExceeded, "{}", err.message());
    assert_eq!(err.kind().code(), "budget_exceeded");
    assert!(err.message().contains("over the cap"), "{}", err.message());
    assert!(err.message().contains("resumes"), "{}", err.message());

    // Stopped before crossing, and not much earlier: the refused request (at
    // most BATCH texts) would have crossed.
    let first = sent(&server);
    let spent = ledger(&engine);
    assert_eq!(spent.tokens_sent, received_tokens(&server));
    assert_usd(spent.dollars, dollars(spent.tokens_sent), "capped run");
    assert!(
        spent.dollars <= cap + 1e-12,
        "spent {} > cap {cap}",
        spent.dollars
    );
    let mut sizes: Vec<u64> = all.iter().map(|(_, t)| tiktoken([t])).collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let biggest_request = dollars(sizes.iter().take(BATCH).sum());
    assert!(
        spent.dollars + biggest_request > cap,
        "stopped early: spent {} of {cap}",
        spent.dollars
    );
    assert!(!first.is_empty() && first.len() < all.len());
    assert!(
        server.log().iter().all(|l| l.status == 200),
        "refused requests are never sent"
    );

    // Nothing paid for is lost: cached and in the index.
    let (_, cached, vectors) = counts(&engine);
    assert_eq!((cached, vectors), (first.len() as u64, first.len()));

    // After a restart, the estimate is the rest; the cap is monthly, so raising
    // it by exactly that lets the run finish, sending only the rest.
    drop(engine);
    server.clear_log();
    let engine = open(data.path(), &server);
    let rest = engine.estimate(&folders, &|_| {}).unwrap();
    let first_set: HashSet<&str> = first.iter().map(String::as_str).collect();
    let missing: HashSet<&str> = all
        .iter()
        .map(|(_, t)| t.as_str())
        .filter(|t| !first_set.contains(t))
        .collect();
    assert_eq!(rest.chunks, missing.len());
    assert_eq!(rest.tokens, tiktoken(&missing));
    assert!(
        rest.stopped_by_cap,
        "the dry run says the cap would stop it"
    );
    assert_usd(rest.month_spent_usd, spent.dollars, "month so far");
    let mut settings = engine.settings();
    assert_eq!(settings.budget_usd, Some(cap), "the cap was saved");
    settings.budget_usd = Some(spent.dollars + rest.dollars.unwrap());
    engine.save_settings(settings).unwrap();
    let fits = engine.estimate(&folders, &|_| {}).unwrap();
    assert!(!fits.stopped_by_cap, "{fits:?}");
    run(&engine).unwrap();
    let second = sent(&server);
    let second_set: HashSet<&str> = second.iter().map(String::as_str).collect();
    assert_eq!(second.len(), second_set.len(), "no text sent twice");
    assert_eq!(second_set, missing, "only the rest is sent");

    let total = ledger(&engine);
    assert_eq!(total.tokens_sent, all_tokens);
    assert_usd(total.dollars, dollars(all_tokens), "both runs");
    assert!(total.dollars <= spent.dollars + rest.dollars.unwrap() + 1e-12);
    assert_complete(&engine);
    let embedded_first = &all
        .iter()
        .find(|(_, t)| first_set.contains(t.as_str()))
        .unwrap()
        .0;
    let embedded_last = &all
        .iter()
        .find(|(_, t)| missing.contains(t.as_str()))
        .unwrap()
        .0;
    assert_found_by_meaning(&engine, Some(&[embedded_first, embedded_last]));
}

/// Three watcher-style batches (`index_changed` with the paths of new notes),
/// each well under the monthly cap but together over it: the third stops at
/// the cap, whichever engine (process) runs it, because every request is
/// checked against the ledger's month-to-date spending. Keyword search goes on.
#[test]
fn watcher_batches_stop_at_the_monthly_cap_together() {
    let server = Server::start(Some(KEY));
    let (notes, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let app = open(data.path(), &server);
    let notes_dir = app.add_folder(notes.path()).unwrap();
    // A second engine on the same data folder: another process's watcher.
    let other = open(data.path(), &server);
    let batch = |k: usize| -> Vec<PathBuf> {
        let dir = notes_dir.join(format!("batch{k}"));
        std::fs::create_dir_all(&dir).unwrap();
        write_notes(&dir, 6);
        // The same template in every batch: make each batch's texts its own.
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, text.replace("Note ", &format!("Batch {k} note "))).unwrap();
        }
        vec![dir]
    };
    let changed = |engine: &Engine, paths: &[PathBuf]| {
        engine.index_changed(paths, &|_| {}, &AtomicBool::new(false))
    };

    // Batch 1, no cap yet: its cost sets the scale.
    changed(&app, &batch(1)).unwrap();
    let first = ledger(&app).dollars;
    assert!(first > 0.0);
    assert_usd(first, dollars(received_tokens(&server)), "batch 1");
    // Room for two batches and a bit over half of a third (its first request
    // of 10 of its 18 chunks).
    let cap = first * 2.75;
    app.update_settings(|s| {
        s.budget_usd = Some(cap);
        Ok(())
    })
    .unwrap();
    assert_usd(
        app.status().unwrap().month_spent_usd,
        first,
        "status shows the month",
    );

    // Batch 2 by the other process: under the cap together.
    changed(&other, &batch(2)).unwrap();
    let second = ledger(&app).dollars;
    assert!(second < cap);
    assert!(!app.status().unwrap().budget_reached);

    // Batch 3 by the app: it would take the month over the cap; it stops there.
    let sent_before = sent(&server).len();
    let err = changed(&app, &batch(3)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BudgetExceeded, "{}", err.message());
    assert!(err.message().contains("this month"), "{}", err.message());
    let spent = ledger(&app);
    assert!(
        spent.dollars <= cap + 1e-12,
        "spent {} > cap {cap}",
        spent.dollars
    );
    assert!(
        spent.dollars > second,
        "batch 3 sent what fit under the cap"
    );
    let texts = sent(&server);
    assert!(texts.len() > sent_before);
    assert_usd(
        spent.dollars,
        dollars(received_tokens(&server)),
        "ledger = server",
    );
    assert_eq!(
        texts.len(),
        texts.iter().collect::<HashSet<_>>().len(),
        "no text sent twice"
    );
    assert!(
        server.log().iter().all(|l| l.status == 200),
        "refused requests are never sent"
    );

    // Paused, and said so, in both processes; keyword search goes on.
    for engine in [&app, &other] {
        let status = engine.status().unwrap();
        assert_usd(
            status.month_spent_usd,
            spent.dollars,
            "the figure shown is the one enforced",
        );
        assert_usd(status.budget_usd.unwrap(), cap, "the cap");
        assert!(status.chunks_without_vectors > 0);
    }
    assert!(app.status().unwrap().budget_reached);
    let hits = common::search(&app, "Batch 3 note 5", Mode::Keyword);
    assert!(hits.iter().any(|p| p.starts_with("batch3/")), "{hits:?}");

    // A fourth batch by the other process sends nothing at all.
    let requests = server.log().len();
    let err = changed(&other, &batch(4)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BudgetExceeded);
    assert_eq!(server.log().len(), requests, "nothing sent over the cap");
    assert!(other.status().unwrap().budget_reached);
    let estimate = other.estimate(&other.settings().folders, &|_| {}).unwrap();
    assert!(estimate.stopped_by_cap, "{estimate:?}");
    println!(
        "cap ${cap:.8}: batch 1 ${first:.8}, after batch 2 ${second:.8}, stopped at ${:.8} \
         ({} texts sent in all)",
        spent.dollars,
        texts.len()
    );
}

#[test]
fn unchanged_renamed_moved_and_readded_notes_are_cache_hits() {
    let server = Server::start(Some(KEY));
    let (notes, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (engine, all) = fixture(notes.path(), data.path(), &server);
    run(&engine).unwrap();
    let all_tokens = tiktoken(all.iter().map(|(_, t)| t));
    assert_eq!(received_tokens(&server), all_tokens);
    let full = ledger(&engine);
    assert_eq!(full.tokens_sent, all_tokens);
    assert_eq!(full.cache_hits, 0);

    // Unchanged notes are not even read again: nothing sent, nothing booked.
    server.clear_log();
    let report = run(&engine).unwrap();
    assert_eq!(report.notes_unchanged, 50);
    assert!(server.log().is_empty(), "nothing sent for unchanged notes");
    assert_eq!(ledger(&engine), full, "zero tokens booked");

    // One note renamed, another moved into a subfolder: their texts come from
    // the cache, nothing is sent, and the ledger books them as cache hits.
    let texts_of = |path: &str| -> Vec<&str> {
        all.iter()
            .filter(|(p, _)| p == path)
            .map(|(_, t)| t.as_str())
            .collect()
    };
    let moved: Vec<&str> = [texts_of("note-03.md"), texts_of("note-07.md")].concat();
    assert!(moved.len() >= 4, "{} chunks in the two notes", moved.len());
    let dir = notes.path();
    std::fs::rename(dir.join("note-03.md"), dir.join("renamed.md")).unwrap();
    std::fs::create_dir(dir.join("archive")).unwrap();
    std::fs::rename(dir.join("note-07.md"), dir.join("archive/note-07.md")).unwrap();
    let report = run(&engine).unwrap();
    assert_eq!(report.notes_removed, 2);
    assert_eq!(report.notes_indexed, 2);
    assert!(
        server.log().is_empty(),
        "renamed and moved text is not sent"
    );
    let after = ledger(&engine);
    let hit_tokens = tiktoken(&moved);
    assert_eq!(after.requests, full.requests);
    assert_eq!(after.tokens_sent, full.tokens_sent, "zero tokens sent");
    assert_usd(after.dollars, full.dollars, "nothing spent");
    assert_eq!(
        (after.cache_hits, after.cache_hit_tokens),
        (moved.len() as u64, hit_tokens),
        "every chunk of the two notes booked as a cache hit"
    );
    assert_usd(after.dollars_saved, dollars(hit_tokens), "saved");
    assert_complete(&engine);

    // A folder removed and added back: every chunk is served from the cache.
    let root: PathBuf = engine.settings().folders[0].clone();
    engine.remove_folder(&root).unwrap();
    assert_eq!(counts(&engine), (0, 0, 0));
    engine.add_folder(&root).unwrap();
    run(&engine).unwrap();
    assert!(server.log().is_empty(), "a re-added folder sends nothing");
    let readded = ledger(&engine);
    assert_eq!(readded.tokens_sent, full.tokens_sent);
    assert_eq!(readded.cache_hits, (moved.len() + all.len()) as u64);
    assert_eq!(readded.cache_hit_tokens, hit_tokens + all_tokens);
    assert_usd(
        readded.dollars_saved,
        dollars(hit_tokens + all_tokens),
        "saved after re-adding",
    );
    assert_complete(&engine);
    let paths: HashSet<String> = chunks(&engine).into_iter().map(|(p, _)| p).collect();
    assert!(!paths.contains("note-03.md") && !paths.contains("note-07.md"));
    assert_found_by_meaning(
        &engine,
        Some(&[
            "renamed.md",
            "archive/note-07.md",
            "note-00.md",
            "note-49.md",
        ]),
    );
}
