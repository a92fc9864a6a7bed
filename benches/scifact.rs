//! Search quality and speed on BEIR SciFact (figures, not pass/fail).
//!
//! ```text
//! SIFT_MODEL_DIR=... cargo bench --bench scifact -- [SCIFACT_DIR] [WORK_DIR] [--quality-only]
//! ```
//! Writes each abstract as a note (`# title` + text), indexes it with the local
//! model (the work dir keeps the embedding cache, so reruns skip embedding), then
//! prints nDCG@10 and Recall@100 of keyword, semantic and hybrid search over the
//! 300 test queries beside published references, indexing throughput with
//! embedding excluded, hybrid latency with and without query embedding, and the
//! peak memory of indexing.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use sift::embed::Embedder;
use sift::{Engine, Mode, Query, Settings};

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
            .join("sift-bench-scifact")
            .to_string_lossy()
            .into_owned()
    }));
    let model_dir = std::env::var_os("SIFT_MODEL_DIR")
        .map(PathBuf::from)
        .or_else(|| sift::model::resolve_model_dir(None))
        .expect("set SIFT_MODEL_DIR or run `sift model fetch`");

    let notes = work.join("notes");
    let (corpus_bytes, docs) = write_corpus(&scifact.join("corpus.jsonl"), &notes);
    let queries = read_queries(&scifact.join("queries.jsonl"));
    let qrels = read_qrels(&scifact.join("qrels/test.tsv"));
    println!(
        "SciFact: {docs} docs ({:.1} MB), {} test queries",
        corpus_bytes as f64 / 1e6,
        qrels.len()
    );

    // 1. Index with the real model (embedding cached in the work dir across runs).
    let model: Arc<dyn Embedder> =
        Arc::new(sift::embed::local::LocalEmbedder::load(&model_dir).expect("model loads"));
    let data = work.join("data");
    let engine = Engine::open_with(&data, Settings::default(), Some(model.clone())).unwrap();
    engine.add_folder(&notes).unwrap();
    let started = Instant::now();
    let report = engine.index(&|_| {}, &AtomicBool::new(false)).unwrap();
    println!(
        "index with local model: {:.1}s, {} chunks embedded ({:.1} chunks/s), {} from cache",
        started.elapsed().as_secs_f64(),
        report.chunks_embedded,
        report.chunks_embedded as f64 / started.elapsed().as_secs_f64().max(1e-9),
        report.chunks_from_cache
    );

    // 2. Quality, queries embedded as the app embeds them once warmed up
    // (packed weights: 8-bit products on CPUs with AVX-512 VNNI), whether
    // or not this run embedded documents.
    model.prepare_for_queries();
    println!("\n| mode | nDCG@10 | Recall@100 | reference nDCG@10 |");
    println!("| --- | --- | --- | --- |");
    let references = [
        (
            Mode::Keyword,
            "BM25 0.665 published, 0.685 measured (Python)",
        ),
        (Mode::Semantic, "all-MiniLM-L6-v2 0.645"),
        (Mode::Hybrid, "RRF of the two 0.716 (Python)"),
    ];
    for (mode, reference) in references {
        let (ndcg, recall) = evaluate(&engine, &queries, &qrels, mode);
        println!("| {mode:?} | {ndcg:.4} | {recall:.3} | {reference} |");
    }

    if std::env::args().any(|a| a == "--quality-only") {
        return;
    }

    // 3. Latency: hybrid, query embedding included (cold) then excluded (cached).
    let texts: Vec<&String> = qrels.keys().filter_map(|q| queries.get(q)).collect();
    let fresh = Engine::open_with(&data, Settings::default(), Some(model.clone())).unwrap();
    let cold = time_queries(&fresh, &texts);
    let warm = time_queries(&fresh, &texts);
    println!(
        "\nhybrid latency, query embedding included: p50 {:.2} ms, p95 {:.2} ms",
        pct(&cold, 50.0),
        pct(&cold, 95.0)
    );
    println!(
        "hybrid latency, query embedding excluded: p50 {:.2} ms, p95 {:.2} ms",
        pct(&warm, 50.0),
        pct(&warm, 95.0)
    );
    drop(fresh);
    drop(engine);

    // 4. Ingest with embedding excluded: vectors looked up from the cache.
    let lookup = Arc::new(Precomputed::load(&data.join("sift.db"), model.as_ref()));
    let ingest_data = work.join("ingest-data");
    let _ = fs::remove_dir_all(&ingest_data);
    let engine = Engine::open_with(&ingest_data, Settings::default(), Some(lookup)).unwrap();
    engine.add_folder(&notes).unwrap();
    let started = Instant::now();
    let report = engine.index(&|_| {}, &AtomicBool::new(false)).unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "\ningest, embedding excluded (scan + parse + chunk + SQLite/FTS5 + usearch): {:.2}s, {:.2} MB/s, {:.0} chunks/s",
        secs,
        corpus_bytes as f64 / 1e6 / secs,
        (report.chunks_embedded + report.chunks_from_cache) as f64 / secs
    );
    println!("peak resident memory of this process: {} MB", peak_rss_mb());
}

fn write_corpus(corpus: &Path, notes: &Path) -> (u64, usize) {
    fs::create_dir_all(notes).unwrap();
    let mut bytes = 0;
    let mut docs = 0;
    for line in BufReader::new(fs::File::open(corpus).expect("corpus.jsonl")).lines() {
        let doc: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let id = doc["_id"].as_str().unwrap();
        let text = format!(
            "# {}\n\n{}\n",
            doc["title"].as_str().unwrap_or(""),
            doc["text"].as_str().unwrap_or("")
        );
        bytes += text.len() as u64;
        docs += 1;
        let path = notes.join(format!("{id}.md"));
        if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            fs::write(path, text).unwrap();
        }
    }
    (bytes, docs)
}

fn read_queries(path: &Path) -> HashMap<String, String> {
    BufReader::new(fs::File::open(path).expect("queries.jsonl"))
        .lines()
        .map(|l| {
            let q: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
            (
                q["_id"].as_str().unwrap().to_string(),
                q["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn read_qrels(path: &Path) -> HashMap<String, HashMap<String, u32>> {
    let mut out: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for line in BufReader::new(fs::File::open(path).expect("qrels"))
        .lines()
        .skip(1)
    {
        let line = line.unwrap();
        let parts: Vec<&str> = line.split('\t').collect();
        if parts.len() == 3 {
            out.entry(parts[0].into())
                .or_default()
                .insert(parts[1].into(), parts[2].trim().parse().unwrap());
        }
    }
    out
}

fn evaluate(
    engine: &Engine,
    queries: &HashMap<String, String>,
    qrels: &HashMap<String, HashMap<String, u32>>,
    mode: Mode,
) -> (f64, f64) {
    let (mut ndcg, mut recall) = (0.0, 0.0);
    for (qid, rels) in qrels {
        let query = Query {
            mode,
            limit: 100,
            ..Query::new(queries[qid].clone())
        };
        let ranked: Vec<String> = engine
            .search(&query)
            .unwrap()
            .hits
            .iter()
            .map(|h| h.path.trim_end_matches(".md").to_string())
            .collect();
        ndcg += ndcg_at(&ranked, rels, 10);
        let found: HashSet<&String> = ranked.iter().collect();
        recall += rels.keys().filter(|d| found.contains(d)).count() as f64 / rels.len() as f64;
    }
    (ndcg / qrels.len() as f64, recall / qrels.len() as f64)
}

fn ndcg_at(ranked: &[String], rels: &HashMap<String, u32>, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| rels.get(d).copied().unwrap_or(0) as f64 / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<u32> = rels.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, r)| *r as f64 / (i as f64 + 2.0).log2())
        .sum();
    if idcg == 0.0 {
        0.0
    } else {
        dcg / idcg
    }
}

fn time_queries(engine: &Engine, texts: &[&String]) -> Vec<f64> {
    texts
        .iter()
        .map(|t| {
            let started = Instant::now();
            engine.search(&Query::new(t.as_str())).unwrap();
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

fn pct(samples: &[f64], p: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[((p / 100.0) * (s.len() - 1) as f64).round() as usize]
}

fn peak_rss_mb() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb / 1024)
}

/// Serves vectors computed earlier (from an index's embedding cache): indexing
/// speed without the model's cost.
struct Precomputed {
    id: String,
    dims: usize,
    vectors: HashMap<[u8; 32], Vec<f32>>,
}

impl Precomputed {
    fn load(db: &Path, model: &dyn Embedder) -> Precomputed {
        let conn = rusqlite::Connection::open(db).unwrap();
        let mut stmt = conn
            .prepare("SELECT hash, vector FROM embed_cache WHERE embedder = ?1")
            .unwrap();
        let vectors = stmt
            .query_map([model.id()], |r| {
                let h: Vec<u8> = r.get(0)?;
                let v: Vec<u8> = r.get(1)?;
                Ok((h.try_into().unwrap(), sift::store::decode_cached(&v)))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        Precomputed {
            id: model.id().to_string(),
            dims: model.dimensions(),
            vectors,
        }
    }
}

impl Embedder for Precomputed {
    fn id(&self) -> &str {
        &self.id
    }
    fn dimensions(&self) -> usize {
        self.dims
    }
    fn max_input_tokens(&self) -> usize {
        254
    }
    fn count_tokens(&self, text: &str) -> usize {
        sift::chunk::count_word_pieces(text)
    }
    fn embed_documents(&self, texts: &[String]) -> sift::Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|t| {
                let h: [u8; 32] = Sha256::digest(t.as_bytes()).into();
                self.vectors
                    .get(&h)
                    .cloned()
                    .unwrap_or_else(|| vec![0.0; self.dims])
            })
            .collect())
    }
    fn embed_query(&self, _text: &str) -> sift::Result<Vec<f32>> {
        Ok(vec![0.0; self.dims])
    }
}
