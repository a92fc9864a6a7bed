//! Export and import of a Sift archive, measured at N chunks (default 10,000
//! and 100,000): time, file size, peak memory (resident set high-water mark,
//! reset before each step: memory must stay flat as N grows), the size
//! vectors take as base64 (what the format writes) against JSON float arrays
//! (the alternative the format was chosen over), and a Qdrant export.
//!
//! The index is synthetic (no model needed): 5 chunks a note, ~600 bytes of
//! text a chunk, 384-dimension unit vectors (all-MiniLM-L6-v2's size).
//!
//! ```text
//! cargo bench --bench archive_export -- [N ...] [--dir DIR]
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sift::archive::{self, ExportFormat, ImportOptions, PeerFormat};
use sift::{Engine, Settings};

const DIMS: usize = 384;
const EMBEDDER: &str = "bench/random-384";

fn main() {
    let mut sizes = Vec::new();
    let mut dir = std::env::temp_dir().join("sift-bench-archive");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dir" => dir = PathBuf::from(args.next().expect("a folder after --dir")),
            "--bench" => {}
            n => sizes.push(n.parse::<usize>().expect("N: a number of chunks")),
        }
    }
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000];
    }
    println!("| chunks | export s | archive MB | export peak MB | vectors b64 MB | vectors float-array MB | import s | import peak MB | qdrant export s | qdrant MB |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("data");
        let (b64, floats) = build(&data, n);
        let engine = Engine::open_with(&data, Settings::default(), None).unwrap();
        let file = dir.join("index.jsonl");
        reset_peak();
        let started = Instant::now();
        let report = archive::export(&engine, &file, ExportFormat::Sift, None, &|_| {}).unwrap();
        let export_s = started.elapsed().as_secs_f64();
        let export_peak = peak_mb();
        let qdrant = dir.join("qdrant.jsonl");
        let started = Instant::now();
        let q = archive::export(
            &engine,
            &qdrant,
            ExportFormat::Peer(PeerFormat::Qdrant),
            Some(EMBEDDER),
            &|_| {},
        )
        .unwrap();
        let qdrant_s = started.elapsed().as_secs_f64();
        drop(engine);
        let imported = dir.join("imported");
        reset_peak();
        let started = Instant::now();
        archive::import(
            &imported,
            &file,
            &ImportOptions {
                embedder: Some((EMBEDDER.into(), DIMS)),
                ..ImportOptions::default()
            },
            &|_| {},
        )
        .unwrap();
        let import_s = started.elapsed().as_secs_f64();
        let import_peak = peak_mb();
        println!(
            "| {n} | {export_s:.1} | {:.0} | {export_peak:.0} | {:.0} | {:.0} | {import_s:.1} | {import_peak:.0} | {qdrant_s:.1} | {:.0} |",
            report.bytes as f64 / 1e6,
            b64 as f64 / 1e6,
            floats as f64 / 1e6,
            q.bytes as f64 / 1e6,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A data folder of `n` chunks with vectors; returns the bytes the vectors
/// take as base64 and as JSON float arrays.
fn build(data: &Path, n: usize) -> (u64, u64) {
    std::fs::create_dir_all(data).unwrap();
    let store = sift::store::Store::open(&data.join(sift::data_dir::DB_FILE)).unwrap();
    let mut conn = store.writer();
    let tx = conn.transaction().unwrap();
    let mut rng = StdRng::seed_from_u64(15);
    let words = [
        "garden",
        "river",
        "compiler",
        "invoice",
        "meeting",
        "recipe",
        "travel",
        "kernel",
        "budget",
        "poem",
        "sourdough",
        "deploy",
        "harbour",
        "violin",
        "tax",
        "lecture",
    ];
    tx.execute(
        "INSERT INTO roots(id, path) VALUES (1, '/home/me/notes')",
        [],
    )
    .unwrap();
    let (mut b64, mut floats) = (0u64, 0u64);
    for i in 0..n {
        let note = (i / 5) as i64 + 1;
        if i % 5 == 0 {
            tx.execute(
                "INSERT INTO notes(id, root_id, rel_path, ext, size, mtime_ns, content_hash,
                                   title, state, indexed_at)
                 VALUES (?1, 1, ?2, 'md', 3000, 1700000000000000000, ?3, ?4, 'indexed', 1700000000)",
                rusqlite::params![note, format!("folder{}/note{note}.md", note % 50), [7u8; 32], format!("Note {note}")],
            )
            .unwrap();
        }
        let body: Vec<&str> = (0..90)
            .map(|_| words[rng.random_range(0..words.len())])
            .collect();
        let body = body.join(" ");
        let mut hash = [0u8; 32];
        rng.fill(&mut hash);
        tx.execute(
            "INSERT INTO chunks(note_id, seq, byte_start, byte_end, line_start, line_end,
                                heading_path, context, embed_prefix, body, embed_hash)
             VALUES (?1, ?2, 0, 600, 1, 12, '[\"Note\",\"Section\"]', 'Note > Section', 'Note', ?3, ?4)",
            rusqlite::params![note, (i % 5) as i64, body, &hash[..]],
        )
        .unwrap();
        let mut v: Vec<f32> = (0..DIMS).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        sift::store::tables::put_vectors(&tx, EMBEDDER, &[(hash, v.as_slice())]).unwrap();
        b64 += sift::archive::encode_vector(&v).len() as u64;
        floats += serde_json::to_string(&v).unwrap().len() as u64;
    }
    tx.commit().unwrap();
    (b64, floats)
}

/// Resets the resident-set high-water mark (Linux).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
