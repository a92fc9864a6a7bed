//! Gemini embeddings against a loopback server that speaks its wire format.

use crate::loopback;

use std::time::Duration;

use loopback::{vector_for, Fault, Server};
use serde_json::json;
use sift::embed::remote::{RemoteEmbedder, RemoteOptions};
use sift::embed::{gemini, Embedder};
use sift::keys::ApiKey;
use sift::ErrorKind;

const KEY: &str = "test-key-123";

fn fast() -> RemoteOptions {
    RemoteOptions {
        concurrency: 3,
        max_retries: 2,
        backoff_base_ms: 50,
        backoff_max_ms: 200,
        max_retry_after_secs: 5,
        timeout_ms: 5_000,
        batch_size: None,
    }
}

fn embedder(server: &Server, model: &str, dims: Option<usize>) -> RemoteEmbedder {
    gemini::embedder(
        model,
        dims,
        Some(&server.gemini_base()),
        ApiKey::new(KEY).unwrap(),
        fast(),
    )
    .unwrap()
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("gemini chunk {i}")).collect()
}

#[test]
fn documents_use_the_batch_endpoint_with_document_task_type() {
    let server = Server::start(Some(KEY));
    let e = embedder(&server, "text-embedding-004", None);
    assert_eq!((e.id(), e.dimensions()), ("gemini/text-embedding-004", 768));
    let input = texts(250);
    let vectors = e.embed_documents(&input).unwrap();
    for (t, v) in input.iter().zip(&vectors) {
        let want = vector_for("text-embedding-004", "RETRIEVAL_DOCUMENT", t, 768);
        let dot: f32 = want.iter().zip(v).map(|(a, b)| a * b).sum();
        assert!(dot > 0.9999);
    }
    let log = server.log();
    assert_eq!(log.len(), 3, "250 texts in batches of at most 100");
    for l in &log {
        assert!(
            l.path
                .ends_with("/v1beta/models/text-embedding-004:batchEmbedContents"),
            "{}",
            l.path
        );
        assert!(!l.path.contains(KEY), "the key never goes in the URL");
        assert_eq!(l.headers["x-goog-api-key"], KEY);
        assert!(l.inputs.len() <= 100);
        assert!(l.task_types.iter().all(|t| t == "RETRIEVAL_DOCUMENT"));
        assert_eq!(l.body["requests"][0]["model"], "models/text-embedding-004");
    }
}

#[test]
fn queries_use_embed_content_with_query_task_type() {
    let server = Server::start(Some(KEY));
    let e = embedder(&server, "gemini-embedding-001", Some(768));
    assert_eq!(e.id(), "gemini/gemini-embedding-001@768");
    let q = e.embed_query("where did I write about tides").unwrap();
    assert_eq!(q.len(), 768);
    let want = vector_for(
        "gemini-embedding-001",
        "RETRIEVAL_QUERY",
        "where did I write about tides",
        768,
    );
    let dot: f32 = want.iter().zip(&q).map(|(a, b)| a * b).sum();
    assert!(dot > 0.9999);
    let log = server.log();
    assert!(log[0].path.ends_with(":embedContent"));
    assert_eq!(log[0].task_types, ["RETRIEVAL_QUERY"]);
    assert_eq!(log[0].body["outputDimensionality"], json!(768));
    assert_eq!(e.take_usage().requests, 1);
}

#[test]
fn bad_key_is_invalid_key_and_not_retried() {
    let server = Server::start(Some("test-key-other"));
    let err = embedder(&server, "text-embedding-004", None)
        .embed_documents(&texts(3))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKey, "{}", err.message());
    assert!(err.message().contains("sift key set gemini"));
    assert!(!err.message().contains(KEY));
    assert_eq!(server.log().len(), 1);
}

#[test]
fn unknown_model_is_model_not_found() {
    let server = Server::start(Some(KEY));
    let err = embedder(&server, "embedding-nope", Some(64))
        .embed_documents(&texts(1))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ModelNotFound, "{}", err.message());
    assert_eq!(server.log().len(), 1);
}

#[test]
fn lasting_429_is_quota_exhausted_after_retries() {
    let server = Server::start(Some(KEY));
    server.fail_always(Some(Fault::status_body(
        429,
        json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}),
    )));
    let err = embedder(&server, "text-embedding-004", None)
        .embed_documents(&texts(2))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExhausted, "{}", err.message());
    assert_eq!(server.log().len(), 3, "1 try + 2 retries");
}

#[test]
fn transient_errors_are_retried() {
    let server = Server::start(Some(KEY));
    server.fail_next([
        Fault::status(503),
        Fault::too_many(Some("0"), None),
        Fault::Disconnect,
    ]);
    let e = gemini::embedder(
        "text-embedding-004",
        None,
        Some(&server.gemini_base()),
        ApiKey::new(KEY).unwrap(),
        RemoteOptions {
            max_retries: 3,
            ..fast()
        },
    )
    .unwrap();
    let v = e.embed_documents(&texts(5)).unwrap();
    assert_eq!(v.len(), 5);
    let statuses: Vec<u16> = server.log().iter().map(|l| l.status).collect();
    assert_eq!(statuses, [503, 429, 0, 200]);
    let gaps: Vec<Duration> = server.log().windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[0] >= Duration::from_millis(25), "{gaps:?}");
}

#[test]
fn wrong_dimensions_are_rejected() {
    let server = Server::start(Some(KEY));
    server.fail_next([Fault::WrongDims(512)]);
    let err = embedder(&server, "text-embedding-004", None)
        .embed_documents(&texts(2))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongDimensions);
}
