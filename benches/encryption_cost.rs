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

use sift::{Engine, Mode, Query, Settings};

#[path = "common/stand_in.rs"]
mod stand_in;
use stand_in::{arg, write_scifact, RandomVectors};

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
    let _bytes = write_scifact(&scifact.join("corpus.jsonl"), &notes);
    let queries = read_queries(&scifact.join("queries.jsonl"));

    let mut index_secs = [0.0f64; 3];
    for (i, kind) in KINDS.into_iter().enumerate() {
        let encrypted = kind == Kind::Encrypted;
        let data = data_dir(&work, kind);
        let _ = fs::remove_dir_all(&data);
        if kind == Kind::PlainFts5 {
            // A file where the keyword folder would be: the fast index cannot
            // open, FTS5 answers, as it does in an encrypted folder.
            fs::create_dir_all(&data).unwrap();
            fs::write(data.join("keywords"), b"not a folder").unwrap();
        }
        let started = Instant::now();
        let engine = open(&data, encrypted);
        engine.add_folder(&notes).unwrap();
        let report = engine.index(&|_| {}, &AtomicBool::new(false)).unwrap();
        index_secs[i] = started.elapsed().as_secs_f64();
        assert_eq!(engine.status().unwrap().encrypted, encrypted);
        println!(
            "{}: indexed {} notes, {} chunks in {:.2} s",
            label(kind),
            report.notes_indexed,
            report.chunks_embedded + report.chunks_from_cache,
            index_secs[i]
        );
    }
    println!(
        "indexing (embedding excluded): encrypted / plain = {:.2}x, encrypted / plain with FTS5 = {:.2}x",
        index_secs[2] / index_secs[0],
        index_secs[2] / index_secs[1]
    );

    // Alternating rounds: open, then every query in each mode.
    let modes = [Mode::Keyword, Mode::Semantic, Mode::Hybrid];
    let mut opens: [Vec<Duration>; 3] = Default::default();
    let mut latency: [[Vec<Duration>; 3]; 3] = Default::default();
    for _round in 0..3 {
        for (i, kind) in KINDS.into_iter().enumerate() {
            let started = Instant::now();
            let engine = open(&data_dir(&work, kind), kind == Kind::Encrypted);
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
        "open to first answer p50: plain {:.1} ms, plain with FTS5 {:.1} ms, encrypted {:.1} ms",
        ms(pct(&mut opens[0], 0.5)),
        ms(pct(&mut opens[1], 0.5)),
        ms(pct(&mut opens[2], 0.5))
    );
    println!(
        "{:<9} {:>17} {:>17} {:>17} {:>10} {:>10}",
        "mode", "plain p50/p95", "plain FTS5", "encrypted", "enc/plain", "enc/FTS5"
    );
    for (m, mode) in modes.iter().enumerate() {
        let mut cells = Vec::new();
        let mut p50s = Vec::new();
        for kind in &mut latency {
            let (p50, p95) = (pct(&mut kind[m], 0.5), pct(&mut kind[m], 0.95));
            cells.push(format!("{:.2}/{:.2} ms", ms(p50), ms(p95)));
            p50s.push(p50.as_secs_f64());
        }
        println!(
            "{:<9} {:>17} {:>17} {:>17} {:>9.2}x {:>9.2}x",
            format!("{mode:?}").to_lowercase(),
            cells[0],
            cells[1],
            cells[2],
            p50s[2] / p50s[0],
            p50s[2] / p50s[1]
        );
    }
    println!("(plain: keywords from the tantivy index; plain FTS5 and encrypted: from SQLite's FTS5, so enc/FTS5 is what SQLCipher itself costs)");
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    PlainFts5,
    Encrypted,
}

const KINDS: [Kind; 3] = [Kind::Plain, Kind::PlainFts5, Kind::Encrypted];

fn label(kind: Kind) -> &'static str {
    match kind {
        Kind::Plain => "plain",
        Kind::PlainFts5 => "plain-fts5",
        Kind::Encrypted => "encrypted",
    }
}

fn data_dir(work: &Path, kind: Kind) -> PathBuf {
    work.join(format!("data-{}", label(kind)))
}

fn open(data: &Path, encrypted: bool) -> Engine {
    let settings = Settings {
        encrypt_at_rest: encrypted,
        ..Settings::load(data).unwrap_or_default()
    };
    Engine::open_with(data, settings, Some(Arc::new(RandomVectors::default()))).unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
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
