//! The vector layer at 100k–1M chunks on vectors built from real MiniLM embeddings
//! (issue 12, "Vectors at 1M").
//!
//! ```text
//! cargo bench --bench vectors_scale -- WORK N --base DB [--sweep CONFIGS] [--rounds R] [--efs 64,128] [--sift]
//! ```
//! * `--base DB`: a Sift database whose embedding cache holds real
//!   `local/all-MiniLM-L6-v2` vectors (default: the path in /var/tmp/SCIFACT-READY).
//!   They are shuffled (fixed seed); a fifth (at most 1,000) is held out as the
//!   queries, the rest are the material. Each of the N vectors is the normalised
//!   sum of 2 or 3 (even odds) random material vectors with weights drawn from
//!   [0.5, 1], plus Gaussian noise of 0.01 a dimension: paragraphs recombined. The
//!   exact top-10 of each query is computed in f32 (matrix products, `gemm`).
//!   Files: `WORK/<base>/vectors-N.f32`, `queries-N.f32`, `truth-N.u32`, reused.
//! * `--sweep f16/16/64,bf16/16/64/ip`: for each storage (f32, f16, bf16, i8) /
//!   connectivity / expansion_add [/ metric: cos, the default, or ip, Sift's
//!   own over unit vectors], a plain usearch index built on every
//!   core (wall and CPU seconds), saved, then recall@10 against the exact top-10
//!   and p50/p95 latency at each `--efs` expansion_search, for k = 10 and for
//!   k = 100 (what a hybrid query asks the vector index for), and of an exact
//!   search (every vector compared: the storage's rounding alone), and in a fresh
//!   process: open as a memory-mapped view + first query, RSS after it. Every
//!   index is built first, then `--rounds R` rounds of searches alternate
//!   between them; a configuration may be listed twice (two builds).
//! * `--sift`: Sift's own path: the N vectors as chunk rows and embedding-cache rows
//!   of a real store (written once per N, kept in `WORK/<base>/sift-N`), the vector
//!   file deleted, `VectorIndex::open` rebuilding it from the cache (with the
//!   settings Sift picks for that size), then in a fresh process `Store::open` +
//!   `VectorIndex::open` + first query, RSS after the first answer, then every
//!   query for recall@10 and p50/p95, and RSS after them.

#[path = "common/cpu_time.rs"]
mod cpu_time;
#[path = "common/vector_data.rs"]
mod vector_data;
use cpu_time::cpu_seconds;
use vector_data::{dir_size, gauss, pct, read_f32, unit, write_f32};

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use rusqlite::params;
use sift::store::{decode_cached, encode_vector, Store};
use sift::vectors::VectorIndex;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

const DIMS: usize = 384;
const K: usize = 10;
/// What a hybrid query asks the vector index for (`search::fusion`'s depth).
const WIDE_K: usize = 100;
const MAX_QUERIES: usize = 1000;
const NOISE: f32 = 0.01;
const BASE_EMBEDDER: &str = "local/all-MiniLM-L6-v2";
const EMBEDDER: &str = "bench/minilm-recombined";
const PROBE_ENV: &str = "SIFT_VECSCALE_PROBE";

fn main() {
    if let Ok(spec) = std::env::var(PROBE_ENV) {
        probe(&spec);
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let positional: Vec<&String> = {
        let mut out = Vec::new();
        let mut skip = false;
        for a in &args {
            if skip {
                skip = false;
            } else if a.starts_with("--") {
                skip = !matches!(a.as_str(), "--sift" | "--bench" | "--reuse");
            } else {
                out.push(a);
            }
        }
        out
    };
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let work = PathBuf::from(
        positional
            .first()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "/var/tmp/sift-vecscale".into()),
    );
    let n: usize = positional
        .get(1)
        .map(|s| s.replace('_', "").parse().expect("N must be a number"))
        .unwrap_or(100_000);
    let base_db = flag("--base").map(PathBuf::from).unwrap_or_else(|| {
        let marker = fs::read_to_string("/var/tmp/SCIFACT-READY")
            .expect("--base DB (or /var/tmp/SCIFACT-READY naming one)");
        PathBuf::from(marker.trim())
    });
    let efs: Vec<usize> = flag("--efs")
        .unwrap_or_else(|| "64,128".into())
        .split(',')
        .map(|s| s.parse().expect("--efs 64,128"))
        .collect();

    let base = read_base(&base_db);
    let tag = format!(
        "{}-{}",
        base_db
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        base.len() / DIMS
    );
    let work = work.join(tag);
    fs::create_dir_all(&work).expect("work dir");
    let (vectors, queries, truth) = dataset(&work, &base, n);
    let nq = queries.len() / DIMS;
    println!(
        "dataset: {n} vectors from {} real MiniLM vectors of {} ({nq} held out as queries), \
         in {}",
        base.len() / DIMS,
        base_db.display(),
        work.display()
    );
    println!(
        "machine: {} cores, load {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    if let Some(configs) = flag("--sweep") {
        let rounds = flag("--rounds").map_or(1, |r| r.parse().expect("--rounds 3"));
        sweep(&work, &configs, &vectors, &queries, &truth, &efs, rounds);
    }
    if args.iter().any(|a| a == "--sift") {
        drop(vectors);
        sift_path(&work, n, &queries, &truth, &efs);
    }
}

/// The `--sweep` configurations on plain usearch: each built (in the order
/// listed), then `rounds` rounds of searches that alternate between them (on
/// a shared machine, neighbouring minutes are the fairest comparison), then a
/// fresh process per index.
fn sweep(
    work: &Path,
    configs: &str,
    vectors: &[f32],
    queries: &[f32],
    truth: &[u32],
    efs: &[usize],
    rounds: usize,
) {
    let built: Vec<(String, Index, PathBuf)> = configs
        .split(',')
        .enumerate()
        .map(|(i, config)| {
            let (index, path) = build(work, i, config, vectors);
            (config.to_string(), index, path)
        })
        .collect();
    // Scaled-i8 indexes are searched with i8 queries (each scaled to its own
    // largest component: a query's scale multiplies every score alike).
    let search_in = |config: &str, index: &Index, q: &[f32], k: usize, exact: bool| {
        let found = if config.starts_with("i8s") {
            let q = quantize(q, 127.0 / q.iter().fold(0f32, |m, x| m.max(x.abs())));
            if exact {
                index.exact_search(&q, k)
            } else {
                index.search(&q, k)
            }
        } else if exact {
            index.exact_search(q, k)
        } else {
            index.search(q, k)
        };
        found
            .expect("search")
            .keys
            .into_iter()
            .map(|k| k as u32)
            .collect::<Vec<u32>>()
    };
    let n = vectors.len() / DIMS;
    for round in 1..=rounds {
        for (config, index, path) in &built {
            let file_mb = fs::metadata(path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
            // Every vector compared with the query: what the storage's rounding
            // alone costs in recall, and the distance kernel's speed (Sift
            // searches this way up to 10k vectors).
            let (recall, p50, p95) =
                measure(|q| search_in(config, index, q, K, true), queries, truth);
            println!(
                "sweep {config} n={n} round {round}: exact search: recall@10 {recall:.4}, \
                 p50 {p50:.3} ms, p95 {p95:.3} ms"
            );
            for &ef in efs {
                index.change_expansion_search(ef);
                for k in [K, WIDE_K] {
                    let (recall, p50, p95) = measure(
                        |q| {
                            let mut keys = search_in(config, index, q, k, false);
                            keys.truncate(K);
                            keys
                        },
                        queries,
                        truth,
                    );
                    println!(
                        "sweep {config} n={n} round {round}: ef_search {ef}, k {k}: recall@10 \
                         {recall:.4}, p50 {p50:.3} ms, p95 {p95:.3} ms, file {file_mb:.0} MB"
                    );
                }
            }
        }
    }
    for (config, index, path) in built {
        drop(index);
        let probe = run_probe(
            &format!("raw:{}:{}", path.display(), efs[0]),
            work,
            queries,
            &[],
        );
        println!(
            "sweep {config} n={n}: fresh process: view {:.1} ms + first query {:.2} ms; \
             RSS after first answer {:.0} MB, after {} queries {:.0} MB",
            probe["open_ms"].as_f64().unwrap_or(0.0),
            probe["first_query_ms"].as_f64().unwrap_or(0.0),
            probe["rss_first_mb"].as_f64().unwrap_or(0.0),
            queries.len() / DIMS,
            probe["rss_all_mb"].as_f64().unwrap_or(0.0),
        );
        let _ = fs::remove_file(&path);
    }
}

/// One storage/connectivity/expansion_add configuration built on every core
/// and saved (`i`: its place in the sweep, so repeats get their own file).
fn build(work: &Path, i: usize, config: &str, vectors: &[f32]) -> (Index, PathBuf) {
    let parts: Vec<&str> = config.split('/').collect();
    // `i8sK`: i8 scaled by hand so that K standard deviations of a unit
    // vector's component (1/sqrt(dims)) reach 127, where usearch's own cast
    // scales the vector's length to 127 (MiniLM's components become about ±6).
    let i8_scale = parts[0]
        .strip_prefix("i8s")
        .map(|k| 127.0 * (DIMS as f32).sqrt() / k.parse::<f32>().expect("i8sK"));
    let quantization = match parts[0] {
        _ if i8_scale.is_some() => ScalarKind::I8,
        "f16" => ScalarKind::F16,
        "bf16" => ScalarKind::BF16,
        "i8" => ScalarKind::I8,
        "f32" => ScalarKind::F32,
        other => panic!("storage {other}: f16, bf16, i8 or f32"),
    };
    let connectivity: usize = parts[1].parse().expect("connectivity");
    let expansion_add: usize = parts[2].parse().expect("expansion_add");
    let metric = match parts.get(3).copied().unwrap_or("cos") {
        "cos" => MetricKind::Cos,
        "ip" => MetricKind::IP,
        other => panic!("metric {other}: cos or ip"),
    };
    let n = vectors.len() / DIMS;
    let index = Index::new(&IndexOptions {
        dimensions: DIMS,
        metric,
        quantization,
        connectivity,
        expansion_add,
        expansion_search: 64,
        multi: false,
    })
    .expect("index");
    index.reserve(n).expect("reserve");
    let t = Instant::now();
    let cpu = cpu_seconds();
    match i8_scale {
        Some(scale) => vectors
            .par_chunks_exact(DIMS)
            .enumerate()
            .for_each(|(i, v)| index.add(i as u64, &quantize(v, scale)).expect("add")),
        None => vectors
            .par_chunks_exact(DIMS)
            .enumerate()
            .for_each(|(i, v)| index.add(i as u64, v).expect("add")),
    }
    let build_s = t.elapsed().as_secs_f64();
    let build_cpu = cpu_seconds() - cpu;
    println!(
        "sweep {config} n={n}: build {build_s:.1} s ({:.0} adds/s), {build_cpu:.1} CPU s \
         ({:.0} adds per CPU-second), load {}",
        n as f64 / build_s,
        n as f64 / build_cpu,
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let path = work.join(format!(
        "sweep-{i}-{}-{connectivity}-{expansion_add}-{n}.usearch",
        parts[0]
    ));
    index.save(&path.to_string_lossy()).expect("save");
    (index, path)
}

/// `v` times `scale`, rounded and clamped to i8.
fn quantize(v: &[f32], scale: f32) -> Vec<i8> {
    v.iter()
        .map(|x| (x * scale).round().clamp(-127.0, 127.0) as i8)
        .collect()
}

/// Sift's own path over a real store: rebuild from the cache, then a fresh process.
fn sift_path(work: &Path, n: usize, queries: &[f32], truth: &[u32], efs: &[usize]) {
    let dir = work.join(format!("sift-{n}"));
    let filled = dir.join("FILLED");
    if !filled.exists() {
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("sift dir");
        let vectors = read_f32(&work.join(format!("vectors-{n}.f32")), n * DIMS);
        let store = Store::open(&dir.join("index.db")).expect("store");
        let t = Instant::now();
        fill_store(&store.writer(), &vectors);
        println!(
            "store rows: {n} chunks + cache rows in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        fs::write(&filled, b"").expect("marker");
    }
    let vdir = dir.join("vectors");
    let reuse = std::env::args().any(|a| a == "--reuse") && dir_size(&vdir) > 0;
    if reuse {
        println!("sift n={n}: vector file kept from the last run (--reuse)");
    } else {
        rebuild(&dir, n);
    }
    if let Ok(advice) = std::env::var("SIFT_VECSCALE_ADVICE") {
        // How much of the mapped file a run of queries makes resident, by advice.
        let file = fs::read_dir(&vdir).unwrap().next().unwrap().unwrap().path();
        for advice in advice.split(',') {
            let p = run_probe(
                &format!("advise:{}:{advice}", file.display()),
                work,
                queries,
                &[],
            );
            println!(
                "advice {advice}: first answer {:.1} ms; RSS after it {:.0} MB ({:.0} MB mapped \
                 file), after every query {:.0} MB ({:.0} MB mapped file)",
                p["first_answer_ms"].as_f64().unwrap_or(0.0),
                p["rss_first_mb"].as_f64().unwrap_or(0.0),
                p["rss_first_file_mb"].as_f64().unwrap_or(0.0),
                p["rss_all_mb"].as_f64().unwrap_or(0.0),
                p["rss_all_file_mb"].as_f64().unwrap_or(0.0),
            );
        }
    }
    // Open times vary with the machine's load: extra fresh processes, opens only.
    let repeats: usize = std::env::var("SIFT_VECSCALE_OPENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut opens = Vec::new();
    for _ in 0..repeats {
        let p = run_probe(
            &format!("sift:{}", dir.display()),
            work,
            &queries[..DIMS],
            &[],
        );
        opens.push(p["first_answer_ms"].as_f64().unwrap_or(0.0));
    }
    let probe = run_probe(&format!("sift:{}", dir.display()), work, queries, efs);
    if !opens.is_empty() {
        opens.push(probe["first_answer_ms"].as_f64().unwrap_or(0.0));
        let mut sorted = opens.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        println!(
            "sift n={n}: open to the first answer in {} fresh processes: {} ms (median {:.1} ms)",
            opens.len(),
            opens
                .iter()
                .map(|o| format!("{o:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            sorted[sorted.len() / 2]
        );
    }

    let file_mb = dir_size(&vdir) as f64 / 1e6;
    let nq = queries.len() / DIMS;
    let recall_of = |run: &serde_json::Value| {
        let hits: Vec<u32> = run["found"]
            .as_array()
            .expect("found")
            .iter()
            .map(|v| v.as_u64().unwrap_or(u64::MAX) as u32)
            .collect();
        hits.chunks(K)
            .enumerate()
            .map(|(qi, found)| {
                let exact = &truth[qi * K..(qi + 1) * K];
                found.iter().filter(|id| exact.contains(id)).count()
            })
            .sum::<usize>() as f64
            / (nq * K) as f64
    };
    let runs = probe["runs"].as_array().expect("runs").clone();
    let recall = recall_of(&runs[0]);
    println!(
        "sift n={n}: fresh process ({}): store open {:.1} ms + vector open {:.1} ms + first \
         query {:.2} ms = {:.1} ms to the first answer; RSS after it {:.0} MB ({:.0} MB private, {:.0} MB mapped \
         file; process before opening {:.0} MB); {nq} queries: recall@10 {recall:.4}, p50 {:.3} \
         ms, p95 {:.3} ms, RSS after them {:.0} MB ({:.0} MB private, {:.0} MB mapped file); \
         vector file {file_mb:.0} MB",
        probe["settings"].as_str().unwrap_or(""),
        probe["store_ms"].as_f64().unwrap_or(0.0),
        probe["open_ms"].as_f64().unwrap_or(0.0),
        probe["first_query_ms"].as_f64().unwrap_or(0.0),
        probe["first_answer_ms"].as_f64().unwrap_or(0.0),
        probe["rss_first_mb"].as_f64().unwrap_or(0.0),
        probe["rss_first_anon_mb"].as_f64().unwrap_or(0.0),
        probe["rss_first_file_mb"].as_f64().unwrap_or(0.0),
        probe["rss_baseline_mb"].as_f64().unwrap_or(0.0),
        runs[0]["p50_ms"].as_f64().unwrap_or(0.0),
        runs[0]["p95_ms"].as_f64().unwrap_or(0.0),
        probe["rss_all_mb"].as_f64().unwrap_or(0.0),
        probe["rss_all_anon_mb"].as_f64().unwrap_or(0.0),
        probe["rss_all_file_mb"].as_f64().unwrap_or(0.0),
    );
    for run in &runs[1..] {
        println!(
            "sift n={n}: expansion_search {}: recall@10 {:.4}, p50 {:.3} ms, p95 {:.3} ms",
            run["ef"],
            recall_of(run),
            run["p50_ms"].as_f64().unwrap_or(0.0),
            run["p95_ms"].as_f64().unwrap_or(0.0),
        );
    }
    let mut probe = probe;
    if let Some(runs) = probe["runs"].as_array_mut() {
        runs.iter_mut()
            .for_each(|r| r["found"] = serde_json::Value::Null);
    }
    println!(
        "RESULT {}",
        serde_json::json!({
            "n": n, "reused": reuse, "recall10": recall, "file_mb": file_mb, "probe": probe,
        })
    );
}

/// Deletes the vector file and times `VectorIndex::open` rebuilding it from the cache.
fn rebuild(dir: &Path, n: usize) {
    let vdir = dir.join("vectors");
    let _ = fs::remove_dir_all(&vdir);
    let store = Store::open(&dir.join("index.db")).expect("store");
    let t = Instant::now();
    let (index, report) = {
        let conn = store.writer();
        let last = std::cell::Cell::new(Instant::now());
        VectorIndex::open_with_progress(&vdir, EMBEDDER, DIMS, &conn, true, None, &|p| {
            if last.get().elapsed().as_secs() >= 30 {
                println!("  rebuild: {} of {} vectors", p.done, p.total);
                last.set(Instant::now());
            }
        })
        .expect("rebuild")
    };
    let build_s = t.elapsed().as_secs_f64();
    assert!(report.rebuilt && report.save_error.is_none(), "{report:?}");
    println!(
        "sift n={n}: rebuild from the cache {build_s:.1} s ({:.0} vectors/s), {}",
        n as f64 / build_s,
        index.settings_summary()
    );
}

fn run_probe(spec: &str, work: &Path, queries: &[f32], efs: &[usize]) -> serde_json::Value {
    let qpath = work.join("probe-queries.f32");
    write_f32(&qpath, queries);
    let out = Command::new(std::env::current_exe().expect("exe"))
        .env(PROBE_ENV, spec)
        .env("SIFT_VECSCALE_QUERIES", &qpath)
        .env(
            "SIFT_VECSCALE_EFS",
            efs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(","),
        )
        .output()
        .expect("probe");
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("PROBE ").map(str::to_string))
        .unwrap_or_else(|| panic!("probe failed: {}", String::from_utf8_lossy(&out.stderr)));
    serde_json::from_str(&line).expect("probe json")
}

/// Child process: open, first query, RSS; then every query at Sift's own
/// expansion_search, then at each of `SIFT_VECSCALE_EFS`.
fn probe(spec: &str) {
    let queries = read_f32(
        Path::new(&std::env::var("SIFT_VECSCALE_QUERIES").expect("queries")),
        usize::MAX / 8,
    );
    let efs: Vec<usize> = std::env::var("SIFT_VECSCALE_EFS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    let baseline = rss_mb();
    let mut out = serde_json::Map::new();
    let t = Instant::now();
    let mut raw = None;
    let mut sift = None;
    if let Some(rest) = spec.strip_prefix("raw:") {
        let (path, ef) = rest.rsplit_once(':').expect("raw:PATH:EF");
        let index = Index::new(&IndexOptions {
            dimensions: DIMS,
            metric: MetricKind::Cos,
            ..Default::default()
        })
        .expect("index");
        index.view(path).expect("view");
        index.change_expansion_search(ef.parse().expect("ef"));
        out.insert("open_ms".into(), ms(t).into());
        raw = Some(index);
    } else if let Some(rest) = spec.strip_prefix("advise:") {
        // Sift's vector file mapped here with an access advice, then viewed.
        let (path, advice) = rest.rsplit_once(':').expect("advise:PATH:ADVICE");
        let file = fs::File::open(path).expect("vector file");
        let map = unsafe { memmap2::Mmap::map(&file) }.expect("map");
        if advice == "random" {
            map.advise(memmap2::Advice::Random).expect("advise");
        }
        let tail = &map[map.len() - 12..];
        let label_len = u32::from_le_bytes(tail[..4].try_into().unwrap()) as usize;
        let label: serde_json::Value =
            serde_json::from_slice(&map[map.len() - 12 - label_len..map.len() - 12]).unwrap();
        let graph = &map[..label["graph_bytes"].as_u64().unwrap() as usize];
        let index = Index::new(&IndexOptions::from(
            Index::metadata_from_buffer(graph).unwrap(),
        ))
        .expect("index");
        unsafe { index.view_from_buffer(graph) }.expect("view");
        index.change_expansion_search(128);
        out.insert("open_ms".into(), ms(t).into());
        // The mapping outlives the index: leaked for the probe's lifetime.
        std::mem::forget(map);
        raw = Some(index);
    } else {
        let dir = PathBuf::from(spec.strip_prefix("sift:").expect("sift:DIR"));
        let store = Store::open(&dir.join("index.db")).expect("store");
        out.insert("store_ms".into(), ms(t).into());
        let t2 = Instant::now();
        let (index, report) = {
            let conn = store.writer();
            VectorIndex::open(&dir.join("vectors"), EMBEDDER, DIMS, &conn, false, None)
                .expect("index")
        };
        assert!(!report.rebuilt, "{report:?}");
        out.insert("open_ms".into(), ms(t2).into());
        out.insert("settings".into(), index.settings_summary().into());
        sift = Some((index, store));
    }
    let search = |sift: &Option<(VectorIndex, Store)>, q: &[f32]| -> Vec<u64> {
        match (&raw, sift) {
            (Some(index), _) => index.search(q, K).expect("search").keys,
            (_, Some((index, _))) => index
                .search(q, K, None)
                .expect("search")
                .into_iter()
                .map(|(id, _)| id as u64 - 1)
                .collect(),
            _ => unreachable!(),
        }
    };
    let t2 = Instant::now();
    let first = search(&sift, &queries[..DIMS]);
    out.insert("first_query_ms".into(), ms(t2).into());
    out.insert("first_answer_ms".into(), ms(t).into());
    assert_eq!(first.len(), K);
    out.insert("rss_first_mb".into(), rss_mb().into());
    out.insert("rss_first_anon_mb".into(), status_mb("RssAnon:").into());
    out.insert("rss_first_file_mb".into(), status_mb("RssFile:").into());
    out.insert("rss_baseline_mb".into(), baseline.into());
    let mut runs = Vec::new();
    for ef in std::iter::once(None).chain(efs.into_iter().map(Some)) {
        if let (Some(ef), Some((index, _))) = (ef, sift.as_mut()) {
            index.set_expansion_search(ef);
        }
        let mut lat = Vec::new();
        let mut found = Vec::new();
        for q in queries.chunks_exact(DIMS) {
            let t = Instant::now();
            let mut keys = search(&sift, q);
            lat.push(ms(t));
            keys.resize(K, u64::MAX);
            found.extend(keys);
        }
        lat.sort_by(|a, b| a.total_cmp(b));
        runs.push(serde_json::json!({
            "ef": ef, "p50_ms": pct(&lat, 50.0), "p95_ms": pct(&lat, 95.0), "found": found,
        }));
        if ef.is_none() {
            out.insert("rss_all_mb".into(), rss_mb().into());
            out.insert("rss_all_anon_mb".into(), status_mb("RssAnon:").into());
            out.insert("rss_all_file_mb".into(), status_mb("RssFile:").into());
        }
    }
    out.insert("runs".into(), runs.into());
    println!("PROBE {}", serde_json::Value::Object(out));
}

fn measure(search: impl Fn(&[f32]) -> Vec<u32>, queries: &[f32], truth: &[u32]) -> (f64, f64, f64) {
    let mut lat = Vec::new();
    let mut hits = 0usize;
    for (qi, q) in queries.chunks_exact(DIMS).enumerate() {
        let t = Instant::now();
        let found = search(q);
        lat.push(ms(t));
        let exact = &truth[qi * K..(qi + 1) * K];
        hits += found.iter().filter(|id| exact.contains(id)).count();
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let nq = queries.len() / DIMS;
    (
        hits as f64 / (nq * K) as f64,
        pct(&lat, 50.0),
        pct(&lat, 95.0),
    )
}

/// Chunk rows (ids 1..=N, one note) and their cached vectors, in one transaction.
fn fill_store(conn: &rusqlite::Connection, vectors: &[f32]) {
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
        for (i, v) in vectors.chunks_exact(DIMS).enumerate() {
            let id = i as i64 + 1;
            let mut hash = [0u8; 32];
            hash[..8].copy_from_slice(&id.to_le_bytes());
            chunk.execute(params![id, &hash[..]]).unwrap();
            cache
                .execute(params![EMBEDDER, &hash[..], encode_vector(v)])
                .unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
}

/// Every MiniLM vector in the embedding cache of `db`, in hash order.
fn read_base(db: &Path) -> Vec<f32> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("base db");
    let mut stmt = conn
        .prepare("SELECT vector FROM embed_cache WHERE embedder = ?1 ORDER BY hash")
        .expect("base query");
    let rows = stmt
        .query_map([BASE_EMBEDDER], |r| r.get::<_, Vec<u8>>(0))
        .expect("base rows");
    let mut out = Vec::new();
    for bytes in rows {
        let v = decode_cached(&bytes.expect("row"));
        assert_eq!(
            v.len(),
            DIMS,
            "base vectors must be MiniLM's 384 dimensions"
        );
        out.extend(v);
    }
    assert!(
        out.len() >= 100 * DIMS,
        "too few base vectors in {}",
        db.display()
    );
    out
}

/// Vectors, queries and exact top-10, generated once per (base, N).
fn dataset(work: &Path, base: &[f32], n: usize) -> (Vec<f32>, Vec<f32>, Vec<u32>) {
    let vpath = work.join(format!("vectors-{n}.f32"));
    let qpath = work.join(format!("queries-{n}.f32"));
    let tpath = work.join(format!("truth-{n}.u32"));
    let b = base.len() / DIMS;
    let held = (b / 5).min(MAX_QUERIES);
    if vpath.exists() && qpath.exists() && tpath.exists() {
        let v = read_f32(&vpath, n * DIMS);
        let q = read_f32(&qpath, held * DIMS);
        let t: Vec<u32> = fs::read(&tpath)
            .unwrap()
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if v.len() == n * DIMS && q.len() == held * DIMS && t.len() == held * K {
            return (v, q, t);
        }
    }
    let t = Instant::now();
    let mut rng = StdRng::seed_from_u64(0x5eed_0012);
    let mut order: Vec<usize> = (0..b).collect();
    order.shuffle(&mut rng);
    let row = |i: usize| &base[i * DIMS..(i + 1) * DIMS];
    let queries: Vec<f32> = order[..held]
        .iter()
        .flat_map(|&i| row(i).to_vec())
        .collect();
    let material = &order[held..];
    let mut vectors = Vec::with_capacity(n * DIMS);
    for _ in 0..n {
        let parts = if rng.random_bool(0.5) { 2 } else { 3 };
        let mut v = vec![0f32; DIMS];
        for _ in 0..parts {
            let src = row(material[rng.random_range(0..material.len())]);
            let w: f32 = rng.random_range(0.5..1.0);
            v.iter_mut().zip(src).for_each(|(a, x)| *a += w * x);
        }
        v.iter_mut().for_each(|a| *a += NOISE * gauss(&mut rng));
        vectors.extend(unit(v));
    }
    let truth = exact_top(&vectors, &queries);
    write_f32(&vpath, &vectors);
    write_f32(&qpath, &queries);
    let mut w = BufWriter::new(fs::File::create(&tpath).unwrap());
    for x in &truth {
        w.write_all(&x.to_le_bytes()).unwrap();
    }
    w.flush().unwrap();
    println!(
        "generated {n} vectors and the exact top-{K} of {held} queries in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    (vectors, queries, truth)
}

/// Exact top-K rows of `vectors` for each query by dot product (unit vectors:
/// cosine), as matrix products over blocks of rows.
fn exact_top(vectors: &[f32], queries: &[f32]) -> Vec<u32> {
    const BLOCK: usize = 32_768;
    let nq = queries.len() / DIMS;
    let mut best: Vec<Vec<(f32, u32)>> = vec![Vec::with_capacity(K + 1); nq];
    let mut scores = vec![0f32; nq * BLOCK];
    for (bi, block) in vectors.chunks(BLOCK * DIMS).enumerate() {
        let rows = block.len() / DIMS;
        // scores (nq x rows, row-major) = queries (nq x DIMS) * block^T (DIMS x rows)
        unsafe {
            gemm::gemm(
                nq,
                rows,
                DIMS,
                scores.as_mut_ptr(),
                1,
                rows as isize,
                false,
                queries.as_ptr(),
                1,
                DIMS as isize,
                block.as_ptr(),
                DIMS as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(0),
            );
        }
        best.par_iter_mut().enumerate().for_each(|(qi, best)| {
            for (j, &s) in scores[qi * rows..(qi + 1) * rows].iter().enumerate() {
                if best.len() < K || s > best[best.len() - 1].0 {
                    let pos = best.partition_point(|(b, _)| *b >= s);
                    best.insert(pos, (s, (bi * BLOCK + j) as u32));
                    best.truncate(K);
                }
            }
        });
    }
    best.into_iter()
        .flat_map(|b| b.into_iter().map(|(_, i)| i))
        .collect()
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn rss_mb() -> f64 {
    status_mb("VmRSS:")
}

/// A memory figure of /proc/self/status, in MB.
fn status_mb(field: &str) -> f64 {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}
