//! Comparing the embedder in use with another provider on a sample of the
//! user's notes (issue 16): the cost first with nothing sent, then the sample
//! embedded by a loopback OpenAI server, overlap figures checked against
//! rankings recomputed here, the spending booked and cached, settings unchanged.

use std::collections::{HashMap, HashSet};

use sift::compare::{self, CompareOptions};
use sift::cost::UsageLedger;
use sift::embed::remote::RemoteOptions;
use sift::embed::{build_estimator, Embedder, ProviderConfig};
use sift::store::tables;

use crate::common::{fixture_notes, index, local_model, loopback_openai, open};
use crate::loopback::{vector_for, Server};

const MODEL: &str = "text-embedding-3-small";
const DIMS: usize = 1536;
const SEARCHES: [&str; 3] = [
    "how can I rest better at night",
    "what did we decide about the budget",
    "recipes with vegetables",
];

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The `k` note paths whose best chunk (of `chunks`: id, path, vector) is
/// nearest to `query`, best first.
fn top_notes(query: &[f32], chunks: &[(i64, String, Vec<f32>)], k: usize) -> Vec<String> {
    let mut best: HashMap<&str, f32> = HashMap::new();
    for (_, path, v) in chunks {
        let s = dot(query, v);
        let e = best.entry(path.as_str()).or_insert(f32::NEG_INFINITY);
        *e = e.max(s);
    }
    let mut ranked: Vec<(&str, f32)> = best.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked
        .into_iter()
        .take(k)
        .map(|(p, _)| p.to_string())
        .collect()
}

#[test]
fn comparison_shows_cost_first_then_overlap_spends_and_caches_without_switching() {
    let notes = fixture_notes();
    let t = open(notes.path(), Some(local_model()));
    index(&t.engine);
    for q in SEARCHES {
        t.engine.remember_search(q).unwrap();
    }
    let server = Server::start(Some("sk-loopback-compare"));
    let cfg: ProviderConfig = serde_json::from_value(serde_json::json!({
        "provider": "openai", "model": MODEL, "base_url": server.openai_base()
    }))
    .unwrap();
    let options = CompareOptions {
        sample_chunks: 200,
        k: 3,
        ..CompareOptions::default()
    };

    // 1. The plan: the latest searches, every chunk (fewer than 200), the
    // cost of their texts and the queries; nothing sent.
    let cached = t.engine.store().read(tables::cached_embedders).unwrap();
    let estimator = build_estimator(&cfg, &cached).unwrap();
    let plan = compare::plan(&t.engine, estimator.as_ref(), &options).unwrap();
    let expected_queries: Vec<String> = SEARCHES.iter().rev().map(|s| s.to_string()).collect();
    assert_eq!(plan.queries, expected_queries, "latest search first");
    let total = t.engine.store().read(tables::count_chunks).unwrap() as usize;
    assert_eq!(plan.chunk_ids.len(), total);
    let texts = t
        .engine
        .store()
        .read(|c| tables::embed_texts(c, &plan.chunk_ids))
        .unwrap();
    let unique: HashSet<&String> = texts.iter().collect();
    let tokens: u64 = unique
        .iter()
        .map(|t| sift::cost::tokens::count_tokens(t) as u64)
        .chain(
            SEARCHES
                .iter()
                .map(|q| sift::cost::tokens::count_tokens(q) as u64),
        )
        .sum();
    assert_eq!(plan.estimate.chunks, unique.len() + SEARCHES.len());
    assert_eq!(plan.estimate.tokens, tokens);
    assert!(plan.estimate.dollars.unwrap() > 0.0, "{plan:?}");
    assert_eq!(plan.switch_estimate.chunks, unique.len());
    assert!(server.log().is_empty(), "planning sent nothing");
    assert_eq!(t.engine.month_spent().unwrap(), 0.0);

    // 2. The run.
    let remote = loopback_openai(
        &server.openai_base(),
        MODEL,
        None,
        "sk-loopback-compare",
        RemoteOptions::default(),
    );
    let report = compare::run(&t.engine, &remote, &plan).unwrap();
    let sent: Vec<String> = server
        .successes()
        .iter()
        .flat_map(|l| l.inputs.clone())
        .collect();
    assert_eq!(sent.len(), unique.len() + SEARCHES.len(), "each text once");
    let sent_tokens: u64 = server.successes().iter().map(|l| l.tokens as u64).sum();
    assert_eq!(report.spent.tokens_sent, sent_tokens);
    assert_eq!(
        report.spent.tokens_sent, plan.estimate.tokens,
        "the estimate was right"
    );
    assert!(report.spent.dollars > 0.0);
    assert_eq!(report.from_cache, 0);

    // Overlap figures, against rankings recomputed from the vectors here.
    let meta = t
        .engine
        .store()
        .read(|c| tables::load_chunks(c, &plan.chunk_ids))
        .unwrap();
    let local = local_model();
    let local_vectors = local.embed_documents(&texts).unwrap();
    let local_chunks: Vec<(i64, String, Vec<f32>)> = meta
        .iter()
        .zip(local_vectors)
        .map(|(c, v)| (c.id, c.rel_path.clone(), v))
        .collect();
    let remote_chunks: Vec<(i64, String, Vec<f32>)> = meta
        .iter()
        .zip(&texts)
        .map(|(c, text)| (c.id, c.rel_path.clone(), vector_for(MODEL, "", text, DIMS)))
        .collect();
    assert_eq!(report.queries.len(), SEARCHES.len());
    let mut sum = 0.0;
    for q in &report.queries {
        let l = top_notes(&local.embed_query(&q.query).unwrap(), &local_chunks, 3);
        let r = top_notes(&vector_for(MODEL, "", &q.query, DIMS), &remote_chunks, 3);
        let shown_l: Vec<&str> = q.current.iter().map(|n| n.path.as_str()).collect();
        let shown_r: Vec<&str> = q.other.iter().map(|n| n.path.as_str()).collect();
        assert_eq!(shown_l, l, "{}", q.query);
        assert_eq!(shown_r, r, "{}", q.query);
        let shared = l.iter().filter(|p| r.contains(p)).count();
        assert_eq!(q.shared, shared);
        assert!((q.overlap - shared as f64 / 3.0).abs() < 1e-9, "{q:?}");
        sum += q.overlap;
    }
    assert!((report.mean_overlap - sum / 3.0).abs() < 1e-9);
    let sleep = report
        .queries
        .iter()
        .find(|q| q.query.contains("rest better"))
        .unwrap();
    assert_eq!(
        sleep.current[0].path, "journal/sleep.txt",
        "the local model finds the sleep note"
    );

    // Booked in the ledger like any remote spending, and cached: switching
    // now would not send the sample again.
    let month = t.engine.month_spent().unwrap();
    assert!((month - report.spent.dollars).abs() < 1e-12, "{month}");
    let summary = t
        .engine
        .store()
        .read(|c| UsageLedger::new(c).summary(sift::cost::today()))
        .unwrap();
    let row = summary
        .this_month
        .iter()
        .find(|r| r.provider == "openai")
        .unwrap();
    assert_eq!(row.totals.tokens_sent, sent_tokens);
    assert_eq!(
        report.switch_estimate.chunks, 0,
        "the sample was every chunk"
    );
    let cached = t
        .engine
        .store()
        .read(|c| tables::count_chunks_with_vectors(c, remote.id()))
        .unwrap();
    assert_eq!(cached as usize, total);

    // Nothing switched.
    assert!(matches!(
        t.engine.settings().provider,
        ProviderConfig::Local { .. }
    ));
    let saved = sift::Settings::load(t.data.path()).unwrap();
    assert!(matches!(saved.provider, ProviderConfig::Local { .. }));
    assert!(t.engine.embedder().unwrap().id().starts_with("local/"));

    // Again: the sample comes from the cache, only the queries are sent.
    server.clear_log();
    let again = compare::run(&t.engine, &remote, &plan).unwrap();
    assert_eq!(again.from_cache, total);
    let inputs: usize = server.successes().iter().map(|l| l.inputs.len()).sum();
    assert_eq!(inputs, SEARCHES.len());
    assert!((again.mean_overlap - report.mean_overlap).abs() < 1e-9);
}

#[test]
fn the_same_embedder_agrees_with_itself_and_bad_requests_are_refused() {
    let notes = fixture_notes();
    let t = open(notes.path(), Some(local_model()));
    index(&t.engine);
    let local = local_model();
    // No searches kept yet: a clear error, nothing else.
    let err = compare::plan(&t.engine, local.as_ref(), &CompareOptions::default()).unwrap_err();
    assert_eq!(err.kind(), sift::ErrorKind::InvalidInput);
    assert!(err.message().contains("search"), "{err}");
    let bad = CompareOptions {
        sample_chunks: 0,
        queries: vec!["garden".into()],
        ..CompareOptions::default()
    };
    let err = compare::plan(&t.engine, local.as_ref(), &bad).unwrap_err();
    assert_eq!(err.kind(), sift::ErrorKind::InvalidInput);

    let options = CompareOptions {
        queries: SEARCHES.iter().map(|s| s.to_string()).collect(),
        ..CompareOptions::default()
    };
    let plan = compare::plan(&t.engine, local.as_ref(), &options).unwrap();
    assert_eq!(
        plan.estimate.chunks,
        SEARCHES.len(),
        "only the queries: every chunk is cached"
    );
    assert_eq!(plan.estimate.dollars.unwrap_or(0.0), 0.0);
    let report = compare::run(&t.engine, local.as_ref(), &plan).unwrap();
    assert_eq!(report.mean_overlap, 1.0, "{report:?}");
    for q in &report.queries {
        assert_eq!(q.current, q.other);
    }
    assert_eq!(t.engine.month_spent().unwrap(), 0.0);
}
