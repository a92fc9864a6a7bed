//! Keys stay with their providers: a key is sent only to the host it was saved
//! for. A base URL that only the settings name (the app's page can write them)
//! never receives a request carrying the key, and estimates never reach the
//! network at all. Checked at a loopback server that records every header.

use crate::loopback::Server;

use sift::embed::{build_embedder, build_estimator, ProviderConfig};
use sift::keys::KeyStore;
use sift::ErrorKind;

const KEY: &str = "fake-key-hosts-0123456789abcdef";

fn provider(json: serde_json::Value) -> ProviderConfig {
    serde_json::from_value(json).unwrap()
}

/// No request the server saw carried the key, in any header or body.
fn assert_no_key(server: &Server) {
    for raw in server.raw() {
        assert!(!raw.contains(KEY), "the key reached the server:\n{raw}");
    }
}

#[test]
fn a_base_url_from_the_settings_never_receives_the_key() {
    let server = Server::start(None);
    let keys = KeyStore::in_memory();
    keys.set("openai", KEY).unwrap();
    keys.set("gemini", KEY).unwrap();
    keys.set_for_url("compatible", KEY, Some("http://127.0.0.1:1/v1"))
        .unwrap();
    let base = server.openai_base();
    let gemini_base = server.gemini_base();
    let page_supplied = [
        serde_json::json!({"provider": "openai", "base_url": base}),
        // A model of unknown dimensions would be probed with a request.
        serde_json::json!({"provider": "openai", "model": "my-gateway-model", "base_url": base}),
        serde_json::json!({"provider": "gemini", "base_url": gemini_base}),
        serde_json::json!({"provider": "gemini", "model": "other-model", "base_url": gemini_base}),
    ];
    for cfg in page_supplied.iter().cloned().map(provider) {
        let err = match build_embedder(&cfg, &keys) {
            Ok(_) => panic!("built {cfg:?} with a key saved for another host"),
            Err(e) => e,
        };
        assert_eq!(err.kind(), ErrorKind::InvalidKey, "{err}");
        assert!(err.message().contains("does not send it to"), "{err}");
        assert!(!err.message().contains(KEY));
        // Estimates need no key and send nothing.
        let estimator = build_estimator(&cfg, &[]).unwrap();
        assert!(estimator.count_tokens("tides and moons") > 0);
        assert!(estimator.embed_documents(&["x".into()]).is_err());
    }
    assert!(
        server.log().is_empty(),
        "no request at all: {:?}",
        server.log()
    );

    // An OpenAI-compatible server whose address the key was not saved for is
    // reached (its probe) without the key.
    let cfg =
        provider(serde_json::json!({"provider": "compatible", "base_url": base, "model": "m"}));
    let estimator = build_estimator(&cfg, &["compatible/m@384".to_string()]).unwrap();
    assert_eq!(estimator.id(), "compatible/m@384", "the cached id is found");
    assert!(server.log().is_empty(), "the estimate sent nothing");
    let embedder = build_embedder(&cfg, &keys).unwrap();
    embedder.embed_documents(&["hello".into()]).unwrap();
    assert_eq!(server.log().len(), 2, "probe and one batch");
    assert!(server
        .log()
        .iter()
        .all(|l| !l.headers.contains_key("authorization")));
    assert_no_key(&server);

    // Saved together with the key, the address gets it: the check above would
    // have seen a leak.
    server.clear_log();
    keys.set_for_url("openai", KEY, Some(&base)).unwrap();
    let cfg =
        provider(serde_json::json!({"provider": "openai", "base_url": base, "dimensions": 8}));
    let embedder = build_embedder(&cfg, &keys).unwrap();
    embedder.embed_documents(&["hello".into()]).unwrap();
    let log = server.log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].headers["authorization"], format!("Bearer {KEY}"));
    // And OpenAI's own API no longer gets it without saving it again.
    let own = provider(serde_json::json!({"provider": "openai"}));
    assert_eq!(
        build_embedder(&own, &keys).err().map(|e| e.kind()),
        Some(ErrorKind::InvalidKey)
    );
}
