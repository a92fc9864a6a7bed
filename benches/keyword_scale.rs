//! Keyword engines compared in one run (figures, not pass/fail): SQLite FTS5
//! (the source of truth) and the tantivy keyword index, on the same terms.
//!
//! ```text
//! cargo bench --bench keyword_scale -- [SCIFACT_DIR] [WORK_DIR] [--sizes=10000,100000]
//!     [--fts-queries=N] [--no-startup] [--real-vectors=DB] [--hybrid-only=SECONDS]
//!     [--warm=SETTLE_SECONDS]
//! ```
//! `--fts-queries=N` times FTS5 on the first N queries only (0: not at all;
//! at 1M chunks one FTS5 query takes seconds).
//! 1. Quality: SciFact indexed by the engine (keyword only), nDCG@10 of each
//!    engine over the 300 test queries.
//! 2. Scale: corpora of N chunks recombined from SciFact's real sentences (a
//!    note title, then 3-7 sentences drawn from the whole corpus), written
//!    straight into a real store; keyword search latency (p50/p95, ranking,
//!    title boosts, coverage and snippets included) for both engines over
//!    the SciFact queries, plus hybrid latency with the query vector given
//!    (query embedding excluded) over synthetic clustered vectors. Build
//!    times and index sizes are printed beside.
//!
//! `--real-vectors=DB` gives the chunks real MiniLM vectors instead (corpus
//! folders `scale-N-real`, the same text): each chunk's vector is the
//! normalised sum of the cached vectors of the SciFact documents its title and
//! sentences come from (weights drawn from [0.5, 1], noise of 0.01 a
//! dimension), read from a database whose cache holds SciFact embedded by the
//! local model (the fusion lab's); the hybrid rows' query vectors are the
//! claims embedded by the local model (`SIFT_MODEL_DIR`). The synthetic
//! vectors are near-random (HNSW's hardest case): a walk through them costs
//! about twice one through real embeddings.
//!
//! `--warm=S` reads the vector file and keyword index through into the page
//! cache after opening them and the notes table once (what the app does),
//! then waits S seconds
//! before searching: run after dropping the page cache to see what it saves.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};
use sift::keyword_index::{CommonWords, KeywordIndex};
use sift::search::keyword::keyword_chunks;
use sift::search::meaning_fill::MeaningFill;
use sift::search::{candidates, rank_notes, terms::Terms, Filters, Mode};
use sift::store::{tables, Store};
use sift::text::index_terms;
use sift::vectors::VectorIndex;
use sift::{Engine, Settings};

const DIMS: usize = 384;
/// Synthetic vectors are filed under the local model's name, so a `sift
/// search` process on the folder (the startup figure) searches them with a
/// real query embedding.
const SYNTHETIC_EMBEDDER: &str = sift::embed::local::MODEL_ID;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let sizes: Vec<usize> = std::env::args()
        .find_map(|a| a.strip_prefix("--sizes=").map(str::to_string))
        .unwrap_or_else(|| "10000,100000".to_string())
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    let scifact = PathBuf::from(args.first().cloned().unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/scifact").to_string()
    }));
    let work = PathBuf::from(args.get(1).cloned().unwrap_or_else(|| {
        std::env::temp_dir()
            .join("sift-bench-keywords")
            .to_string_lossy()
            .into_owned()
    }));
    fs::create_dir_all(&work).unwrap();
    let docs = read_corpus(&scifact.join("corpus.jsonl"));
    let queries = read_queries(&scifact.join("queries.jsonl"));
    let qrels = read_qrels(&scifact.join("qrels/test.tsv"));
    let test_queries: Vec<(&String, &String)> = queries
        .iter()
        .filter(|(id, _)| qrels.contains_key(*id))
        .collect();

    if !std::env::args().any(|a| a.starts_with("--hybrid-only=")) {
        quality(&work, &docs, &test_queries, &qrels);
    }
    let texts: Vec<&str> = test_queries.iter().map(|(_, t)| t.as_str()).collect();
    let options = Options {
        fts_queries: std::env::args().find_map(|a| {
            a.strip_prefix("--fts-queries=")
                .and_then(|n| n.parse().ok())
        }),
        startup: !std::env::args().any(|a| a == "--no-startup"),
        keyword_only: std::env::args().any(|a| a == "--keyword-only"),
        hybrid_only_for: std::env::args().find_map(|a| {
            a.strip_prefix("--hybrid-only=")
                .and_then(|s| s.parse().ok())
        }),
        real_vectors: std::env::args()
            .find_map(|a| a.strip_prefix("--real-vectors=").map(PathBuf::from))
            .map(|db| doc_vectors(&db, &docs)),
    };
    println!("machine: {}", load_average());
    for n in sizes {
        scale(&work, &docs, &texts, n, &options);
        println!("  machine: {}", load_average());
    }
}

struct Options {
    /// FTS5 is timed on this many queries (None: all of them).
    fts_queries: Option<usize>,
    /// Time fresh `sift search` processes.
    startup: bool,
    /// Time the keyword index's search alone (for `perf stat`), then stop.
    keyword_only: bool,
    /// Run hybrid searches for this many seconds, then stop (for `perf record`).
    hybrid_only_for: Option<f64>,
    /// Each SciFact document's real MiniLM vector (by position in the corpus),
    /// when chunks get real vectors.
    real_vectors: Option<Vec<Option<Vec<f32>>>>,
}

/// Each document's vector (the normalised mean of its chunks' vectors) from
/// the embedding cache of a database that indexed SciFact with the local
/// model, notes named `<doc id>.md`.
fn doc_vectors(db: &Path, docs: &[Doc]) -> Vec<Option<Vec<f32>>> {
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("database with SciFact's vectors");
    let mut stmt = conn
        .prepare(
            "SELECT n.rel_path, e.vector FROM chunks c JOIN notes n ON n.id = c.note_id
             JOIN embed_cache e ON e.hash = c.embed_hash AND e.embedder = ?1",
        )
        .unwrap();
    let mut sums: HashMap<String, Vec<f32>> = HashMap::new();
    let rows = stmt
        .query_map([sift::embed::local::MODEL_ID], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .unwrap();
    for row in rows {
        let (path, bytes) = row.unwrap();
        let v = sift::store::decode_cached(&bytes);
        let id = path.trim_end_matches(".md").to_string();
        let sum = sums.entry(id).or_insert_with(|| vec![0.0; v.len()]);
        sum.iter_mut().zip(&v).for_each(|(s, x)| *s += x);
    }
    let found: Vec<Option<Vec<f32>>> = docs.iter().map(|d| sums.remove(&d.id).map(unit)).collect();
    let have = found.iter().filter(|v| v.is_some()).count();
    assert!(
        have * 10 >= docs.len() * 9,
        "{} holds vectors for only {have} of {} SciFact documents",
        db.display(),
        docs.len()
    );
    println!(
        "real vectors: {have} SciFact documents' MiniLM vectors from {}",
        db.display()
    );
    found
}

/// The query vector of the `q`-th query run, `text`: synthetic ones cycle,
/// real ones are the text's own embedding.
enum QueryVectors {
    Synthetic(Vec<Vec<f32>>),
    Real(HashMap<String, Vec<f32>>),
}

impl QueryVectors {
    fn get(&self, q: usize, text: &str) -> &[f32] {
        match self {
            QueryVectors::Synthetic(all) => &all[q % all.len()],
            QueryVectors::Real(by_text) => &by_text[text],
        }
    }
}

/// CPU time used by this process so far (all threads), in milliseconds.
fn cpu_ms() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 * 1000.0 + t.tv_nsec as f64 / 1e6
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| {
            format!(
                "load average {}",
                l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
            )
        })
        .unwrap_or_default()
}

struct Doc {
    id: String,
    title: String,
    text: String,
}

/// nDCG@10 of both engines on SciFact as the engine indexes it.
fn quality(
    work: &Path,
    docs: &[Doc],
    queries: &[(&String, &String)],
    qrels: &HashMap<String, HashMap<String, u32>>,
) {
    let notes = work.join("scifact-notes");
    if !notes.exists() {
        fs::create_dir_all(&notes).unwrap();
        for d in docs {
            fs::write(
                notes.join(format!("{}.md", d.id)),
                format!("# {}\n\n{}\n", d.title, d.text),
            )
            .unwrap();
        }
    }
    let data = work.join("scifact-data");
    let engine = Engine::open_with(&data, Settings::default(), None).unwrap();
    engine.add_folder(&notes).unwrap();
    let started = Instant::now();
    engine
        .index(&|_| {}, &AtomicBool::new(false))
        .expect("index SciFact");
    println!(
        "SciFact indexed (keyword only) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let fast = KeywordIndex::open(&data.join("keywords")).unwrap();
    let store = engine.store();
    assert!(store.read(|c| fast.is_current(c)).unwrap(), "index current");
    println!(
        "\nSciFact keyword nDCG@10 ({} test queries):",
        queries.len()
    );
    for (name, engine_index) in [("FTS5", None), ("tantivy", Some(&fast))] {
        let mut total = 0.0;
        for (qid, text) in queries {
            let hits = store
                .read(|c| {
                    rank_notes(
                        c,
                        engine_index,
                        None,
                        None,
                        &Terms::parse(text),
                        &Filters::default(),
                        Mode::Keyword,
                        100,
                        0.5,
                    )
                })
                .unwrap();
            let ranked: Vec<String> = hits
                .iter()
                .map(|h| h.path.trim_end_matches(".md").to_string())
                .collect();
            total += ndcg_at(&ranked, &qrels[*qid], 10);
        }
        println!("  {name:<8} {:.4}", total / queries.len() as f64);
    }
}

/// Latency of both engines at `n` chunks of recombined real text.
fn scale(work: &Path, docs: &[Doc], queries: &[&str], n: usize, options: &Options) {
    let real = options.real_vectors.as_deref();
    let dir = work.join(match real {
        Some(_) => format!("scale-{n}-real"),
        None => format!("scale-{n}"),
    });
    let db = dir.join("sift.db");
    let fresh = !db.exists();
    fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&db).unwrap();
    if fresh {
        let started = Instant::now();
        let bytes = fill_store(&store.writer(), docs, n, real);
        println!(
            "\n{n} chunks: store written in {:.1} s ({:.0} MB of text)",
            started.elapsed().as_secs_f64(),
            bytes as f64 / 1e6
        );
    } else {
        println!("\n{n} chunks: store reused from {}", dir.display());
    }
    // The corpus is written in transactions of 50k chunks, which leave a WAL
    // of hundreds of MB that read-only connections never checkpoint: every
    // page a search reads was looked up in it (a tenth of a hybrid query's
    // time under `perf`). An app's indexer commits note by note and SQLite
    // checkpoints every 1000 pages, so its WAL stays small: so does this one.
    let wal = fs::metadata(dir.join("sift.db-wal")).map_or(0, |m| m.len());
    store
        .writer()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    if wal > 0 {
        println!("  WAL of {:.0} MB checkpointed", wal as f64 / 1e6);
    }
    let started = Instant::now();
    let mut fast = KeywordIndex::open(&dir.join("keywords")).unwrap();
    let added = store.read(|c| fast.catch_up(c)).unwrap();
    println!(
        "  tantivy: caught up {added} chunks in {:.1} s, index {:.0} MB; FTS5 + store {:.0} MB",
        started.elapsed().as_secs_f64(),
        dir_size(&dir.join("keywords")) as f64 / 1e6,
        fs::metadata(&db).map(|m| m.len()).unwrap_or(0) as f64 / 1e6,
    );
    if options.keyword_only {
        keyword_index_alone(&mut fast, queries);
        return;
    }
    let started = Instant::now();
    // Opened on the writer's connection, so a rebuilt graph is saved: later
    // runs map the file as the app does instead of building it again
    // (minutes at 100k).
    let (vectors, opened) = VectorIndex::open(
        &dir.join("vectors"),
        SYNTHETIC_EMBEDDER,
        DIMS,
        &store.writer(),
        true,
        None,
    )
    .unwrap();
    println!(
        "  vectors: {} opened in {:.1} s{}",
        vectors.len(),
        started.elapsed().as_secs_f64(),
        opened
            .save_error
            .map(|e| format!(" (not saved: {e})"))
            .unwrap_or_default()
    );
    if let Some(settle) = std::env::args().find_map(|a| {
        a.strip_prefix("--warm=")
            .and_then(|s| s.parse::<f64>().ok())
    }) {
        // What a long-lived process does after opening (Engine::warm_up).
        let mut files = vec![vectors.file_path().to_path_buf()];
        files.extend(
            fs::read_dir(dir.join("keywords"))
                .unwrap()
                .filter_map(|e| Some(e.ok()?.path())),
        );
        let started = Instant::now();
        let done = sift::page_cache::prefetch(&files);
        let read = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let notes = store.read(tables::read_every_note).unwrap();
        println!(
            "  page cache: {} files, {} MB read through in {read:.2} s{}, {notes} notes' rows \
             in {:.2} s; then {settle} s settle",
            done.files,
            done.bytes >> 20,
            done.skipped
                .map(|s| format!(" (skipped: {s})"))
                .unwrap_or_default(),
            started.elapsed().as_secs_f64(),
        );
        std::thread::sleep(std::time::Duration::from_secs_f64(settle));
    }
    // A process's second search reads every chunk's note into memory (the
    // first looks them up): what that costs once.
    let started = Instant::now();
    store.read(|c| vectors.notes_of_chunks(c, &[])).unwrap();
    let first = started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    store.read(|c| vectors.notes_of_chunks(c, &[])).unwrap();
    println!(
        "  chunk notes: first look-up {first:.1} ms, read into memory at the second in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    // The first 100 test queries, after 20 unmeasured ones warm the caches.
    let measured = &queries[..queries.len().min(100)];
    let query_vectors = if real.is_some() {
        let model_dir = std::env::var_os("SIFT_MODEL_DIR")
            .expect("--real-vectors embeds the queries: set SIFT_MODEL_DIR");
        let model = sift::embed::local::LocalEmbedder::load(Path::new(&model_dir)).expect("model");
        QueryVectors::Real(
            measured
                .iter()
                .map(|t| {
                    let v = sift::embed::Embedder::embed_query(&model, t).expect("embeds");
                    (t.to_string(), v)
                })
                .collect(),
        )
    } else {
        let mut rng = StdRng::seed_from_u64(7);
        let centers = centers(docs.len());
        QueryVectors::Synthetic(
            queries
                .iter()
                .map(|_| noisy(&centers[rng.random_range(0..centers.len())], &mut rng))
                .collect(),
        )
    };
    // CPU time of each measured query (every thread of the process): what a
    // search costs whatever else the machine runs; wall time is what waits.
    let cpu_samples = std::cell::RefCell::new(Vec::new());
    let run_on = |measured: &[&str], fast: Option<&KeywordIndex>, mode: Mode| -> Vec<f64> {
        cpu_samples.borrow_mut().clear();
        let mut samples = Vec::new();
        let warm_up = measured.iter().take(20).map(|t| (false, t));
        for (q, (keep, text)) in warm_up
            .chain(measured.iter().map(|t| (true, t)))
            .enumerate()
        {
            let terms = Terms::parse(text);
            let qv = query_vectors.get(q, text);
            let t = Instant::now();
            let cpu = cpu_ms();
            store
                .read(|c| {
                    rank_notes(
                        c,
                        fast,
                        Some(&vectors),
                        Some(qv),
                        &terms,
                        &Filters::default(),
                        mode,
                        10,
                        0.5,
                    )
                })
                .unwrap();
            if keep {
                samples.push(t.elapsed().as_secs_f64() * 1000.0);
                cpu_samples.borrow_mut().push(cpu_ms() - cpu);
            }
        }
        samples
    };
    let run = |fast: Option<&KeywordIndex>, mode: Mode| run_on(measured, fast, mode);
    let fts_measured = &measured[..options
        .fts_queries
        .unwrap_or(measured.len())
        .min(measured.len())];
    let report = |label: &str, mut s: Vec<f64>| {
        if s.is_empty() {
            println!("  {label:<22} not measured");
            return f64::NAN;
        }
        s.sort_by(f64::total_cmp);
        let p = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
        let mut cpu = cpu_samples.borrow().clone();
        cpu.sort_by(f64::total_cmp);
        println!(
            "  {label:<22} p50 {:>7.2} ms  p95 {:>7.2} ms  (CPU p50 {:.2} ms)",
            p(0.5),
            p(0.95),
            cpu[cpu.len() / 2]
        );
        p(0.5)
    };
    if let Some(seconds) = options.hybrid_only_for {
        let started = Instant::now();
        let mut runs = 0;
        while started.elapsed().as_secs_f64() < seconds {
            report("hybrid, tantivy", run(Some(&fast), Mode::Hybrid));
            runs += 1;
        }
        println!("  {runs} runs of the hybrid queries");
        return;
    }
    let fts_label = |mode: &str| {
        if fts_measured.len() < measured.len() {
            format!("{mode}, FTS5 ({} q)", fts_measured.len())
        } else {
            format!("{mode}, FTS5")
        }
    };
    let kw_fts = report(
        &fts_label("keyword"),
        run_on(fts_measured, None, Mode::Keyword),
    );
    let kw_fast = report("keyword, tantivy", run(Some(&fast), Mode::Keyword));
    let hy_fts = report(
        &fts_label("hybrid"),
        run_on(fts_measured, None, Mode::Hybrid),
    );
    let hy_fast = report("hybrid, tantivy", run(Some(&fast), Mode::Hybrid));
    let sem = report("semantic only", run(None, Mode::Semantic));
    println!(
        "  ratios (FTS5 / tantivy, p50): keyword {:.1}x, hybrid {:.1}x; semantic alone {:.2} ms",
        kw_fts / kw_fast,
        hy_fts / hy_fast,
        sem
    );
    stages(&store, &fast, &vectors, measured, &query_vectors);
    drop((vectors, fast, store));
    engine_search(&dir, measured);
    if options.startup {
        startup(&dir, measured);
    }
}

/// `Engine::search` as the app and the CLI call it, with the local model:
/// each query the first time (its embedding included), then again (the
/// engine remembers recent query vectors: embedding excluded, every other
/// cost of a search included: the index freshness checks, fusion, snippets).
fn engine_search(dir: &Path, queries: &[&str]) {
    let Some(model_dir) = std::env::var_os("SIFT_MODEL_DIR") else {
        println!("  engine search: skipped (set SIFT_MODEL_DIR)");
        return;
    };
    let model = std::sync::Arc::new(
        sift::embed::local::LocalEmbedder::load(Path::new(&model_dir)).expect("model"),
    );
    let engine = Engine::open(dir, Some(model.clone())).expect("engine opens");
    let search = |text: &str| {
        let t = Instant::now();
        let found = engine
            .search(&sift::search::Query::new(text))
            .expect("search");
        assert_eq!(found.mode, Mode::Hybrid, "{:?}", found.warning);
        t.elapsed().as_secs_f64() * 1000.0
    };
    // Warm the caches with queries the figures do not use.
    let (warm, measured) = queries.split_at(20.min(queries.len() / 5));
    warm.iter().for_each(|t| {
        search(t);
    });
    // The query embedding alone, on the same queries (the engine's cache of
    // query vectors is not touched: its first searches below embed again).
    let embed_only: Vec<f64> = measured
        .iter()
        .map(|t| {
            let started = Instant::now();
            sift::embed::Embedder::embed_query(model.as_ref(), t).expect("embeds");
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    let first: Vec<f64> = measured.iter().map(|t| search(t)).collect();
    let again: Vec<f64> = measured.iter().map(|t| search(t)).collect();
    let pct = |mut s: Vec<f64>| {
        s.sort_by(f64::total_cmp);
        let p = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
        format!("p50 {:>7.2} ms  p95 {:>7.2} ms", p(0.5), p(0.95))
    };
    println!("  query embedding alone              {}", pct(embed_only));
    println!("  engine search, query embedded      {}", pct(first));
    println!("  engine search, query vector known  {}", pct(again));
}

/// Where a hybrid query's time goes (tantivy keywords), p50 of each stage
/// over the same queries: the keyword top 100 (title boosts and coverage
/// included; tantivy's search and coverage alone beside it), the vector top
/// 100 alone, both rankers' candidates with their
/// notes (what fusion gets), then the whole search with fusion and snippets.
fn stages(
    store: &Store,
    fast: &KeywordIndex,
    vectors: &VectorIndex,
    queries: &[&str],
    query_vectors: &QueryVectors,
) {
    let p50 = |mut s: Vec<f64>| {
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    };
    let time = |f: &dyn Fn(&str, &[f32])| -> f64 {
        let samples = queries
            .iter()
            .enumerate()
            .map(|(q, text)| {
                let t = Instant::now();
                f(text, query_vectors.get(q, text));
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        p50(samples)
    };
    let keyword = time(&|text, _| {
        store
            .read(|c| keyword_chunks(c, Some(fast), &Terms::parse(text), &Filters::default(), 100))
            .unwrap();
    });
    let tantivy = time(&|text, _| {
        fast.search(&Terms::parse(text), None, 100).unwrap();
    });
    let vector = time(&|_, qv| {
        vectors.search(qv, 100, None).unwrap();
    });
    // Candidates as fusion gets them, from the vectors alone or from both.
    let gather = |text: &str, qv: &[f32], keywords: Option<&KeywordIndex>, mode: Mode| {
        store
            .read(|c| {
                candidates(
                    c,
                    keywords,
                    Some(vectors),
                    Some(qv),
                    &Terms::parse(text),
                    &Filters::default(),
                    mode,
                    10,
                    MeaningFill::default(),
                )
            })
            .unwrap();
    };
    let semantic = time(&|text, qv| gather(text, qv, None, Mode::Semantic));
    let both = time(&|text, qv| gather(text, qv, Some(fast), Mode::Hybrid));
    let whole = time(&|text, qv| {
        store
            .read(|c| {
                rank_notes(
                    c,
                    Some(fast),
                    Some(vectors),
                    Some(qv),
                    &Terms::parse(text),
                    &Filters::default(),
                    Mode::Hybrid,
                    10,
                    0.5,
                )
            })
            .unwrap();
    });
    println!(
        "  hybrid stages, p50: keyword top 100 {keyword:.2} ms (tantivy's part {tantivy:.2} ms), \
         vector top 100 {vector:.2} ms (with their notes {semantic:.2} ms), \
         candidates of both {both:.2} ms, whole search {whole:.2} ms \
         (fusion and snippets {:.2} ms)",
        whole - both
    );
}

/// The keyword index's top 100 alone, five passes over the queries, with
/// every word searched and with common words left out (searches leave out
/// words in over 20% of the chunks from 50k chunks on): CPU per query and
/// in all (steadier than wall time on a shared machine; run under
/// `perf stat -e instructions:u` to count the work itself).
fn keyword_index_alone(fast: &mut KeywordIndex, queries: &[&str]) {
    let terms: Vec<Terms> = queries.iter().map(|q| Terms::parse(q)).collect();
    for share in [1.0, 0.2, 0.1] {
        fast.set_common_words(CommonWords {
            share,
            from_chunks: 0,
        });
        let mut samples = Vec::new();
        let cpu = cpu_ms();
        for _ in 0..5 {
            for t in &terms {
                let started = cpu_ms();
                fast.search(t, None, 100).unwrap();
                samples.push(cpu_ms() - started);
            }
        }
        let total = cpu_ms() - cpu;
        samples.sort_by(f64::total_cmp);
        println!(
            "  tantivy top 100, words in > {:.0}% of chunks left out: CPU p50 {:.3} ms, \
             p95 {:.3} ms, {:.0} ms for {} queries",
            share * 100.0,
            samples[samples.len() / 2],
            samples[samples.len() * 95 / 100],
            total,
            samples.len()
        );
    }
    fast.set_common_words(CommonWords::default());
}

/// `sift search` in a fresh process, model load and query embedding
/// included, as someone typing a search in a terminal waits for it: wall
/// time of 15 runs (the first 3 unmeasured: the page cache warms).
fn startup(dir: &Path, queries: &[&str]) {
    if std::env::var_os("SIFT_MODEL_DIR").is_none() {
        println!(
            "  startup: skipped (set SIFT_MODEL_DIR to time `sift search` in a fresh process)"
        );
        return;
    }
    let mut samples = Vec::new();
    for (i, text) in queries.iter().take(15).enumerate() {
        let started = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sift"))
            .arg("search")
            .arg("--data-dir")
            .arg(dir)
            .arg(text)
            .output()
            .expect("run sift search");
        let took = started.elapsed().as_secs_f64() * 1000.0;
        assert!(
            out.status.success() && !out.stdout.is_empty(),
            "sift search failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if i >= 3 {
            samples.push(took);
        }
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "  startup (fresh `sift search`, model load included): p50 {:.0} ms, max {:.0} ms",
        samples[samples.len() / 2],
        samples[samples.len() - 1]
    );
}

/// Writes `n` chunks (3 per note) of recombined SciFact sentences straight
/// into the store's tables, with their keyword terms and synthetic vectors
/// (or real ones, mixed from `real`'s documents: see the module's comment).
fn fill_store(
    conn: &Connection,
    docs: &[Doc],
    n: usize,
    real: Option<&[Option<Vec<f32>>]>,
) -> usize {
    let sentences: Vec<(usize, &str)> = docs
        .iter()
        .enumerate()
        .flat_map(|(i, d)| {
            d.text
                .split(". ")
                .filter(|s| s.len() > 20)
                .map(move |s| (i, s))
        })
        .collect();
    let centers = centers(docs.len());
    let mut rng = StdRng::seed_from_u64(42);
    // Its own stream, so the text is the same with either kind of vector.
    let mut mix_rng = StdRng::seed_from_u64(43);
    let mut tx = conn.unchecked_transaction().unwrap();
    tx.execute("INSERT INTO roots(path) VALUES ('/bench')", [])
        .unwrap();
    let root: i64 = tx.last_insert_rowid();
    let mut bytes = 0;
    let mut note_id = 0;
    let mut title_doc = 0;
    for i in 0..n {
        // Commit as it goes: one transaction of 1M chunks keeps the whole
        // store in the WAL, twice its size on disk until the checkpoint.
        if i > 0 && i % 50_000 == 0 {
            tx.commit().unwrap();
            tx = conn.unchecked_transaction().unwrap();
        }
        let doc = rng.random_range(0..docs.len());
        if i % 3 == 0 {
            tx.execute(
                "INSERT INTO notes(root_id, rel_path, ext, size, mtime_ns, title, state, indexed_at)
                 VALUES (?1, ?2, 'md', 0, 0, ?3, 'indexed', 0)",
                params![root, format!("n{i}.md"), docs[doc].title],
            )
            .unwrap();
            note_id = tx.last_insert_rowid();
            title_doc = doc;
        }
        let title = tx
            .query_row("SELECT title FROM notes WHERE id = ?1", [note_id], |r| {
                r.get::<_, String>(0)
            })
            .unwrap();
        let count = rng.random_range(3..=7);
        let drawn: Vec<(usize, &str)> = (0..count)
            .map(|_| sentences[rng.random_range(0..sentences.len())])
            .collect();
        let body: Vec<&str> = drawn.iter().map(|(_, s)| *s).collect();
        let body = body.join(". ") + ".";
        bytes += body.len();
        let hash: [u8; 32] = Sha256::digest(format!("{i}:{body}")).into();
        tx.execute(
            "INSERT INTO chunks(note_id, seq, byte_start, byte_end, line_start, line_end,
                                heading_path, context, embed_prefix, body, embed_hash)
             VALUES (?1, ?2, 0, ?3, 1, 1, '[]', ?4, '', ?5, ?6)",
            params![
                note_id,
                (i % 3) as i64,
                body.len() as i64,
                title,
                body,
                &hash[..]
            ],
        )
        .unwrap();
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO chunks_fts(rowid, context, body) VALUES (?1, ?2, ?3)",
            params![id, index_terms(&title), index_terms(&body)],
        )
        .unwrap();
        let v = match real {
            Some(real) => {
                let sources = std::iter::once(title_doc).chain(drawn.iter().map(|(d, _)| *d));
                mixed(sources.filter_map(|d| real[d].as_deref()), &mut mix_rng)
            }
            None => noisy(&centers[doc], &mut rng),
        };
        tables::put_vectors(&tx, SYNTHETIC_EMBEDDER, &[(hash, v.as_slice())]).unwrap();
    }
    tx.commit().unwrap();
    bytes
}

/// One random unit vector per SciFact document: the topics synthetic chunk
/// vectors cluster around (HNSW on uniform noise is harder than on real
/// embeddings, on clusters closer to them).
fn centers(n: usize) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(1);
    (0..n)
        .map(|_| unit((0..DIMS).map(|_| rng.random::<f32>() - 0.5).collect()))
        .collect()
}

fn noisy(center: &[f32], rng: &mut StdRng) -> Vec<f32> {
    unit(
        center
            .iter()
            .map(|c| c + 0.6 * (rng.random::<f32>() - 0.5))
            .collect(),
    )
}

/// The normalised sum of `vectors`, each weighted by a draw from [0.5, 1],
/// plus Gaussian noise of 0.01 a dimension (as benches/vectors_scale.rs mixes
/// real vectors into paragraphs).
fn mixed<'a>(vectors: impl Iterator<Item = &'a [f32]>, rng: &mut StdRng) -> Vec<f32> {
    let mut v = vec![0f32; DIMS];
    for src in vectors {
        let w: f32 = rng.random_range(0.5..1.0);
        v.iter_mut().zip(src).for_each(|(a, x)| *a += w * x);
    }
    for a in v.iter_mut() {
        // Box-Muller: a standard normal sample.
        let u1: f32 = rng.random::<f32>().max(f32::MIN_POSITIVE);
        let u2: f32 = rng.random();
        *a += 0.01 * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
    }
    unit(v)
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn read_corpus(path: &Path) -> Vec<Doc> {
    BufReader::new(fs::File::open(path).expect("corpus.jsonl"))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
            Doc {
                id: v["_id"].as_str().unwrap().to_string(),
                title: v["title"].as_str().unwrap_or("").to_string(),
                text: v["text"].as_str().unwrap_or("").to_string(),
            }
        })
        .collect()
}

fn read_queries(path: &Path) -> HashMap<String, String> {
    BufReader::new(fs::File::open(path).expect("queries.jsonl"))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
            (
                v["_id"].as_str().unwrap().to_string(),
                v["text"].as_str().unwrap().to_string(),
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
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() == 3 {
            out.entry(cols[0].to_string())
                .or_default()
                .insert(cols[1].to_string(), cols[2].parse().unwrap_or(0));
        }
    }
    out
}

fn ndcg_at(ranked: &[String], rels: &HashMap<String, u32>, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, id)| {
            let rel = *rels.get(id).unwrap_or(&0) as f64;
            (2f64.powf(rel) - 1.0) / ((i + 2) as f64).log2()
        })
        .sum();
    let mut ideal: Vec<u32> = rels.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &rel)| (2f64.powf(rel as f64) - 1.0) / ((i + 2) as f64).log2())
        .sum();
    if idcg == 0.0 {
        0.0
    } else {
        dcg / idcg
    }
}
