//! Indexing throughput with embedding excluded: scan, read, parse, chunk, SQLite
//! rows, keyword index, embedding cache and vector adds, on SciFact and on a
//! generated vault of Markdown notes. Figures, not pass/fail.
//!
//! ```text
//! cargo bench --bench ingest -- [--scifact DIR] [--generated N] [--work DIR] [--only scifact|generated] [--real-vectors DB]
//! ```
//!
//! The embedder hands back a pseudo-random unit vector per text (seeded by the
//! text), so vectors are still cached and added to the HNSW index; the time
//! spent inside it is measured and reported apart. With `--real-vectors DB` it
//! hands back real MiniLM vectors from the embedding cache of the Sift
//! database DB instead (the cached vector of the same text, else a mix of
//! cached ones): real vectors are clustered, pseudo-random unit vectors are
//! HNSW's hardest case, so the vector adds cost differently. Each vault is indexed into a
//! fresh data folder; stage 1 (every note keyword-searchable, through FTS5) and
//! stage 2 (vectors; the fast keyword index catches up beside it) are timed from
//! the progress reports.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sift::{Engine, Phase, Settings};

#[path = "common/cpu_time.rs"]
mod cpu_time;
#[path = "common/stand_in.rs"]
mod stand_in;
use cpu_time::cpu_seconds;
use stand_in::{arg, write_if_changed, write_scifact, RandomVectors, RealVectors};

fn main() {
    let scifact = PathBuf::from(arg("--scifact").unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/scifact").to_string()
    }));
    let work = PathBuf::from(arg("--work").unwrap_or_else(|| {
        std::env::temp_dir()
            .join("sift-bench-ingest")
            .to_string_lossy()
            .into_owned()
    }));
    let generated: usize = arg("--generated").map_or(50_000, |n| n.parse().unwrap());
    let only = arg("--only");
    let sentences = scifact_sentences(&scifact.join("corpus.jsonl"));

    println!(
        "load average: {}",
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    if only.as_deref() != Some("generated") {
        let notes = work.join("scifact-notes");
        let bytes = write_scifact(&scifact.join("corpus.jsonl"), &notes);
        run("SciFact", &notes, bytes, &work.join("scifact-data"));
    }
    if only.as_deref() != Some("scifact") {
        let notes = work.join(format!("generated-{generated}"));
        let bytes = write_generated(&sentences, generated, &notes);
        run(
            &format!("generated {generated} notes"),
            &notes,
            bytes,
            &work.join("generated-data"),
        );
    }
}

fn run(name: &str, notes: &Path, bytes: u64, data: &Path) {
    let _ = fs::remove_dir_all(data);
    let embedder = Arc::new(RandomVectors {
        real: arg("--real-vectors").map(|db| RealVectors::from_db(Path::new(&db))),
        ..Default::default()
    });
    let engine = Engine::open_with(data, Settings::default(), Some(embedder.clone())).unwrap();
    engine.add_folder(notes).unwrap();
    let stage1_end = Mutex::new(None);
    let started = Instant::now();
    let cpu_started = cpu_seconds();
    let progress = |p: &sift::Progress| {
        if p.phase == Phase::Embedding {
            stage1_end
                .lock()
                .unwrap()
                .get_or_insert_with(|| (Instant::now(), cpu_seconds()));
        }
    };
    let report = engine.index(&progress, &AtomicBool::new(false)).unwrap();
    let total = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_started;
    let (stage1, cpu1) = stage1_end
        .into_inner()
        .unwrap()
        .map_or((total, cpu), |(t, c)| {
            ((t - started).as_secs_f64(), c - cpu_started)
        });
    let embed = embedder.nanos.load(Ordering::Relaxed) as f64 / 1e9;
    let excluded = total - embed;
    let chunks = report.chunks_embedded + report.chunks_from_cache;
    let mb = bytes as f64 / 1e6;
    println!(
        "{name}: {} notes, {mb:.1} MB, {chunks} chunks: {total:.2} s total, {embed:.2} s in the stand-in embedder",
        report.notes_indexed
    );
    if let Some(real) = &embedder.real {
        println!(
            "  real MiniLM vectors: {} cached for the same text, {} mixed from cached ones",
            real.hits.load(Ordering::Relaxed),
            real.mixed.load(Ordering::Relaxed)
        );
    }
    println!(
        "  embedding excluded: {excluded:.2} s = {:.2} MB/s, {:.0} chunks/s",
        mb / excluded,
        chunks as f64 / excluded
    );
    println!(
        "  stage 1 (scan, parse, chunk, rows, FTS5): {stage1:.2} s = {:.2} MB/s; stage 2 (fast keyword index, cache, vector adds, save): {:.2} s",
        mb / stage1,
        excluded - stage1
    );
    // On a shared machine wall time depends on the others' load; the CPU time
    // this process used (all threads, embedder included) does much less.
    println!(
        "  CPU time: {cpu:.2} s = {:.2} MB per CPU-second; stage 1 {cpu1:.2} s, stage 2 {:.2} s",
        mb / (cpu - embed),
        cpu - cpu1
    );
}

fn scifact_sentences(corpus: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for line in BufReader::new(fs::File::open(corpus).expect("corpus.jsonl")).lines() {
        let doc: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        for s in doc["text"].as_str().unwrap_or("").split(". ") {
            if s.len() > 20 {
                out.push(format!("{}.", s.trim_end_matches('.')));
            }
        }
    }
    out
}

/// A vault of `n` notes written the way people write notes: front matter on
/// some, headings, paragraphs, lists, links, tags, now and then code, in 40
/// folders; sentences from SciFact abstracts, note sizes from a few lines to
/// a few pages. Deterministic.
fn write_generated(sentences: &[String], n: usize, dir: &Path) -> u64 {
    let mut rng = StdRng::seed_from_u64(13);
    let mut bytes = 0;
    let words = [
        "idea", "project", "reading", "meeting", "lab", "draft", "todo", "review",
    ];
    for i in 0..n {
        let folder = dir.join(format!("area-{:02}", i % 40));
        fs::create_dir_all(&folder).unwrap();
        let sentence = |rng: &mut StdRng| sentences[rng.random_range(0..sentences.len())].clone();
        let mut text = String::new();
        let title: String = sentence(&mut rng).chars().take(60).collect();
        if rng.random_bool(0.3) {
            text.push_str(&format!(
                "---\ntitle: \"{}\"\ntags: [{}, {}]\ndate: 2026-{:02}-{:02}\n---\n",
                title.replace('"', ""),
                words[rng.random_range(0..words.len())],
                words[rng.random_range(0..words.len())],
                rng.random_range(1..13),
                rng.random_range(1..29)
            ));
        }
        text.push_str(&format!("# {title}\n\n"));
        let sections = match rng.random_range(0..10) {
            0..=5 => 1,
            6..=8 => 2,
            _ => 4 + rng.random_range(0..5),
        };
        for s in 0..sections {
            if s > 0 {
                text.push_str(&format!(
                    "## {}\n\n",
                    sentence(&mut rng).chars().take(40).collect::<String>()
                ));
            }
            for _ in 0..rng.random_range(1..4) {
                for _ in 0..rng.random_range(1..5) {
                    text.push_str(&sentence(&mut rng));
                    text.push(' ');
                }
                if rng.random_bool(0.2) {
                    text.push_str(&format!(
                        "See [[note-{}]] #{}",
                        rng.random_range(0..n),
                        words[rng.random_range(0..words.len())]
                    ));
                }
                text.push_str("\n\n");
            }
            if rng.random_bool(0.3) {
                for _ in 0..rng.random_range(2..6) {
                    text.push_str(&format!("- {}\n", sentence(&mut rng)));
                }
                text.push('\n');
            }
            if rng.random_bool(0.05) {
                text.push_str(
                    "```python\nfor row in rows:\n    print(row['id'], row['score'])\n```\n\n",
                );
            }
        }
        bytes += text.len() as u64;
        write_if_changed(&folder.join(format!("note-{i}.md")), &text);
    }
    bytes
}
