//! A long-lived process warms up: it reads its index files through once, into
//! the page cache (the vector file and every file of the keyword index,
//! nothing else), then every chunk's note into memory.

use std::sync::Arc;

use crate::common;

#[cfg(target_os = "linux")]
#[test]
fn warming_up_reads_the_index_files_and_the_chunks_notes() {
    let notes = common::fixture_notes();
    let t = common::open(notes.path(), Some(common::local_model()));
    common::index(&t.engine);
    let size = |p: &std::path::Path| std::fs::metadata(p).unwrap().len();
    let mut expected: Vec<std::path::PathBuf> = std::fs::read_dir(t.data.path().join("keywords"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    let vectors: Vec<std::path::PathBuf> = std::fs::read_dir(t.data.path().join("vectors"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "vectors"))
        .collect();
    assert_eq!(vectors.len(), 1, "{vectors:?}");
    expected.extend(vectors);
    let engine = Arc::new(t.engine);
    let done = engine.warm_up().unwrap().join().unwrap();
    assert_eq!(done.read.skipped, None);
    assert_eq!(done.read.files, expected.len());
    assert_eq!(
        done.read.bytes,
        expected.iter().map(|p| size(p)).sum::<u64>()
    );
    assert!(done.chunk_notes);
    let rows: i64 = engine
        .store()
        .read(|c| Ok(c.query_row("SELECT count(*) FROM notes", [], |r| r.get(0))?))
        .unwrap();
    assert!(rows > 0);
    assert_eq!(done.notes, rows);
    // Its searches, through the map, find what a process that looks each
    // chunk's note up in SQLite finds (a fresh engine's first search).
    for query in ["tomatoes", "sourdough starter", "meeting notes"] {
        let through_map = common::search(&engine, query, sift::Mode::Semantic);
        let fresh = sift::Engine::open(t.data.path(), Some(common::local_model())).unwrap();
        let looked_up = common::search(&fresh, query, sift::Mode::Semantic);
        assert!(!through_map.is_empty(), "{query}");
        assert_eq!(through_map, looked_up, "{query}");
    }
}
