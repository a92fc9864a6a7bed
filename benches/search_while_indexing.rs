//! Hybrid search latency while an index run embeds with the local model, beside
//! the same queries on the idle engine. Figures, not pass/fail.
//!
//! ```text
//! SIFT_MODEL_DIR=... cargo bench --bench search_while_indexing -- [--scifact DIR] [--first N] [--more M] [--cpu all|half|one] [--other-process]
//! ```
//!
//! The first N SciFact abstracts are indexed (with vectors), then 100 SciFact
//! queries are timed three times over on the idle engine (query embedding included: each timed
//! query is new to the engine); then M more abstracts are added and indexed
//! while the same queries run in a loop beside it; only queries that ran while
//! chunks were being embedded count. With `--other-process` the M notes are
//! indexed by `sift index` in another process on the same data folder instead.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use sift::embed::Embedder;
use sift::{CpuShare, Engine, Phase, Query, Settings};

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
    let first: usize = arg("--first").map_or(300, |n| n.parse().unwrap());
    let more: usize = arg("--more").map_or(600, |n| n.parse().unwrap());
    let cpu = match arg("--cpu").as_deref() {
        Some("half") => CpuShare::Half,
        Some("one") => CpuShare::One,
        _ => CpuShare::All,
    };
    let model_dir = std::env::var_os("SIFT_MODEL_DIR")
        .map(PathBuf::from)
        .or_else(|| sift::model::resolve_model_dir(None))
        .expect("set SIFT_MODEL_DIR or run `sift model fetch`");
    let model: Arc<dyn Embedder> =
        Arc::new(sift::embed::local::LocalEmbedder::load(&model_dir).expect("model loads"));

    let work = tempfile::tempdir().unwrap();
    let (a, b) = (work.path().join("a"), work.path().join("b"));
    write_notes(&scifact.join("corpus.jsonl"), &a, 0, first);
    write_notes(&scifact.join("corpus.jsonl"), &b, first, more);
    let queries = read_queries(&scifact.join("queries.jsonl"), 100);

    let settings = Settings {
        indexing_cpu: cpu,
        ..Settings::default()
    };
    let engine = Engine::open_with(&work.path().join("data"), settings, Some(model)).unwrap();
    engine.add_folder(&a).unwrap();
    engine.index(&|_| {}, &AtomicBool::new(false)).unwrap();
    println!(
        "load average: {}",
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    // Every timed query is new to the engine (a pass number is added), so its
    // embedding is part of its time, idle and busy alike.
    time_one(&engine, "warm up");
    // Three passes: a p95 of 100 samples moves by a millisecond run to run.
    let idle: Vec<f64> = (0..3)
        .flat_map(|pass| queries.iter().map(move |q| format!("{q} idle{pass}")))
        .map(|q| time_one(&engine, &q))
        .collect();

    if std::env::args().any(|a| a == "--other-process") {
        return beside_another_process(&engine, &work.path().join("data"), &b, &queries, &idle);
    }

    // While indexing the second folder.
    engine.add_folder(&b).unwrap();
    let embedding = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let mut busy = Vec::new();
    let mut chunks = 0;
    let mut secs = 0.0;
    std::thread::scope(|s| {
        let indexer = s.spawn(|| {
            let started = Instant::now();
            let progress = |p: &sift::Progress| {
                if p.phase == Phase::Embedding {
                    embedding.store(true, Ordering::SeqCst);
                }
            };
            let report = engine.index(&progress, &AtomicBool::new(false)).unwrap();
            done.store(true, Ordering::SeqCst);
            (report.chunks_embedded, started.elapsed().as_secs_f64())
        });
        let mut pass = 0;
        while !done.load(Ordering::SeqCst) {
            pass += 1;
            for q in &queries {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                // Only what runs beside embedding counts.
                if embedding.load(Ordering::SeqCst) {
                    busy.push(time_one(&engine, &format!("{q} {pass}")));
                } else {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
        (chunks, secs) = indexer.join().unwrap();
    });
    println!(
        "indexing cpu share {cpu:?}: {chunks} chunks embedded in {secs:.1} s ({:.1} chunks/s) while searching",
        chunks as f64 / secs
    );
    report(&idle, &busy);
}

/// The same queries while `sift index` runs in another process on the same
/// data folder (the app searching while `sift watch` or the CLI indexes).
/// Queries in the child's first second (model load, stage 1) are left out.
fn beside_another_process(
    engine: &Engine,
    data: &Path,
    more: &Path,
    queries: &[String],
    idle: &[f64],
) {
    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sift"))
        .arg("index")
        .arg(more)
        .arg("--data-dir")
        .arg(data)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sift index starts");
    let mut busy = Vec::new();
    let mut pass = 0;
    'outer: loop {
        pass += 1;
        for q in queries {
            if child.try_wait().unwrap().is_some() {
                break 'outer;
            }
            let t = time_one(engine, &format!("{q} {pass}"));
            if started.elapsed().as_secs_f64() > 1.0 {
                busy.push(t);
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("another process indexed for {secs:.1} s while this one searched");
    report(idle, &busy);
}

fn report(idle: &[f64], busy: &[f64]) {
    println!(
        "hybrid latency idle:           p50 {:.1} ms, p95 {:.1} ms ({} queries)",
        pct(idle, 50.0),
        pct(idle, 95.0),
        idle.len()
    );
    println!(
        "hybrid latency while indexing: p50 {:.1} ms, p95 {:.1} ms ({} queries)",
        pct(busy, 50.0),
        pct(busy, 95.0),
        busy.len()
    );
    println!(
        "while indexing: p99 {:.1} ms, max {:.1} ms (idle: p99 {:.1} ms, max {:.1} ms)",
        pct(busy, 99.0),
        pct(busy, 100.0),
        pct(idle, 99.0),
        pct(idle, 100.0)
    );
    println!(
        "p95 while indexing / idle: {:.2}",
        pct(busy, 95.0) / pct(idle, 95.0)
    );
}

fn time_one(engine: &Engine, q: &str) -> f64 {
    let started = Instant::now();
    engine.search(&Query::new(q)).unwrap();
    started.elapsed().as_secs_f64() * 1000.0
}

fn pct(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[((p / 100.0) * (s.len() - 1) as f64).round() as usize]
}

fn write_notes(corpus: &Path, dir: &Path, skip: usize, take: usize) {
    fs::create_dir_all(dir).unwrap();
    let lines = BufReader::new(fs::File::open(corpus).expect("corpus.jsonl")).lines();
    for line in lines.skip(skip).take(take) {
        let doc: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let text = format!(
            "# {}\n\n{}\n",
            doc["title"].as_str().unwrap_or(""),
            doc["text"].as_str().unwrap_or("")
        );
        fs::write(
            dir.join(format!("{}.md", doc["_id"].as_str().unwrap())),
            text,
        )
        .unwrap();
    }
}

fn read_queries(path: &Path, n: usize) -> Vec<String> {
    BufReader::new(fs::File::open(path).expect("queries.jsonl"))
        .lines()
        .take(n)
        .map(|l| {
            let q: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
            q["text"].as_str().unwrap().to_string()
        })
        .collect()
}
