//! Sift keeps working when its surroundings are damaged: a damaged settings or
//! price file is set aside and reported, one indexed folder gone missing is
//! skipped with its index kept, and on a full disk the read-only commands
//! (status, search) still answer.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sift::{Engine, Mode, Settings};

use crate::common::{self, FakeEmbedder};
use crate::multiprocess::sift;

fn set_aside(dir: &Path, name: &str) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{name}.damaged-")))
        .collect()
}

#[test]
fn a_damaged_settings_file_is_set_aside_and_indexing_goes_on() {
    let notes = common::fixture_notes();
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("embedded.log");
    fs::write(data.path().join("settings.json"), "{\"folders\": [oops").unwrap();
    let out = sift(
        data.path(),
        &log,
        0,
        &["index", &notes.path().to_string_lossy()],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("settings.json is not valid settings JSON"),
        "{stderr}"
    );
    assert!(stderr.contains("set aside"), "{stderr}");
    assert_eq!(set_aside(data.path(), "settings.json").len(), 1);
    let settings = Settings::load(data.path()).unwrap();
    assert_eq!(settings.folders, vec![notes.path().canonicalize().unwrap()]);

    // The engine reports it in its status too.
    fs::write(data.path().join("settings.json"), "not json").unwrap();
    let engine = Engine::open(data.path(), None).unwrap();
    let warnings = engine.status().unwrap().warnings;
    assert!(
        warnings.iter().any(|w| w.contains("set aside")),
        "{warnings:?}"
    );
    assert_eq!(set_aside(data.path(), "settings.json").len(), 2);
}

#[test]
fn a_damaged_price_file_never_stops_local_indexing() {
    let notes = common::fixture_notes();
    let data = tempfile::tempdir().unwrap();
    fs::write(
        data.path().join("prices.json"),
        "{ \"usd_per_million_tokens\": 3 ",
    )
    .unwrap();
    let engine = Engine::open_with(
        data.path(),
        Settings::default(),
        Some(Arc::new(FakeEmbedder)),
    )
    .unwrap();
    engine.add_folder(notes.path()).unwrap();
    let report = common::index(&engine);
    assert!(report.notes_indexed > 0);
    assert_eq!(engine.status().unwrap().chunks_without_vectors, 0);
    assert_eq!(set_aside(data.path(), "prices.json").len(), 1);
    assert!(!data.path().join("prices.json").exists());
}

#[test]
fn one_missing_folder_is_skipped_its_index_kept_the_rest_indexed() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    for (dir, word) in [(&a, "avocado"), (&b, "blueberry")] {
        fs::create_dir_all(dir).unwrap();
        fs::write(
            dir.join("one.md"),
            format!("# One\n\nA note about {word}.\n"),
        )
        .unwrap();
    }
    let data = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(
        data.path(),
        Settings::default(),
        Some(Arc::new(FakeEmbedder)),
    )
    .unwrap();
    let a_real = engine.add_folder(&a).unwrap();
    engine.add_folder(&b).unwrap();
    common::index(&engine);

    // Folder a goes away (a drive unplugged); b gets a new note.
    let moved = root.path().join("a-moved");
    fs::rename(&a, &moved).unwrap();
    fs::write(
        b.join("two.md"),
        "# Two\n\nA second note about blackberries.\n",
    )
    .unwrap();
    let report = common::index(&engine);
    assert_eq!(report.unavailable, vec![a_real.display().to_string()]);
    assert_eq!(report.notes_removed, 0, "a's notes are kept");
    assert_eq!(
        common::search(&engine, "avocado", Mode::Keyword),
        vec!["one.md"]
    );
    assert_eq!(
        common::search(&engine, "blackberries", Mode::Keyword),
        vec!["two.md"]
    );
    let status = engine.status().unwrap();
    assert_eq!(
        status.unavailable_folders,
        vec![a_real.display().to_string()]
    );
    assert_eq!(status.folders.len(), 2, "still an indexed folder");

    // `sift watch` starts anyway, says so, and follows the other folder.
    let log = data.path().join("embedded.log");
    drop(engine);
    let mut watch = sift(data.path(), &log, 0, &["watch", "--debounce-ms", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader =
        Engine::open_with(data.path(), Settings::load(data.path()).unwrap(), None).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    fs::write(
        b.join("three.md"),
        "# Three\n\nA third note about cranberries.\n",
    )
    .unwrap();
    let started = Instant::now();
    while common::search(&reader, "cranberries", Mode::Keyword).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the watcher did not index b"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(watch.try_wait().unwrap().is_none(), "watch is running");
    Command::new("kill")
        .args(["-TERM", &watch.id().to_string()])
        .status()
        .unwrap();
    let out = watch.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("folder unavailable"), "{text}");

    // Back again: indexed as before, nothing was lost.
    fs::rename(&moved, &a).unwrap();
    let engine = Engine::open_with(
        data.path(),
        Settings::load(data.path()).unwrap(),
        Some(Arc::new(FakeEmbedder)),
    )
    .unwrap();
    let report = common::index(&engine);
    assert!(report.unavailable.is_empty());
    assert_eq!(report.notes_indexed, 0, "a's notes were kept, not re-read");
    assert!(engine.status().unwrap().unavailable_folders.is_empty());
}

/// A small file system that can be filled: tmpfs, when this process may mount
/// one (CI runs as root); otherwise the test is skipped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path) -> Option<SmallDisk> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(dir.to_path_buf()))
    }

    fn fill(&self) {
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=64k"])
            .arg(format!("of={}", self.0.join("filler").display()))
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn on_a_full_disk_status_and_search_still_answer() {
    let mount = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(mount.path()) else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let data = mount.path().join("data");
    let notes = mount.path().join("notes");
    let log = std::env::temp_dir().join(format!("sift-full-{}.log", std::process::id()));
    let fixture = common::fixture_notes();
    fs::create_dir_all(&notes).unwrap();
    for entry in fs::read_dir(fixture.path().join("recipes")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), notes.join(entry.file_name())).unwrap();
    }
    let run = |args: &[&str]| sift(&data, &log, 0, args).output().unwrap();
    assert!(run(&["index", &notes.to_string_lossy()]).status.success());
    // The store moves ahead of the vector file (a note indexed keyword-only),
    // so opening would like to save a caught-up file.
    fs::write(notes.join("new.md"), "# New\n\nA note about lighthouses.\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sift"))
        .args(["index"])
        .env("SIFT_DATA_DIR", &data)
        .env("SIFT_MODEL_DIR", mount.path().join("no-model"))
        .env_remove("SIFT_TEST_EMBEDDER")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vector_files = |d: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = fs::read_dir(d.join("vectors"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = vector_files(&data);

    disk.fill();
    let out = run(&["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["notes"], 3, "{status}");
    for mode in ["hybrid", "semantic", "keyword"] {
        let out = run(&["search", "lighthouses pancakes", "--mode", mode, "--json"]);
        assert!(
            out.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(!doc["hits"].as_array().unwrap().is_empty(), "{mode}: {doc}");
    }
    let out = run(&["search", "lighthouses", "--mode", "keyword", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["hits"][0]["path"], "new.md", "{doc}");
    assert_eq!(vector_files(&data), before, "nothing half-written");
    let _ = fs::remove_file(&log);
}
