//! A folder holding pages with their translations (issue 12, eleventh round):
//! an English query finds the English page before its Chinese and Japanese
//! copies, which share its identifiers, and the copies are still found.
//!
//! Data: pages of Helm's documentation with their translations
//! (tests/fixtures/helmdocs, MIT; SOURCE.md), indexed with the real local
//! model, which knows English only.

use crate::common;

use std::path::Path;

use rusqlite::Connection;
use sift::language::Script;
use sift::Mode;

/// (page below each language folder, an identifier only that page explains).
/// Before notes had scripts, the default put a Chinese or Japanese copy first
/// for each of these (BENCHMARKS.md, issue 12, eleventh round).
const PAGES: &[(&str, &str)] = &[
    ("helm/helm_upgrade.md", "--reuse-values"),
    ("topics/charts_hooks.md", "helm.sh/hook-weight"),
    ("chart_template_guide/accessing_files.md", ".Files.Glob"),
];

/// The pages above in English, Chinese and Japanese, in a temp folder.
fn translated_pages() -> tempfile::TempDir {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/helmdocs");
    let notes = tempfile::tempdir().unwrap();
    for lang in ["en", "zh", "ja"] {
        for (page, _) in PAGES {
            let to = notes.path().join(lang).join(page);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(source.join(lang).join(page), to).unwrap();
        }
    }
    notes
}

/// Every identifier's English page comes first in the default mode, and its
/// two translations are still among the results.
fn assert_english_first(engine: &sift::Engine) {
    for (page, identifier) in PAGES {
        let hits = common::search(engine, identifier, Mode::Hybrid);
        assert_eq!(
            hits.first().map(String::as_str),
            Some(format!("en/{page}").as_str()),
            "{identifier}: {hits:?}"
        );
        for lang in ["zh", "ja"] {
            assert!(
                hits.contains(&format!("{lang}/{page}")),
                "{identifier}: the {lang} copy is still found: {hits:?}"
            );
        }
    }
}

/// The English page first; then, as a store indexed before notes had a
/// script, the notes get theirs from their chunks at the next run, without
/// reading a file or embedding anything again, and the English page is first
/// again.
#[test]
fn an_english_query_finds_the_english_page_before_its_translations() {
    let notes = translated_pages();
    let t = common::open(notes.path(), Some(common::local_model()));
    common::index(&t.engine);
    assert_english_first(&t.engine);

    let db = Connection::open(t.data.path().join("sift.db")).unwrap();
    db.execute("UPDATE notes SET script = NULL", []).unwrap();
    let report = common::index(&t.engine);
    assert_eq!(report.chunks_embedded, 0, "nothing is embedded again");
    assert_eq!(report.notes_indexed, 0, "no file is read again");
    let scripts: Vec<(String, Option<i64>)> = db
        .prepare("SELECT rel_path, script FROM notes ORDER BY rel_path")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(scripts.len(), 3 * PAGES.len());
    for (path, script) in &scripts {
        let expected = if path.starts_with("en/") {
            Script::Latin
        } else {
            Script::Han
        };
        assert_eq!(script.and_then(Script::from_code), Some(expected), "{path}");
    }
    assert_english_first(&t.engine);
}
