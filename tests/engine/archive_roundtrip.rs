//! Issue 15, "own your data": an index exported, the notes moved to another
//! path, the archive imported into a new data folder: the same search results
//! at once, with zero embedding calls; archives Sift cannot take are refused
//! with a clear error and leave nothing behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sift::archive::{self, ExportFormat, ImportOptions, ARCHIVE_VERSION};
use sift::cost::{LedgerEntry, UsageLedger};
use sift::embed::Embedder;
use sift::{Engine, ErrorKind, Mode, Query};

use super::common::{self, Counting, FakeEmbedder};

const QUERIES: &[&str] = &[
    "pancakes for breakfast",
    "knee hurt after a run",
    "moving to Lisbon",
    "compost for the raised beds",
    "launch plan",
];

/// What a hit shows, without the folder it lives in: path, headings, line,
/// score (to 6 decimals; meaning searches only).
type Shown = (String, Vec<String>, usize, i64);

fn hits(engine: &Engine, text: &str, mode: Mode) -> Vec<Shown> {
    let q = Query {
        mode,
        ..Query::new(text)
    };
    engine
        .search(&q)
        .unwrap()
        .hits
        .iter()
        .map(|h| {
            // Meaning scores compared to 6 decimals: the same vectors. Keyword
            // and hybrid scores carry BM25 magnitudes, which differ between
            // FTS5 (answering the imported copy until its first index run
            // builds the fast keyword index) and tantivy: their order is
            // compared, not their values.
            let score = match mode {
                Mode::Semantic => (h.score * 1e6).round() as i64,
                _ => 0,
            };
            (h.path.clone(), h.heading_path.clone(), h.line, score)
        })
        .collect()
}

fn all_results(engine: &Engine) -> Vec<Vec<Shown>> {
    let mut out = Vec::new();
    for q in QUERIES {
        for mode in [Mode::Keyword, Mode::Semantic, Mode::Hybrid] {
            out.push(hits(engine, q, mode));
        }
    }
    out
}

/// An indexed copy of the fixture notes with a day of spending in the ledger.
fn indexed() -> (tempfile::TempDir, common::TestEngine, Arc<Counting>) {
    let notes = common::fixture_notes();
    let counting = Counting::new(Arc::new(FakeEmbedder));
    let t = common::open(notes.path(), Some(counting.clone()));
    common::index(&t.engine);
    assert!(counting.embedded() > 0);
    let conn = t.engine.store().writer();
    UsageLedger::migrate(&conn).unwrap();
    let spent = LedgerEntry {
        requests: 3,
        tokens_sent: 1200,
        dollars: 0.25,
        ..LedgerEntry::default()
    };
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
    UsageLedger::new(&conn)
        .record(day, "openai", "text-embedding-3-small", &spent)
        .unwrap();
    drop(conn);
    (notes, t, counting)
}

fn fake_id() -> (String, usize) {
    (FakeEmbedder.id().to_string(), FakeEmbedder.dimensions())
}

fn ledger(engine: &Engine) -> sift::cost::CostSummary {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    engine
        .store()
        .read(|conn| UsageLedger::new(conn).summary(day))
        .unwrap()
}

#[test]
fn an_archive_imported_at_a_new_path_searches_the_same_without_embedding() {
    let (notes, t, _) = indexed();
    let before = all_results(&t.engine);
    assert!(
        before.iter().any(|r| !r.is_empty()),
        "the queries find notes"
    );
    let ledger_before = ledger(&t.engine);
    let out = tempfile::tempdir().unwrap();
    for name in ["index.jsonl", "index.jsonl.gz"] {
        let file = out.path().join(name);
        let report = archive::export(&t.engine, &file, ExportFormat::Sift, None, &|_| {}).unwrap();
        let status = t.engine.status().unwrap();
        assert_eq!(report.counts.chunks, status.chunks);
        assert_eq!(
            report.counts.notes,
            status.notes + status.skipped + status.failed
        );
        assert_eq!(report.counts.ledger, 1);
        assert_eq!(report.embedders.len(), 1);
        assert_eq!(report.embedders[0].dimensions, 64);
        assert_eq!(report.bytes, std::fs::metadata(&file).unwrap().len());

        // The notes move: the old folder is gone, the copy lives elsewhere.
        let moved = tempfile::tempdir().unwrap();
        common::copy_dir(notes.path(), &moved.path().join("Notes"));
        let new_notes = std::fs::canonicalize(moved.path().join("Notes")).unwrap();
        let data = tempfile::tempdir().unwrap();
        let options = ImportOptions {
            remap: vec![(t.notes.clone(), new_notes.clone())],
            embedder: Some(fake_id()),
        };
        let imported = archive::import(data.path(), &file, &options, &|_| {}).unwrap();
        assert_eq!(imported.folders, vec![new_notes.clone()]);
        assert_eq!(imported.vectors_indexed as u64, status.chunks);

        let counting = Counting::new(Arc::new(FakeEmbedder));
        let engine = Engine::open(data.path(), Some(counting.clone())).unwrap();
        assert_eq!(engine.settings().folders, vec![new_notes.clone()]);
        assert_eq!(all_results(&engine), before, "{name}: same results");
        let q = Query::new("compost for the raised beds");
        for hit in engine.search(&q).unwrap().hits {
            assert!(
                Path::new(&hit.abs_path).starts_with(&new_notes),
                "{}",
                hit.abs_path
            );
        }
        let status2 = engine.status().unwrap();
        assert_eq!(status2.vectors, status.chunks);
        assert_eq!(status2.chunks_without_vectors, 0);
        assert_eq!(
            status2.vector_rebuilds, 0,
            "the vector file was built at import"
        );
        assert_eq!(ledger(&engine), ledger_before, "the cost ledger came along");
        assert_eq!(counting.calls.load(std::sync::atomic::Ordering::SeqCst), 0);

        // Indexing the moved folder finds nothing to embed either.
        let report = common::index(&engine);
        assert_eq!(report.chunks_embedded, 0, "{report:?}");
        assert_eq!(counting.embedded(), 0, "zero embedding calls");
        assert_eq!(all_results(&engine), before, "{name}: same after indexing");
    }
}

fn exported() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (_notes, t, _) = indexed();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("index.jsonl");
    archive::export(&t.engine, &file, ExportFormat::Sift, None, &|_| {}).unwrap();
    (out, file, t.notes.clone())
}

/// Imports `file` into a new data folder, expecting a refusal of `kind` whose
/// message holds `says`; the data folder is left without an index.
fn refused(file: &Path, options: &ImportOptions, kind: ErrorKind, says: &str) {
    let data = tempfile::tempdir().unwrap();
    let err = archive::import(data.path(), file, options, &|_| {}).unwrap_err();
    assert_eq!(err.kind(), kind, "{err}");
    assert!(err.message().contains(says), "{err}");
    let left: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sift.db") || n == "vectors" || n == "settings.json")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn an_archive_of_another_embedder_is_refused_naming_both() {
    let (_out, file, _) = exported();
    let options = ImportOptions {
        embedder: Some(("openai/text-embedding-3-small".into(), 1536)),
        ..ImportOptions::default()
    };
    refused(
        &file,
        &options,
        ErrorKind::IncompatibleArchive,
        "fake/bag-of-words",
    );
    refused(
        &file,
        &options,
        ErrorKind::IncompatibleArchive,
        "this Sift embeds with openai/text-embedding-3-small",
    );
    let options = ImportOptions {
        embedder: Some(("fake/bag-of-words".into(), 128)),
        ..ImportOptions::default()
    };
    refused(
        &file,
        &options,
        ErrorKind::IncompatibleArchive,
        "64 dimensions",
    );
}

#[test]
fn an_archive_of_a_newer_format_is_refused_with_what_to_do() {
    let (out, file, _) = exported();
    let text = std::fs::read_to_string(&file).unwrap();
    let (first, rest) = text.split_once('\n').unwrap();
    let mut header: serde_json::Value = serde_json::from_str(first).unwrap();
    header["version"] = (ARCHIVE_VERSION + 1).into();
    let newer = out.path().join("newer.jsonl");
    std::fs::write(&newer, format!("{header}\n{rest}")).unwrap();
    refused(
        &newer,
        &ImportOptions::default(),
        ErrorKind::IncompatibleArchive,
        "written by a newer Sift",
    );
}

#[test]
fn cut_damaged_or_foreign_files_are_refused_and_leave_nothing() {
    let (out, file, notes) = exported();
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cut = out.path().join("cut.jsonl");
    std::fs::write(&cut, lines[..lines.len() / 2].join("\n") + "\n").unwrap();
    let options = ImportOptions {
        embedder: Some(fake_id()),
        ..ImportOptions::default()
    };
    refused(
        &cut,
        &options,
        ErrorKind::IncompatibleArchive,
        "without its end line",
    );

    let garbled = out.path().join("garbled.jsonl");
    let mut damaged = lines.clone();
    let middle = lines.len() / 2;
    damaged[middle] = "{\"type\":\"chunk\",\"id\":";
    std::fs::write(&garbled, damaged.join("\n") + "\n").unwrap();
    refused(
        &garbled,
        &options,
        ErrorKind::IncompatibleArchive,
        &format!("line {}", middle + 1),
    );

    let note = out.path().join("note.md");
    std::fs::write(&note, "# Not an archive\n").unwrap();
    refused(
        &note,
        &options,
        ErrorKind::IncompatibleArchive,
        "is not a Sift archive",
    );

    let options = ImportOptions {
        remap: vec![("/nowhere/else".into(), notes.clone())],
        ..options
    };
    refused(&file, &options, ErrorKind::InvalidInput, "/nowhere/else");
}

#[test]
fn importing_over_an_index_is_refused() {
    let (_out, file, _) = exported();
    let (_notes, t, _) = indexed();
    let err =
        archive::import(t.data.path(), &file, &ImportOptions::default(), &|_| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadPath, "{err}");
    assert!(err.message().contains("already holds an index"), "{err}");
    assert!(
        t.engine.status().unwrap().chunks > 0,
        "the index is untouched"
    );
}

/// The same through the real binary: `sift export`, then `sift import
/// --remap` into another data folder; searches answer the same and the test
/// embedder's log shows no text embedded after the export. Importing with
/// another embedder (the local model) is refused, saying which.
#[test]
fn the_cli_exports_and_imports_with_a_remap() {
    use std::process::Command;
    let tmp = tempfile::tempdir().unwrap();
    let notes = tmp.path().join("notes");
    common::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notes"),
        &notes,
    );
    let log = tmp.path().join("embed.log");
    let sift = |data: &Path, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sift"))
            .args(args)
            .env("SIFT_DATA_DIR", data)
            .env("SIFT_TEST_EMBEDDER", format!("fake:{}", log.display()))
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    };
    let ok = |r: (bool, String, String)| {
        assert!(r.0, "{}\n{}", r.1, r.2);
        r.1
    };
    let (old, new) = (tmp.path().join("old-data"), tmp.path().join("new-data"));
    ok(sift(&old, &["index", notes.to_str().unwrap()]));
    let archive = tmp.path().join("index.jsonl.gz");
    let said = ok(sift(&old, &["export", archive.to_str().unwrap()]));
    assert!(
        said.contains("chunks") && said.contains("vectors"),
        "{said}"
    );
    let search = |data: &Path| {
        let out = ok(sift(
            data,
            &["search", "compost for the raised beds", "--json"],
        ));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["path"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let before = search(&old);
    let embedded = std::fs::read_to_string(&log).unwrap().lines().count();

    let moved = tmp.path().join("moved");
    std::fs::rename(&notes, &moved).unwrap();
    let old_root = std::fs::canonicalize(tmp.path()).unwrap().join("notes");
    let remap = format!("{}={}", old_root.display(), moved.display());
    let said = ok(sift(
        &new,
        &["import", archive.to_str().unwrap(), "--remap", &remap],
    ));
    assert!(said.contains("imported"), "{said}");
    assert!(
        said.contains(&std::fs::canonicalize(&moved).unwrap().display().to_string()),
        "{said}"
    );
    assert_eq!(search(&new), before);
    ok(sift(&new, &["index"]));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        embedded,
        "nothing embedded after the export"
    );

    let (done, _, err) = sift(&new, &["import", archive.to_str().unwrap()]);
    assert!(!done && err.contains("already holds an index"), "{err}");
    // Without the test embedder, the archive's provider (the local model) is
    // what would search: another embedder, refused.
    if let Some(model) = std::env::var_os("SIFT_MODEL_DIR") {
        let out = Command::new(env!("CARGO_BIN_EXE_sift"))
            .args(["import", archive.to_str().unwrap()])
            .env("SIFT_DATA_DIR", tmp.path().join("third"))
            .env("SIFT_MODEL_DIR", model)
            .env_remove("SIFT_TEST_EMBEDDER")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("test/fake-bag-of-words") && err.contains("this Sift embeds with local"),
            "{err}"
        );
        assert!(!tmp.path().join("third/sift.db").exists());
    }
}
