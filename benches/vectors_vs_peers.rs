//! Sift's vector layer on synthetic, precomputed vectors (peers: scripts/bench_peers.sh).
//!
//! ```text
//! cargo bench --bench vectors_vs_peers -- [WORK_DIR] [N]
//! ```
//! Generates N clustered unit vectors of 384 dimensions (deterministic: 1000 random
//! centroids + Gaussian noise, like sentence embeddings) and 1,000 queries drawn the
//! same way, writes them to `WORK_DIR/vectors-N.f32` and `WORK_DIR/queries-N.f32`
//! (f32 little-endian, row after row; reused if present) and the exact top-10 of each
//! query (`truth-N.u32`, 0-based row numbers, brute force in f32). Then it builds a
//! `sift::vectors::VectorIndex` (f16, cosine, M 16, ef_add 128; batches of 128 added
//! on all cores, as the indexer does) over a real store and
//! prints ingest rate, query latency p50/p95/p99 at k=10, recall@10 at expansion_search
//! 64 (the default) and 128, and, in a fresh process, open time + first query and
//! resident memory. The last line, `RESULT {json}`, is what the peer script reads.

#[path = "common/vector_data.rs"]
mod vector_data;
use vector_data::{dir_size, gauss, pct, read_f32, unit, write_f32};

use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use rusqlite::params;
use sift::store::{encode_vector, Store};
use sift::vectors::VectorIndex;

const DIMS: usize = 384;
const CENTROIDS: usize = 1000;
const QUERIES: usize = 1000;
const K: usize = 10;
/// Per-dimension noise: two members of a cluster have cosine about 0.5, a member and
/// its centroid about 0.7 — near what MiniLM gives for related passages.
const NOISE: f32 = 0.05;
const EMBEDDER: &str = "bench/synthetic-384";
const PROBE_ENV: &str = "SIFT_VECBENCH_PROBE";

fn main() {
    if let Ok(dir) = std::env::var(PROBE_ENV) {
        probe(Path::new(&dir));
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let work = PathBuf::from(args.first().cloned().unwrap_or_else(|| {
        std::env::temp_dir()
            .join("sift-bench-vectors")
            .to_string_lossy()
            .into_owned()
    }));
    let n: usize = args
        .get(1)
        .map(|s| s.replace('_', "").parse().expect("N must be a number"))
        .unwrap_or(10_000);
    fs::create_dir_all(&work).expect("work dir");

    let (vectors, queries, truth) = dataset(&work, n);
    println!(
        "dataset: {n} vectors, {QUERIES} queries, {DIMS} dims in {}",
        work.display()
    );

    // A fresh store and index for each run.
    let dir = work.join(format!("sift-{n}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("sift dir");
    let store = Store::open(&dir.join("index.db")).expect("store");
    let conn = store.writer();
    let vdir = dir.join("vectors");
    let (mut index, _) =
        VectorIndex::open(&vdir, EMBEDDER, DIMS, &conn, true, None).expect("index");

    // Ingest: the index alone (what `sift index` does after embedding), then its save.
    let rss_before = rss_kb();
    let t = Instant::now();
    // In batches of 128, as the indexer adds each embedded batch (on all cores).
    let rows: Vec<(i64, &[f32])> = vectors
        .chunks_exact(DIMS)
        .enumerate()
        .map(|(i, v)| (i as i64 + 1, v))
        .collect();
    for batch in rows.chunks(128) {
        index.add_many(batch).expect("add");
    }
    let add_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    index.save(&conn).expect("save");
    let save_s = t.elapsed().as_secs_f64();
    let ingest_s = add_s + save_s;
    let rss_built = rss_kb();

    // The store side of the same vectors (embedding cache + chunk rows): SQLite is the
    // source of truth, and open() checks the index against it.
    let t = Instant::now();
    fill_store(&conn, &vectors, n);
    let store_s = t.elapsed().as_secs_f64();
    // The file records the store generation it matches: save it again at the
    // generation the filled store reached, so opening it needs no catch-up.
    index.save(&conn).expect("save at the store's generation");
    println!(
        "ingest: add {add_s:.2} s + save {save_s:.2} s = {:.0} vectors/s (index); \
         store rows {store_s:.2} s; with store {:.0} vectors/s",
        n as f64 / ingest_s,
        n as f64 / (ingest_s + store_s)
    );

    // Latency and recall at two search expansions.
    let mut runs = Vec::new();
    for ef in [64usize, 128] {
        index.set_expansion_search(ef);
        for q in queries.chunks_exact(DIMS).take(50) {
            index.search(q, K, None).expect("warm-up");
        }
        let mut lat = Vec::with_capacity(QUERIES);
        let mut hits = 0usize;
        for (qi, q) in queries.chunks_exact(DIMS).enumerate() {
            let t = Instant::now();
            let found = index.search(q, K, None).expect("search");
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            let exact = &truth[qi * K..(qi + 1) * K];
            hits += found
                .iter()
                .filter(|(id, _)| exact.contains(&((*id - 1) as u32)))
                .count();
        }
        lat.sort_by(|a, b| a.total_cmp(b));
        let recall = hits as f64 / (QUERIES * K) as f64;
        let (p50, p95, p99) = (pct(&lat, 50.0), pct(&lat, 95.0), pct(&lat, 99.0));
        println!(
            "search ef={ef}: p50 {p50:.3} ms  p95 {p95:.3} ms  p99 {p99:.3} ms  recall@10 {recall:.4}"
        );
        runs.push(serde_json::json!({
            "ef": ef, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "recall10": recall,
        }));
    }
    drop(index);
    drop(conn);
    drop(store);

    // Open + first query + memory, in a fresh process (this one holds the dataset).
    let out = Command::new(std::env::current_exe().expect("exe"))
        .env(PROBE_ENV, &dir)
        .env("SIFT_VECBENCH_QUERY", work.join(format!("queries-{n}.f32")))
        .output()
        .expect("probe");
    let probe_line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("PROBE ").map(str::to_string))
        .unwrap_or_else(|| panic!("probe failed: {}", String::from_utf8_lossy(&out.stderr)));
    let probe: serde_json::Value = serde_json::from_str(&probe_line).expect("probe json");
    let file_mb = dir_size(&vdir) as f64 / 1e6;
    println!(
        "open (fresh process): store + index {:.1} ms, first query {:.2} ms, total {:.1} ms; \
         RSS {:.1} MB (baseline {:.1} MB), index files {file_mb:.1} MB",
        probe["open_ms"].as_f64().unwrap_or(0.0),
        probe["first_query_ms"].as_f64().unwrap_or(0.0),
        probe["open_first_ms"].as_f64().unwrap_or(0.0),
        probe["rss_mb"].as_f64().unwrap_or(0.0),
        probe["rss_baseline_mb"].as_f64().unwrap_or(0.0),
    );
    println!(
        "in-process RSS: {:.1} MB before ingest, {:.1} MB after (includes the f32 dataset)",
        rss_before as f64 / 1024.0,
        rss_built as f64 / 1024.0
    );
    let result = serde_json::json!({
        "system": "sift", "n": n, "dims": DIMS,
        "ingest_s": ingest_s, "ingest_vps": n as f64 / ingest_s,
        "add_s": add_s, "save_s": save_s, "store_rows_s": store_s,
        "ingest_with_store_vps": n as f64 / (ingest_s + store_s),
        "search": runs, "probe": probe, "index_file_mb": file_mb,
    });
    let _ = fs::write(work.join(format!("sift-{n}.json")), result.to_string());
    println!("RESULT {result}");
}

/// Child process: open the store and the saved index, run one query, report memory.
fn probe(dir: &Path) {
    let baseline = rss_kb();
    let qpath = std::env::var("SIFT_VECBENCH_QUERY").expect("query file");
    let q = read_f32(Path::new(&qpath), DIMS);
    let t = Instant::now();
    let store = Store::open(&dir.join("index.db")).expect("store");
    let conn = store.writer();
    let (index, report) =
        VectorIndex::open(&dir.join("vectors"), EMBEDDER, DIMS, &conn, false, None).expect("index");
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let t2 = Instant::now();
    let hits = index.search(&q, K, None).expect("search");
    let first_ms = t2.elapsed().as_secs_f64() * 1e3;
    let total_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(hits.len(), K);
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    println!(
        "PROBE {}",
        serde_json::json!({
            "open_ms": open_ms, "first_query_ms": first_ms, "open_first_ms": total_ms,
            "rss_mb": field("VmRSS:"), "hwm_mb": field("VmHWM:"),
            "rss_baseline_mb": baseline as f64 / 1024.0,
            "rebuilt": report.rebuilt, "vectors": index.len(),
        })
    );
}

fn fill_store(conn: &rusqlite::Connection, vectors: &[f32], n: usize) {
    conn.execute_batch("BEGIN").unwrap();
    conn.execute("INSERT INTO roots(id, path) VALUES (1, '/bench')", [])
        .unwrap();
    conn.execute(
        "INSERT INTO notes(id, root_id, rel_path, ext, size, mtime_ns, state)
         VALUES (1, 1, 'bench.md', 'md', 0, 0, 'indexed')",
        [],
    )
    .unwrap();
    {
        let mut chunk = conn
            .prepare(
                "INSERT INTO chunks(id, note_id, seq, byte_start, byte_end, line_start, line_end,
                                    heading_path, context, embed_prefix, body, embed_hash)
                 VALUES (?1, 1, ?1, 0, 0, 1, 1, '[]', '', '', '', ?2)",
            )
            .unwrap();
        let mut cache = conn
            .prepare("INSERT INTO embed_cache(embedder, hash, vector) VALUES (?1, ?2, ?3)")
            .unwrap();
        for (i, v) in vectors.chunks_exact(DIMS).enumerate().take(n) {
            let id = i as i64 + 1;
            let hash = id.to_le_bytes();
            chunk.execute(params![id, &hash[..]]).unwrap();
            cache
                .execute(params![EMBEDDER, &hash[..], encode_vector(v)])
                .unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
}

/// Vectors, queries and exact top-10, generated once per (work dir, N).
fn dataset(work: &Path, n: usize) -> (Vec<f32>, Vec<f32>, Vec<u32>) {
    let vpath = work.join(format!("vectors-{n}.f32"));
    let qpath = work.join(format!("queries-{n}.f32"));
    let tpath = work.join(format!("truth-{n}.u32"));
    if vpath.exists() && qpath.exists() && tpath.exists() {
        let v = read_f32(&vpath, n * DIMS);
        let q = read_f32(&qpath, QUERIES * DIMS);
        let mut bytes = Vec::new();
        fs::File::open(&tpath)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        let t = bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect::<Vec<_>>();
        if v.len() == n * DIMS && q.len() == QUERIES * DIMS && t.len() == QUERIES * K {
            return (v, q, t);
        }
    }
    let t = Instant::now();
    let mut rng = StdRng::seed_from_u64(0x05ee_d384);
    let centroids: Vec<f32> = (0..CENTROIDS)
        .flat_map(|_| unit((0..DIMS).map(|_| gauss(&mut rng)).collect()))
        .collect();
    let sample = |rng: &mut StdRng| {
        let c = rng.random_range(0..CENTROIDS);
        let base = &centroids[c * DIMS..(c + 1) * DIMS];
        unit(base.iter().map(|x| x + NOISE * gauss(rng)).collect())
    };
    let vectors: Vec<f32> = (0..n).flat_map(|_| sample(&mut rng)).collect();
    let queries: Vec<f32> = (0..QUERIES).flat_map(|_| sample(&mut rng)).collect();
    let truth: Vec<u32> = queries
        .par_chunks_exact(DIMS)
        .flat_map_iter(|q| exact_top(&vectors, q))
        .collect();
    write_f32(&vpath, &vectors);
    write_f32(&qpath, &queries);
    let mut w = BufWriter::new(fs::File::create(&tpath).unwrap());
    for x in &truth {
        w.write_all(&x.to_le_bytes()).unwrap();
    }
    w.flush().unwrap();
    println!(
        "generated dataset and exact top-{K} in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    (vectors, queries, truth)
}

/// Exact top-k rows by dot product (vectors are unit length: cosine).
fn exact_top(vectors: &[f32], q: &[f32]) -> Vec<u32> {
    let mut best: Vec<(f32, u32)> = Vec::with_capacity(K + 1);
    for (i, v) in vectors.chunks_exact(DIMS).enumerate() {
        let s: f32 = v.iter().zip(q).map(|(a, b)| a * b).sum();
        if best.len() < K || s > best[best.len() - 1].0 {
            let pos = best.partition_point(|(b, _)| *b >= s);
            best.insert(pos, (s, i as u32));
            best.truncate(K);
        }
    }
    best.into_iter().map(|(_, i)| i).collect()
}

fn rss_kb() -> u64 {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
