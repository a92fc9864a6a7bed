//! Search over the fixture notes with the real local model: by meaning (words
//! not in the note), by keyword, hybrid, filters, snippets, lines, related notes.

use crate::common;

use std::sync::OnceLock;

use common::*;
use sift::{Mode, Query};

fn engine() -> &'static TestEngine {
    static ENGINE: OnceLock<(TestEngine, tempfile::TempDir)> = OnceLock::new();
    &ENGINE
        .get_or_init(|| {
            let notes = fixture_notes();
            let t = open(notes.path(), Some(local_model()));
            index(&t.engine);
            (t, notes)
        })
        .0
}

fn top(text: &str, mode: Mode) -> Option<String> {
    search(&engine().engine, text, mode).into_iter().next()
}

#[test]
fn questions_find_notes_by_meaning_without_shared_words() {
    // None of these queries share a content word with the note they should find.
    let cases = [
        ("how can I get a better night's rest", "journal/sleep.txt"),
        ("breakfast recipe", "recipes/pancakes.md"),
        ("growing vegetables at home", "projects/garden.md"),
        ("jogging injury", "journal/2024-03-02.md"),
    ];
    for (query, expected) in cases {
        assert_eq!(
            top(query, Mode::Semantic).as_deref(),
            Some(expected),
            "semantic: {query}"
        );
        assert_eq!(
            top(query, Mode::Hybrid).as_deref(),
            Some(expected),
            "hybrid: {query}"
        );
    }
}

#[test]
fn keywords_find_exact_terms() {
    assert_eq!(
        top("nDCG SciFact", Mode::Keyword).as_deref(),
        Some("projects/sift-launch.md")
    );
    assert_eq!(
        top("nDCG SciFact", Mode::Hybrid).as_deref(),
        Some("projects/sift-launch.md")
    );
    assert_eq!(
        top("\"last frost\"", Mode::Keyword).as_deref(),
        Some("projects/garden.md")
    );
    assert!(search(&engine().engine, "zyzzyva", Mode::Keyword).is_empty());
}

#[test]
fn hybrid_does_not_pad_results_with_unrelated_notes() {
    let hits = search(
        &engine().engine,
        "how can I get a better night's rest",
        Mode::Hybrid,
    );
    assert!(
        hits.len() <= 3,
        "unrelated notes should not be listed: {hits:?}"
    );
}

#[test]
fn hits_carry_snippet_highlights_line_and_why() {
    let results = engine()
        .engine
        .search(&Query::new("tomatoes frost"))
        .unwrap();
    let hit = &results.hits[0];
    assert_eq!(hit.path, "projects/garden.md");
    assert_eq!(hit.title, "Vegetable garden plan");
    let marked: Vec<&str> = hit
        .snippet
        .iter()
        .filter(|p| p.highlight)
        .map(|p| p.text.as_str())
        .collect();
    assert!(
        marked.contains(&"tomatoes") && marked.contains(&"frost"),
        "{marked:?}"
    );
    // The first match ("tomatoes") is on line 8 of the file.
    assert_eq!(hit.line, 8);
    assert_eq!(hit.keyword_rank, Some(1));
    assert!(hit.vector_similarity.unwrap() > 0.2);
    assert!(hit.abs_path.ends_with("projects/garden.md"));
}

#[test]
fn filters_narrow_results_and_do_not_starve_them() {
    let e = &engine().engine;
    let q = |f: &dyn Fn(&mut Query)| {
        let mut q = Query::new("notes about food and health");
        q.limit = 10;
        f(&mut q);
        paths(&e.search(&q).unwrap().hits)
    };
    assert!(q(&|q| q.folder = Some("recipes".into()))
        .iter()
        .all(|p| p.starts_with("recipes/")));
    assert!(!q(&|q| q.folder = Some("recipes".into())).is_empty());
    assert_eq!(
        q(&|q| q.exts = vec!["txt".into()]),
        vec!["journal/sleep.txt"]
    );
    assert_eq!(
        q(&|q| q.tags = vec!["cooking".into()]),
        vec!["recipes/pancakes.md"]
    );
    assert_eq!(
        q(&|q| q.tags = vec!["#Gardening".into()]),
        vec!["projects/garden.md"]
    );
    assert!(q(&|q| q.after = Some("2999-01-01".into())).is_empty());
    assert!(!q(&|q| q.before = Some("2999-01-01".into())).is_empty());
    // A semantic query restricted to a folder still returns what is there.
    let mut sq = Query::new("pancakes");
    sq.mode = Mode::Semantic;
    sq.folder = Some("journal".into());
    let journal = paths(&e.search(&sq).unwrap().hits);
    assert!(!journal.is_empty() && journal.iter().all(|p| p.starts_with("journal/")));
    // Bad dates are clear errors.
    let mut bad = Query::new("x");
    bad.after = Some("yesterday".into());
    assert_eq!(
        e.search(&bad).unwrap_err().kind(),
        sift::ErrorKind::InvalidInput
    );
}

#[test]
fn related_notes_exclude_the_note_itself() {
    let t = engine();
    let related = t
        .engine
        .related(&t.notes.join("projects/garden.md"), 3)
        .unwrap();
    assert!(!related.is_empty());
    assert!(related.iter().all(|h| h.path != "projects/garden.md"));
    let elsewhere = tempfile::NamedTempFile::new().unwrap();
    let err = t.engine.related(elsewhere.path(), 3).unwrap_err();
    assert_eq!(err.kind(), sift::ErrorKind::NotIndexed);
    // A path that does not exist says so (issue 10), whatever folder it names.
    let err = t
        .engine
        .related(std::path::Path::new("/tmp/elsewhere.md"), 3)
        .unwrap_err();
    assert_eq!(err.kind(), sift::ErrorKind::BadPath);
}

#[test]
fn one_hit_per_note() {
    let hits = search(&engine().engine, "the", Mode::Hybrid);
    let mut dedup = hits.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), hits.len());
}
