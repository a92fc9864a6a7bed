//! First index in two phases: every note is keyword-searchable before any
//! embedding starts, then chunks are embedded from the most recently modified
//! note to the oldest; a stopped run resumes where it stopped.

use crate::common;

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::*;
use sift::{ErrorKind, Mode, Phase, Query};

/// More notes than one embedding batch (128 chunks), so order across batches counts.
const NOTES: usize = 300;

/// A word no other note has, made of letters only: "zq" + i in base 26.
fn marker(i: usize) -> String {
    let mut word = String::from("zq");
    let mut n = i;
    for _ in 0..3 {
        word.push((b'a' + (n % 26) as u8) as char);
        n /= 26;
    }
    word
}

/// Minutes after a base time at which note `i` was last modified: a
/// permutation unrelated to names and to the order files are written in.
fn age_rank(i: usize) -> usize {
    (i * 173) % NOTES
}

/// Writes the vault; note `i` is one short chunk holding `marker(i)`.
fn write_vault(dir: &Path) {
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for i in 0..NOTES {
        let path = dir.join(format!("note-{i:03}.md"));
        fs::write(
            &path,
            format!(
                "# Note {i}\n\nField notes on {} from walk number {i}, with the river high.\n",
                marker(i)
            ),
        )
        .unwrap();
        let mtime = base + Duration::from_secs(60 * age_rank(i) as u64);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }
}

/// The note an embedded text belongs to.
fn note_of(text: &str) -> usize {
    (0..NOTES)
        .find(|&i| text.contains(&format!(" {} ", marker(i))))
        .unwrap_or_else(|| panic!("text of no note: {text}"))
}

#[test]
fn every_note_is_keyword_searchable_before_embedding_and_newest_are_embedded_first() {
    let vault = tempfile::tempdir().unwrap();
    write_vault(vault.path());
    let counter = Counting::new(Arc::new(FakeEmbedder));
    let t = open(vault.path(), Some(counter.clone()));

    // When embedding starts, keyword search must already find every note.
    let checked = Mutex::new(None);
    let progress = |p: &sift::Progress| {
        if p.phase != Phase::Embedding || checked.lock().unwrap().is_some() {
            return;
        }
        let embedded_before = counter.embedded();
        let missing: Vec<usize> = (0..NOTES)
            .filter(|&i| {
                let query = Query {
                    mode: Mode::Keyword,
                    ..Query::new(marker(i))
                };
                let hits = t.engine.search(&query).unwrap().hits;
                hits.first().map(|h| h.path.clone()) != Some(format!("note-{i:03}.md"))
            })
            .collect();
        *checked.lock().unwrap() = Some((embedded_before, missing));
    };
    let report = t.engine.index(&progress, &AtomicBool::new(false)).unwrap();
    assert_eq!(report.notes_indexed, NOTES);

    let (embedded_before, missing) = checked.into_inner().unwrap().expect("an embedding phase");
    assert_eq!(
        embedded_before, 0,
        "embedding started before every note was written"
    );
    assert!(
        missing.is_empty(),
        "not keyword-searchable when embedding began: {missing:?}"
    );

    // Embedded newest first, across batches.
    let order: Vec<usize> = counter
        .texts
        .lock()
        .unwrap()
        .iter()
        .map(|t| note_of(t))
        .collect();
    assert_eq!(order.len(), NOTES, "each note's one chunk embedded once");
    let ranks: Vec<usize> = order.iter().map(|&i| age_rank(i)).collect();
    let mut newest_first = ranks.clone();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ranks, newest_first, "not embedded newest first");
    assert!(counter.calls.load(Ordering::SeqCst) >= 3, "several batches");
}

#[test]
fn a_first_index_stopped_while_embedding_resumes_with_the_older_notes_only() {
    let vault = tempfile::tempdir().unwrap();
    write_vault(vault.path());
    let counter = Counting::new(Arc::new(FakeEmbedder));
    let t = open(vault.path(), Some(counter.clone()));

    // Stop once the first batch of vectors is in.
    let cancel = AtomicBool::new(false);
    let progress = |p: &sift::Progress| {
        if p.phase == Phase::Embedding && p.chunks_done > 0 {
            cancel.store(true, Ordering::SeqCst);
        }
    };
    let err = t.engine.index(&progress, &cancel).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    let first: Vec<usize> = counter
        .texts
        .lock()
        .unwrap()
        .iter()
        .map(|t| note_of(t))
        .collect();
    assert!(!first.is_empty() && first.len() < NOTES);
    // What has a vector is exactly the newest notes.
    let newest: HashSet<usize> = (0..NOTES)
        .filter(|&i| age_rank(i) >= NOTES - first.len())
        .collect();
    assert_eq!(first.iter().copied().collect::<HashSet<_>>(), newest);
    assert_eq!(t.engine.vector_count(), first.len());

    // The next run embeds the rest, oldest last, and nothing twice.
    counter.reset();
    let report = index(&t.engine);
    let second: Vec<usize> = counter
        .texts
        .lock()
        .unwrap()
        .iter()
        .map(|t| note_of(t))
        .collect();
    assert_eq!(second.len(), NOTES - first.len());
    assert!(
        second.iter().all(|i| !newest.contains(i)),
        "finished work redone"
    );
    assert_eq!(age_rank(*second.last().unwrap()), 0, "the oldest note last");
    assert_eq!(report.chunks_without_vectors, 0);
    assert_eq!(t.engine.vector_count(), NOTES);
}
