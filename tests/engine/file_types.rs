//! PDF, Word, OpenDocument and HTML files (issue 14): converted to text, found
//! by a phrase and by meaning with their page or heading, and the broken,
//! encrypted, scanned and oversized ones skipped with their reasons. The files
//! are real: made by pandoc, LibreOffice, qpdf and img2pdf from real notes, and
//! one from pdf.js (tests/fixtures/docs/README.md says how each was made).

use crate::common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use sift::{Hit, Mode, Query};

fn docs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/docs");
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "README.md" {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    dir
}

fn hits(t: &TestEngine, text: &str, mode: Mode) -> Vec<Hit> {
    let q = Query {
        mode,
        limit: 50,
        ..Query::new(text)
    };
    t.engine.search(&q).unwrap().hits
}

fn hit<'a>(found: &'a [Hit], path: &str) -> &'a Hit {
    found
        .iter()
        .find(|h| h.path == path)
        .unwrap_or_else(|| panic!("{path} not found in {:?}", paths(found)))
}

fn highlighted(hit: &Hit) -> Vec<String> {
    hit.snippet
        .iter()
        .filter(|p| p.highlight)
        .map(|p| p.text.clone())
        .collect()
}

fn state(t: &TestEngine, path: &str) -> (String, Option<String>) {
    let row = t
        .engine
        .file_states(false)
        .unwrap()
        .into_iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("{path} has no state"));
    (row.state, row.reason)
}

#[test]
fn documents_are_indexed_and_found_by_a_phrase_with_their_page_or_heading() {
    let dir = docs();
    let t = open(dir.path(), Some(Arc::new(FakeEmbedder)));
    let report = index(&t.engine);
    for path in [
        "sampling.pdf",
        "sampling.docx",
        "sampling.odt",
        "resources.html",
        "ja-resources.html",
        "zh-baggage.pdf",
        "protected-open.pdf",
        "pdfjs-helloworld.pdf",
    ] {
        assert_eq!(
            state(&t, path).0,
            "indexed",
            "{path}: {:?}",
            state(&t, path)
        );
    }
    assert!(report.notes_indexed >= 8, "{report:?}");

    // A word from page 3 of the PDF, in the "Head Sampling" section.
    let found = hits(&t, "inspecting", Mode::Keyword);
    let pdf = hit(&found, "sampling.pdf");
    assert_eq!(pdf.page, Some(3), "{pdf:?}");
    assert_eq!(pdf.title, "Sampling");
    assert_eq!(highlighted(pdf), vec!["inspecting"], "{pdf:?}");
    for path in ["sampling.docx", "sampling.odt"] {
        let doc = hit(&found, path);
        assert_eq!(doc.title, "Sampling", "{path}");
        assert_eq!(doc.heading_path, vec!["Head Sampling"], "{path}");
        assert_eq!(doc.page, None, "{path}");
    }
    // The owner-password-only PDF reads like the plain one (same pages).
    assert_eq!(hit(&found, "protected-open.pdf").page, Some(3));

    // A later page: the tail sampling downsides are on page 4.
    let found = hits(&t, "downsides", Mode::Keyword);
    assert_eq!(hit(&found, "sampling.pdf").page, Some(4));

    // HTML: the page title, its headings, and no script or style text.
    let found = hits(&t, "service.name logical name", Mode::Keyword);
    let html = hit(&found, "resources.html");
    assert_eq!(html.title, "Resources");
    assert!(hits(&t, "zzscriptword", Mode::Keyword).is_empty());
    assert!(hits(&t, "zzstyleword", Mode::Keyword).is_empty());

    // The public PDF from pdf.js.
    let found = hits(&t, "hello world", Mode::Keyword);
    hit(&found, "pdfjs-helloworld.pdf");
}

#[test]
fn encrypted_scanned_and_broken_pdfs_are_skipped_with_their_reasons() {
    let dir = docs();
    let t = open(dir.path(), Some(Arc::new(FakeEmbedder)));
    index(&t.engine);
    let reason = |path: &str| {
        let (now, reason) = state(&t, path);
        assert_eq!(now, "skipped", "{path}: {reason:?}");
        reason.unwrap()
    };
    assert!(reason("encrypted.pdf").contains("encrypted PDF (needs a password)"));
    assert!(reason("scanned.pdf").contains("no text layer"));
    assert!(reason("broken.pdf").contains("not a readable PDF"));
    // Nothing of them is searchable, and search still works.
    let found = hits(&t, "sampling", Mode::Keyword);
    assert!(paths(&found)
        .iter()
        .all(|p| !["encrypted.pdf", "scanned.pdf", "broken.pdf"].contains(&p.as_str())));
}

#[test]
fn each_type_has_its_own_size_limit() {
    let dir = docs();
    let data = tempfile::tempdir().unwrap();
    let mut settings = sift::Settings::default();
    settings.scan.max_bytes_by_type.insert("pdf".into(), 20_000);
    let engine =
        sift::Engine::open_with(data.path(), settings, Some(Arc::new(FakeEmbedder))).unwrap();
    let notes = engine.add_folder(dir.path()).unwrap();
    let t = TestEngine {
        engine,
        data,
        notes,
    };
    index(&t.engine);
    let (pdf_state, reason) = state(&t, "sampling.pdf");
    assert_eq!(pdf_state, "skipped");
    assert!(reason.unwrap().contains("too large"));
    assert_eq!(state(&t, "sampling.docx").0, "indexed");
    assert_eq!(state(&t, "pdfjs-helloworld.pdf").0, "indexed");
}

#[test]
fn settings_written_before_file_types_still_load() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("settings.json"),
        r#"{"folders": [], "scan": {"extensions": ["md", "txt"], "max_file_bytes": 1000, "skip_dirs": []}}"#,
    )
    .unwrap();
    let settings = sift::Settings::load(data.path()).unwrap();
    assert_eq!(settings.scan.extensions, vec!["md", "txt"]);
    assert_eq!(settings.scan.max_bytes_for("pdf"), 100 << 20);
    assert_eq!(settings.scan.max_bytes_for("md"), 1000);
}

#[test]
fn chinese_and_japanese_documents_are_found_by_a_word_inside_a_sentence() {
    let dir = docs();
    let t = open(dir.path(), Some(Arc::new(FakeEmbedder)));
    index(&t.engine);
    // 传递 ("pass along") inside 在 Span 之间传递的上下文信息, in a PDF.
    let found = hits(&t, "传递", Mode::Keyword);
    let zh = hit(&found, "zh-baggage.pdf");
    assert_eq!(zh.page, Some(1));
    assert!(highlighted(zh).iter().all(|h| h == "传递"), "{zh:?}");
    assert!(!highlighted(zh).is_empty());
    // 検出器 ("detector") inside a Japanese sentence, in an HTML page.
    let found = hits(&t, "検出器", Mode::Keyword);
    let ja = hit(&found, "ja-resources.html");
    assert!(highlighted(ja).iter().any(|h| h == "検出器"), "{ja:?}");
}

#[test]
fn real_chinese_and_japanese_notes_are_found_by_an_inner_word_with_a_highlight() {
    // The real corpus (tests/fixtures/realnotes, CC BY 4.0), Markdown.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/realnotes");
    let notes = tempfile::tempdir().unwrap();
    for (rel, _) in CJK_CASES {
        let to = notes.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root.join(rel), to).unwrap();
    }
    let t = open(notes.path(), Some(Arc::new(FakeEmbedder)));
    index(&t.engine);
    for (rel, term) in CJK_CASES {
        let text = std::fs::read_to_string(root.join(rel)).unwrap();
        // The term sits inside a sentence: a letter right before it somewhere.
        assert!(text.match_indices(term).any(|(at, _)| text[..at]
            .chars()
            .next_back()
            .is_some_and(char::is_alphabetic)));
        let found = hits(&t, term, Mode::Keyword);
        let note = hit(&found, rel);
        assert!(
            highlighted(note).iter().any(|h| h == term),
            "{rel}: {term} not highlighted in {:?}",
            note.snippet
        );
    }
}

/// A real note and a word from inside one of its sentences.
const CJK_CASES: &[(&str, &str)] = &[
    ("zh/docs/concepts/signals/baggage.md", "键值"),
    ("zh/docs/concepts/resources/index.md", "属性"),
    ("ja/docs/concepts/resources/index.md", "環境"),
    ("ja/docs/concepts/resources/index.md", "自動"),
];

#[test]
fn a_note_matched_in_a_heading_shows_a_snippet_with_the_word() {
    // 検出器 is in the heading リソース検出器 and in sentences below it; the
    // best keyword chunk is the one-line list item "- [その他](...)" under that
    // heading (its context field holds the heading). The snippet used to be
    // "その他" with nothing highlighted; it now comes from a chunk with the word.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/realnotes");
    let notes = tempfile::tempdir().unwrap();
    let rel = "ja/docs/concepts/resources/index.md";
    std::fs::create_dir_all(notes.path().join("ja/docs/concepts/resources")).unwrap();
    std::fs::copy(root.join(rel), notes.path().join(rel)).unwrap();
    let t = open(notes.path(), Some(Arc::new(FakeEmbedder)));
    index(&t.engine);
    let found = hits(&t, "検出器", Mode::Keyword);
    assert!(highlighted(hit(&found, rel)).iter().any(|h| h == "検出器"));
}

#[test]
fn documents_are_found_by_meaning() {
    let dir = docs();
    let t = open(dir.path(), Some(local_model()));
    index(&t.engine);
    let found = hits(
        &t,
        "how to keep only some of the traces to cut data volume",
        Mode::Semantic,
    );
    let top: Vec<String> = paths(&found).into_iter().take(4).collect();
    for path in ["sampling.pdf", "sampling.docx", "sampling.odt"] {
        assert!(top.contains(&path.to_string()), "{path} not in {top:?}");
    }
}

#[test]
fn settings_count_files_of_each_type_enabled_or_not() {
    let dir = docs();
    std::fs::write(dir.path().join("note.md"), "# A note\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut settings = sift::Settings::default();
    settings.scan.extensions.retain(|e| e != "pdf");
    let engine =
        sift::Engine::open_with(data.path(), settings, Some(Arc::new(FakeEmbedder))).unwrap();
    engine.add_folder(dir.path()).unwrap();
    let counts = engine.file_type_counts();
    let of = |ext: &str| counts.iter().find(|c| c.ext == ext).cloned().unwrap();
    assert_eq!((of("pdf").files, of("pdf").enabled), (7, false));
    assert_eq!((of("docx").files, of("docx").enabled), (1, true));
    assert_eq!(of("html").files, 2);
    assert_eq!(of("md").files, 1);
    assert_eq!(of("txt").files, 0);
}

/// FakeEmbedder under the local English model's id, so that the language
/// hint (which only concerns that model) can be tested without loading it.
struct EnglishModelStandIn(FakeEmbedder);

impl sift::embed::Embedder for EnglishModelStandIn {
    fn id(&self) -> &str {
        sift::embed::local::MODEL_ID
    }
    fn dimensions(&self) -> usize {
        self.0.dimensions()
    }
    fn max_input_tokens(&self) -> usize {
        self.0.max_input_tokens()
    }
    fn count_tokens(&self, text: &str) -> usize {
        self.0.count_tokens(text)
    }
    fn embed_documents(&self, texts: &[String]) -> sift::Result<Vec<Vec<f32>>> {
        self.0.embed_documents(texts)
    }
    fn embed_query(&self, text: &str) -> sift::Result<Vec<f32>> {
        self.0.embed_query(text)
    }
}

#[test]
fn a_folder_mostly_not_in_english_gets_a_multilingual_hint() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/realnotes");
    let copy = |rels: &[&str]| {
        let notes = tempfile::tempdir().unwrap();
        for rel in rels {
            let to = notes.path().join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(root.join(rel), to).unwrap();
        }
        notes
    };
    let cjk = copy(&[
        "zh/docs/concepts/signals/baggage.md",
        "zh/docs/concepts/resources/index.md",
        "ja/docs/concepts/resources/index.md",
    ]);
    let t = open(
        cjk.path(),
        Some(Arc::new(EnglishModelStandIn(FakeEmbedder))),
    );
    index(&t.engine);
    let hint = t.engine.status().unwrap().language_hint;
    assert!(
        hint.as_deref()
            .is_some_and(|h| h.contains("not in English")),
        "{hint:?}"
    );

    // The same notes under another provider: no hint (it may know them).
    let t = open(cjk.path(), Some(Arc::new(FakeEmbedder)));
    index(&t.engine);
    assert_eq!(t.engine.status().unwrap().language_hint, None);

    // English documents: no hint.
    let dir = docs();
    let t = open(
        dir.path(),
        Some(Arc::new(EnglishModelStandIn(FakeEmbedder))),
    );
    index(&t.engine);
    let status = t.engine.status().unwrap();
    assert_eq!(status.language_hint, None);
}
