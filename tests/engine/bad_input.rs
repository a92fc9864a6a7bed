//! Bad input through the engine's API (what the desktop app sends over IPC):
//! limits and keyword weights (issue 10, "found by a bad-input run").

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
