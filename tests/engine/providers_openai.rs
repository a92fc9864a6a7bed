//! OpenAI embeddings against a loopback server that speaks their wire format:
//! batching within limits, splitting, retries and their spacing, error kinds,
//! partial progress, cancellation, budget and concurrency.

use crate::common;
use crate::loopback;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loopback::{vector_for, Fault, Server};
use serde_json::json;
use sift::cost::tokens::count_tokens;
use sift::embed::remote::{RemoteEmbedder, RemoteOptions};
use sift::embed::{openai, Embedder, Outgoing, RunControl};
use sift::keys::ApiKey;
use sift::ErrorKind;

const KEY: &str = "test-key-123";

fn fast() -> RemoteOptions {
    RemoteOptions {
        concurrency: 4,
        max_retries: 3,
        backoff_base_ms: 100,
        backoff_max_ms: 400,
        max_retry_after_secs: 5,
        timeout_ms: 2_000,
        batch_size: None,
    }
}

fn embedder_with(
    server: &Server,
    model: &str,
    dims: Option<usize>,
    opts: RemoteOptions,
) -> RemoteEmbedder {
    common::loopback_openai(&server.openai_base(), model, dims, KEY, opts)
}

fn embedder(server: &Server) -> RemoteEmbedder {
    embedder_with(server, "text-embedding-3-small", None, fast())
}

fn texts(n: usize, prefix: &str) -> Vec<String> {
    (0..n)
        .map(|i| format!("{prefix} note number {i} about meaning"))
        .collect()
}

fn assert_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    assert!(dot > 0.9999, "cosine {dot}");
}

/// Batches as delivered: offset of the first text, vectors.
type Delivered = Vec<(usize, Vec<Vec<f32>>)>;

/// Runs `embed_documents_with`, collecting delivered batches.
fn run(
    e: &RemoteEmbedder,
    texts: &[String],
    control: &RunControl,
) -> (Delivered, sift::Result<()>) {
    let mut got = Vec::new();
    let result = e.embed_documents_with(texts, control, &mut |first, v| {
        got.push((first, v));
        Ok(())
    });
    got.sort_by_key(|(first, _)| *first);
    (got, result)
}

#[test]
fn embeds_in_order_with_key_and_counts_usage() {
    let server = Server::start(Some(KEY));
    let e = embedder(&server);
    let input = texts(5, "a");
    let vectors = e.embed_documents(&input).unwrap();
    assert_eq!(vectors.len(), 5);
    for (t, v) in input.iter().zip(&vectors) {
        assert_close(v, &vector_for("text-embedding-3-small", "", t, 1536));
    }
    let log = server.log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(log[0].body["model"], "text-embedding-3-small");
    assert!(log[0].body.get("dimensions").is_none());
    let usage = e.take_usage();
    assert_eq!(usage.requests, 1);
    assert_eq!(
        usage.tokens_sent,
        input.iter().map(|t| count_tokens(t) as u64).sum::<u64>()
    );
    assert_eq!(e.take_usage().requests, 0, "take_usage resets");

    let q = e.embed_query("what is meaning").unwrap();
    assert_close(
        &q,
        &vector_for("text-embedding-3-small", "", "what is meaning", 1536),
    );
}

#[test]
fn dimensions_option_for_v3_models() {
    let server = Server::start(Some(KEY));
    let e = embedder_with(&server, "text-embedding-3-large", Some(256), fast());
    assert_eq!(e.id(), "openai/text-embedding-3-large@256");
    let v = e.embed_documents(&texts(2, "d")).unwrap();
    assert!(v.iter().all(|v| v.len() == 256));
    assert_eq!(server.log()[0].body["dimensions"], json!(256));
}

#[test]
fn batches_respect_input_and_token_limits() {
    let server = Server::start(Some(KEY));
    // Short vectors keep the loopback answers small.
    let e = embedder_with(
        &server,
        "text-embedding-3-small",
        Some(8),
        RemoteOptions {
            timeout_ms: 30_000,
            ..fast()
        },
    );
    // 2500 short inputs: more than 2048 a request.
    let many = texts(2500, "short");
    assert_eq!(e.embed_documents(&many).unwrap().len(), 2500);
    let log = server.log();
    assert!(log.len() >= 2);
    assert!(log
        .iter()
        .all(|l| l.inputs.len() <= 2048 && l.status == 200));
    assert_eq!(e.take_usage().requests as usize, log.len(), "no retries");
    let sent: Vec<String> = log.iter().flat_map(|l| l.inputs.clone()).collect();
    let mut sorted = sent.clone();
    sorted.sort();
    let mut expected = many.clone();
    expected.sort();
    assert_eq!(sorted, expected, "every input sent exactly once");

    // 300 inputs of ~1200 tokens: more than 300k tokens a request.
    server.clear_log();
    let paragraph = "The quick brown fox considers the semantics of embeddings. ".repeat(110);
    let long: Vec<String> = (0..300).map(|i| format!("{i} {paragraph}")).collect();
    assert_eq!(e.embed_documents(&long).unwrap().len(), 300);
    let log = server.log();
    assert!(log.len() >= 2, "{} requests", log.len());
    for l in &log {
        assert_eq!(l.status, 200);
        assert!(l.tokens <= 300_000, "request of {} tokens", l.tokens);
    }
}

#[test]
fn over_long_input_is_split_not_truncated() {
    let server = Server::start(Some(KEY));
    let e = embedder(&server);
    let text = "Sentences about notes and meaning, repeated at length. ".repeat(2000);
    let total = count_tokens(&text);
    assert!(total > 8191 * 2, "{total} tokens");
    let v = e.embed_documents(std::slice::from_ref(&text)).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].len(), 1536);
    let norm: f32 = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    let log = server.log();
    let pieces: Vec<String> = log.iter().flat_map(|l| l.inputs.clone()).collect();
    assert!(pieces.len() >= 3);
    assert!(pieces.iter().all(|p| count_tokens(p) <= 8191));
    assert_eq!(pieces.concat(), text, "nothing dropped");
    let usage = e.take_usage();
    assert_eq!(
        usage.tokens_sent,
        pieces.iter().map(|p| count_tokens(p) as u64).sum::<u64>()
    );
}

#[test]
fn retry_after_seconds_is_honoured() {
    let server = Server::start(Some(KEY));
    server.fail_next([Fault::too_many(Some("1"), None)]);
    let e = embedder(&server);
    let started = Instant::now();
    e.embed_documents(&texts(3, "r")).unwrap();
    let log = server.log();
    assert_eq!(log.len(), 2);
    assert_eq!((log[0].status, log[1].status), (429, 200));
    let gap = log[1].at - log[0].at;
    assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn retry_after_ms_is_honoured_and_5xx_backs_off_exponentially() {
    let server = Server::start(Some(KEY));
    server.fail_next([
        Fault::too_many(None, Some(300)),
        Fault::status(500),
        Fault::status(503),
    ]);
    let e = embedder(&server);
    e.embed_documents(&texts(3, "b")).unwrap();
    let log = server.log();
    let statuses: Vec<u16> = log.iter().map(|l| l.status).collect();
    assert_eq!(statuses, [429, 500, 503, 200]);
    let gaps: Vec<Duration> = log.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[0] >= Duration::from_millis(300), "{gaps:?}");
    // Attempt 1 waits 100..200 ms, attempt 2 waits 200..400 ms (base 100 ms, equal jitter).
    assert!(gaps[1] >= Duration::from_millis(100), "{gaps:?}");
    assert!(gaps[2] >= Duration::from_millis(200), "{gaps:?}");
    assert_eq!(e.take_usage().requests, 1, "failed attempts are not billed");
}

#[test]
fn stalled_response_times_out_and_is_retried() {
    let server = Server::start(Some(KEY));
    server.fail_next([Fault::Stall(Duration::from_secs(10))]);
    let e = embedder_with(
        &server,
        "text-embedding-3-small",
        None,
        RemoteOptions {
            timeout_ms: 300,
            ..fast()
        },
    );
    let started = Instant::now();
    e.embed_documents(&texts(2, "s")).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.log().iter().filter(|l| l.seq == 2).count(), 1);
}

#[test]
fn persistent_failure_gives_provider_down_after_retries() {
    let server = Server::start(Some(KEY));
    server.fail_always(Some(Fault::status(500)));
    let e = embedder(&server);
    let err = e.embed_documents(&texts(2, "p")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProviderDown);
    assert!(
        err.message().contains("gave up after 4 attempts"),
        "{}",
        err.message()
    );
    assert_eq!(server.log().len(), 4, "1 try + 3 retries");
}

#[test]
fn no_retry_on_client_errors() {
    let cases = [
        (
            Fault::status_body(
                401,
                json!({"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}),
            ),
            ErrorKind::InvalidKey,
        ),
        (
            Fault::status_body(
                403,
                json!({"error": {"message": "forbidden", "code": null}}),
            ),
            ErrorKind::InvalidKey,
        ),
        (
            Fault::status_body(
                404,
                json!({"error": {"message": "The model does not exist", "code": "model_not_found"}}),
            ),
            ErrorKind::ModelNotFound,
        ),
        (
            Fault::status_body(
                400,
                json!({"error": {"message": "This model's maximum context length is 8192 tokens", "code": null}}),
            ),
            ErrorKind::InputTooLong,
        ),
        (
            Fault::status_body(
                400,
                json!({"error": {"message": "bad request", "code": null}}),
            ),
            ErrorKind::InvalidInput,
        ),
        (
            Fault::status_body(
                429,
                json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}}),
            ),
            ErrorKind::QuotaExhausted,
        ),
    ];
    for (fault, kind) in cases {
        let server = Server::start(Some(KEY));
        server.fail_next([fault.clone()]);
        let err = embedder(&server)
            .embed_documents(&texts(2, "c"))
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{fault:?}: {}", err.message());
        assert_eq!(server.log().len(), 1, "{fault:?} must not be retried");
        assert!(!err.message().contains(KEY));
    }
}

#[test]
fn real_wrong_key_is_invalid_key_without_the_key_in_the_message() {
    let server = Server::start(Some("test-key-other"));
    let err = embedder(&server)
        .embed_documents(&texts(1, "k"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKey);
    assert!(
        err.message().contains("sift key set openai"),
        "{}",
        err.message()
    );
    assert!(!err.message().contains(KEY));
}

#[test]
fn malformed_json_and_wrong_dimensions_store_nothing() {
    let server = Server::start(Some(KEY));
    server.fail_next([Fault::Malformed]);
    let e = embedder_with(
        &server,
        "text-embedding-3-small",
        None,
        RemoteOptions {
            concurrency: 1,
            ..fast()
        },
    );
    let (got, result) = run(&e, &texts(3, "m"), &RunControl::new());
    assert_eq!(result.unwrap_err().kind(), ErrorKind::BadResponse);
    assert!(got.is_empty());
    assert_eq!(server.log().len(), 1, "malformed JSON is not retried");

    server.fail_next([Fault::WrongDims(768)]);
    let (got, result) = run(&e, &texts(3, "w"), &RunControl::new());
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongDimensions);
    assert!(
        err.message().contains("768") && err.message().contains("1536"),
        "{}",
        err.message()
    );
    assert!(got.is_empty());
}

#[test]
fn failure_keeps_finished_batches_and_rerun_sends_only_the_rest() {
    let server = Server::start(Some(KEY));
    let opts = RemoteOptions {
        concurrency: 1,
        batch_size: Some(10),
        max_retries: 1,
        ..fast()
    };
    let e = embedder_with(&server, "text-embedding-3-small", None, opts);
    let all = texts(50, "resume");
    // The third request fails, and so does its retry.
    server.fail_at(3, Fault::status(500));
    server.fail_at(4, Fault::status(500));
    let (got, result) = run(&e, &all, &RunControl::new());
    assert_eq!(result.unwrap_err().kind(), ErrorKind::ProviderDown);
    let done: Vec<usize> = got
        .iter()
        .flat_map(|(first, v)| *first..*first + v.len())
        .collect();
    assert_eq!(done, (0..20).collect::<Vec<_>>());
    for (first, vectors) in &got {
        for (k, v) in vectors.iter().enumerate() {
            assert_close(
                v,
                &vector_for("text-embedding-3-small", "", &all[first + k], 1536),
            );
        }
    }
    let paid_first = e.take_usage();
    assert_eq!(paid_first.requests, 2);

    // The rerun sends only what is missing (the caller's cache has the rest).
    server.clear_log();
    let missing: Vec<String> = all[20..].to_vec();
    let (got, result) = run(&e, &missing, &RunControl::new());
    result.unwrap();
    assert_eq!(got.iter().map(|(_, v)| v.len()).sum::<usize>(), 30);
    let resent: Vec<String> = server.log().iter().flat_map(|l| l.inputs.clone()).collect();
    assert_eq!(resent, missing);
    let paid_second = e.take_usage();
    let expected: u64 = missing.iter().map(|t| count_tokens(t) as u64).sum();
    assert_eq!(paid_second.tokens_sent, expected);
    assert_eq!(paid_second.requests, 3);
}

#[test]
fn cancellation_stops_between_requests() {
    let server = Server::start(Some(KEY));
    let opts = RemoteOptions {
        concurrency: 1,
        batch_size: Some(5),
        ..fast()
    };
    let e = embedder_with(&server, "text-embedding-3-small", None, opts);
    let cancel = Arc::new(AtomicBool::new(false));
    let control = RunControl::new().with_cancel(&cancel);
    let mut batches = 0;
    let result = e.embed_documents_with(&texts(40, "x"), &control, &mut |_, _| {
        batches += 1;
        if batches == 2 {
            cancel.store(true, Ordering::SeqCst);
        }
        Ok(())
    });
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Cancelled);
    assert_eq!(batches, 2);
    assert_eq!(server.log().len(), 2, "nothing sent after the cancel");

    // Cancelling while a request is slow returns promptly.
    server.set_latency(Duration::from_secs(5));
    let cancel = Arc::new(AtomicBool::new(false));
    let control = RunControl::new().with_cancel(&cancel);
    let flag = Arc::clone(&cancel);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        flag.store(true, Ordering::SeqCst);
    });
    let started = Instant::now();
    let (_, result) = run(&e, &texts(5, "slow"), &control);
    t.join().unwrap();
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Cancelled);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn gate_refuses_before_sending_and_keeps_what_was_done() {
    let server = Server::start(Some(KEY));
    let opts = RemoteOptions {
        concurrency: 2,
        batch_size: Some(10),
        ..fast()
    };
    let e = embedder_with(&server, "text-embedding-3-small", None, opts);
    let seen = Mutex::new(Vec::new());
    let gate = |o: &Outgoing| {
        let mut l = seen.lock().unwrap();
        if l.len() == 3 {
            return Err(sift::Error::new(ErrorKind::BudgetExceeded, "cap"));
        }
        l.push(*o);
        Ok(())
    };
    let control = RunControl::new().with_gate(&gate);
    let (got, result) = run(&e, &texts(60, "g"), &control);
    assert_eq!(result.unwrap_err().kind(), ErrorKind::BudgetExceeded);
    assert_eq!(got.iter().map(|(_, v)| v.len()).sum::<usize>(), 30);
    assert_eq!(server.log().len(), 3);
    let admitted = seen.lock().unwrap();
    assert!(admitted.iter().all(|o| o.texts == 10 && o.tokens > 0));
}

#[test]
fn concurrency_is_bounded() {
    let server = Server::start(Some(KEY));
    server.set_latency(Duration::from_millis(200));
    let opts = RemoteOptions {
        concurrency: 3,
        batch_size: Some(4),
        ..fast()
    };
    let e = embedder_with(&server, "text-embedding-3-small", None, opts);
    let started = Instant::now();
    let v = e.embed_documents(&texts(48, "c")).unwrap();
    assert_eq!(v.len(), 48);
    assert_eq!(server.log().len(), 12);
    assert_eq!(server.max_in_flight(), 3);
    // 12 requests of 200 ms, 3 at a time: about 0.8 s, far from 2.4 s serially.
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn unreachable_server_is_provider_down() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = openai::embedder(
        "text-embedding-3-small",
        None,
        Some(&format!("http://127.0.0.1:{port}/v1")),
        ApiKey::new(KEY).unwrap(),
        RemoteOptions {
            max_retries: 1,
            ..fast()
        },
    )
    .unwrap();
    let err = e.embed_documents(&texts(1, "u")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProviderDown);
    assert!(
        err.message().contains("could not connect"),
        "{}",
        err.message()
    );
}
