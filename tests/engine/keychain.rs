//! API keys in the real OS keychain (Secret Service on Linux).
//!
//! Run inside a private, unlocked keyring: `scripts/with-keyring.sh cargo test
//! --test engine keychain::`. Without a keychain the tests that need one are skipped,
//! unless `SIFT_REQUIRE_KEYCHAIN=1` (CI), where they fail.
//!
//! Items are stored under a per-test service name (`SIFT_KEYRING_SERVICE`), so
//! running this on a desktop never touches the user's own Sift keys.

use crate::loopback;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use loopback::Server;
use rand::Rng;
use serde_json::json;
use sift::keys::{KeyStore, ENV_SERVICE};
use sift::ErrorKind;

fn required() -> bool {
    std::env::var("SIFT_REQUIRE_KEYCHAIN").is_ok_and(|v| v == "1")
}

fn service(tag: &str) -> String {
    format!("sift-test-{}-{tag}", std::process::id())
}

/// An obviously fake key, different on every run, never stored in the repo.
fn fake_key() -> String {
    let mut rng = rand::rng();
    let tail: String = (0..24)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap())
        .collect();
    format!("test-key-{tail}")
}

/// The OS keychain under a test service, or `None` (skip) when there is none.
fn keychain(tag: &str) -> Option<KeyStore> {
    let store = KeyStore::os_with_service(&service(tag));
    let probe = store
        .set("compatible", "test-key-probe")
        .and_then(|()| store.delete("compatible"));
    match probe {
        Ok(_) => Some(store),
        Err(e) if required() => {
            panic!("SIFT_REQUIRE_KEYCHAIN=1 but the OS keychain is unavailable: {e}")
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::KeychainUnavailable, "{e}");
            eprintln!("skipped: no OS keychain ({e}); run under scripts/with-keyring.sh");
            None
        }
    }
}

fn sift(data_dir: &Path, service: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sift"));
    cmd.args(args)
        .env("SIFT_DATA_DIR", data_dir)
        .env(ENV_SERVICE, service)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn assert_nowhere(key: &str, dir: &Path, logs: &str) {
    assert!(
        !logs.contains(key),
        "the key appears in the output:\n{logs}"
    );
    let files = files_under(dir);
    assert!(!files.is_empty());
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let found = bytes.windows(key.len()).any(|w| w == key.as_bytes());
        assert!(!found, "the key appears in {}", f.display());
    }
}

#[test]
fn round_trip_in_the_os_keychain() {
    let Some(store) = keychain("roundtrip") else {
        return;
    };
    let key = fake_key();
    store.set("openai", &key).unwrap();
    // A fresh handle (and another process) sees it: a real store, not a mock.
    let again = KeyStore::os_with_service(&service("roundtrip"));
    assert_eq!(again.get("openai").unwrap().unwrap().expose(), key);
    let dir = tempfile::tempdir().unwrap();
    let out = sift(dir.path(), &service("roundtrip"), &["key", "status"], None);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("openai      tes…"), "{shown}");
    assert!(!shown.contains(&key));

    let newer = fake_key();
    store.set("openai", &newer).unwrap();
    assert_eq!(store.get("openai").unwrap().unwrap().expose(), newer);
    let status = store.status().unwrap();
    assert!(status[0].masked.as_deref().unwrap().ends_with("(33 chars)"));
    assert_eq!(status[1].masked, None);
    assert!(store.delete("openai").unwrap());
    assert!(!store.delete("openai").unwrap());
    assert_eq!(store.get("openai").unwrap(), None);
}

#[test]
fn cli_reads_the_key_from_stdin_never_from_arguments() {
    let Some(store) = keychain("cli") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let svc = service("cli");
    let key = fake_key();
    let out = sift(
        dir.path(),
        &svc,
        &["key", "set", "gemini"],
        Some(&format!("{key}\n")),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(&key));
    assert_eq!(store.get("gemini").unwrap().unwrap().expose(), key);

    // There is no way to pass a key as an argument.
    let out = sift(
        dir.path(),
        &svc,
        &["key", "set", "gemini", "test-key-argv"],
        None,
    );
    assert!(!out.status.success());
    assert_eq!(store.get("gemini").unwrap().unwrap().expose(), key);

    let out = sift(dir.path(), &svc, &["key", "delete", "gemini"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(store.get("gemini").unwrap(), None);
}

#[cfg(target_os = "linux")]
#[test]
fn no_keychain_is_a_clear_error_and_no_plaintext_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let key = fake_key();
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sift"));
        cmd.args(args)
            .env("SIFT_DATA_DIR", dir.path())
            .env(ENV_SERVICE, service("none"))
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                "unix:path=/nonexistent/sift-test-bus",
            )
            .env_remove("DISPLAY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        if let Some(t) = stdin {
            pipe.write_all(t.as_bytes()).unwrap();
        }
        drop(pipe);
        child.wait_with_output().unwrap()
    };
    let out = run(&["key", "set", "openai"], Some(&key));
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("no OS keychain is available"), "{msg}");
    assert!(msg.contains("never in plain text"), "{msg}");
    assert!(!msg.contains(&key));
    let out = run(&["key", "status"], None);
    assert!(!out.status.success());
    assert!(text(&out).contains("no OS keychain"));
    // Nothing was written anywhere in the data folder.
    let files = files_under(dir.path());
    assert!(files.is_empty(), "{files:?}");
}

#[test]
fn key_never_leaks_after_a_full_index_run() {
    let Some(store) = keychain("index") else {
        return;
    };
    let svc = service("index");
    let key = fake_key();
    let server = Server::start(Some(&key));
    let data = tempfile::tempdir().unwrap();
    let notes = tempfile::tempdir().unwrap();
    for i in 0..12 {
        std::fs::write(
            notes.path().join(format!("note-{i}.md")),
            format!("# Note {i}\n\nTides, moons and the meaning of note {i}.\n\nMore text {i}.\n"),
        )
        .unwrap();
    }
    let settings = json!({
        "provider": {
            "provider": "openai",
            "model": "text-embedding-3-small",
            "dimensions": 64,
            "base_url": server.openai_base(),
            "max_retries": 1,
            "backoff_base_ms": 10,
        }
    });
    std::fs::write(data.path().join("settings.json"), settings.to_string()).unwrap();

    let mut logs = String::new();
    // A key saved for OpenAI's own API is not sent to the settings' address.
    let out = sift(data.path(), &svc, &["key", "set", "openai"], Some(&key));
    assert!(out.status.success(), "{}", text(&out));
    logs += &text(&out);
    let out = sift(
        data.path(),
        &svc,
        &["index", notes.path().to_str().unwrap()],
        None,
    );
    logs += &text(&out);
    assert!(text(&out).contains("does not send it to"), "{}", text(&out));
    assert!(server.log().is_empty(), "nothing reached the other address");
    // Saved for the loopback address, it is used there.
    let base = server.openai_base();
    let out = sift(
        data.path(),
        &svc,
        &["key", "set", "openai", "--base-url", &base],
        Some(&key),
    );
    assert!(out.status.success(), "{}", text(&out));
    logs += &text(&out);
    let notes_dir = notes.path().to_str().unwrap();
    let out = sift(data.path(), &svc, &["index", notes_dir], None);
    logs += &text(&out);
    assert!(out.status.success(), "{logs}");
    // The key was really used, in the Authorization header only.
    let log = server.log();
    assert!(!log.is_empty());
    assert!(log
        .iter()
        .all(|l| l.headers["authorization"] == format!("Bearer {key}")));
    assert!(log.iter().all(|l| !l.path.contains(&key)));

    for args in [
        &["search", "tides and moons"][..],
        &["status"][..],
        &["cost", "--json"][..],
        &["key", "status"][..],
    ] {
        let out = sift(data.path(), &svc, args, None);
        logs += &text(&out);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }

    // A failing run (the provider rejects the key) leaks nothing either.
    store
        .set_for_url("openai", &fake_key(), Some(&server.openai_base()))
        .unwrap();
    std::fs::write(
        notes.path().join("new.md"),
        "# New\n\nFresh text to embed.\n",
    )
    .unwrap();
    let out = sift(data.path(), &svc, &["index"], None);
    logs += &text(&out);
    assert!(!out.status.success(), "{logs}");
    assert!(
        text(&out).contains("rejected the API key"),
        "{}",
        text(&out)
    );

    assert_nowhere(&key, data.path(), &logs);
    store.delete("openai").unwrap();
}
