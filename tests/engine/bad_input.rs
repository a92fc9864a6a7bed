//! Bad input through the engine's API (what the desktop app sends over IPC):
//! limits, keyword weights, file names that are not UTF-8, and errors that
//! name the path and say what to do (issue 10, "found by a bad-input run").

use crate::common;

use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use common::*;
use sift::{Engine, ErrorKind, Mode, Query, Settings, MAX_LIMIT};

fn many_notes(dir: &Path, count: usize) {
    for i in 0..count {
        fs::write(
            dir.join(format!("n{i}.md")),
            format!("# Note {i}\n\nalpha beta gamma, note number {i} about gardens\n"),
        )
        .unwrap();
    }
}

/// `--limit 4294967296` asked usearch for 137 GB, `related --limit u64::MAX`
/// overflowed; limits are lowered to MAX_LIMIT and 0 means 1.
#[test]
fn limits_are_clamped_to_max_limit() {
    let notes = tempfile::tempdir().unwrap();
    many_notes(notes.path(), 12);
    let t = open(notes.path(), Some(Arc::new(FakeEmbedder)));
    index(&t.engine);
    for mode in [Mode::Keyword, Mode::Semantic, Mode::Hybrid] {
        for limit in [usize::MAX, usize::MAX / 4 + 1, 1 << 32] {
            let q = Query {
                mode,
                limit,
                ..Query::new("alpha gardens")
            };
            let hits = t.engine.search(&q).unwrap().hits;
            assert_eq!(hits.len(), 12, "{mode:?} limit {limit}");
        }
    }
    let n0 = t.notes.join("n0.md");
    assert_eq!(t.engine.related(&n0, usize::MAX).unwrap().len(), 11);
    assert_eq!(t.engine.related(&n0, 1 << 32).unwrap().len(), 11);
    // Zero used to list every related note.
    assert_eq!(t.engine.related(&n0, 0).unwrap().len(), 1);
    // Past MAX_LIMIT, no more than MAX_LIMIT come back.
    many_notes(notes.path(), MAX_LIMIT + 5);
    index(&t.engine);
    let q = Query {
        mode: Mode::Keyword,
        limit: usize::MAX,
        ..Query::new("alpha")
    };
    assert_eq!(t.engine.search(&q).unwrap().hits.len(), MAX_LIMIT);
}

/// NaN gave `"score": null`; 5 and -1 were taken as they came.
#[test]
fn keyword_weight_must_be_a_number_from_0_to_1() {
    let notes = fixture_notes();
    let t = open(notes.path(), Some(Arc::new(FakeEmbedder)));
    index(&t.engine);
    for bad in [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        5.0,
        -1.0,
        1.0001,
    ] {
        let q = Query {
            keyword_weight: Some(bad),
            ..Query::new("garden")
        };
        let err = t.engine.search(&q).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}: {err}");
        assert!(err.message().contains("0 to 1"), "{err}");
    }
    for good in [0.0, 0.3, 1.0] {
        let q = Query {
            keyword_weight: Some(good),
            ..Query::new("garden")
        };
        let results = t.engine.search(&q).unwrap();
        assert!(results.hits.iter().all(|h| h.score.is_finite()), "{good}");
    }
}

/// `n\xffx.md` and `n\xfex.md` were both stored as `n\u{FFFD}x.md`: one
/// note, the other file gone without a word. Each is now skipped, apart,
/// with the reason, because the store, JSON and the desktop app keep paths
/// as text.
#[test]
fn file_names_that_are_not_utf8_are_each_skipped_with_a_reason() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let notes = tempfile::tempdir().unwrap();
    let dir = notes.path();
    fs::write(dir.join("ok.md"), "# Fine\n\nplain name").unwrap();
    fs::write(
        dir.join(OsStr::from_bytes(b"n\xffx.md")),
        "# A\n\nlatin one",
    )
    .unwrap();
    fs::write(
        dir.join(OsStr::from_bytes(b"n\xfex.md")),
        "# B\n\nlatin two",
    )
    .unwrap();
    let sub = dir.join(OsStr::from_bytes(b"d\xe9j\xe0"));
    fs::create_dir(&sub).unwrap();
    fs::write(sub.join("inside.md"), "# C\n\nbelow an old folder name").unwrap();

    let t = open(dir, None);
    let report = index(&t.engine);
    assert_eq!(report.notes_indexed, 1, "{report:?}");
    let states = t.engine.file_states(false).unwrap();
    let state = |path: &str| {
        states
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("{path} missing from {states:?}"))
    };
    assert_eq!(state("ok.md").state, "indexed");
    for path in ["n\\xFFx.md", "n\\xFEx.md"] {
        assert_eq!(state(path).state, "skipped");
        assert_eq!(
            state(path).reason.as_deref(),
            Some("file name is not valid UTF-8: rename the file to index it")
        );
    }
    let below = state("d\\xE9j\\xE0/inside.md");
    assert_eq!(below.state, "skipped");
    assert!(
        below.reason.as_deref().unwrap().contains("folder name"),
        "{below:?}"
    );
    assert_eq!(states.len(), 4, "{states:?}");
    // Renamed, the note is indexed and the skip is gone.
    fs::rename(
        dir.join(OsStr::from_bytes(b"n\xffx.md")),
        dir.join("nix.md"),
    )
    .unwrap();
    index(&t.engine);
    let states = t.engine.file_states(false).unwrap();
    assert!(states
        .iter()
        .any(|f| f.path == "nix.md" && f.state == "indexed"));
    assert!(!states.iter().any(|f| f.path == "n\\xFFx.md"), "{states:?}");
    // A folder whose own path is not UTF-8 is refused, by name.
    let err = t.engine.add_folder(&sub).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadPath);
    assert!(err.message().contains("d\\xE9j\\xE0"), "{err}");
}

/// `related` on a missing file said "not inside an indexed folder"; on an
/// empty note it printed nothing.
#[test]
fn related_says_why_a_note_cannot_be_compared() {
    let notes = fixture_notes();
    let dir = notes.path();
    fs::write(dir.join("empty.md"), "").unwrap();
    fs::write(dir.join("huge.md"), "word ".repeat(1000)).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.scan.max_file_bytes = 1024;
    let engine = Engine::open_with(data.path(), settings, Some(Arc::new(FakeEmbedder))).unwrap();
    let root = engine.add_folder(dir).unwrap();
    index(&engine);

    let missing = root.join("no-such-note.md");
    let err = engine.related(&missing, 5).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadPath, "{err}");
    assert!(err.message().contains("no-such-note.md"), "{err}");
    assert!(err.message().contains("does not exist"), "{err}");

    let err = engine.related(&root.join("empty.md"), 5).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::EmptyNote, "{err}");
    assert!(err.message().contains("empty.md"), "{err}");
    assert!(err.message().contains("no text to compare"), "{err}");

    let err = engine.related(&root.join("huge.md"), 5).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotIndexed, "{err}");
    assert!(err.message().contains("too large"), "{err}");

    let err = engine.related(&root, 5).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadPath, "{err}");
    assert!(err.message().contains("is a folder"), "{err}");

    let outside = tempfile::NamedTempFile::new().unwrap();
    let err = engine.related(outside.path(), 5).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotIndexed, "{err}");
    assert!(err.message().contains("sift index <folder>"), "{err}");

    // Indexed before its vectors came: no related notes yet, and no error
    // (the desktop app asks for the related notes of any hit, even mid-run).
    let data = tempfile::tempdir().unwrap();
    let keyword_only = Engine::open_with(data.path(), Settings::default(), None).unwrap();
    keyword_only.add_folder(dir).unwrap();
    index(&keyword_only);
    drop(keyword_only);
    let engine = Engine::open_with(
        data.path(),
        Settings::default(),
        Some(Arc::new(FakeEmbedder)),
    )
    .unwrap();
    assert!(engine
        .related(&root.join("projects/garden.md"), 5)
        .unwrap()
        .is_empty());
}

/// A data folder that is a file said "File exists (os error 17)".
#[test]
fn a_file_where_the_data_folder_should_be_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("sift-data");
    fs::write(&file, "I am a file").unwrap();
    for dir in [file.clone(), file.join("nested")] {
        let err = Engine::open(&dir, None)
            .err()
            .expect("a file is no data folder");
        assert_eq!(err.kind(), ErrorKind::BadPath, "{err}");
        assert!(err.message().contains(&dir.display().to_string()), "{err}");
        assert!(err.message().contains("is a file, not a folder"), "{err}");
    }
}

/// A damaged database said "database error: file is not a database", with no
/// path and no way out. The error names it and `sift index --rebuild`
/// (`data_dir::rebuild_index`) sets it aside and starts again.
#[test]
fn a_damaged_index_is_named_and_rebuilt_from_the_notes() {
    let notes = fixture_notes();
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("sift.db");
    {
        let engine = Engine::open(data.path(), Some(Arc::new(FakeEmbedder))).unwrap();
        engine.add_folder(notes.path()).unwrap();
        index(&engine);
    }
    let healthy = fs::read(&db).unwrap();
    let mut damaged = healthy.clone();
    damaged[..100].copy_from_slice(&[0x5a; 100]);
    fs::write(&db, damaged).unwrap();
    let _ = fs::remove_file(data.path().join("sift.db-wal"));
    let _ = fs::remove_file(data.path().join("sift.db-shm"));

    let err = Engine::open(data.path(), Some(Arc::new(FakeEmbedder)))
        .err()
        .expect("a damaged index does not open");
    assert_eq!(err.kind(), ErrorKind::IndexCorrupt, "{err}");
    assert!(err.message().contains(&db.display().to_string()), "{err}");
    assert!(err.message().contains("sift index --rebuild"), "{err}");

    let rebuilt = sift::data_dir::rebuild_index(data.path()).unwrap().unwrap();
    assert!(rebuilt.old_index.join("sift.db").exists());
    assert!(rebuilt.old_index.starts_with(data.path()));
    let engine = Engine::open(data.path(), Some(Arc::new(FakeEmbedder))).unwrap();
    // The settings (the folders) were kept.
    assert_eq!(engine.settings().folders.len(), 1);
    let report = index(&engine);
    assert!(report.notes_indexed > 5, "{report:?}");
    assert!(!search(&engine, "garden", Mode::Keyword).is_empty());
}

/// A rebuild keeps the embedding cache of a readable old index: nothing is
/// embedded (or paid for) twice.
#[test]
fn a_rebuild_keeps_the_cached_vectors() {
    let notes = fixture_notes();
    let data = tempfile::tempdir().unwrap();
    let counting = Counting::new(Arc::new(FakeEmbedder));
    {
        let engine = Engine::open(data.path(), Some(counting.clone())).unwrap();
        engine.add_folder(notes.path()).unwrap();
        index(&engine);
    }
    assert!(counting.embedded() > 0);
    counting.reset();
    let rebuilt = sift::data_dir::rebuild_index(data.path()).unwrap().unwrap();
    assert!(rebuilt.vectors_kept > 0, "{rebuilt:?}");
    let engine = Engine::open(data.path(), Some(counting.clone())).unwrap();
    let report = engine.index(&|_| {}, &AtomicBool::new(false)).unwrap();
    assert!(report.notes_indexed > 5);
    assert_eq!(
        counting.embedded(),
        0,
        "everything came from the kept cache"
    );
    assert_eq!(report.chunks_without_vectors, 0);
}
