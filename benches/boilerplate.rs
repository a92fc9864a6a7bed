//! Template boilerplate and meaning search, on a vault of templated daily notes
//! (figures, not pass/fail).
//!
//! ```text
//! SIFT_MODEL_DIR=... cargo bench --bench boilerplate -- [SCIFACT_DIR] [WORK_DIR] [--sentences=N]
//! # or, without a release build (quality does not depend on it):
//! SIFT_MODEL_DIR=... cargo test --bench boilerplate -- [SCIFACT_DIR] [WORK_DIR]
//! ```
//! Builds 300 daily notes sharing one template (headings, prompts, an empty
//! task list), each holding the first sentences of one SciFact abstract under
//! "## Notes", plus 60 days left as the bare template. The SciFact claims whose
//! abstract is in the vault are the queries; the note holding that abstract is
//! the answer. Prints MRR@10 and Recall@10 of semantic and hybrid search with
//! boilerplate embedded (`scan.strip_boilerplate` off, as before) and left out,
//! how often a bare-template day shows up, and what turning it on costs an
//! existing index (chunks re-embedded once; a second run embeds nothing).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use sift::embed::Embedder;
use sift::{Engine, Mode, Query, Settings};

const CONTENT_DAYS: usize = 300;
const EMPTY_DAYS: usize = 60;

/// A daily note template like many Obsidian users keep (Templater / core
/// templates): the same headings and prompts every day.
const TEMPLATE_TOP: &str = "## Tasks\n- [ ] Review inbox\n- [ ] Plan tomorrow\n\n## Notes\n";
const TEMPLATE_BOTTOM: &str = "\n## Mood\nMood (1-5):\nEnergy:\nSleep:\n\n## Gratitude\nThree things I am grateful for today:\n\n## Reflection\nWhat went well today?\nWhat could have gone better?\nWhat will I do differently tomorrow?\n";

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let scifact = PathBuf::from(args.first().cloned().unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/scifact").to_string()
    }));
    let work = PathBuf::from(args.get(1).cloned().unwrap_or_else(|| {
        std::env::temp_dir()
            .join("sift-bench-boilerplate")
            .to_string_lossy()
            .into_owned()
    }));
    let model_dir = std::env::var_os("SIFT_MODEL_DIR")
        .map(PathBuf::from)
        .or_else(|| sift::model::resolve_model_dir(None))
        .expect("set SIFT_MODEL_DIR or run `sift model fetch`");
    let _ = fs::remove_dir_all(&work);

    let (notes, queries, empty) = write_vault(&scifact, &work.join("vault"));
    println!(
        "vault: {} daily notes ({} with content, {} bare template), {} queries",
        CONTENT_DAYS + EMPTY_DAYS,
        CONTENT_DAYS,
        EMPTY_DAYS,
        queries.len()
    );

    let model: Arc<dyn Embedder> =
        Arc::new(sift::embed::local::LocalEmbedder::load(&model_dir).expect("model loads"));
    let open = |data: &Path, strip: bool| {
        let engine = Engine::open_with(data, Settings::default(), Some(model.clone())).unwrap();
        // Saved: an engine reloads the settings file when it changes.
        engine
            .update_settings(|s| {
                s.scan.strip_boilerplate = strip;
                Ok(())
            })
            .unwrap();
        engine.add_folder(&notes).unwrap();
        engine
    };
    let index = |engine: &Engine| {
        let started = Instant::now();
        let r = engine.index(&|_| {}, &AtomicBool::new(false)).unwrap();
        (r, started.elapsed().as_secs_f64())
    };

    let before = open(&work.join("data-before"), false);
    let (r, secs) = index(&before);
    println!(
        "index, boilerplate embedded: {} chunks embedded in {secs:.1}s",
        r.chunks_embedded
    );
    let after = open(&work.join("data-after"), true);
    let (r, secs) = index(&after);
    println!(
        "index, boilerplate left out: {} chunks embedded in {secs:.1}s",
        r.chunks_embedded
    );

    println!("\n| mode | boilerplate | MRR@10 | Recall@10 | bare-template days in top 10 (mean) | queries whose top hit is a bare-template day |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for mode in [Mode::Semantic, Mode::Hybrid, Mode::Keyword] {
        for (label, engine) in [("embedded", &before), ("left out", &after)] {
            let m = evaluate(engine, &queries, &empty, mode);
            println!(
                "| {mode:?} | {label} | {:.4} | {:.3} | {:.2} | {} |",
                m.mrr, m.recall, m.empty_in_top, m.empty_first
            );
        }
    }

    // What turning it on costs an index built without it, and that nothing
    // is redone after.
    drop(before);
    let on = open(&work.join("data-before"), true);
    let (r, secs) = index(&on);
    println!(
        "\nturning it on over an existing index: {} chunks re-embedded ({} from cache) in {secs:.1}s",
        r.chunks_embedded, r.chunks_from_cache
    );
    let (r, _) = index(&on);
    println!(
        "the next run: {} chunks embedded, {} notes read again",
        r.chunks_embedded, r.notes_indexed
    );
    drop(on);
    let off = open(&work.join("data-before"), false);
    let (r, _) = index(&off);
    println!(
        "turning it off again: {} chunks embedded (vectors of the whole text still cached)",
        r.chunks_embedded
    );
}

struct Metrics {
    mrr: f64,
    recall: f64,
    empty_in_top: f64,
    empty_first: usize,
}

fn evaluate(engine: &Engine, queries: &Queries, empty: &HashSet<String>, mode: Mode) -> Metrics {
    let (mut mrr, mut recall, mut empty_in_top, mut empty_first) = (0.0, 0.0, 0usize, 0);
    for (text, relevant) in queries {
        let results = engine
            .search(&Query {
                text: text.clone(),
                mode,
                limit: 10,
                ..Query::default()
            })
            .unwrap();
        let paths: Vec<&str> = results.hits.iter().map(|h| h.path.as_str()).collect();
        if let Some(rank) = paths.iter().position(|p| relevant.contains(*p)) {
            mrr += 1.0 / (rank + 1) as f64;
        }
        recall += paths.iter().filter(|p| relevant.contains(**p)).count() as f64
            / relevant.len().min(10) as f64;
        empty_in_top += paths.iter().filter(|p| empty.contains(**p)).count();
        if paths.first().is_some_and(|p| empty.contains(*p)) {
            empty_first += 1;
        }
    }
    let n = queries.len().max(1) as f64;
    Metrics {
        mrr: mrr / n,
        recall: recall / n,
        empty_in_top: empty_in_top as f64 / n,
        empty_first,
    }
}

/// Queries with the paths of their relevant notes.
type Queries = Vec<(String, HashSet<String>)>;

/// Writes the vault; returns its folder, the queries, and the paths of the
/// bare-template days.
fn write_vault(scifact: &Path, vault: &Path) -> (PathBuf, Queries, HashSet<String>) {
    // Claims and the abstracts they are about (test and train).
    let mut qrels: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for split in ["test", "train"] {
        let file = fs::File::open(scifact.join(format!("qrels/{split}.tsv"))).expect("qrels");
        for line in BufReader::new(file).lines().skip(1) {
            let line = line.unwrap();
            let mut cols = line.split('\t');
            let (q, d) = (cols.next().unwrap(), cols.next().unwrap());
            qrels.entry(d.to_string()).or_default().push(q.to_string());
        }
    }
    let wanted: Vec<&String> = qrels.keys().take(CONTENT_DAYS).collect();
    let wanted_set: HashSet<&str> = wanted.iter().map(|s| s.as_str()).collect();
    let mut abstracts: HashMap<String, String> = HashMap::new();
    let corpus = fs::File::open(scifact.join("corpus.jsonl")).expect("corpus.jsonl");
    for line in BufReader::new(corpus).lines() {
        let doc: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let id = doc["_id"].as_str().unwrap();
        if wanted_set.contains(id) {
            abstracts.insert(id.to_string(), doc["text"].as_str().unwrap().to_string());
        }
    }
    let mut claims: HashMap<String, String> = HashMap::new();
    let file = fs::File::open(scifact.join("queries.jsonl")).expect("queries.jsonl");
    for line in BufReader::new(file).lines() {
        let q: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        claims.insert(
            q["_id"].as_str().unwrap().to_string(),
            q["text"].as_str().unwrap().to_string(),
        );
    }

    let daily = vault.join("Daily");
    fs::create_dir_all(&daily).unwrap();
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let mut relevant: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    let mut empty = HashSet::new();
    let mut docs = wanted.iter();
    for day in 0..CONTENT_DAYS + EMPTY_DAYS {
        let date = start + chrono::Days::new(day as u64);
        let rel = format!("Daily/{date}.md");
        // Every sixth day is left as the bare template.
        let doc = if day % 6 == 5 && empty.len() < EMPTY_DAYS {
            None
        } else {
            docs.next()
        };
        let content = match doc {
            Some(id) => {
                for q in &qrels[*id] {
                    relevant.entry(q.clone()).or_default().insert(rel.clone());
                }
                first_sentences(&abstracts[*id], sentences()).join("\n") + "\n"
            }
            None => {
                empty.insert(rel.clone());
                String::new()
            }
        };
        fs::write(
            vault.join(&rel),
            format!("# {date}\n\n{TEMPLATE_TOP}{content}{TEMPLATE_BOTTOM}"),
        )
        .unwrap();
    }
    let queries = relevant
        .into_iter()
        .filter_map(|(q, paths)| claims.get(&q).map(|text| (text.clone(), paths)))
        .collect();
    (vault.to_path_buf(), queries, empty)
}

/// Sentences of each abstract a day holds (`--sentences=N`, default 3).
fn sentences() -> usize {
    std::env::args()
        .find_map(|a| a.strip_prefix("--sentences=").and_then(|n| n.parse().ok()))
        .unwrap_or(3)
}

fn first_sentences(text: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while out.len() < n {
        match rest.find(". ") {
            Some(i) => {
                out.push(rest[..=i].trim().to_string());
                rest = &rest[i + 2..];
            }
            None => {
                if !rest.trim().is_empty() {
                    out.push(rest.trim().to_string());
                }
                break;
            }
        }
    }
    out
}
