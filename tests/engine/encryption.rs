//! Issue 15, encryption at rest: with `sift encrypt on` no file of the data
//! folder holds note text (a `strings` of every file), searches answer as
//! before, the key lives only in the OS keychain, a SIGKILL at any moment of
//! the migration leaves a folder that opens and answers the same, a folder
//! another process has open is migrated once it closes, and `sift encrypt
//! off` / `sift forget --all` delete the key. Needs a keychain: runs inside
//! scripts/with-keyring.sh (skipped without one unless SIFT_REQUIRE_KEYCHAIN=1).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sift::keys::ENV_SERVICE;

use super::common;

struct Folder {
    root: tempfile::TempDir,
    service: String,
}

impl Folder {
    fn new(tag: &str) -> Folder {
        let root = tempfile::tempdir().unwrap();
        common::copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/realnotes/en"),
            &root.path().join("notes"),
        );
        Folder {
            root,
            service: format!("sift-test-{}-{tag}", std::process::id()),
        }
    }

    fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn notes(&self) -> PathBuf {
        self.root.path().join("notes")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sift"));
        cmd.arg("--data-dir")
            .arg(self.data())
            .args(args)
            .env(ENV_SERVICE, &self.service)
            .env_remove("SIFT_DATA_DIR")
            .env(
                "SIFT_TEST_EMBEDDER",
                format!("fake:{}", self.root.path().join("embed.log").display()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn sift(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.sift(args);
        assert!(
            out.status.success(),
            "sift {args:?}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Top paths of a few hybrid searches (keywords and meaning).
    /// Top 5 of a few searches in each mode.
    fn answers(&self) -> Vec<Vec<String>> {
        let top = |q: &str, mode: &str| -> Vec<String> {
            let out = self.ok(&["search", q, "--mode", mode, "--json", "--limit", "5"]);
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            v["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["path"].as_str().unwrap().to_string())
                .collect()
        };
        [
            "tracing spans",
            "collector pipeline",
            "metrics exporter",
            "how do I sample traces",
        ]
        .iter()
        .flat_map(|q| [top(q, "semantic"), top(q, "keyword"), top(q, "hybrid")])
        .collect()
    }

    fn key_item(&self) -> Option<keyring::Entry> {
        let json = std::fs::read(self.data().join("encryption.json")).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let id = v["key_id"].as_str().unwrap();
        Some(keyring::Entry::new(&self.service, &format!("data-key {id}")).unwrap())
    }
}

/// Meaning answers alike (the same vectors, sealed or not); keyword and
/// hybrid top 5s sharing 4 of 5: an encrypted folder's keywords come from
/// FTS5, which orders near-ties of the fast index's BM25 a little
/// differently (keyword_index:: measures that agreement).
fn assert_alike(a: &[Vec<String>], b: &[Vec<String>], what: &str) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if i % 3 == 0 {
            assert_eq!(x, y, "{what}: meaning search {i}");
        } else {
            let shared = x.iter().filter(|p| y.contains(p)).count();
            assert!(
                shared >= 4,
                "{what}: search {i} shares {shared} of 5: {x:?} vs {y:?}"
            );
        }
    }
}

fn keychain_works(service: &str) -> bool {
    let entry = keyring::Entry::new(service, "probe").unwrap();
    match entry
        .set_password("probe")
        .and_then(|()| entry.delete_credential())
    {
        Ok(()) => true,
        Err(e) if std::env::var("SIFT_REQUIRE_KEYCHAIN").is_ok_and(|v| v == "1") => {
            panic!("SIFT_REQUIRE_KEYCHAIN=1 but the OS keychain is unavailable: {e}")
        }
        Err(e) => {
            eprintln!("skipped: no OS keychain ({e}); run under scripts/with-keyring.sh");
            false
        }
    }
}

/// Lines of the notes long enough to be telling, as they are in the files.
fn telling_lines(notes: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in walk(notes) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        lines.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| l.len() >= 40 && l.is_ascii() && !l.contains("http"))
                .take(2)
                .map(|l| l[..40].to_string()),
        );
    }
    lines
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Files of the data folder holding one of `lines`, or any telling word
/// sequence of the notes, as `strings` would find them.
fn leaks(data: &Path, lines: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for file in walk(data) {
        let bytes = std::fs::read(&file).unwrap();
        for line in lines {
            if bytes.windows(line.len()).any(|w| w == line.as_bytes()) {
                found.push(format!("{}: {line:?}", file.display()));
                break;
            }
        }
    }
    found
}

#[test]
fn encrypted_folder_holds_no_note_text_and_answers_the_same() {
    let f = Folder::new("enc");
    if !keychain_works(&f.service) {
        return;
    }
    f.ok(&["index", f.notes().to_str().unwrap()]);
    let before = f.answers();
    let lines = telling_lines(&f.notes());
    assert!(lines.len() > 100, "{}", lines.len());
    // The check finds text when it is there.
    assert!(
        !leaks(&f.data(), &lines).is_empty(),
        "plain folder shows text"
    );

    let out = f.ok(&["encrypt", "on"]);
    assert!(out.contains("encrypted"), "{out}");
    assert!(
        leaks(&f.data(), &lines).is_empty(),
        "{:?}",
        leaks(&f.data(), &lines)
    );
    assert!(
        !f.data().join("keywords").exists(),
        "tantivy's plain files are gone"
    );
    assert!(f.ok(&["status"]).contains("encryption:  on"));
    assert_alike(
        &f.answers(),
        &before,
        "same answers from the encrypted folder",
    );
    let embedded = std::fs::read_to_string(f.root.path().join("embed.log")).unwrap_or_default();

    // Edits are indexed into the encrypted folder, and stay unreadable.
    let edited = f.notes().join("added.md");
    std::fs::write(
        &edited,
        "# Quarterly zymurgy review\nThe zymurgy brewing ledger balances.\n",
    )
    .unwrap();
    f.ok(&["index", f.notes().to_str().unwrap()]);
    let hits = f.ok(&["search", "zymurgy", "--json"]);
    assert!(hits.contains("added.md"), "{hits}");
    let mut with_edit = lines.clone();
    with_edit.push("The zymurgy brewing ledger".into());
    assert!(
        leaks(&f.data(), &with_edit).is_empty(),
        "{:?}",
        leaks(&f.data(), &with_edit)
    );
    std::fs::remove_file(&edited).unwrap();
    f.ok(&["index", f.notes().to_str().unwrap()]);

    // No note was embedded again by encrypting (only the added one).
    let after = std::fs::read_to_string(f.root.path().join("embed.log")).unwrap_or_default();
    assert_eq!(
        after.lines().count() - embedded.lines().count(),
        1,
        "one batch for the added note"
    );

    // Off: plain again, the same answers, the key gone from the keychain.
    let item = f.key_item().expect("a key id file");
    assert!(item.get_password().is_ok());
    f.ok(&["encrypt", "off"]);
    assert!(matches!(item.get_password(), Err(keyring::Error::NoEntry)));
    assert!(!f.data().join("encryption.json").exists());
    assert!(f.ok(&["status"]).contains("encryption:  off"));
    assert_alike(&f.answers(), &before, "after off");
}

#[test]
fn a_missing_key_is_a_clear_error_and_forget_all_deletes_the_key() {
    let f = Folder::new("nokey");
    if !keychain_works(&f.service) {
        return;
    }
    f.ok(&["index", f.notes().to_str().unwrap()]);
    f.ok(&["encrypt", "on"]);
    let item = f.key_item().unwrap();
    let secret = item.get_password().unwrap();
    item.delete_credential().unwrap();
    let out = f.sift(&["search", "tracing"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("encrypted") && err.contains("keychain"),
        "{err}"
    );
    item.set_password(&secret).unwrap();
    f.ok(&["search", "tracing"]);

    f.ok(&["forget", "--all", "--yes"]);
    assert!(!f.data().exists());
    assert!(matches!(item.get_password(), Err(keyring::Error::NoEntry)));
}

#[test]
fn a_folder_open_elsewhere_is_encrypted_once_it_closes() {
    let f = Folder::new("busy");
    if !keychain_works(&f.service) {
        return;
    }
    f.ok(&["index", f.notes().to_str().unwrap()]);
    let lines = telling_lines(&f.notes());
    let mut watch = f.command(&["watch"]).spawn().unwrap();
    // The watcher has the database open once it says it is watching.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f.data().join("open.lock").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let out = f.sift(&["encrypt", "on"]);
    assert!(
        !out.status.success(),
        "refused while `sift watch` has it open"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("have this data folder open"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(f.ok(&["status"]).contains("encryption:  off"));
    watch.kill().unwrap();
    watch.wait().unwrap();
    // The setting stands: the next process to open the folder alone does it.
    f.ok(&["search", "tracing"]);
    assert!(f.ok(&["status"]).contains("encryption:  on"));
    assert!(leaks(&f.data(), &lines).is_empty());
}

#[test]
fn sigkill_at_any_moment_of_the_migration_loses_nothing() {
    let f = Folder::new("kill");
    if !keychain_works(&f.service) {
        return;
    }
    f.ok(&["index", f.notes().to_str().unwrap()]);
    let before = f.answers();
    // How long a whole migration takes here, to kill at moments inside it.
    let t = Instant::now();
    f.ok(&["encrypt", "on"]);
    let on = t.elapsed();
    f.ok(&["encrypt", "off"]);
    let mut seed = 0x9e37_79b9_u64;
    for round in 0..6 {
        let want = if round % 2 == 0 { "on" } else { "off" };
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = on.mul_f64((seed >> 33) as f64 / (1u64 << 31) as f64);
        let mut child = f.command(&["encrypt", want]).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        child.wait().unwrap();
        // Whatever state it was left in opens and answers the same.
        assert_alike(
            &f.answers(),
            &before,
            &format!("round {round}, killed after {delay:?}"),
        );
        f.ok(&["encrypt", want]);
        let status = f.ok(&["status"]);
        assert!(status.contains(&format!("encryption:  {want}")), "{status}");
        assert_alike(&f.answers(), &before, &format!("round {round} finished"));
    }
}

/// The engine itself on an encrypted folder: searches in every mode find
/// each note by its title as the plain folder does, related notes come from
/// the sealed vector file after a reopen, and removing the folder empties it.
#[test]
fn an_encrypted_engine_answers_like_a_plain_one() {
    use sift::{Engine, Mode, Query, Settings};
    use std::sync::Arc;
    let f = Folder::new("engine");
    if !keychain_works(&f.service) {
        return;
    }
    // In-process engines use the keychain service of this process.
    if std::env::var(ENV_SERVICE).is_ok() {
        return;
    }
    let open = |data: &Path, encrypt_at_rest: bool| {
        let settings = Settings {
            encrypt_at_rest,
            ..Settings::load(data).unwrap()
        };
        Engine::open_with(data, settings, Some(Arc::new(common::FakeEmbedder))).unwrap()
    };
    let plain_dir = f.root.path().join("plain");
    let plain = open(&plain_dir, false);
    plain.add_folder(&f.notes()).unwrap();
    common::index(&plain);
    let encrypted = open(&f.data(), true);
    encrypted.add_folder(&f.notes()).unwrap();
    common::index(&encrypted);
    assert!(encrypted.status().unwrap().encrypted);
    assert!(!plain.status().unwrap().encrypted);

    let titles: Vec<String> = encrypted
        .store()
        .read(|c| {
            let mut stmt =
                c.prepare("SELECT title FROM notes WHERE title != '' ORDER BY id LIMIT 60")?;
            let t = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(t)
        })
        .unwrap();
    assert_eq!(titles.len(), 60);
    for mode in [Mode::Keyword, Mode::Semantic, Mode::Hybrid] {
        let mut same_first = 0;
        for title in &titles {
            let first = |e: &Engine| {
                e.search(&Query {
                    mode,
                    ..Query::new(title)
                })
                .unwrap()
                .hits
                .first()
                .map(|h| h.path.clone())
            };
            let (a, b) = (first(&plain), first(&encrypted));
            same_first += (a.is_some() && a == b) as usize;
        }
        assert!(
            same_first >= 54,
            "{mode:?}: same first note for {same_first} of 60"
        );
    }

    // Reopened: the sealed vector file loads (no rebuild), related notes agree.
    let some_note = f
        .notes()
        .join(common::paths(&encrypted.search(&Query::new(&titles[0])).unwrap().hits)[0].clone());
    drop(encrypted);
    let encrypted = open(&f.data(), true);
    assert_eq!(encrypted.status().unwrap().vector_rebuilds, 0);
    let related = |e: &Engine| common::paths(&e.related(&some_note, 5).unwrap());
    assert_eq!(related(&encrypted), related(&plain));

    let root = encrypted.settings().folders[0].clone();
    encrypted.remove_folder(&root).unwrap();
    let status = encrypted.status().unwrap();
    assert_eq!((status.notes, status.chunks, status.vectors), (0, 0, 0));
}
