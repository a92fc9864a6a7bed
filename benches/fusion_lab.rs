//! Fusion variants on every eval set we have, in one run (figures, not
//! pass/fail): each query's candidates are gathered once from the real
//! rankers, then every variant fuses them, so variants differ only in fusion.
//!
//! ```text
//! SIFT_MODEL_DIR=... cargo bench --bench fusion_lab -- [WORK_DIR] [SCIFACT_DIR] [--scifact]
//! ```
//! Sets: our eval notes (tests/fixtures/eval, tuned on), the TIL notes
//! (tests/fixtures/tilnotes, tuned on), Git's documentation pages when
//! FUSION_LAB_GITDOCS names them (tests/fixtures/gitdocs, tuned on), Helm's
//! pages in three languages (tests/fixtures/helmdocs, tuned on), BEIR
//! SciFact (tuned on) and the real-notes questions (tests/fixtures/realnotes/questions.json:
//! HELD OUT, printed beside, never used to choose). Metrics: MRR@10 by query
//! kind (keyword / question) on the note sets, nDCG@10 on SciFact.
//! FUSION_LAB_TOP=<a set name's start> prints each query's first three notes
//! by keywords, by meaning and by the default (tuned-on sets only). The work dir
//! keeps each set's index and embedding cache, so reruns embed nothing.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::Deserialize;
use sift::embed::Embedder;
use sift::keyword_index::{CommonWords, KeywordIndex};
use sift::search::meaning_fill::MeaningFill;
use sift::search::{
    candidates, fuse, fuse_with, terms::Terms, Candidates, Combine, Filters, FusionParams, Mode,
    RankedNote,
};
use sift::vectors::VectorIndex;
use sift::{Engine, Settings};

#[derive(Deserialize)]
struct EvalQuery {
    query: String,
    kind: String,
    relevant: Vec<String>,
}

/// One query with what the rankers found and what is relevant (path -> grade).
struct Case {
    text: String,
    kind: String,
    found: Candidates,
    /// The candidates gathered or completed another way, one per [`ALTS`].
    alts: Vec<Candidates>,
    relevant: HashMap<String, u32>,
}

/// Candidates gathered another way than the search does (the default
/// fusion, and keyword only, run on each): (name, common-word share of the
/// keyword search, how the meaning side is completed).
const ALTS: &[(&str, f64, Completion)] = &[
    ("words in > 30% of chunks left out", 0.3, Completion::None),
    ("words in > 20% of chunks left out", 0.2, Completion::None),
    ("words in > 10% of chunks left out", 0.1, Completion::None),
    ("words in > 5% of chunks left out", 0.05, Completion::None),
    (
        "meaning as found (no filling)",
        1.0,
        Completion::Filled(MeaningFill::NONE),
    ),
    (
        "meaning filled in for keyword chunks only",
        1.0,
        Completion::Filled(MeaningFill {
            keyword_notes: usize::MAX,
            whole_notes: 0,
        }),
    ),
    (
        "filled in: every keyword note whole",
        1.0,
        Completion::Filled(MeaningFill {
            keyword_notes: usize::MAX,
            whole_notes: usize::MAX,
        }),
    ),
    (
        "filled in: 30 keyword notes, 10 whole",
        1.0,
        Completion::Filled(MeaningFill {
            keyword_notes: 30,
            whole_notes: 10,
        }),
    ),
    (
        "filled in: 20 keyword notes, 10 whole",
        1.0,
        Completion::Filled(MeaningFill {
            keyword_notes: 20,
            whole_notes: 10,
        }),
    ),
    (
        "filled in: 10 keyword notes whole",
        1.0,
        Completion::Filled(MeaningFill {
            keyword_notes: 10,
            whole_notes: 10,
        }),
    ),
    (
        "filled in: 5 keyword notes whole",
        1.0,
        Completion::Filled(MeaningFill {
            keyword_notes: 5,
            whole_notes: 5,
        }),
    ),
    (
        "feedback: 3 nearest, x0.5",
        1.0,
        Completion::Feedback {
            notes: 3,
            weight: 0.5,
            fused: false,
        },
    ),
    (
        "feedback: 3 nearest, x1",
        1.0,
        Completion::Feedback {
            notes: 3,
            weight: 1.0,
            fused: false,
        },
    ),
    (
        "feedback: 5 nearest, x0.5",
        1.0,
        Completion::Feedback {
            notes: 5,
            weight: 0.5,
            fused: false,
        },
    ),
    (
        "feedback: 3 fused, x0.5",
        1.0,
        Completion::Feedback {
            notes: 3,
            weight: 0.5,
            fused: true,
        },
    ),
    (
        "feedback: 3 fused, x1",
        1.0,
        Completion::Feedback {
            notes: 3,
            weight: 1.0,
            fused: true,
        },
    ),
    (
        "feedback: 1 fused, x0.5",
        1.0,
        Completion::Feedback {
            notes: 1,
            weight: 0.5,
            fused: true,
        },
    ),
    (
        "feedback: 5 fused, x0.5",
        1.0,
        Completion::Feedback {
            notes: 5,
            weight: 0.5,
            fused: true,
        },
    ),
    (
        "feedback: 3 fused, x0.25",
        1.0,
        Completion::Feedback {
            notes: 3,
            weight: 0.25,
            fused: true,
        },
    ),
    (
        "feedback: 3 fused, x0.5, if both agree",
        1.0,
        Completion::AgreedFeedback {
            notes: 3,
            weight: 0.5,
        },
    ),
    (
        "feedback: 3 fused, x0.5, if covered",
        1.0,
        Completion::CoveredFeedback {
            notes: 3,
            weight: 0.5,
        },
    ),
    ("title field x0.5", 1.0, Completion::Title(0.5)),
    ("title field x1", 1.0, Completion::Title(1.0)),
    ("title field x2", 1.0, Completion::Title(2.0)),
];

/// How an alternative completes the meaning side of the candidates.
#[derive(Clone, Copy)]
enum Completion {
    /// As gathered.
    None,
    /// Meaning filled in for keyword notes another way than the default
    /// (`search::meaning_fill`).
    Filled(MeaningFill),
    /// Pseudo-relevance feedback inside the candidates: the query vector
    /// moves towards the mean of the best chunks of the first `notes` notes
    /// (by meaning, or `fused` by the default fusion), by `weight`, and every
    /// candidate chunk (nearest and keyword) is scored again against it. No
    /// second walk of the graph.
    Feedback {
        notes: usize,
        weight: f32,
        fused: bool,
    },
    /// The same from the fused notes, only when the first fused note was
    /// found by both rankers.
    AgreedFeedback { notes: usize, weight: f32 },
    /// The same, only when the best keyword chunk holds half the query's
    /// terms or more.
    CoveredFeedback { notes: usize, weight: f32 },
    /// Gathered with a BM25 over the title field of this weight added to
    /// the keyword score (meaning side as gathered).
    Title(f32),
}

struct EvalSet {
    name: &'static str,
    held_out: bool,
    /// nDCG@10 instead of MRR@10.
    graded: bool,
    cases: Vec<Case>,
    /// note id -> path.
    paths: HashMap<i64, String>,
}

type Variant = (&'static str, Box<dyn Fn(&Candidates) -> Vec<RankedNote>>);

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let work = PathBuf::from(
        args.first()
            .cloned()
            .unwrap_or_else(|| "/var/tmp/sift-fusion-lab".to_string()),
    );
    let scifact = PathBuf::from(args.get(1).cloned().unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/scifact").to_string()
    }));
    let model_dir = std::env::var_os("SIFT_MODEL_DIR")
        .map(PathBuf::from)
        .or_else(|| sift::model::resolve_model_dir(None))
        .expect("set SIFT_MODEL_DIR or run `sift model fetch`");
    let model: Arc<dyn Embedder> =
        Arc::new(sift::embed::local::LocalEmbedder::load(&model_dir).expect("model loads"));
    // FUSION_LAB_QUERIES=packed: embed two documents first, as an indexing
    // process has, so queries take the packed bfloat16 weights where the CPU
    // has them (else a lab run over cached indexes embeds queries in `f32`;
    // a run that indexes afresh packs anyway).
    if std::env::var("FUSION_LAB_QUERIES").as_deref() == Ok("packed") {
        let text = "Recovery sleep restores the consolidation of declarative memory. ".repeat(8);
        model.embed_documents(&[text.clone(), text]).unwrap();
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");

    let sets = vec![
        note_set(
            "eval (ours, tuned on)",
            false,
            &fixtures.join("eval/notes"),
            &fixtures.join("eval/queries.json"),
            &work.join("eval"),
            &model,
        ),
        note_set(
            "real notes (HELD OUT)",
            true,
            &fixtures.join("realnotes"),
            &fixtures.join("realnotes/questions.json"),
            &work.join("realnotes"),
            &model,
        ),
    ];
    let mut sets = sets;
    // A second set of real notes, tuned on: one person's "Today I Learned"
    // notes (tests/fixtures/tilnotes/SOURCE.md).
    if fixtures.join("tilnotes/questions.json").exists() {
        sets.insert(
            1,
            note_set(
                "TIL notes (real, tuned on)",
                false,
                &fixtures.join("tilnotes"),
                &fixtures.join("tilnotes/questions.json"),
                &work.join("tilnotes"),
                &model,
            ),
        );
    }
    // A third set tuned on: Git's documentation pages (tests/fixtures/gitdocs/
    // SOURCE.md), fetched from Debian by scripts/fetch_gitdocs.sh into the
    // folder FUSION_LAB_GITDOCS names (not kept in the repository: GPL-2).
    if let Some(pages) = std::env::var_os("FUSION_LAB_GITDOCS").map(PathBuf::from) {
        let at = sets.len() - 1;
        sets.insert(
            at,
            note_set(
                "Git docs (real, tuned on)",
                false,
                &pages,
                &fixtures.join("gitdocs/questions.json"),
                &work.join("gitdocs"),
                &model,
            ),
        );
    }
    // A fourth set tuned on: Helm's documentation with its Chinese and
    // Japanese translations (tests/fixtures/helmdocs/SOURCE.md), English
    // questions whose answers are the English pages.
    if fixtures.join("helmdocs/questions.json").exists() {
        let at = sets.len() - 1;
        sets.insert(
            at,
            note_set(
                "Helm docs, 3 languages (real, tuned on)",
                false,
                &fixtures.join("helmdocs"),
                &fixtures.join("helmdocs/questions.json"),
                &work.join("helmdocs"),
                &model,
            ),
        );
    }
    // SciFact's 11.5k chunks take ten minutes to embed the first time.
    if std::env::args().any(|a| a == "--scifact") {
        sets.push(scifact_set(&scifact, &work.join("scifact"), &model));
    }

    let variants: Vec<Variant> = vec![
        ("keyword only", Box::new(|c| fuse(c, Mode::Keyword, 0.5))),
        ("semantic only", Box::new(|c| fuse(c, Mode::Semantic, 0.5))),
        ("hybrid (default)", Box::new(|c| fuse(c, Mode::Hybrid, 0.5))),
    ];
    let mut variants = variants;
    // FUSION_LAB_ROUND=8: this round's variants only (the full list takes
    // long over SciFact and was reported in BENCHMARKS.md).
    let round = if std::env::var("FUSION_LAB_ROUND").as_deref() == Ok("8") {
        round8()
    } else {
        tried()
    };
    for (name, params, weight) in round {
        variants.push((
            name,
            Box::new(move |c| fuse_with(c, Mode::Hybrid, weight, &params)),
        ));
    }
    // Fewer candidates (issue 12's latency): the default fusion over the
    // first keyword / nearest chunks only, as a search asking for fewer would
    // get them.
    for (keyword, semantic) in [
        (50, 100),
        (30, 100),
        (100, 80),
        (100, 64),
        (100, 50),
        (50, 50),
        (40, 40),
        (30, 50),
    ] {
        let name: &'static str = Box::leak(
            format!("default, keyword top {keyword}, vectors top {semantic}").into_boxed_str(),
        );
        variants.push((
            name,
            Box::new(move |c| fuse(&fewer(c, keyword, semantic), Mode::Hybrid, 0.5)),
        ));
    }
    for set in &sets {
        println!(
            "\n{} — {} queries{}",
            set.name,
            set.cases.len(),
            if set.held_out {
                " (never tuned on)"
            } else {
                ""
            }
        );
        for (name, variant) in &variants {
            println!("  {name:<34} {}", score(set, variant.as_ref()));
        }
        for (i, (alt, _, _)) in ALTS.iter().enumerate() {
            for (mode, label) in [
                (Mode::Keyword, "keyword only"),
                (Mode::Semantic, "semantic only"),
                (Mode::Hybrid, "default"),
            ] {
                let picked = |c: &Case| fuse(&c.alts[i], mode, 0.5);
                println!("  {label}, {alt:<40} {}", score_of(set, &picked));
            }
        }
        // Each query's first three notes by keywords, by meaning and by the
        // default, for the sets tuned on only (FUSION_LAB_TOP=a set name's start).
        if let (Ok(wanted), false) = (std::env::var("FUSION_LAB_TOP"), set.held_out) {
            if set.name.starts_with(wanted.as_str()) {
                top_three(set);
            }
        }
        // Per query, for the sets tuned on only (FUSION_LAB_DETAIL=variant name).
        if let (Ok(wanted), false) = (std::env::var("FUSION_LAB_DETAIL"), set.held_out) {
            if let Some((_, variant)) = variants.iter().find(|(n, _)| *n == wanted) {
                detail(set, variants[1].1.as_ref(), variant.as_ref());
            }
        }
    }
}

/// `found` as a search asking each ranker for fewer chunks would have it:
/// the first `keyword` keyword chunks (and their coverage), the `semantic`
/// nearest.
fn fewer(found: &Candidates, keyword: usize, semantic: usize) -> Candidates {
    let mut c = found.clone();
    c.keyword.truncate(keyword);
    c.semantic.truncate(semantic);
    let kept: std::collections::HashSet<i64> = c.keyword.iter().map(|k| k.0).collect();
    c.coverage.retain(|id, _| kept.contains(id));
    c.weighted_coverage.retain(|id, _| kept.contains(id));
    c
}

/// Per query: where each ranker puts the first relevant note, and its first
/// three notes (a relevant one starred).
fn top_three(set: &EvalSet) {
    for case in &set.cases {
        println!("    [{}] {:?}", case.kind, case.text);
        for (label, mode) in [
            ("keyword", Mode::Keyword),
            ("meaning", Mode::Semantic),
            ("default", Mode::Hybrid),
        ] {
            let ranked = fuse(&case.found, mode, 0.5);
            let paths: Vec<&String> = ranked
                .iter()
                .take(10)
                .filter_map(|r| set.paths.get(&r.note_id))
                .collect();
            let first = paths
                .iter()
                .position(|p| case.relevant.contains_key(*p))
                .map_or("-".to_string(), |i| (i + 1).to_string());
            let shown: Vec<String> = paths
                .iter()
                .take(3)
                .map(|p| {
                    let star = if case.relevant.contains_key(*p) {
                        "*"
                    } else {
                        ""
                    };
                    format!("{star}{p}")
                })
                .collect();
            println!("      {label:<8} {first:>2}  {}", shown.join("  "));
        }
    }
}

/// Queries where `variant` ranks the first relevant note differently from
/// meaning alone (1-based ranks within the top 10, '-' outside).
fn detail(
    set: &EvalSet,
    semantic: &dyn Fn(&Candidates) -> Vec<RankedNote>,
    variant: &dyn Fn(&Candidates) -> Vec<RankedNote>,
) {
    let first = |ranked: Vec<RankedNote>, case: &Case| {
        ranked
            .iter()
            .take(10)
            .filter_map(|r| set.paths.get(&r.note_id))
            .position(|p| case.relevant.contains_key(p))
            .map_or("-".to_string(), |i| (i + 1).to_string())
    };
    for case in &set.cases {
        let (s, v) = (
            first(semantic(&case.found), case),
            first(variant(&case.found), case),
        );
        if s != v {
            let best_cov = case.found.coverage.values().copied().fold(0.0, f64::max);
            println!(
                "    [{}] {:?} semantic {s} variant {v} (terms {}, question {}, best coverage {best_cov:.2})",
                case.kind, case.text, case.found.shape.terms, case.found.shape.question
            );
        }
    }
}

/// Every hybrid variant measured beside the default: (name, knobs, keyword weight).
fn tried() -> Vec<(&'static str, FusionParams, f32)> {
    // Most variants are changes to the default before issue 12: rank credit,
    // plain coverage, best chunk only.
    let base = FusionParams {
        combine: Combine::Ranks,
        idf_coverage: false,
        min_terms_held: 0.0,
        second_vector_chunk: 0.0,
        second_vector_by_doubt: false,
        peak_rank: 0,
        ..FusionParams::default()
    };
    let ranks = |f: fn(&mut FusionParams)| {
        let mut p = base;
        f(&mut p);
        p
    };
    // Score credit with IDF coverage and two terms held (see below).
    let scored = |f: fn(&mut FusionParams)| {
        let mut p = base;
        p.combine = Combine::Scores;
        p.idf_coverage = true;
        p.min_terms_held = 2.0;
        f(&mut p);
        p
    };
    // Ranks with a note's second nearest chunk by keyword doubt (a candidate
    // default: best on our questions, but 0.014 lower on SciFact).
    let around_doubt = |f: fn(&mut FusionParams)| {
        let mut p = base;
        p.second_vector_chunk = 1.0;
        p.second_vector_by_doubt = true;
        f(&mut p);
        p
    };
    vec![
        ("previous default (ranks, plain coverage)", base, 0.5),
        ("keyword weight 0.4", base, 0.4),
        ("keyword weight 0.6", base, 0.6),
        ("rrf k 20", ranks(|p| p.rrf_k = 20.0), 0.5),
        ("rrf k 10", ranks(|p| p.rrf_k = 10.0), 0.5),
        ("coverage power 3", ranks(|p| p.coverage_power = 3), 0.5),
        (
            "no keywords below coverage 0.4",
            ranks(|p| p.confidence_floor = 0.4),
            0.5,
        ),
        (
            "no keywords below coverage 0.6",
            ranks(|p| p.confidence_floor = 0.6),
            0.5,
        ),
        (
            "question: keywords x0.5",
            ranks(|p| p.question_keyword_scale = 0.5),
            0.5,
        ),
        (
            "question: keywords x0.25",
            ranks(|p| p.question_keyword_scale = 0.25),
            0.5,
        ),
        (
            "question: no keywords",
            ranks(|p| p.question_keyword_scale = 0.0),
            0.5,
        ),
        ("similarity power 2", ranks(|p| p.similarity_power = 2), 0.5),
        ("similarity power 3", ranks(|p| p.similarity_power = 3), 0.5),
        (
            "second chunk 0.25",
            ranks(|p| {
                p.second_keyword_chunk = 0.25;
                p.second_vector_chunk = 0.25
            }),
            0.5,
        ),
        (
            "second chunk 0.5",
            ranks(|p| {
                p.second_keyword_chunk = 0.5;
                p.second_vector_chunk = 0.5
            }),
            0.5,
        ),
        (
            "second nearest chunk 0.25",
            ranks(|p| p.second_vector_chunk = 0.25),
            0.5,
        ),
        (
            "second nearest chunk 0.5",
            ranks(|p| p.second_vector_chunk = 0.5),
            0.5,
        ),
        (
            "second nearest chunk 1",
            ranks(|p| p.second_vector_chunk = 1.0),
            0.5,
        ),
        (
            "rrf k 20, coverage power 3",
            ranks(|p| {
                p.rrf_k = 20.0;
                p.coverage_power = 3
            }),
            0.5,
        ),
        ("rrf k 30", ranks(|p| p.rrf_k = 30.0), 0.5),
        (
            "second nearest 1 x doubt",
            ranks(|p| {
                p.second_vector_chunk = 1.0;
                p.second_vector_by_doubt = true
            }),
            0.5,
        ),
        (
            "second nearest 2 x doubt",
            ranks(|p| {
                p.second_vector_chunk = 2.0;
                p.second_vector_by_doubt = true
            }),
            0.5,
        ),
        (
            "power 3, second nearest 1 x doubt",
            ranks(|p| {
                p.coverage_power = 3;
                p.second_vector_chunk = 1.0;
                p.second_vector_by_doubt = true
            }),
            0.5,
        ),
        (
            "k 20, power 3, second nearest 1 x doubt",
            ranks(|p| {
                p.rrf_k = 20.0;
                p.coverage_power = 3;
                p.second_vector_chunk = 1.0;
                p.second_vector_by_doubt = true
            }),
            0.5,
        ),
        (
            "coverage power 3, second nearest 0.5",
            ranks(|p| {
                p.coverage_power = 3;
                p.second_vector_chunk = 0.5
            }),
            0.5,
        ),
        (
            "idf power 3, second nearest 0.5",
            ranks(|p| {
                p.idf_coverage = true;
                p.coverage_power = 3;
                p.second_vector_chunk = 0.5
            }),
            0.5,
        ),
        ("scores /best", ranks(|p| p.combine = Combine::Scores), 0.5),
        ("min-max", ranks(|p| p.combine = Combine::MinMax), 0.5),
        (
            "min-max kw x0.5",
            ranks(|p| {
                p.combine = Combine::MinMax;
                p.keyword_scale = 0.5
            }),
            0.5,
        ),
        (
            "min-max kw x0.75",
            ranks(|p| {
                p.combine = Combine::MinMax;
                p.keyword_scale = 0.75
            }),
            0.5,
        ),
        (
            "min-max kw x1.5",
            ranks(|p| {
                p.combine = Combine::MinMax;
                p.keyword_scale = 1.5
            }),
            0.5,
        ),
        (
            "min-max cov power 1",
            ranks(|p| {
                p.combine = Combine::MinMax;
                p.coverage_power = 1
            }),
            0.5,
        ),
        (
            "min-max second chunk 0.25",
            ranks(|p| {
                p.combine = Combine::MinMax;
                p.second_keyword_chunk = 0.25;
                p.second_vector_chunk = 0.25
            }),
            0.5,
        ),
        (
            "min-max question kw x0.5",
            ranks(|p| {
                p.combine = Combine::MinMax;
                p.question_keyword_scale = 0.5
            }),
            0.5,
        ),
        (
            "2nd nearest x doubt, rrf k 20",
            around_doubt(|p| p.rrf_k = 20.0),
            0.5,
        ),
        (
            "2nd nearest x doubt, rrf k 40",
            around_doubt(|p| p.rrf_k = 40.0),
            0.5,
        ),
        (
            "2nd nearest x doubt, coverage power 1",
            around_doubt(|p| p.coverage_power = 1),
            0.5,
        ),
        (
            "2nd nearest x doubt, second keyword chunk 0.25",
            around_doubt(|p| p.second_keyword_chunk = 0.25),
            0.5,
        ),
        (
            "2nd nearest x doubt, idf coverage",
            around_doubt(|p| p.idf_coverage = true),
            0.5,
        ),
        (
            "2nd nearest x doubt, similarity power 2",
            around_doubt(|p| p.similarity_power = 2),
            0.5,
        ),
        (
            "default, keyword weight 0.45",
            FusionParams::default(),
            0.45,
        ),
        (
            "default, keyword weight 0.55",
            FusionParams::default(),
            0.55,
        ),
        ("min terms held 2", ranks(|p| p.min_terms_held = 2.0), 0.5),
        ("min terms held 3", ranks(|p| p.min_terms_held = 3.0), 0.5),
        (
            "idf coverage, min terms held 2",
            ranks(|p| {
                p.idf_coverage = true;
                p.min_terms_held = 2.0
            }),
            0.5,
        ),
        (
            "scores /best, min terms held 2",
            ranks(|p| {
                p.combine = Combine::Scores;
                p.min_terms_held = 2.0
            }),
            0.5,
        ),
        (
            "scores /best, idf coverage",
            ranks(|p| {
                p.combine = Combine::Scores;
                p.idf_coverage = true
            }),
            0.5,
        ),
        (
            "scores /best, idf, min terms held 2 (= default)",
            ranks(|p| {
                p.combine = Combine::Scores;
                p.idf_coverage = true;
                p.min_terms_held = 2.0
            }),
            0.5,
        ),
        (
            "scores /best, coverage power 3",
            ranks(|p| {
                p.combine = Combine::Scores;
                p.coverage_power = 3
            }),
            0.5,
        ),
        (
            "scores /best, idf, power 3",
            ranks(|p| {
                p.combine = Combine::Scores;
                p.idf_coverage = true;
                p.coverage_power = 3
            }),
            0.5,
        ),
        (
            "scores /best, min held 2, 2nd nearest 1 x doubt",
            ranks(|p| {
                p.combine = Combine::Scores;
                p.min_terms_held = 2.0;
                p.second_vector_chunk = 1.0;
                p.second_vector_by_doubt = true
            }),
            0.5,
        ),
        (
            "S (the default), sim power 2",
            scored(|p| p.similarity_power = 2),
            0.5,
        ),
        ("S, sim power 3", scored(|p| p.similarity_power = 3), 0.5),
        ("S, sim power 5", scored(|p| p.similarity_power = 5), 0.5),
        ("S, keyword weight 0.4", scored(|_| {}), 0.4),
        ("S, keyword weight 0.6", scored(|_| {}), 0.6),
        ("S, coverage power 1", scored(|p| p.coverage_power = 1), 0.5),
        (
            "S, second nearest 0.25",
            scored(|p| p.second_vector_chunk = 0.25),
            0.5,
        ),
        (
            "S, second keyword chunk 0.25",
            scored(|p| p.second_keyword_chunk = 0.25),
            0.5,
        ),
        (
            "S, sim power 3, keyword weight 0.4",
            scored(|p| p.similarity_power = 3),
            0.4,
        ),
        ("S, keyword x1.5", scored(|p| p.keyword_scale = 1.5), 0.5),
        ("S, keyword x1.75", scored(|p| p.keyword_scale = 1.75), 0.5),
        ("S, keyword x2", scored(|p| p.keyword_scale = 2.0), 0.5),
        ("S, keyword x2.5", scored(|p| p.keyword_scale = 2.5), 0.5),
        (
            "S, keyword x1.5, second keyword chunk 0.25",
            scored(|p| {
                p.keyword_scale = 1.5;
                p.second_keyword_chunk = 0.25
            }),
            0.5,
        ),
        (
            "S, coverage power 1, min held 3",
            scored(|p| {
                p.coverage_power = 1;
                p.min_terms_held = 3.0
            }),
            0.5,
        ),
        (
            "S, keyword x1.5, coverage power 3",
            scored(|p| {
                p.keyword_scale = 1.5;
                p.coverage_power = 3
            }),
            0.5,
        ),
        (
            "S, keyword x2, coverage power 3",
            scored(|p| {
                p.keyword_scale = 2.0;
                p.coverage_power = 3
            }),
            0.5,
        ),
        ("idf coverage", ranks(|p| p.idf_coverage = true), 0.5),
        (
            "idf coverage, power 3",
            ranks(|p| {
                p.idf_coverage = true;
                p.coverage_power = 3
            }),
            0.5,
        ),
        (
            "idf coverage, power 1",
            ranks(|p| {
                p.idf_coverage = true;
                p.coverage_power = 1
            }),
            0.5,
        ),
        (
            "idf coverage, min-max",
            ranks(|p| {
                p.idf_coverage = true;
                p.combine = Combine::MinMax
            }),
            0.5,
        ),
        (
            "idf coverage, question kw x0.5",
            ranks(|p| {
                p.idf_coverage = true;
                p.question_keyword_scale = 0.5
            }),
            0.5,
        ),
        (
            "S, agree: kw top 1 in meaning top 3, else x0.5",
            scored(|p| {
                p.agreement_keyword_notes = 1;
                p.agreement_vector_notes = 3;
                p.disagreement_scale = 0.5
            }),
            0.5,
        ),
        (
            "S, agree: kw top 1 in meaning top 3, else x0.25",
            scored(|p| {
                p.agreement_keyword_notes = 1;
                p.agreement_vector_notes = 3;
                p.disagreement_scale = 0.25
            }),
            0.5,
        ),
        (
            "S, agree: kw top 1 in meaning top 3, else x0",
            scored(|p| {
                p.agreement_keyword_notes = 1;
                p.agreement_vector_notes = 3;
                p.disagreement_scale = 0.0
            }),
            0.5,
        ),
        (
            "S, agree: kw top 1 in meaning top 10, else x0.5",
            scored(|p| {
                p.agreement_keyword_notes = 1;
                p.agreement_vector_notes = 10;
                p.disagreement_scale = 0.5
            }),
            0.5,
        ),
        (
            "S, agree: kw top 1 in meaning top 10, else x0.25",
            scored(|p| {
                p.agreement_keyword_notes = 1;
                p.agreement_vector_notes = 10;
                p.disagreement_scale = 0.25
            }),
            0.5,
        ),
        (
            "S, agree: kw top 1 in meaning top 10, else x0",
            scored(|p| {
                p.agreement_keyword_notes = 1;
                p.agreement_vector_notes = 10;
                p.disagreement_scale = 0.0
            }),
            0.5,
        ),
        (
            "S, agree: kw top 1 in meaning top 20, else x0.5",
            scored(|p| {
                p.agreement_keyword_notes = 1;
                p.agreement_vector_notes = 20;
                p.disagreement_scale = 0.5
            }),
            0.5,
        ),
        (
            "S, agree: kw top 1 in meaning top 20, else x0.25",
            scored(|p| {
                p.agreement_keyword_notes = 1;
                p.agreement_vector_notes = 20;
                p.disagreement_scale = 0.25
            }),
            0.5,
        ),
        (
            "S, agree: kw top 1 in meaning top 20, else x0",
            scored(|p| {
                p.agreement_keyword_notes = 1;
                p.agreement_vector_notes = 20;
                p.disagreement_scale = 0.0
            }),
            0.5,
        ),
        (
            "S, agree: kw top 3 in meaning top 3, else x0.5",
            scored(|p| {
                p.agreement_keyword_notes = 3;
                p.agreement_vector_notes = 3;
                p.disagreement_scale = 0.5
            }),
            0.5,
        ),
        (
            "S, agree: kw top 3 in meaning top 3, else x0.25",
            scored(|p| {
                p.agreement_keyword_notes = 3;
                p.agreement_vector_notes = 3;
                p.disagreement_scale = 0.25
            }),
            0.5,
        ),
        (
            "S, agree: kw top 3 in meaning top 3, else x0",
            scored(|p| {
                p.agreement_keyword_notes = 3;
                p.agreement_vector_notes = 3;
                p.disagreement_scale = 0.0
            }),
            0.5,
        ),
        (
            "S, agree: kw top 3 in meaning top 10, else x0.5",
            scored(|p| {
                p.agreement_keyword_notes = 3;
                p.agreement_vector_notes = 10;
                p.disagreement_scale = 0.5
            }),
            0.5,
        ),
        (
            "S, agree: kw top 3 in meaning top 10, else x0.25",
            scored(|p| {
                p.agreement_keyword_notes = 3;
                p.agreement_vector_notes = 10;
                p.disagreement_scale = 0.25
            }),
            0.5,
        ),
        (
            "S, agree: kw top 3 in meaning top 10, else x0",
            scored(|p| {
                p.agreement_keyword_notes = 3;
                p.agreement_vector_notes = 10;
                p.disagreement_scale = 0.0
            }),
            0.5,
        ),
        (
            "S, agree: kw top 3 in meaning top 20, else x0.5",
            scored(|p| {
                p.agreement_keyword_notes = 3;
                p.agreement_vector_notes = 20;
                p.disagreement_scale = 0.5
            }),
            0.5,
        ),
        (
            "S, agree: kw top 3 in meaning top 20, else x0.25",
            scored(|p| {
                p.agreement_keyword_notes = 3;
                p.agreement_vector_notes = 20;
                p.disagreement_scale = 0.25
            }),
            0.5,
        ),
        (
            "S, agree: kw top 3 in meaning top 20, else x0",
            scored(|p| {
                p.agreement_keyword_notes = 3;
                p.agreement_vector_notes = 20;
                p.disagreement_scale = 0.0
            }),
            0.5,
        ),
        (
            "S, agree: kw top 5 in meaning top 3, else x0.5",
            scored(|p| {
                p.agreement_keyword_notes = 5;
                p.agreement_vector_notes = 3;
                p.disagreement_scale = 0.5
            }),
            0.5,
        ),
        (
            "S, agree: kw top 5 in meaning top 3, else x0.25",
            scored(|p| {
                p.agreement_keyword_notes = 5;
                p.agreement_vector_notes = 3;
                p.disagreement_scale = 0.25
            }),
            0.5,
        ),
        (
            "S, agree: kw top 5 in meaning top 3, else x0",
            scored(|p| {
                p.agreement_keyword_notes = 5;
                p.agreement_vector_notes = 3;
                p.disagreement_scale = 0.0
            }),
            0.5,
        ),
        (
            "S, agree: kw top 5 in meaning top 10, else x0.5",
            scored(|p| {
                p.agreement_keyword_notes = 5;
                p.agreement_vector_notes = 10;
                p.disagreement_scale = 0.5
            }),
            0.5,
        ),
        (
            "S, agree: kw top 5 in meaning top 10, else x0.25",
            scored(|p| {
                p.agreement_keyword_notes = 5;
                p.agreement_vector_notes = 10;
                p.disagreement_scale = 0.25
            }),
            0.5,
        ),
        (
            "S, agree: kw top 5 in meaning top 10, else x0",
            scored(|p| {
                p.agreement_keyword_notes = 5;
                p.agreement_vector_notes = 10;
                p.disagreement_scale = 0.0
            }),
            0.5,
        ),
        (
            "S, agree: kw top 5 in meaning top 20, else x0.5",
            scored(|p| {
                p.agreement_keyword_notes = 5;
                p.agreement_vector_notes = 20;
                p.disagreement_scale = 0.5
            }),
            0.5,
        ),
        (
            "S, agree: kw top 5 in meaning top 20, else x0.25",
            scored(|p| {
                p.agreement_keyword_notes = 5;
                p.agreement_vector_notes = 20;
                p.disagreement_scale = 0.25
            }),
            0.5,
        ),
        (
            "S, agree: kw top 5 in meaning top 20, else x0",
            scored(|p| {
                p.agreement_keyword_notes = 5;
                p.agreement_vector_notes = 20;
                p.disagreement_scale = 0.0
            }),
            0.5,
        ),
        (
            "S, keyword peak over rank 2, full at 0.2",
            scored(|p| {
                p.peak_rank = 2;
                p.peak_full = 0.2
            }),
            0.5,
        ),
        (
            "S, keyword peak over rank 2, full at 0.35",
            scored(|p| {
                p.peak_rank = 2;
                p.peak_full = 0.35
            }),
            0.5,
        ),
        (
            "S, keyword peak over rank 2, full at 0.5",
            scored(|p| {
                p.peak_rank = 2;
                p.peak_full = 0.5
            }),
            0.5,
        ),
        (
            "S, keyword peak over rank 5, full at 0.2",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.2
            }),
            0.5,
        ),
        (
            "S, keyword peak over rank 5, full at 0.35",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35
            }),
            0.5,
        ),
        (
            "S, keyword peak over rank 5, full at 0.5",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.5
            }),
            0.5,
        ),
        (
            "S, keyword peak over rank 10, full at 0.2",
            scored(|p| {
                p.peak_rank = 10;
                p.peak_full = 0.2
            }),
            0.5,
        ),
        (
            "S, keyword peak over rank 10, full at 0.35",
            scored(|p| {
                p.peak_rank = 10;
                p.peak_full = 0.35
            }),
            0.5,
        ),
        (
            "S, keyword peak over rank 10, full at 0.5",
            scored(|p| {
                p.peak_rank = 10;
                p.peak_full = 0.5
            }),
            0.5,
        ),
        (
            "S, keyword peak over rank 20, full at 0.2",
            scored(|p| {
                p.peak_rank = 20;
                p.peak_full = 0.2
            }),
            0.5,
        ),
        (
            "S, keyword peak over rank 20, full at 0.35",
            scored(|p| {
                p.peak_rank = 20;
                p.peak_full = 0.35
            }),
            0.5,
        ),
        (
            "S, keyword peak over rank 20, full at 0.5",
            scored(|p| {
                p.peak_rank = 20;
                p.peak_full = 0.5
            }),
            0.5,
        ),
        (
            "S, keyword peak over rank 5, full at 0.25",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.25
            }),
            0.5,
        ),
        (
            "S, keyword peak over rank 5, full at 0.3",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.3
            }),
            0.5,
        ),
        (
            "S, keyword peak over rank 5, full at 0.4",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.4
            }),
            0.5,
        ),
        (
            "S, keyword peak 5 / 0.35, keyword x1.25",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.keyword_scale = 1.25
            }),
            0.5,
        ),
        (
            "S, keyword peak 5 / 0.35, keyword x1.5",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.keyword_scale = 1.5
            }),
            0.5,
        ),
        (
            "S, keyword peak 5 / 0.35, keyword x2.0",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.keyword_scale = 2.0
            }),
            0.5,
        ),
        (
            "S, keyword peak 5 / 0.35, coverage power 1",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.coverage_power = 1
            }),
            0.5,
        ),
        (
            "S, meaning peak over rank 5, full at 0.05",
            scored(|p| {
                p.vector_peak_rank = 5;
                p.vector_peak_full = 0.05
            }),
            0.5,
        ),
        (
            "S, both peaks (kw 5 / 0.35, meaning 5 / 0.05)",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.vector_peak_rank = 5;
                p.vector_peak_full = 0.05
            }),
            0.5,
        ),
        (
            "S, meaning peak over rank 5, full at 0.1",
            scored(|p| {
                p.vector_peak_rank = 5;
                p.vector_peak_full = 0.1
            }),
            0.5,
        ),
        (
            "S, both peaks (kw 5 / 0.35, meaning 5 / 0.1)",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.vector_peak_rank = 5;
                p.vector_peak_full = 0.1
            }),
            0.5,
        ),
        (
            "S, meaning peak over rank 5, full at 0.2",
            scored(|p| {
                p.vector_peak_rank = 5;
                p.vector_peak_full = 0.2
            }),
            0.5,
        ),
        (
            "S, both peaks (kw 5 / 0.35, meaning 5 / 0.2)",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.vector_peak_rank = 5;
                p.vector_peak_full = 0.2
            }),
            0.5,
        ),
        (
            "S, meaning peak over rank 10, full at 0.05",
            scored(|p| {
                p.vector_peak_rank = 10;
                p.vector_peak_full = 0.05
            }),
            0.5,
        ),
        (
            "S, both peaks (kw 5 / 0.35, meaning 10 / 0.05)",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.vector_peak_rank = 10;
                p.vector_peak_full = 0.05
            }),
            0.5,
        ),
        (
            "S, meaning peak over rank 10, full at 0.1",
            scored(|p| {
                p.vector_peak_rank = 10;
                p.vector_peak_full = 0.1
            }),
            0.5,
        ),
        (
            "S, both peaks (kw 5 / 0.35, meaning 10 / 0.1)",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.vector_peak_rank = 10;
                p.vector_peak_full = 0.1
            }),
            0.5,
        ),
        (
            "S, meaning peak over rank 10, full at 0.2",
            scored(|p| {
                p.vector_peak_rank = 10;
                p.vector_peak_full = 0.2
            }),
            0.5,
        ),
        (
            "S, both peaks (kw 5 / 0.35, meaning 10 / 0.2)",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.vector_peak_rank = 10;
                p.vector_peak_full = 0.2
            }),
            0.5,
        ),
        (
            "S, peak 5 / 0.35, coverage power 1, min held 3",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.coverage_power = 1;
                p.min_terms_held = 3.0
            }),
            0.5,
        ),
        (
            "S, peak 5 / 0.35, coverage power 1, held power 2",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.coverage_power = 1;
                p.held_power = 2
            }),
            0.5,
        ),
        (
            "S, peak 5 / 0.35, coverage power 1, held power 3",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.coverage_power = 1;
                p.held_power = 3
            }),
            0.5,
        ),
        (
            "S, peak 5 / 0.35, keyword x2, held power 2",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.keyword_scale = 2.0;
                p.held_power = 2
            }),
            0.5,
        ),
        (
            "S, peak 5 / 0.35, keyword x1.5, held power 2",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.keyword_scale = 1.5;
                p.held_power = 2
            }),
            0.5,
        ),
        (
            "S, peak 5 / 0.35, held power 2",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.held_power = 2
            }),
            0.5,
        ),
        (
            "S, peak 5 / 0.35, weight 0.55",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.held_power = 1
            }),
            0.55,
        ),
        (
            "S, peak 5 / 0.35, weight 0.6, held power 2",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.held_power = 2
            }),
            0.6,
        ),
        (
            "S, held power 2, coverage power 1",
            scored(|p| {
                p.peak_rank = 5;
                p.peak_full = 0.35;
                p.peak_rank = 0;
                p.coverage_power = 1;
                p.held_power = 2
            }),
            0.5,
        ),
    ]
}

/// Eighth round (issue 12): meaning's credit stretched over the first notes
/// by meaning, and a note's second nearest chunk, on the current default.
fn round8() -> Vec<(&'static str, FusionParams, f32)> {
    let d = |f: fn(&mut FusionParams)| {
        let mut p = FusionParams::default();
        f(&mut p);
        p
    };
    // A note in another script than the query: its meaning and keyword
    // credit multiplied by these (the default: 0.5 and 0.5).
    let foreign = |name: &'static str, meaning: f64, keywords: f64| {
        let p = FusionParams {
            foreign_vector_scale: meaning,
            foreign_keyword_scale: keywords,
            ..FusionParams::default()
        };
        (name, p, 0.5)
    };
    vec![
        foreign("D, foreign script counts in full (off)", 1.0, 1.0),
        foreign("D, foreign script: meaning x0.5, keywords x1", 0.5, 1.0),
        foreign("D, foreign script: meaning x0.25, keywords x1", 0.25, 1.0),
        foreign("D, foreign script: meaning x0, keywords x1", 0.0, 1.0),
        foreign(
            "D, foreign script: meaning x0.25, keywords x0.75",
            0.25,
            0.75,
        ),
        foreign("D, foreign script: both x0.75", 0.75, 0.75),
        foreign("D, foreign script: both x0.25", 0.25, 0.25),
        (
            "D, a literal query keeps the peak rule",
            d(|p| p.literal_skips_peak = false),
            0.5,
        ),
        (
            "D, meaning stretched over 3 notes",
            d(|p| p.vector_low_rank = 3),
            0.5,
        ),
        (
            "D, meaning stretched over 5 notes",
            d(|p| p.vector_low_rank = 5),
            0.5,
        ),
        (
            "D, meaning stretched over 10 notes",
            d(|p| p.vector_low_rank = 10),
            0.5,
        ),
        (
            "D, meaning stretched over 20 notes",
            d(|p| p.vector_low_rank = 20),
            0.5,
        ),
        (
            "D, meaning stretched over 50 notes",
            d(|p| p.vector_low_rank = 50),
            0.5,
        ),
        (
            "D, second nearest 0.25",
            d(|p| p.second_vector_chunk = 0.25),
            0.5,
        ),
        (
            "D, second nearest 0.5 x doubt",
            d(|p| {
                p.second_vector_chunk = 0.5;
                p.second_vector_by_doubt = true
            }),
            0.5,
        ),
        (
            "D, second nearest 1 x doubt",
            d(|p| {
                p.second_vector_chunk = 1.0;
                p.second_vector_by_doubt = true
            }),
            0.5,
        ),
        (
            "D, stretched over 10, second nearest 0.5 x doubt",
            d(|p| {
                p.vector_low_rank = 10;
                p.second_vector_chunk = 0.5;
                p.second_vector_by_doubt = true
            }),
            0.5,
        ),
        (
            "D, stretched over 20, keyword x1.5",
            d(|p| {
                p.vector_low_rank = 20;
                p.keyword_scale = 1.5
            }),
            0.5,
        ),
        (
            "D, stretched over 20, keyword x2",
            d(|p| {
                p.vector_low_rank = 20;
                p.keyword_scale = 2.0
            }),
            0.5,
        ),
    ]
}

/// The set's metric for one variant, by query kind.
fn score(set: &EvalSet, variant: &dyn Fn(&Candidates) -> Vec<RankedNote>) -> String {
    score_of(set, &|case: &Case| variant(&case.found))
}

/// [`score`] of a ranking made from the whole case.
fn score_of(set: &EvalSet, variant: &dyn Fn(&Case) -> Vec<RankedNote>) -> String {
    let mut by_kind: HashMap<&str, (f64, usize)> = HashMap::new();
    for case in &set.cases {
        let ranked: Vec<&str> = variant(case)
            .iter()
            .take(10)
            .filter_map(|r| set.paths.get(&r.note_id).map(String::as_str))
            .collect();
        let value = if set.graded {
            ndcg10(&ranked, &case.relevant)
        } else {
            ranked
                .iter()
                .position(|p| case.relevant.contains_key(*p))
                .map_or(0.0, |i| 1.0 / (i + 1) as f64)
        };
        let e = by_kind.entry(case.kind.as_str()).or_default();
        e.0 += value;
        e.1 += 1;
    }
    let mut kinds: Vec<_> = by_kind.into_iter().collect();
    kinds.sort_by_key(|(k, _)| *k);
    let metric = if set.graded { "nDCG@10" } else { "MRR@10" };
    kinds
        .iter()
        .map(|(k, (sum, n))| format!("{k} {metric} {:.4}", sum / *n as f64))
        .collect::<Vec<_>>()
        .join("   ")
}

/// Indexes `notes` (cached in `data`) and gathers every query's candidates.
fn gather(
    data: &Path,
    notes: &Path,
    queries: Vec<(String, String, HashMap<String, u32>)>,
    model: &Arc<dyn Embedder>,
) -> (Vec<Case>, HashMap<i64, String>) {
    let engine = Engine::open_with(data, Settings::default(), Some(model.clone())).unwrap();
    engine.add_folder(notes).unwrap();
    engine.index(&|_| {}, &AtomicBool::new(false)).unwrap();
    drop(engine);
    let store = sift::store::Store::open(&data.join("sift.db")).unwrap();
    let (mut vectors, _) = store
        .read(|c| {
            VectorIndex::open(
                &data.join("vectors"),
                model.id(),
                model.dimensions(),
                c,
                false,
                None,
            )
        })
        .unwrap();
    // FUSION_LAB_EXPANSION=N: the graph searched with expansion N instead of
    // the size's default (how much the walk's accuracy moves the rankings).
    if let Some(n) = std::env::var("FUSION_LAB_EXPANSION")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        vectors.set_expansion_search(n);
    }
    let mut fast = KeywordIndex::open(&data.join("keywords")).unwrap();
    assert!(store.read(|c| fast.is_current(c)).unwrap());
    let paths: HashMap<i64, String> = store
        .read(|c| {
            let mut stmt = c.prepare("SELECT id, rel_path FROM notes")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .unwrap();
    let cases = queries
        .into_iter()
        .map(|(text, kind, relevant)| {
            let qv = model.embed_query(&text).unwrap();
            let mut gathered = |share: f64, title: f32, fill: MeaningFill| {
                fast.set_title_weight(title);
                fast.set_common_words(if share < 1.0 {
                    CommonWords {
                        share,
                        from_chunks: 0,
                    }
                } else {
                    CommonWords::default()
                });
                store
                    .read(|c| {
                        candidates(
                            c,
                            Some(&fast),
                            Some(&vectors),
                            Some(&qv),
                            &Terms::parse(&text),
                            &Filters::default(),
                            Mode::Hybrid,
                            10,
                            fill,
                        )
                    })
                    .unwrap()
            };
            // As the search gathers them, meaning filled in for the first
            // keyword notes: the "semantic only" variant over these hears
            // those filled chunks too, where the search's own semantic mode
            // fills nothing; its figure is the "semantic only, meaning as
            // found (no filling)" row.
            let found = gathered(1.0, 0.0, MeaningFill::default());
            let alts = ALTS
                .iter()
                .map(|&(_, share, completion)| {
                    let title = match completion {
                        Completion::Title(weight) => weight,
                        _ => 0.0,
                    };
                    let fill = match completion {
                        Completion::Filled(fill) => fill,
                        _ => MeaningFill::default(),
                    };
                    let mut c = gathered(share, title, fill);
                    match completion {
                        Completion::None | Completion::Title(_) => {}
                        Completion::Filled(_) => {}
                        Completion::Feedback {
                            notes,
                            weight,
                            fused,
                        } => feedback(&mut c, &vectors, &qv, notes, weight, fused),
                        Completion::AgreedFeedback { notes, weight } => {
                            let first = fuse(&c, Mode::Hybrid, 0.5).into_iter().next();
                            if first.is_some_and(|f| {
                                f.keyword_rank.is_some() && f.vector_similarity.is_some()
                            }) {
                                feedback(&mut c, &vectors, &qv, notes, weight, true)
                            }
                        }
                        Completion::CoveredFeedback { notes, weight } => {
                            let best = c.coverage.values().copied().fold(0.0, f64::max);
                            if best >= 0.5 {
                                feedback(&mut c, &vectors, &qv, notes, weight, true)
                            }
                        }
                    }
                    c
                })
                .collect();
            fast.set_common_words(CommonWords::default());
            Case {
                text,
                kind,
                found,
                alts,
                relevant,
            }
        })
        .collect();
    (cases, paths)
}

/// Cosine similarity of chunk `chunk`'s stored vector to `query` (both
/// normalised), None when the index lacks it.
fn similarity(vectors: &VectorIndex, chunk: i64, query: &[f32]) -> Option<f32> {
    let v = vectors.get(chunk)?;
    Some(v.iter().zip(query).map(|(a, b)| a * b).sum())
}

/// [`Completion::Feedback`].
fn feedback(
    c: &mut Candidates,
    vectors: &VectorIndex,
    query: &[f32],
    notes: usize,
    weight: f32,
    fused: bool,
) {
    let best_chunks: Vec<i64> = if fused {
        fuse(c, Mode::Hybrid, 0.5)
            .iter()
            .take(notes)
            .map(|r| r.chunk_id)
            .collect()
    } else {
        let mut seen = std::collections::HashSet::new();
        c.semantic
            .iter()
            .filter(|s| seen.insert(s.1))
            .take(notes)
            .map(|s| s.0)
            .collect()
    };
    let mut moved = query.to_vec();
    let mut n = 0;
    let mut mean = vec![0f32; query.len()];
    for id in best_chunks {
        if let Some(v) = vectors.get(id) {
            mean.iter_mut().zip(&v).for_each(|(m, x)| *m += x);
            n += 1;
        }
    }
    if n == 0 {
        return;
    }
    moved
        .iter_mut()
        .zip(&mean)
        .for_each(|(q, m)| *q += weight * m / n as f32);
    let norm = moved
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    moved.iter_mut().for_each(|x| *x /= norm);
    let mut all: Vec<(i64, i64)> = c.semantic.iter().map(|s| (s.0, s.1)).collect();
    let near: std::collections::HashSet<i64> = all.iter().map(|a| a.0).collect();
    all.extend(
        c.keyword
            .iter()
            .filter(|k| !near.contains(&k.0))
            .map(|k| (k.0, k.1)),
    );
    c.semantic = all
        .into_iter()
        .filter_map(|(chunk, note)| Some((chunk, note, similarity(vectors, chunk, &moved)?)))
        .collect();
    c.semantic.sort_by(|a, b| b.2.total_cmp(&a.2));
}

fn note_set(
    name: &'static str,
    held_out: bool,
    source: &Path,
    queries: &Path,
    work: &Path,
    model: &Arc<dyn Embedder>,
) -> EvalSet {
    let notes = work.join("notes");
    if !notes.exists() {
        if source.join("questions.json").exists() {
            // Only the note folders (not questions.json, SOURCE.md, LICENSE).
            copy_dirs(source, &notes);
        } else {
            copy_tree(source, &notes);
        }
    }
    let queries: Vec<EvalQuery> =
        serde_json::from_str(&fs::read_to_string(queries).unwrap()).unwrap();
    let queries = queries
        .into_iter()
        .map(|q| {
            let rel = q.relevant.into_iter().map(|p| (p, 1)).collect();
            (q.query, q.kind, rel)
        })
        .collect();
    let (cases, paths) = gather(&work.join("data"), &notes, queries, model);
    EvalSet {
        name,
        held_out,
        graded: false,
        cases,
        paths,
    }
}

fn scifact_set(scifact: &Path, work: &Path, model: &Arc<dyn Embedder>) -> EvalSet {
    let notes = work.join("notes");
    if !notes.exists() {
        fs::create_dir_all(&notes).unwrap();
        for line in BufReader::new(fs::File::open(scifact.join("corpus.jsonl")).unwrap()).lines() {
            let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            fs::write(
                notes.join(format!("{}.md", v["_id"].as_str().unwrap())),
                format!(
                    "# {}\n\n{}\n",
                    v["title"].as_str().unwrap_or(""),
                    v["text"].as_str().unwrap_or("")
                ),
            )
            .unwrap();
        }
    }
    let mut texts: HashMap<String, String> = HashMap::new();
    for line in BufReader::new(fs::File::open(scifact.join("queries.jsonl")).unwrap()).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        texts.insert(
            v["_id"].as_str().unwrap().to_string(),
            v["text"].as_str().unwrap().to_string(),
        );
    }
    let mut qrels: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for line in BufReader::new(fs::File::open(scifact.join("qrels/test.tsv")).unwrap())
        .lines()
        .skip(1)
    {
        let line = line.unwrap();
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() == 3 {
            qrels
                .entry(cols[0].to_string())
                .or_default()
                .insert(format!("{}.md", cols[1]), cols[2].parse().unwrap_or(0));
        }
    }
    let mut ids: Vec<&String> = qrels.keys().collect();
    ids.sort();
    let queries = ids
        .into_iter()
        .map(|id| (texts[id].clone(), "claim".to_string(), qrels[id].clone()))
        .collect();
    let (cases, paths) = gather(&work.join("data"), &notes, queries, model);
    EvalSet {
        name: "SciFact (tuned on)",
        held_out: false,
        graded: true,
        cases,
        paths,
    }
}

fn copy_dirs(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn ndcg10(ranked: &[&str], rels: &HashMap<String, u32>) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, d)| rels.get(*d).copied().unwrap_or(0) as f64 / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<u32> = rels.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, r)| *r as f64 / (i as f64 + 2.0).log2())
        .sum();
    if idcg == 0.0 {
        0.0
    } else {
        dcg / idcg
    }
}
