//! Bad input is skipped with a recorded reason and never stops the run.

use crate::common;

use std::fs;
use std::sync::Arc;

use common::*;
use sift::Mode;

fn reason_of(t: &TestEngine, path: &str) -> Option<String> {
    t.engine
        .file_states(false)
        .unwrap()
        .into_iter()
        .find(|f| f.path == path)
        .and_then(|f| {
            assert_eq!(f.state, "skipped", "{path} should be skipped");
            f.reason
        })
}

#[test]
fn every_kind_of_bad_file_is_skipped_with_its_reason() {
    let notes = fixture_notes();
    let dir = notes.path();
    // Huge: over a 1 KB limit set below.
    fs::write(dir.join("huge.md"), "word ".repeat(1000)).unwrap();
    // A symlink loop.
    std::os::unix::fs::symlink(dir, dir.join("projects/loop")).unwrap();
    // A dangling symlink (vanished target).
    std::os::unix::fs::symlink(dir.join("nowhere.md"), dir.join("dangling.md")).unwrap();

    let data = tempfile::tempdir().unwrap();
    let mut settings = sift::Settings::default();
    settings.scan.max_file_bytes = 1024;
    let engine =
        sift::Engine::open_with(data.path(), settings, Some(Arc::new(FakeEmbedder))).unwrap();
    let root = engine.add_folder(dir).unwrap();
    let t = TestEngine {
        engine,
        data,
        notes: root,
    };
    let report = index(&t.engine);

    assert!(reason_of(&t, "journal/broken.md")
        .unwrap()
        .contains("not valid UTF-8"));
    assert!(reason_of(&t, "projects/archive.md")
        .unwrap()
        .contains("binary"));
    assert!(reason_of(&t, "huge.md").unwrap().contains("too large"));
    assert!(
        report
            .skipped
            .iter()
            .any(|(p, r)| p.starts_with("projects/loop") && r.contains("loop")),
        "symlink loop reported: {:?}",
        report.skipped
    );
    assert!(
        report.skipped.iter().any(|(p, _)| p == "dangling.md"),
        "dangling link reported: {:?}",
        report.skipped
    );
    // Everything else was indexed; ignored folders were not entered.
    let indexed: Vec<String> = t
        .engine
        .file_states(false)
        .unwrap()
        .into_iter()
        .filter(|f| f.state == "indexed")
        .map(|f| f.path)
        .collect();
    assert_eq!(indexed.len(), 6, "{indexed:?}");
    assert!(indexed.iter().all(|p| !p.starts_with(".obsidian")
        && !p.starts_with("node_modules")
        && !p.starts_with("private")));
    assert!(
        search(&t.engine, "swordfish", Mode::Keyword).is_empty(),
        ".gitignore honoured"
    );
    let status = t.engine.status().unwrap();
    assert_eq!(status.notes, 6);
    assert!(status.skipped >= 3);
}

#[test]
fn a_file_that_turns_bad_loses_its_chunks_and_recovers_when_fixed() {
    let notes = fixture_notes();
    let t = open(notes.path(), Some(Arc::new(FakeEmbedder)));
    index(&t.engine);
    let path = notes.path().join("recipes/pancakes.md");
    assert_eq!(
        search(&t.engine, "pancakes", Mode::Keyword),
        vec!["recipes/pancakes.md"]
    );

    fs::write(&path, b"pancakes \xff\xfe broken").unwrap();
    index(&t.engine);
    assert!(reason_of(&t, "recipes/pancakes.md")
        .unwrap()
        .contains("UTF-8"));
    assert!(search(&t.engine, "pancakes", Mode::Keyword).is_empty());
    assert_eq!(
        t.engine.vector_count() as u64,
        t.engine.status().unwrap().chunks
    );

    fs::write(&path, "# Pancakes again\nfixed text").unwrap();
    index(&t.engine);
    assert_eq!(
        search(&t.engine, "pancakes", Mode::Keyword),
        vec!["recipes/pancakes.md"]
    );
}

#[test]
fn a_missing_folder_is_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let engine = sift::Engine::open_with(data.path(), sift::Settings::default(), None).unwrap();
    let err = engine
        .add_folder(std::path::Path::new("/no/such/folder"))
        .unwrap_err();
    assert_eq!(err.kind(), sift::ErrorKind::BadPath);
}
