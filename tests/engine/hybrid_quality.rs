//! Search quality, measured: the default hybrid mode must do at least as well as
//! the better of keyword-only and meaning-only, on keyword queries (exact words
//! from the note: identifiers, names, error codes) and on natural-language
//! questions whose content words are not in the note.
//!
//! Data: tests/fixtures/eval/notes (65 personal notes) and
//! tests/fixtures/eval/queries.json (query, kind, relevant paths), indexed with
//! the real local model (SIFT_MODEL_DIR). Metrics per mode and kind: MRR@10
//! (reciprocal rank of the first relevant note, 0 if not in the top 10) and
//! Recall@5 (share of a query's relevant notes in the top 5), averaged over
//! queries.
//!
//! Assertion: for each kind and each metric, hybrid must reach the better of
//! keyword and semantic less 0.005 (issue 12's bar). That is less than one
//! query moving from rank 1 to 2 (0.5/36 = 0.014 MRR on the keyword set): the
//! default may not lose a single query's place to the better single mode on
//! balance. Measured on 2026-12-01: keyword MRR 1.000 / 0.722 / 1.000,
//! questions 0.000 / 0.839 / 0.839 (keyword / semantic / hybrid).
//!
//! Keyword mode scores 0 on questions by construction: every question was
//! checked to share no content word (roughly stemmed) with its relevant notes.
//!
//! `cargo test --test engine hybrid_quality:: -- --nocapture` prints the table;
//! with SIFT_EVAL_VERBOSE=1 it also prints every query's ranks and top 3 per mode.

use crate::common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use common::*;
use serde::Deserialize;
use sift::{Mode, Query};

const TOLERANCE: f64 = 0.005;
const LIMIT: usize = 10;
const RECALL_AT: usize = 5;
const MODES: [Mode; 3] = [Mode::Keyword, Mode::Semantic, Mode::Hybrid];
const KINDS: [&str; 2] = ["keyword", "question"];

#[derive(Deserialize)]
struct EvalQuery {
    query: String,
    kind: String,
    relevant: Vec<String>,
}

/// One query's outcome in one mode.
struct Outcome {
    /// 1-based rank of the best-ranked relevant note within the top LIMIT.
    first: Option<usize>,
    /// Relevant notes found in the top RECALL_AT, over all relevant notes.
    recall: f64,
    /// The top three paths, for the report.
    top: Vec<String>,
}

fn eval_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eval")
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Keyword => "keyword",
        Mode::Semantic => "semantic",
        Mode::Hybrid => "hybrid",
    }
}

fn rank_str(r: Option<usize>) -> String {
    r.map_or("-".to_string(), |r| r.to_string())
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

#[test]
fn hybrid_is_at_least_as_good_as_the_better_single_mode() {
    let notes = tempfile::tempdir().unwrap();
    copy_dir(&eval_dir().join("notes"), notes.path());
    check_set(
        "tests/fixtures/eval",
        notes.path(),
        &eval_dir().join("queries.json"),
    );
}

/// The same bar on real notes nobody here wrote (a tuning set: one person's
/// "Today I Learned" notes, tests/fixtures/tilnotes/SOURCE.md), where
/// keyword queries are identifiers (`get_and_update`, `--word-diff`) and
/// questions are paraphrased.
#[test]
fn hybrid_is_at_least_as_good_as_the_better_single_mode_on_real_notes() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tilnotes");
    let notes = tempfile::tempdir().unwrap();
    // The topic folders only (not SOURCE.md, LICENSE, questions.json).
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            copy_dir(&path, &notes.path().join(path.file_name().unwrap()));
        }
    }
    check_set(
        "tests/fixtures/tilnotes",
        notes.path(),
        &source.join("questions.json"),
    );
}

fn check_set(name: &str, notes: &Path, queries: &Path) {
    let queries: Vec<EvalQuery> = serde_json::from_str(&std::fs::read_to_string(queries).unwrap())
        .expect("the queries parse");
    assert!(queries.iter().all(|q| KINDS.contains(&q.kind.as_str())));
    let t = open(notes, Some(local_model()));
    let started = std::time::Instant::now();
    let report = index(&t.engine);
    let index_secs = started.elapsed().as_secs_f64();
    assert!(report.skipped.is_empty(), "skipped: {:?}", report.skipped);
    assert_eq!(report.chunks_without_vectors, 0, "every chunk has a vector");

    // Every relevant path must exist in the index, or the judgments are stale.
    for q in &queries {
        for rel in &q.relevant {
            assert!(
                notes.join(rel).is_file(),
                "queries.json names a missing note: {rel}"
            );
        }
    }

    let started = std::time::Instant::now();
    let mut errors = Vec::new();
    // outcomes[query index][mode index]
    let outcomes: Vec<Vec<Outcome>> = queries
        .iter()
        .map(|q| {
            MODES
                .iter()
                .map(|&mode| {
                    let query = Query {
                        mode,
                        limit: LIMIT,
                        ..Query::new(q.query.as_str())
                    };
                    let hits = match t.engine.search(&query) {
                        Ok(res) => {
                            if res.mode != mode {
                                errors.push(format!(
                                    "{:?} asked for {} but ran {}",
                                    q.query,
                                    mode_name(mode),
                                    mode_name(res.mode)
                                ));
                            }
                            paths(&res.hits)
                        }
                        Err(e) => {
                            errors.push(format!("{:?} in {}: {e}", q.query, mode_name(mode)));
                            Vec::new()
                        }
                    };
                    let first = hits
                        .iter()
                        .take(LIMIT)
                        .position(|p| q.relevant.contains(p))
                        .map(|i| i + 1);
                    let found = q
                        .relevant
                        .iter()
                        .filter(|r| hits.iter().take(RECALL_AT).any(|p| p == *r))
                        .count();
                    Outcome {
                        first,
                        recall: found as f64 / q.relevant.len() as f64,
                        top: hits.into_iter().take(3).collect(),
                    }
                })
                .collect()
        })
        .collect();
    let search_secs = started.elapsed().as_secs_f64();

    // metrics[(kind, mode)] = (MRR@10, Recall@5, queries)
    let mut metrics: ModeMetrics = BTreeMap::new();
    for kind in KINDS.iter().copied().chain(["all"]) {
        let idx: Vec<usize> = (0..queries.len())
            .filter(|&i| kind == "all" || queries[i].kind == kind)
            .collect();
        for (m, &mode) in MODES.iter().enumerate() {
            let mrr = mean(
                idx.iter()
                    .map(|&i| outcomes[i][m].first.map_or(0.0, |r| 1.0 / r as f64)),
            );
            let recall = mean(idx.iter().map(|&i| outcomes[i][m].recall));
            metrics.insert((kind, mode_name(mode)), (mrr, recall, idx.len()));
        }
    }

    let mut table = String::new();
    writeln!(
        table,
        "\nSearch quality on {name} ({} notes, {} chunks indexed in {index_secs:.1}s; {} queries x 3 modes in {search_secs:.1}s)",
        report.notes_indexed,
        report.chunks_embedded,
        queries.len()
    )
    .unwrap();
    write_metrics_table(&mut table, &KINDS, ("MRR", "R@5"), &metrics);

    // Queries where hybrid ranks the relevant note worse than the best single mode.
    let mut worse = String::new();
    let mut missed = String::new();
    for (q, o) in queries.iter().zip(&outcomes) {
        let best_single = [o[0].first, o[1].first].into_iter().flatten().min();
        let line = format!(
            "  [{}] {:?}  ranks kw={} sem={} hyb={}  relevant={:?}  hybrid top3={:?}",
            q.kind,
            q.query,
            rank_str(o[0].first),
            rank_str(o[1].first),
            rank_str(o[2].first),
            q.relevant,
            o[2].top
        );
        match (best_single, o[2].first) {
            (Some(b), Some(h)) if h > b => writeln!(worse, "{line}").unwrap(),
            (Some(_), None) => writeln!(worse, "{line}").unwrap(),
            (None, None) => writeln!(missed, "{line}").unwrap(),
            _ => {}
        }
    }
    writeln!(
        table,
        "\nQueries where hybrid ranks the relevant note worse than the best single mode (ranks within top {LIMIT}, '-' = not in top {LIMIT}):\n{}",
        if worse.is_empty() { "  none\n" } else { &worse }
    )
    .unwrap();
    writeln!(
        table,
        "Queries no mode finds in the top {LIMIT}:\n{}",
        if missed.is_empty() {
            "  none\n"
        } else {
            &missed
        }
    )
    .unwrap();
    if std::env::var_os("SIFT_EVAL_VERBOSE").is_some() {
        println!("Every query (rank of the first relevant note; top 3 per mode):");
        for (q, o) in queries.iter().zip(&outcomes) {
            println!(
                "  [{}] {:?} relevant={:?}  ranks kw={} sem={} hyb={}",
                q.kind,
                q.query,
                q.relevant,
                rank_str(o[0].first),
                rank_str(o[1].first),
                rank_str(o[2].first)
            );
            for (m, &mode) in MODES.iter().enumerate() {
                println!("      {:<8} {:?}", mode_name(mode), o[m].top);
            }
        }
    }
    println!("{table}");

    assert!(
        errors.is_empty(),
        "search errors:\n{}\n{table}",
        errors.join("\n")
    );

    let mut failures = Vec::new();
    for kind in KINDS {
        for (metric, pick) in [("MRR@10", 0usize), ("Recall@5", 1)] {
            let v = |m: &str| {
                let t = metrics[&(kind, m)];
                if pick == 0 {
                    t.0
                } else {
                    t.1
                }
            };
            let best = v("keyword").max(v("semantic"));
            if v("hybrid") < best - TOLERANCE {
                failures.push(format!(
                    "{kind} queries: hybrid {metric} {:.3} < max(keyword {:.3}, semantic {:.3}) - {TOLERANCE}",
                    v("hybrid"),
                    v("keyword"),
                    v("semantic")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "hybrid does worse than the better single mode:\n  {}\n{table}",
        failures.join("\n  ")
    );
}
