//! The vector file and the store agree, or the file is rebuilt from the
//! embedding cache (never re-embedded), counted and reported: garbage written
//! over the middle of the file (its checksum), a file of another database (its
//! store id), a file out of step with the store (its generation).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sift::{Engine, Mode, Settings};

use crate::common::{self, copy_dir, Counting, FakeEmbedder};

fn vector_file(data: &Path) -> PathBuf {
    fs::read_dir(data.join("vectors"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "vectors"))
        .expect("a vector file")
}

fn reopen(data: &Path, embedder: Arc<Counting>) -> Engine {
    Engine::open_with(data, Settings::load(data).unwrap(), Some(embedder)).unwrap()
}

#[test]
fn garbage_over_the_middle_of_the_vector_file_is_detected_and_rebuilt() {
    let notes = common::fixture_notes();
    let counter = Counting::new(Arc::new(FakeEmbedder));
    let t = common::open(notes.path(), Some(counter.clone()));
    common::index(&t.engine);
    let expected = t.engine.vector_count();
    let data = t.data.path().to_path_buf();
    drop(t.engine);

    // Overwrite bytes in the middle of the graph: the file still loads and has
    // the right count, but its vectors are wrong.
    let file = vector_file(&data);
    let mut bytes = fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid - 64..mid + 64] {
        *b = 0x5a;
    }
    fs::write(&file, &bytes).unwrap();

    counter.reset();
    let engine = reopen(&data, counter.clone());
    let report = engine.vector_open_report();
    assert!(report.rebuilt, "{report:?}");
    assert!(
        report
            .rebuild_reason
            .as_deref()
            .unwrap()
            .contains("checksum"),
        "{report:?}"
    );
    assert_eq!(engine.vector_count(), expected);
    assert_eq!(counter.embedded(), 0, "rebuilt from the cache");
    assert_eq!(engine.status().unwrap().vector_rebuilds, 1, "counted");
    assert_eq!(
        common::search(&engine, "pancake batter eggs flour", Mode::Semantic)
            .first()
            .map(String::as_str),
        Some("recipes/pancakes.md")
    );
    drop(engine);
    // The rebuilt file was saved whole: the next open trusts it.
    let engine = reopen(&data, counter.clone());
    assert!(!engine.vector_open_report().rebuilt);
    assert_eq!(engine.status().unwrap().vector_rebuilds, 1);
}

#[test]
fn a_vector_file_of_another_database_is_rebuilt() {
    let notes = common::fixture_notes();
    let counter = Counting::new(Arc::new(FakeEmbedder));
    let a = common::open(notes.path(), Some(counter.clone()));
    common::index(&a.engine);
    let b = common::open(notes.path(), Some(counter.clone()));
    common::index(&b.engine);
    let (a_data, b_data) = (a.data.path().to_path_buf(), b.data.path().to_path_buf());
    drop(a.engine);
    drop(b.engine);
    // Same notes, same counts, same embedder: only the store id tells them apart.
    fs::copy(vector_file(&a_data), vector_file(&b_data)).unwrap();
    counter.reset();
    let engine = reopen(&b_data, counter.clone());
    let report = engine.vector_open_report();
    assert!(report.rebuilt, "{report:?}");
    assert!(
        report
            .rebuild_reason
            .as_deref()
            .unwrap()
            .contains("another database"),
        "{report:?}"
    );
    assert_eq!(counter.embedded(), 0);
    assert_eq!(
        common::search(&engine, "pancake batter eggs flour", Mode::Semantic)
            .first()
            .map(String::as_str),
        Some("recipes/pancakes.md")
    );
}

#[test]
fn a_vector_file_behind_the_store_is_caught_up_one_ahead_is_rebuilt() {
    let notes = common::fixture_notes();
    let counter = Counting::new(Arc::new(FakeEmbedder));
    let t = common::open(notes.path(), Some(counter.clone()));
    common::index(&t.engine);
    let data = t.data.path().to_path_buf();
    drop(t.engine);
    // A backup of the data folder as it is now.
    let backup = tempfile::tempdir().unwrap();
    copy_dir(&data, backup.path());

    // The store moves on without the vector file (a keyword-only run here; a
    // writer killed before its save leaves the same).
    fs::write(
        notes.path().join("recipes/pancakes.md"),
        "# Pancakes\n\nNow about kayak paddles.\n",
    )
    .unwrap();
    fs::remove_file(notes.path().join("projects/garden.md")).unwrap();
    let keyword_only = Engine::open_with(&data, Settings::load(&data).unwrap(), None).unwrap();
    common::index(&keyword_only);
    drop(keyword_only);
    counter.reset();
    let engine = reopen(&data, counter.clone());
    let report = engine.vector_open_report().clone();
    assert!(
        !report.rebuilt,
        "behind is caught up, not rebuilt: {report:?}"
    );
    assert!(report.removed > 0, "{report:?}");
    common::index(&engine);
    assert_eq!(counter.embedded(), 1, "only the edited chunk is embedded");
    drop(engine);

    // The backup's store is behind the newer file: the file is rebuilt.
    let file = vector_file(&data);
    fs::copy(
        &file,
        backup
            .path()
            .join("vectors")
            .join(file.file_name().unwrap()),
    )
    .unwrap();
    counter.reset();
    let engine = reopen(backup.path(), counter.clone());
    let report = engine.vector_open_report();
    assert!(report.rebuilt, "{report:?}");
    assert!(
        report
            .rebuild_reason
            .as_deref()
            .unwrap()
            .contains("generation"),
        "{report:?}"
    );
    assert_eq!(counter.embedded(), 0);
    assert_eq!(
        common::search(&engine, "pancake batter eggs flour", Mode::Semantic)
            .first()
            .map(String::as_str),
        Some("recipes/pancakes.md"),
        "the backup's own vectors"
    );
}
