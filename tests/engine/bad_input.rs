//! Bad input through the engine's API (what the desktop app sends over IPC):
//! limits, keyword weights and file names that are not UTF-8 (issue 10,
//! "found by a bad-input run").

use crate::common;

use std::fs;
use std::path::Path;
use std::sync::Arc;

use common::*;
use sift::{ErrorKind, Mode, Query, MAX_LIMIT};

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
