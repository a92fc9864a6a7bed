//! OpenAI-compatible servers (Ollama, LM Studio, vLLM) against a loopback server.

use crate::loopback;

use std::sync::atomic::Ordering;

use loopback::{Fault, Server};
use serde_json::json;
use sift::embed::remote::RemoteOptions;
use sift::embed::{build_embedder, compatible, Embedder, ProviderConfig};
use sift::keys::{ApiKey, KeyStore};
use sift::ErrorKind;

fn fast() -> RemoteOptions {
    RemoteOptions {
        concurrency: 2,
        max_retries: 1,
        backoff_base_ms: 20,
        backoff_max_ms: 50,
        max_retry_after_secs: 5,
        timeout_ms: 5_000,
        batch_size: Some(8),
    }
}

#[test]
fn dimensions_are_discovered_and_name_the_index() {
    let server = Server::start(None);
    server.default_dims.store(384, Ordering::SeqCst);
    let e = compatible::embedder(
        &server.openai_base(),
        "nomic-embed-text",
        None,
        None,
        fast(),
    )
    .unwrap();
    assert_eq!(e.dimensions(), 384);
    assert_eq!(e.id(), "compatible/nomic-embed-text@384");
    assert_eq!(
        (e.provider(), e.model()),
        ("compatible", "nomic-embed-text")
    );
    assert_eq!(e.max_input_tokens(), compatible::DEFAULT_MAX_INPUT_TOKENS);
    let texts: Vec<String> = (0..20).map(|i| format!("local chunk {i}")).collect();
    let v = e.embed_documents(&texts).unwrap();
    assert!(v.iter().all(|v| v.len() == 384));
    let log = server.log();
    assert_eq!(log.len(), 1 + 3, "probe + 20 texts in batches of 8");
    assert!(log.iter().all(|l| !l.headers.contains_key("authorization")));
    assert_eq!(e.take_usage().requests, 4, "the probe is a request too");

    // The same model name with other dimensions is another index.
    server.default_dims.store(768, Ordering::SeqCst);
    let e2 = compatible::embedder(
        &server.openai_base(),
        "nomic-embed-text",
        None,
        None,
        fast(),
    )
    .unwrap();
    assert_eq!(e2.id(), "compatible/nomic-embed-text@768");
}

#[test]
fn key_is_sent_when_set() {
    let server = Server::start(Some("test-key-123"));
    let key = ApiKey::new("test-key-123").unwrap();
    let e = compatible::embedder(
        &server.openai_base(),
        "bge-m3",
        Some(2000),
        Some(key),
        fast(),
    )
    .unwrap();
    assert_eq!(e.max_input_tokens(), 2000);
    e.embed_query("hello").unwrap();
    assert!(server
        .log()
        .iter()
        .all(|l| l.headers["authorization"] == "Bearer test-key-123"));
}

#[test]
fn server_changing_dimensions_mid_run_is_wrong_dimensions() {
    let server = Server::start(None);
    let e = compatible::embedder(&server.openai_base(), "m", None, None, fast()).unwrap();
    server.fail_next([Fault::WrongDims(1024)]);
    let err = e.embed_documents(&["a".to_string()]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongDimensions);
}

#[test]
fn model_not_loaded_is_model_not_found() {
    let server = Server::start(None);
    server.fail_next([Fault::status_body(
        404,
        json!({"error": {"message": "model \"nomic\" not found, try pulling it first", "type": "api_error"}}),
    )]);
    let err = compatible::embedder(&server.openai_base(), "nomic", None, None, fast()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ModelNotFound, "{}", err.message());
    assert!(err.message().contains("try pulling it first"));
}

#[test]
fn server_not_running_is_provider_down() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}/v1");
    let err = compatible::embedder(&base, "nomic-embed-text", None, None, fast()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProviderDown);
    assert!(err.message().contains(&base), "{}", err.message());
}

#[test]
fn built_from_settings() {
    let server = Server::start(None);
    let cfg: ProviderConfig = serde_json::from_value(json!({
        "provider": "compatible",
        "base_url": server.openai_base(),
        "model": "all-minilm",
        "batch_size": 4,
        "concurrency": 1,
    }))
    .unwrap();
    let e = build_embedder(&cfg, &KeyStore::in_memory()).unwrap();
    assert_eq!(e.id(), "compatible/all-minilm@384");
    e.embed_documents(&(0..9).map(|i| i.to_string()).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(server.log().len(), 1 + 3);
}
