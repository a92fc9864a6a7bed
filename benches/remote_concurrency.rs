//! Remote embedding throughput with bounded concurrency versus one request at a
//! time, against the loopback OpenAI server with added latency (default 50 ms a
//! request), in the same run.
//!
//! `cargo bench --bench remote_concurrency` (figures, not pass/fail). Settings:
//! `SIFT_BENCH_CHUNKS` (default 2048), `SIFT_BENCH_BATCH` (inputs a request,
//! default 32), `SIFT_BENCH_LATENCY_MS` (default 50), `SIFT_BENCH_CONCURRENCY`
//! (comma-separated, default `1,2,4,8`).

#[path = "../tests/engine/loopback/mod.rs"]
mod loopback;

use std::time::{Duration, Instant};

use sift::embed::remote::RemoteOptions;
use sift::embed::{openai, Embedder};
use sift::keys::ApiKey;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let chunks: usize = env("SIFT_BENCH_CHUNKS", 2048);
    let batch: usize = env("SIFT_BENCH_BATCH", 32);
    let latency: u64 = env("SIFT_BENCH_LATENCY_MS", 50);
    let levels: Vec<usize> = std::env::var("SIFT_BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "1,2,4,8".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();

    let key = "test-key-123";
    let server = loopback::Server::start(Some(key));
    server.set_latency(Duration::from_millis(latency));
    let texts: Vec<String> = (0..chunks)
        .map(|i| {
            format!(
                "Chunk {i}: a paragraph from a note about retrieval, meaning and the \
                 cost of embeddings, long enough to look like a real chunk of text."
            )
        })
        .collect();

    println!(
        "remote embedding throughput: {chunks} chunks, {batch} a request ({} requests), \
         {latency} ms added latency, loopback OpenAI server",
        chunks.div_ceil(batch)
    );
    println!(
        "{:>11} {:>10} {:>12} {:>9} {:>14}",
        "concurrency", "seconds", "chunks/s", "speed-up", "max in flight"
    );
    let mut base = None;
    for &c in &levels {
        let opts = RemoteOptions {
            concurrency: c,
            batch_size: Some(batch),
            timeout_ms: 30_000,
            ..RemoteOptions::default()
        };
        let e = openai::embedder(
            "text-embedding-3-small",
            Some(64),
            Some(&server.openai_base()),
            ApiKey::new(key).unwrap(),
            opts,
        )
        .unwrap();
        // Warm-up: one request (connection setup, lazy runtime).
        e.embed_documents(&texts[..1]).unwrap();
        server.reset_max_in_flight();
        let started = Instant::now();
        let vectors = e.embed_documents(&texts).unwrap();
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(vectors.len(), chunks);
        let rate = chunks as f64 / secs;
        let base_rate = *base.get_or_insert(rate);
        println!(
            "{c:>11} {secs:>10.2} {rate:>12.0} {:>8.1}x {:>14}",
            rate / base_rate,
            server.max_in_flight()
        );
    }
}
