//! Incremental indexing: only new text is embedded; renames, moves, copies and
//! restarts cost nothing; deletes leave SQLite, FTS5 and usearch.

use crate::common;

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use sift::{Engine, Mode, Settings};

fn long_note() -> String {
    let mut text = String::from("# Field guide\n\n");
    for (i, topic) in ["herons", "otters", "beavers", "kingfishers"]
        .iter()
        .enumerate()
    {
        text.push_str(&format!("## Part {i}: {topic}\n\n"));
        for j in 0..12 {
            text.push_str(&format!(
                "Observation {j} about {topic}: they were seen near the reeds at dawn, feeding quietly while the water stayed calm and grey. "
            ));
        }
        text.push_str("\n\n");
    }
    text
}

fn chunk_count(engine: &Engine) -> u64 {
    engine.status().unwrap().chunks
}

#[test]
fn unchanged_files_cost_nothing_and_edits_embed_only_new_chunks() {
    let notes = fixture_notes();
    fs::write(notes.path().join("guide.md"), long_note()).unwrap();
    let counter = Counting::new(Arc::new(FakeEmbedder));
    let t = open(notes.path(), Some(counter.clone()));

    let first = index(&t.engine);
    assert_eq!(first.notes_indexed, 7);
    let chunks = chunk_count(&t.engine);
    assert!(
        chunks >= 10,
        "the long note should be several chunks, got {chunks}"
    );
    assert_eq!(
        counter.embedded() as u64,
        chunks,
        "each chunk text embedded once"
    );

    counter.reset();
    let again = index(&t.engine);
    assert_eq!(again.notes_indexed, 0);
    assert_eq!(again.notes_unchanged, 7);
    assert_eq!(counter.embedded(), 0, "no changes, no embedding");

    // Edit one paragraph of one section.
    let guide = notes.path().join("guide.md");
    let edited = long_note().replacen(
        "Observation 3 about otters",
        "Observation 3 about otters (a pup was carrying a bright blue mussel shell)",
        1,
    );
    fs::write(&guide, edited).unwrap();
    counter.reset();
    let report = index(&t.engine);
    assert_eq!(report.notes_indexed, 1);
    let sent = counter.embedded();
    assert!(
        (1..=2).contains(&sent),
        "only the changed chunk(s) re-embedded, got {sent} of {chunks}"
    );
    assert!(counter
        .texts
        .lock()
        .unwrap()
        .iter()
        .all(|t| t.contains("otters")));
    assert_eq!(
        search(&t.engine, "mussel shell", Mode::Keyword),
        vec!["guide.md"]
    );
    assert_eq!(t.engine.vector_count() as u64, chunk_count(&t.engine));
}

#[test]
fn renames_moves_and_copies_cost_zero_embedding_calls() {
    let notes = fixture_notes();
    let counter = Counting::new(Arc::new(FakeEmbedder));
    let t = open(notes.path(), Some(counter.clone()));
    index(&t.engine);
    let chunks = chunk_count(&t.engine);

    counter.reset();
    fs::rename(
        notes.path().join("journal/sleep.txt"),
        notes.path().join("journal/sleep-habits.txt"),
    )
    .unwrap();
    fs::create_dir(notes.path().join("archive")).unwrap();
    fs::rename(
        notes.path().join("recipes/pancakes.md"),
        notes.path().join("archive/pancakes.md"),
    )
    .unwrap();
    fs::copy(
        notes.path().join("projects/garden.md"),
        notes.path().join("projects/garden-copy.md"),
    )
    .unwrap();
    let report = index(&t.engine);
    assert_eq!(
        counter.embedded(),
        0,
        "renamed, moved and copied text is in the cache"
    );
    assert_eq!(report.notes_removed, 2);
    assert_eq!(report.chunks_from_cache + report.chunks_embedded, 0);

    assert_eq!(
        search(&t.engine, "caffeine", Mode::Keyword),
        vec!["journal/sleep-habits.txt"]
    );
    assert_eq!(
        search(&t.engine, "whisk eggs milk flour batter", Mode::Semantic)
            .first()
            .map(String::as_str),
        Some("archive/pancakes.md")
    );
    let mut garden = search(&t.engine, "manure", Mode::Keyword);
    garden.sort();
    assert_eq!(
        garden,
        vec!["projects/garden-copy.md", "projects/garden.md"]
    );
    assert_eq!(chunk_count(&t.engine), chunks + 1);
    assert_eq!(t.engine.vector_count() as u64, chunks + 1);
}

#[test]
fn deleted_notes_leave_sqlite_fts_and_vectors() {
    let notes = fixture_notes();
    let t = open(notes.path(), Some(Arc::new(FakeEmbedder)));
    index(&t.engine);
    let before = chunk_count(&t.engine);
    assert_eq!(
        search(&t.engine, "lisbon", Mode::Keyword),
        vec!["journal/2024-03-02.md"]
    );

    fs::remove_file(notes.path().join("journal/2024-03-02.md")).unwrap();
    let report = index(&t.engine);
    assert_eq!(report.notes_removed, 1);
    assert!(
        search(&t.engine, "lisbon", Mode::Keyword).is_empty(),
        "FTS5 forgot it"
    );
    assert!(
        !search(&t.engine, "lisbon river knee", Mode::Semantic)
            .contains(&"journal/2024-03-02.md".to_string()),
        "vector search forgot it"
    );
    let after = chunk_count(&t.engine);
    assert_eq!(after, before - 1);
    assert_eq!(
        t.engine.vector_count() as u64,
        after,
        "usearch holds exactly the live chunks"
    );
    let states = t.engine.file_states(false).unwrap();
    assert!(states.iter().all(|f| f.path != "journal/2024-03-02.md"));

    // The same after a restart (the vector file was saved without it).
    let data = t.data.path().to_path_buf();
    drop(t.engine);
    let engine =
        Engine::open_with(&data, Settings::default(), Some(Arc::new(FakeEmbedder))).unwrap();
    assert_eq!(engine.vector_count() as u64, after);
}

#[test]
fn missing_or_corrupt_vector_file_is_rebuilt_without_embedding() {
    let notes = fixture_notes();
    let counter = Counting::new(Arc::new(FakeEmbedder));
    let t = open(notes.path(), Some(counter.clone()));
    index(&t.engine);
    let chunks = chunk_count(&t.engine);
    let data = t.data.path().to_path_buf();
    drop(t.engine);

    let vector_files: Vec<_> = fs::read_dir(data.join("vectors"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "vectors"))
        .collect();
    assert_eq!(vector_files.len(), 1);
    let file = &vector_files[0];

    for damage in ["delete", "garbage", "truncate"] {
        match damage {
            "delete" => fs::remove_file(file).unwrap(),
            "garbage" => fs::write(file, b"this is not a usearch index").unwrap(),
            _ => {
                let bytes = fs::read(file).unwrap();
                fs::write(file, &bytes[..bytes.len() / 2]).unwrap();
            }
        }
        counter.reset();
        let engine = Engine::open_with(&data, Settings::default(), Some(counter.clone())).unwrap();
        assert!(engine.vector_open_report().rebuilt, "{damage}: rebuilt");
        assert_eq!(
            engine.vector_count() as u64,
            chunks,
            "{damage}: all vectors back"
        );
        assert_eq!(
            counter.embedded(),
            0,
            "{damage}: from the cache, no embedding"
        );
        assert_eq!(
            search(&engine, "pancake batter eggs flour", Mode::Semantic)
                .first()
                .map(String::as_str),
            Some("recipes/pancakes.md"),
            "{damage}: semantic search works"
        );
        drop(engine);
    }
}

#[test]
fn keyword_search_works_without_a_model_and_vectors_come_later() {
    let notes = fixture_notes();
    let data = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(data.path(), Settings::default(), None).unwrap();
    engine.add_folder(notes.path()).unwrap();
    let report = index(&engine);
    assert!(report.chunks_without_vectors > 0);
    assert_eq!(
        search(&engine, "pancakes", Mode::Keyword),
        vec!["recipes/pancakes.md"]
    );
    let hybrid = engine.search(&sift::Query::new("pancakes")).unwrap();
    assert_eq!(hybrid.mode, Mode::Keyword);
    assert!(hybrid.warning.unwrap().contains("sift model fetch"));
    drop(engine);

    // The model arrives: the next run embeds what lacks vectors, nothing else.
    let counter = Counting::new(Arc::new(FakeEmbedder));
    let engine =
        Engine::open_with(data.path(), Settings::default(), Some(counter.clone())).unwrap();
    let report = index(&engine);
    assert_eq!(report.notes_indexed, 0);
    assert_eq!(counter.embedded() as u64, engine.status().unwrap().chunks);
    assert_eq!(engine.status().unwrap().chunks_without_vectors, 0);
}

#[test]
fn vectors_cached_before_a_stop_are_searchable_at_once() {
    // Enough one-chunk notes for several embedding batches. A batch's vectors
    // reach the vector index while the next batch is embedded: a run that
    // stops half way still leaves every cached vector searchable (added at the
    // run's end, else caught up from the cache on the next read).
    let notes = tempfile::tempdir().unwrap();
    for i in 0..600 {
        fs::write(
            notes.path().join(format!("note-{i:03}.md")),
            format!("Field note {i}: heron number {i} stood in the reeds at dawn."),
        )
        .unwrap();
    }
    let counter = Counting::new(Arc::new(FakeEmbedder));
    let t = open(notes.path(), Some(counter.clone()));
    // Stop as the app's Stop button would, once the first batch is embedded.
    let stop = AtomicBool::new(false);
    let stop_after_a_batch = |p: &sift::Progress| {
        if p.phase == sift::Phase::Embedding && p.chunks_done > 0 {
            stop.store(true, Ordering::SeqCst);
        }
    };
    let err = t.engine.index(&stop_after_a_batch, &stop).unwrap_err();
    assert_eq!(err.kind(), sift::ErrorKind::Cancelled, "{err}");
    assert_eq!(
        counter.embedded(),
        128,
        "one batch of 128 chunks was embedded"
    );

    let status = t.engine.status().unwrap();
    let cached = status.chunks - status.chunks_without_vectors;
    assert!(
        cached > 0 && status.chunks_without_vectors > 0,
        "part of the run was embedded: {status:?}"
    );
    assert_eq!(
        status.vectors, cached,
        "every cached vector is in the vector index without another run"
    );
}
