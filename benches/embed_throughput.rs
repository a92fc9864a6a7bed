//! Throughput of the local embedder: texts per second on ~200-word-piece passages.
//!
//! Figures, not pass/fail. Usage:
//!
//! ```text
//! cargo bench --bench embed_throughput -- [--n 256] [--tokens 200] [--batch 32]
//!     [--repeat 3] [--corpus corpus.jsonl] [--model DIR] [--dump passages.json]
//!     [--queries-only [--after-documents] | --documents-only]
//! ```
//!
//! Passages are the first `--n` documents of a BEIR-style `corpus.jsonl` (default
//! `../shared/data/scifact/corpus.jsonl`, or `$SIFT_BENCH_CORPUS`) with at least
//! `--tokens` word pieces, each cut to its first `--tokens` pieces. `--dump` writes
//! them as a JSON array so `scripts/bench_embed_python.py` embeds the same texts.
//! Each run embeds all passages; the best and median of `--repeat` runs are
//! printed (best is the figure least disturbed by other work on the machine).
//! The model comes from `--model`, else `$SIFT_MODEL_DIR`, else the default folder.
//!
//! Then query latency, as a search waits for it: each SciFact claim
//! (`queries.jsonl` beside the corpus) embedded alone, p50/p95 by length in
//! word pieces (`--documents-only` skips it). `--queries-only` skips the passages; with `--after-documents` it
//! embeds two documents first, as an indexing process has (queries then take
//! the packed bfloat16 weights where the CPU has them).

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use sift::embed::local::LocalEmbedder;
use sift::embed::Embedder;

struct Args {
    n: usize,
    tokens: usize,
    batch: usize,
    repeat: usize,
    corpus: PathBuf,
    model: Option<PathBuf>,
    dump: Option<PathBuf>,
    queries_only: bool,
    documents_only: bool,
    after_documents: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        n: 256,
        tokens: 200,
        batch: 32,
        repeat: 3,
        corpus: std::env::var_os("SIFT_BENCH_CORPUS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../shared/data/scifact/corpus.jsonl")
            }),
        model: None,
        dump: None,
        queries_only: false,
        documents_only: false,
        after_documents: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--n" => args.n = value().parse().expect("--n takes a number"),
            "--tokens" => args.tokens = value().parse().expect("--tokens takes a number"),
            "--batch" => args.batch = value().parse().expect("--batch takes a number"),
            "--repeat" => args.repeat = value().parse().expect("--repeat takes a number"),
            "--corpus" => args.corpus = value().into(),
            "--model" => args.model = Some(value().into()),
            "--dump" => args.dump = Some(value().into()),
            "--queries-only" => args.queries_only = true,
            "--documents-only" => args.documents_only = true,
            "--after-documents" => args.after_documents = true,
            _ => {} // cargo bench passes --bench; ignore what we don't know
        }
    }
    args
}

/// The first `n` corpus texts with at least `tokens` word pieces, cut to `tokens`.
fn passages(args: &Args, tokenizer: &tokenizers::Tokenizer) -> Vec<String> {
    let file = std::fs::File::open(&args.corpus).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (set --corpus or SIFT_BENCH_CORPUS)",
            args.corpus.display()
        )
    });
    let mut out = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let doc: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let text = doc["text"].as_str().unwrap_or_default();
        let enc = tokenizer.encode(text, false).unwrap();
        if enc.len() < args.tokens {
            continue;
        }
        let end = enc.get_offsets()[args.tokens - 1].1;
        out.push(text[..end].to_string());
        if out.len() == args.n {
            break;
        }
    }
    out
}

fn main() {
    let args = parse_args();
    let dir = sift::model::resolve_model_dir(args.model.as_deref())
        .expect("no model: pass --model DIR, set SIFT_MODEL_DIR, or run `sift model fetch`");

    let started = Instant::now();
    let embedder = LocalEmbedder::load(&dir).unwrap();
    let load_s = started.elapsed().as_secs_f64();

    if args.queries_only {
        if args.after_documents {
            // As in a process that indexes (the app, a watcher): documents
            // embedded first leave the weights packed for bfloat16 products,
            // which queries then use too.
            let text = "Sleep deprivation impairs the consolidation of declarative memory in healthy adults, and recovery sleep restores it only in part. ".repeat(3);
            embedder.embed_documents(&[text.clone(), text]).unwrap();
        }
        query_latency(&args, &embedder);
        return;
    }
    let mut tokenizer = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    tokenizer.with_truncation(None).unwrap();
    tokenizer.with_padding(None);
    let texts = passages(&args, &tokenizer);
    if let Some(path) = &args.dump {
        std::fs::write(path, serde_json::to_string(&texts).unwrap()).unwrap();
    }
    let mean_tokens = texts
        .iter()
        .map(|t| embedder.count_tokens(t))
        .sum::<usize>() as f64
        / texts.len() as f64;

    // Warm up (thread pool, allocator) on one batch.
    embedder
        .embed_documents(&texts[..args.batch.min(texts.len())])
        .unwrap();

    let cpu_before = cpu_seconds();
    let mut rates: Vec<f64> = (0..args.repeat.max(1))
        .map(|_| {
            let started = Instant::now();
            for batch in texts.chunks(args.batch) {
                let vectors = embedder.embed_documents(batch).unwrap();
                assert_eq!(vectors.len(), batch.len());
            }
            texts.len() as f64 / started.elapsed().as_secs_f64()
        })
        .collect();
    let cpu = cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    rates.sort_by(f64::total_cmp);
    println!(
        "sift local embedder: {} passages, {mean_tokens:.1} word pieces on average, batch {}, {} threads",
        texts.len(),
        args.batch,
        rayon::current_num_threads()
    );
    println!("model load: {load_s:.2} s");
    println!(
        "runs (texts/s): {}",
        rates
            .iter()
            .map(|r| format!("{r:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let Some(cpu) = cpu {
        let texts_done = (texts.len() * rates.len()) as f64;
        println!("{:.1} texts per CPU-second", texts_done / cpu);
    }
    let mut query_ms: Vec<f64> = (0..21)
        .map(|i| {
            let started = Instant::now();
            embedder
                .embed_query(&format!("how does sleep affect memory consolidation {i}"))
                .unwrap();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    query_ms.sort_by(f64::total_cmp);
    println!("one short query: {:.1} ms median", query_ms[10]);
    println!(
        "{:.1} texts/s best, {:.1} median",
        rates[rates.len() - 1],
        rates[rates.len() / 2]
    );
    if !args.documents_only {
        query_latency(&args, &embedder);
    }
}

/// Each SciFact claim embedded alone, twice (the first round warms up):
/// p50/p95 of the second round by length in word pieces.
fn query_latency(args: &Args, embedder: &LocalEmbedder) {
    let path = args.corpus.with_file_name("queries.jsonl");
    let Ok(file) = std::fs::File::open(&path) else {
        println!("query latency: skipped ({} not found)", path.display());
        return;
    };
    let claims: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .map(|l| {
            let q: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
            q["text"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    let time = |q: &str| {
        let started = Instant::now();
        embedder.embed_query(q).unwrap();
        started.elapsed().as_secs_f64() * 1e3
    };
    claims.iter().take(50).for_each(|q| {
        time(q);
    });
    let mut by_length: [Vec<f64>; 3] = Default::default();
    let mut all = Vec::new();
    for q in &claims {
        let pieces = embedder.count_tokens(q);
        let ms = time(q);
        by_length[match pieces {
            0..=15 => 0,
            16..=30 => 1,
            _ => 2,
        }]
        .push(ms);
        all.push(ms);
    }
    let pct = |s: &mut Vec<f64>| {
        if s.is_empty() {
            return "none".to_string();
        }
        s.sort_by(f64::total_cmp);
        let p = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
        format!(
            "p50 {:.2} ms, p95 {:.2} ms ({} queries)",
            p(0.5),
            p(0.95),
            s.len()
        )
    };
    println!("query latency, SciFact claims one at a time:");
    for (label, s) in ["up to 15 word pieces", "16-30", "over 30"]
        .iter()
        .zip(by_length.iter_mut())
    {
        println!("  {label:<22} {}", pct(s));
    }
    println!("  {:<22} {}", "all", pct(&mut all));
}

/// CPU time (user + system, all threads) of this process so far; Linux only.
/// Less disturbed than wall time when other work shares the cores.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}
