//! Issue 15, "delete everything": after `sift forget --all --model --keys`
//! a walk of the disk finds no file of Sift's and the keychain no key;
//! removing one folder leaves no row, vector, keyword entry or cached vector
//! of it behind. Keychain parts run inside scripts/with-keyring.sh (skipped
//! without a keychain unless SIFT_REQUIRE_KEYCHAIN=1).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use sift::keys::{KeyStore, ENV_SERVICE};
use sift::{Engine, Mode, Settings};

use super::common::{self, Counting, FakeEmbedder};

/// A private home: HOME and the XDG folders under one temp folder, so the
/// default data folder, model cache and app storage are all inside it.
struct Home {
    root: tempfile::TempDir,
    service: String,
}

impl Home {
    fn new() -> Home {
        Home {
            root: tempfile::tempdir().unwrap(),
            service: format!("sift-test-{}-forget", std::process::id()),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    fn sift(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sift"));
        cmd.args(args)
            .env("HOME", self.root.path())
            .env("XDG_DATA_HOME", self.path(".local/share"))
            .env("XDG_CACHE_HOME", self.path(".cache"))
            .env("XDG_CONFIG_HOME", self.path(".config"))
            .env_remove("SIFT_DATA_DIR")
            .env_remove("SIFT_MODEL_DIR")
            .env(ENV_SERVICE, &self.service)
            .env(
                "SIFT_TEST_EMBEDDER",
                format!("fake:{}", self.path("embed.log").display()),
            )
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Every file and folder under the home, relative to it.
    fn walk(&self) -> BTreeSet<String> {
        fn go(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                out.insert(path.strip_prefix(base).unwrap().display().to_string());
                if path.is_dir() && !path.is_symlink() {
                    go(&path, base, out);
                }
            }
        }
        let mut out = BTreeSet::new();
        go(self.root.path(), self.root.path(), &mut out);
        out
    }
}

/// Whether `path` is a file, or a folder with a file somewhere inside.
fn holds_files(path: &Path) -> bool {
    if !path.is_dir() {
        return true;
    }
    std::fs::read_dir(path)
        .unwrap()
        .any(|e| holds_files(&e.unwrap().path()))
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn keychain_works(service: &str) -> bool {
    let store = KeyStore::os_with_service(service);
    match store
        .set("compatible", "test-key-probe")
        .and_then(|()| store.delete("compatible"))
    {
        Ok(_) => true,
        Err(e) if std::env::var("SIFT_REQUIRE_KEYCHAIN").is_ok_and(|v| v == "1") => {
            panic!("SIFT_REQUIRE_KEYCHAIN=1 but the OS keychain is unavailable: {e}")
        }
        Err(e) => {
            eprintln!(
                "keychain part skipped: no OS keychain ({e}); run under scripts/with-keyring.sh"
            );
            false
        }
    }
}

#[test]
fn forget_all_leaves_no_file_and_no_key_of_sift() {
    let home = Home::new();
    let notes = home.path("Notes");
    common::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notes"),
        &notes,
    );
    let before_sift = home.walk();
    ok(&home.sift(&["index", notes.to_str().unwrap()], None));
    ok(&home.sift(&["search", "garden"], None));
    ok(&home.sift(
        &[
            "export",
            home.path("Notes/../index.jsonl").to_str().unwrap(),
        ],
        None,
    ));
    // What `sift model fetch` and the desktop app leave: a model in the cache,
    // the web view's storage (recent searches).
    let model = home.path(".cache/sift/models/all-MiniLM-L6-v2");
    std::fs::create_dir_all(&model).unwrap();
    for name in sift::model::MODEL_FILES {
        std::fs::write(model.join(name), "model bytes").unwrap();
    }
    let webview = home.path(".local/share/app.sift.desktop/localstorage");
    std::fs::create_dir_all(&webview).unwrap();
    std::fs::write(webview.join("file__0.localstorage"), "recent searches").unwrap();
    let keys = keychain_works(&home.service);
    if keys {
        ok(&home.sift(
            &["key", "set", "openai"],
            Some("test-key-forget-openai-0123456789"),
        ));
        ok(&home.sift(
            &["key", "set", "gemini"],
            Some("test-key-forget-gemini-0123456789"),
        ));
    }
    let data = home.path(".local/share/sift");
    assert!(
        data.join("sift.db").is_file(),
        "indexed into the default data folder"
    );

    // Without --yes and without a terminal nothing is deleted.
    let refused = home.sift(&["forget", "--all", "--model", "--keys"], None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    assert!(data.join("sift.db").is_file());

    let said = ok(&home.sift(&["forget", "--all", "--model", "--keys", "--yes"], None));
    assert!(said.contains("deleted"), "{said}");

    // The walk: only the notes, the export the user asked for, and the test
    // embedder's log (written by the test's stand-in, not by Sift) remain.
    let mut expected = before_sift.clone();
    expected.insert("index.jsonl".into());
    expected.insert("embed.log".into());
    let after = home.walk();
    // Parents Sift created may stay as empty folders (.local/share, .cache):
    // they hold nothing of Sift's.
    let leftovers: Vec<&String> = after
        .difference(&expected)
        .filter(|p| holds_files(&home.path(p)))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    let sift_named: Vec<&String> = after
        .iter()
        .filter(|p| !p.starts_with("Notes"))
        .filter(|p| p.contains("sift") && *p != "index.jsonl")
        .collect();
    assert!(sift_named.is_empty(), "left behind: {sift_named:?}");
    if keys {
        let status = KeyStore::os_with_service(&home.service).status().unwrap();
        assert!(status.iter().all(|k| k.masked.is_none()), "{status:?}");
    }
    // The notes are untouched.
    let notes_now: BTreeSet<&String> = after.iter().filter(|p| p.starts_with("Notes")).collect();
    let notes_before: BTreeSet<&String> = before_sift
        .iter()
        .filter(|p| p.starts_with("Notes"))
        .collect();
    assert_eq!(notes_now, notes_before);
}

#[test]
fn forget_all_keeps_files_it_did_not_make() {
    let home = Home::new();
    let data = home.path("somewhere");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("thesis.md"), "my thesis").unwrap();
    let notes = home.path("Notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("a.md"), "# A\n\ngarden plans\n").unwrap();
    let data_arg = format!("--data-dir={}", data.display());
    ok(&home.sift(&[&data_arg, "index", notes.to_str().unwrap()], None));
    let said = ok(&home.sift(&[&data_arg, "forget", "--all", "--yes"], None));
    assert!(said.contains("not Sift's"), "{said}");
    let left: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec!["thesis.md".to_string()]);
}

/// Counts of what the store holds: notes, chunks, keyword rows, cache entries,
/// cache entries no chunk uses.
fn counts(engine: &Engine) -> (i64, i64, i64, i64, i64) {
    engine
        .store()
        .read(|c| {
            let n = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0));
            Ok((
                n("SELECT count(*) FROM notes")?,
                n("SELECT count(*) FROM chunks")?,
                n("SELECT count(*) FROM chunks_fts")?,
                n("SELECT count(*) FROM embed_cache")?,
                n("SELECT count(*) FROM embed_cache e WHERE NOT EXISTS
                   (SELECT 1 FROM chunks c WHERE c.embed_hash = e.hash)")?,
            ))
        })
        .unwrap()
}

#[test]
fn forgetting_a_folder_removes_its_rows_vectors_keywords_and_unshared_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let shared = "# Shared\n\nthe same paragraph about beekeeping in both folders\n";
    std::fs::write(a.join("shared.md"), shared).unwrap();
    std::fs::write(b.join("shared.md"), shared).unwrap();
    std::fs::write(
        a.join("only-a.md"),
        "# Only A\n\nzeppelin hangar maintenance log\n",
    )
    .unwrap();
    std::fs::write(
        b.join("only-b.md"),
        "# Only B\n\nharpsichord tuning notes\n",
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let counting = Counting::new(Arc::new(FakeEmbedder));
    let engine =
        Engine::open_with(data.path(), Settings::default(), Some(counting.clone())).unwrap();
    engine.add_folder(&a).unwrap();
    engine.add_folder(&b).unwrap();
    common::index(&engine);
    let (_, chunks_before, _, cache_before, _) = counts(&engine);
    assert_eq!(cache_before, 3, "two unique texts and one shared");

    // Removed (the app's "Remove"): a's own vector stays for the grace
    // period, marked unused, so adding the folder back costs nothing.
    engine.remove_folder(&a).unwrap();
    assert_eq!(counts(&engine).3, 3);
    assert_eq!(counts(&engine).4, 1);
    engine.add_folder(&a).unwrap();
    counting.reset();
    common::index(&engine);
    assert_eq!(
        counting.embedded(),
        0,
        "re-added within the grace period: from the cache"
    );
    assert_eq!(counts(&engine).1, chunks_before);

    // Forgotten (`sift forget <folder>`): gone at once.
    engine.forget_folder(&a).unwrap();
    let (notes, chunks, keyword_rows, cache, unused) = counts(&engine);
    assert_eq!(notes, 2);
    assert_eq!(chunks, chunks_before - 2);
    assert_eq!(keyword_rows, chunks, "no keyword entry of a's chunks");
    assert_eq!(cache, 2, "a's own vector is gone, the shared one stays");
    assert_eq!(unused, 0);
    assert_eq!(engine.vector_count() as i64, chunks);
    assert!(common::search(&engine, "zeppelin hangar", Mode::Keyword).is_empty());
    assert!(common::search(&engine, "zeppelin hangar", Mode::Semantic)
        .iter()
        .all(|p| p != "only-a.md"));
    assert_eq!(
        common::search(&engine, "beekeeping", Mode::Keyword),
        vec!["shared.md"]
    );
    drop(engine);

    // After a restart too: the saved vector file holds b's chunks only.
    let engine = Engine::open_with(
        data.path(),
        Settings::load(data.path()).unwrap(),
        Some(counting.clone()),
    )
    .unwrap();
    assert_eq!(engine.vector_open_report().rebuild_reason, None);
    assert_eq!(engine.vector_count() as i64, chunks);
    assert_eq!(
        engine.settings().folders,
        vec![std::fs::canonicalize(&b).unwrap()]
    );
}

#[test]
fn forgetting_a_folder_that_is_not_indexed_says_which_are() {
    let home = Home::new();
    let notes = home.path("Notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("a.md"), "# A\n\ngarden plans\n").unwrap();
    ok(&home.sift(&["index", notes.to_str().unwrap()], None));
    let out = home.sift(&["forget", home.path("Other").to_str().unwrap()], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not an indexed folder") && err.contains("Notes"),
        "{err}"
    );
    let said = ok(&home.sift(&["forget", notes.to_str().unwrap()], None));
    assert!(said.contains("removed"), "{said}");
    let status = ok(&home.sift(&["status", "--json"], None));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["notes"], 0);
    assert_eq!(status["chunks"], 0);
}
