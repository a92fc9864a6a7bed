//! A long-lived process asks the OS to read its index files ahead: the vector
//! file and every file of the keyword index, and nothing else.

use crate::common;

#[cfg(target_os = "linux")]
#[test]
fn warming_asks_for_the_vector_file_and_the_keyword_index() {
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
    let done = t.engine.warm_page_cache().unwrap().join().unwrap();
    assert_eq!(done.skipped, None);
    assert_eq!(done.files, expected.len());
    assert_eq!(done.bytes, expected.iter().map(|p| size(p)).sum::<u64>());
    // Searching afterwards works as before.
    assert!(!common::search(&t.engine, "tomatoes", sift::Mode::Hybrid).is_empty());
}
