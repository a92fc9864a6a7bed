//! What encryption at rest costs: SciFact (5,183 notes) indexed into a plain
//! and into an encrypted data folder (embedding excluded: a stand-in embedder
//! hands back a seeded vector per text), then the open time and keyword,
//! semantic and hybrid search latency of each, in alternating rounds so the
//! machine's noise falls on both. Figures, not pass/fail. Needs a keychain
//! for the data key: run inside scripts/with-keyring.sh.
//!
//! ```text
//! scripts/with-keyring.sh cargo bench --bench encryption_cost -- [--scifact DIR] [--work DIR]
//! ```

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sift::embed::{normalize, Embedder};
use sift::{Engine, Mode, Query, Settings};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let scifact = PathBuf::from(arg("--scifact").unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/scifact").to_string()
    }));
    let work = PathBuf::from(arg("--work").unwrap_or_else(|| {
        std::env::temp_dir()
            .join("sift-bench-encryption")
            .to_string_lossy()
            .into_owned()
    }));
    println!(
        "load average: {}",
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let notes = work.join("notes");
    write_scifact(&scifact.join("corpus.jsonl"), &notes);
    let queries = read_queries(&scifact.join("queries.jsonl"));

    let mut index_secs = [0.0f64; 2];
    for (i, encrypted) in [false, true].into_iter().enumerate() {
        let data = data_dir(&work, encrypted);
        let _ = fs::remove_dir_all(&data);
        let started = Instant::now();
        let engine = open(&data, encrypted);
        engine.add_folder(&notes).unwrap();
        let report = engine.index(&|_| {}, &AtomicBool::new(false)).unwrap();
        index_secs[i] = started.elapsed().as_secs_f64();
        assert_eq!(engine.status().unwrap().encrypted, encrypted);
        println!(
            "{}: indexed {} notes, {} chunks in {:.2} s",
            label(encrypted),
            report.notes_indexed,
            report.chunks_embedded + report.chunks_from_cache,
            index_secs[i]
        );
    }
    println!(
        "indexing (embedding excluded): encrypted / plain = {:.2}x",
        index_secs[1] / index_secs[0]
    );

    // Alternating rounds: open, then every query in each mode.
    let modes = [Mode::Keyword, Mode::Semantic, Mode::Hybrid];
    let mut opens: [Vec<Duration>; 2] = Default::default();
    let mut latency: [[Vec<Duration>; 3]; 2] = Default::default();
    for _round in 0..3 {
        for (i, encrypted) in [false, true].into_iter().enumerate() {
            let started = Instant::now();
            let engine = open(&data_dir(&work, encrypted), encrypted);
            engine
                .search(&Query::new("first answer after open"))
                .unwrap();
            opens[i].push(started.elapsed());
            for (m, mode) in modes.iter().enumerate() {
                for q in &queries {
                    let query = Query {
                        mode: *mode,
                        ..Query::new(q)
                    };
                    let t = Instant::now();
                    engine.search(&query).unwrap();
                    latency[i][m].push(t.elapsed());
                }
            }
        }
    }
    println!(
        "open to first answer: plain p50 {:.1} ms, encrypted p50 {:.1} ms",
        ms(pct(&mut opens[0], 0.5)),
        ms(pct(&mut opens[1], 0.5))
    );
    println!(
        "{:<9} {:>11} {:>11} {:>15} {:>15} {:>7}",
        "mode", "plain p50", "plain p95", "encrypted p50", "encrypted p95", "ratio"
    );
    for (m, mode) in modes.iter().enumerate() {
        let (p50, p95) = (pct(&mut latency[0][m], 0.5), pct(&mut latency[0][m], 0.95));
        let (e50, e95) = (pct(&mut latency[1][m], 0.5), pct(&mut latency[1][m], 0.95));
        println!(
            "{:<9} {:>8.2} ms {:>8.2} ms {:>12.2} ms {:>12.2} ms {:>6.2}x",
            format!("{mode:?}").to_lowercase(),
            ms(p50),
            ms(p95),
            ms(e50),
            ms(e95),
            e50.as_secs_f64() / p50.as_secs_f64()
        );
    }
    println!("(the plain folder's keywords come from the tantivy index, the encrypted one's from FTS5 inside the encrypted database)");
}

fn label(encrypted: bool) -> &'static str {
    if encrypted {
        "encrypted"
    } else {
        "plain"
    }
}

fn data_dir(work: &Path, encrypted: bool) -> PathBuf {
    work.join(format!("data-{}", label(encrypted)))
}

fn open(data: &Path, encrypted: bool) -> Engine {
    let settings = Settings {
        encrypt_at_rest: encrypted,
        ..Settings::load(data).unwrap_or_default()
    };
    Engine::open_with(data, settings, Some(Arc::new(RandomVectors))).unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A pseudo-random unit vector per text, seeded by the text.
struct RandomVectors;

impl Embedder for RandomVectors {
    fn id(&self) -> &str {
        "bench/random"
    }
    fn dimensions(&self) -> usize {
        384
    }
    fn max_input_tokens(&self) -> usize {
        254
    }
    fn count_tokens(&self, text: &str) -> usize {
        sift::chunk::count_word_pieces(text)
    }
    fn embed_documents(&self, texts: &[String]) -> sift::Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| random_vector(t)).collect())
    }
    fn embed_query(&self, text: &str) -> sift::Result<Vec<f32>> {
        Ok(random_vector(text))
    }
}

fn random_vector(text: &str) -> Vec<f32> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    let mut rng = StdRng::seed_from_u64(h.finish());
    let mut v: Vec<f32> = (0..384).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    normalize(&mut v);
    v
}

fn write_scifact(corpus: &Path, notes: &Path) {
    fs::create_dir_all(notes).unwrap();
    for line in BufReader::new(fs::File::open(corpus).expect("corpus.jsonl")).lines() {
        let doc: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let text = format!(
            "# {}\n\n{}\n",
            doc["title"].as_str().unwrap_or(""),
            doc["text"].as_str().unwrap_or("")
        );
        let path = notes.join(format!("{}.md", doc["_id"].as_str().unwrap()));
        if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            fs::write(path, text).unwrap();
        }
    }
}

fn read_queries(path: &Path) -> Vec<String> {
    BufReader::new(fs::File::open(path).expect("queries.jsonl"))
        .lines()
        .map(|l| {
            let q: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
            q["text"].as_str().unwrap().to_string()
        })
        .take(300)
        .collect()
}
