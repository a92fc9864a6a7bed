//! The fast keyword index (tantivy) against SQLite's FTS5 table, its source of
//! truth: on real notes nobody here wrote it finds the same chunks and ranks
//! notes alike; deleted or damaged, searches still answer (from FTS5) and the
//! next index run rebuilds it; edits and other processes' runs reach it.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use sift::keyword_index::{CommonWords, KeywordIndex};
use sift::search::{rank_notes, terms::Terms, Filters, Mode};
use sift::{Engine, Settings};

use crate::common::{copy_dir, index, open, search, FakeEmbedder, TestEngine};

/// A keyword-only engine over a copy of the real-notes corpus (English part).
fn real_notes() -> (tempfile::TempDir, TestEngine) {
    let notes = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/realnotes/en"),
        notes.path(),
    );
    let t = open(notes.path(), None);
    index(&t.engine);
    (notes, t)
}

/// The first column of `sql`'s rows, read from the engine's store.
fn column<T: rusqlite::types::FromSql, C: FromIterator<T>>(
    engine: &Engine,
    sql: &str,
    params: impl rusqlite::Params,
) -> C {
    engine
        .store()
        .read(|c| {
            let mut stmt = c.prepare(sql)?;
            let rows = stmt
                .query_map(params, |r| r.get(0))?
                .collect::<rusqlite::Result<C>>()?;
            Ok(rows)
        })
        .unwrap()
}

fn chunk_ids(engine: &Engine) -> Vec<i64> {
    column(engine, "SELECT id FROM chunks ORDER BY id", [])
}

/// The FTS5 rows of a batch are written after its notes' savepoints (one
/// flush a batch): a first index of several batches and an edit leave every
/// chunk, and nothing else, in FTS5, each row holding its own note's words.
#[test]
fn every_chunk_and_nothing_else_has_its_fts5_row_after_batched_writes() {
    let (notes, t) = real_notes();
    let check = |t: &TestEngine| {
        let fts: Vec<i64> = column(
            &t.engine,
            "SELECT rowid FROM chunks_fts_docsize ORDER BY rowid",
            [],
        );
        assert_eq!(fts, chunk_ids(&t.engine));
        assert!(fts.len() > 128, "several batches of notes: {}", fts.len());
        t.engine
            .store()
            .writer()
            .execute(
                "INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)",
                [],
            )
            .expect("FTS5 index matches what it was given");
    };
    check(&t);
    // A word written into one note is found in that note's chunks only.
    let edited = notes.path().join("docs/concepts/signals/baggage.md");
    let text = std::fs::read_to_string(&edited).unwrap();
    std::fs::write(&edited, format!("{text}\n\nzyzzogetonbatch\n")).unwrap();
    index(&t.engine);
    check(&t);
    let holding = chunks_holding(&t.engine, "zyzzogetonbatch");
    let of_note: HashSet<i64> = column(
        &t.engine,
        "SELECT c.id FROM chunks c JOIN notes n ON n.id = c.note_id WHERE n.rel_path = ?1",
        ["docs/concepts/signals/baggage.md"],
    );
    assert_eq!(holding.len(), 1);
    assert!(holding.is_subset(&of_note), "{holding:?} {of_note:?}");
}

/// Note paths ranked by keywords, by the fast index or (None) by FTS5.
fn ranked(engine: &Engine, fast: Option<&KeywordIndex>, text: &str, limit: usize) -> Vec<String> {
    engine
        .store()
        .read(|c| {
            rank_notes(
                c,
                fast,
                None,
                None,
                &Terms::parse(text),
                &Filters::default(),
                Mode::Keyword,
                limit,
                0.5,
            )
        })
        .unwrap()
        .into_iter()
        .map(|h| h.path)
        .collect()
}

fn titles(engine: &Engine) -> Vec<String> {
    column(
        engine,
        "SELECT title FROM notes WHERE title != '' ORDER BY id",
        [],
    )
}

#[test]
fn fast_index_agrees_with_fts5_on_real_notes() {
    let (_notes, t) = real_notes();
    let fast = KeywordIndex::open(&t.data.path().join("keywords")).unwrap();
    assert!(t.engine.store().read(|c| fast.is_current(c)).unwrap());
    assert_eq!(fast.chunk_ids().unwrap(), chunk_ids(&t.engine));

    // Single words: the very same notes match (a large limit takes them all).
    for word in ["collector", "exporter", "sampling", "baggage", "kubernetes"] {
        let mut a = ranked(&t.engine, Some(&fast), word, 1000);
        let mut b = ranked(&t.engine, None, word, 1000);
        assert!(!a.is_empty(), "{word} matches something");
        a.sort();
        b.sort();
        assert_eq!(a, b, "notes matching {word}");
    }

    // Titles as queries: both engines rank the titled note first, and their
    // top tens mostly agree (BM25's length normalisation differs slightly:
    // FTS5 weights columns, the fast index counts the title twice).
    let queries: Vec<String> = titles(&t.engine).into_iter().take(120).collect();
    let (mut overlap, mut same_first) = (0.0, 0);
    for q in &queries {
        let a = ranked(&t.engine, Some(&fast), q, 10);
        let b = ranked(&t.engine, None, q, 10);
        let a_set: HashSet<&String> = a.iter().collect();
        let shared = b.iter().filter(|p| a_set.contains(p)).count();
        overlap += shared as f64 / b.len().max(1) as f64;
        same_first += (a.first() == b.first()) as usize;
    }
    let overlap = overlap / queries.len() as f64;
    println!(
        "{} title queries: top-10 overlap {overlap:.3}, same first {same_first}",
        queries.len()
    );
    assert!(overlap >= 0.8, "top-10 overlap {overlap:.3}");
    assert!(
        same_first as f64 >= 0.9 * queries.len() as f64,
        "same first note for {same_first} of {}",
        queries.len()
    );
}

/// The title boost of a found chunk, read from the fast index's postings, is
/// what `Terms::title_match` makes of its note's title, for every note
/// without aliases (those with aliases are left to SQLite's titles).
#[test]
fn title_matches_from_the_fast_index_are_the_titles_own() {
    let (_notes, t) = real_notes();
    let fast = KeywordIndex::open(&t.data.path().join("keywords")).unwrap();
    let notes: HashMap<i64, (String, String)> = t
        .engine
        .store()
        .read(|c| {
            let mut stmt = c.prepare("SELECT id, title, aliases FROM notes")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .unwrap();
    let (mut known, mut left) = (0, 0);
    for title in titles(&t.engine).iter().take(80) {
        let first_word = title.split_whitespace().next().unwrap_or("");
        for query in [
            title.clone(),
            format!("how does the {title} work?"),
            format!("{first_word} collector"),
        ] {
            let terms = Terms::parse(&query);
            for m in fast.search(&terms, None, 100).unwrap() {
                let (title, aliases) = &notes[&m.note_id];
                match m.title_match {
                    Some(found) => {
                        assert_eq!(aliases, "[]", "{title}");
                        assert_eq!(found, terms.title_match(title), "{query} / {title}");
                        known += 1;
                    }
                    None => {
                        assert_ne!(aliases, "[]", "{title}");
                        left += 1;
                    }
                }
            }
        }
    }
    println!("title matches read from the index: {known}, left to SQLite: {left}");
    assert!(known > 1000, "{known}");
}

#[test]
fn deleted_or_damaged_keyword_index_is_rebuilt_and_searches_still_answer() {
    let (_notes, t) = real_notes();
    let data = t.data.path().to_path_buf();
    let query = "collector pipeline";
    // What each engine ranks (they may swap neighbours: see above).
    let by_fast = search(&t.engine, query, Mode::Keyword);
    let by_fts5 = ranked(&t.engine, None, query, 10);
    assert!(!by_fast.is_empty());
    drop(t.engine);

    for damage in ["deleted", "garbage"] {
        let dir = data.join("keywords");
        match damage {
            "deleted" => std::fs::remove_dir_all(&dir).unwrap(),
            _ => {
                for entry in std::fs::read_dir(&dir).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_file() {
                        std::fs::write(&path, b"\0garbage\xff not an index").unwrap();
                    }
                }
            }
        }
        let engine = Engine::open_with(&data, Settings::default(), None).unwrap();
        // FTS5 answers meanwhile, without an error.
        assert_eq!(
            search(&engine, query, Mode::Keyword),
            by_fts5,
            "{damage}: search before the rebuild"
        );
        assert!(!engine.status().unwrap().keyword_index_current);
        index(&engine);
        let fast = KeywordIndex::open(&dir).unwrap();
        assert!(
            engine.store().read(|c| fast.is_current(c)).unwrap(),
            "{damage}: rebuilt by the next run"
        );
        assert_eq!(fast.chunk_ids().unwrap(), chunk_ids(&engine), "{damage}");
        assert!(engine.status().unwrap().keyword_index_current);
        assert_eq!(
            search(&engine, query, Mode::Keyword),
            by_fast,
            "{damage}: search after the rebuild"
        );
    }
}

#[test]
fn edits_and_other_processes_runs_reach_the_fast_index() {
    let notes = tempfile::tempdir().unwrap();
    std::fs::write(
        notes.path().join("a.md"),
        "# Garden\n\nTomatoes need sun.\n",
    )
    .unwrap();
    std::fs::write(
        notes.path().join("b.md"),
        "# Kitchen\n\nBread wants time.\n",
    )
    .unwrap();
    let writer = open(notes.path(), None);
    index(&writer.engine);
    // A second engine on the same data folder: another process that only reads.
    let reader = Engine::open_with(writer.data.path(), Settings::default(), None).unwrap();
    assert_eq!(search(&reader, "tomatoes", Mode::Keyword), ["a.md"]);

    std::fs::write(
        notes.path().join("a.md"),
        "# Garden\n\nCucumbers need water.\n",
    )
    .unwrap();
    std::fs::remove_file(notes.path().join("b.md")).unwrap();
    index(&writer.engine);
    let fast = KeywordIndex::open(&writer.data.path().join("keywords")).unwrap();
    assert!(writer.engine.store().read(|c| fast.is_current(c)).unwrap());
    assert_eq!(fast.chunk_ids().unwrap(), chunk_ids(&writer.engine));
    for engine in [&writer.engine, &reader] {
        assert_eq!(search(engine, "cucumbers", Mode::Keyword), ["a.md"]);
        assert!(search(engine, "tomatoes", Mode::Keyword).is_empty());
        assert!(search(engine, "bread", Mode::Keyword).is_empty());
    }
    // The reader answered from the fast index (it reloaded to the writer's commit).
    assert!(reader.status().unwrap().keyword_index_current);
}

#[test]
fn a_trimmed_removal_log_makes_a_lagging_index_start_over() {
    let notes = tempfile::tempdir().unwrap();
    for (name, text) in [("a.md", "alpha apples"), ("b.md", "beta bananas")] {
        std::fs::write(notes.path().join(name), text).unwrap();
    }
    let t = open(notes.path(), None);
    index(&t.engine);
    let mut fast = KeywordIndex::open(&t.data.path().join("keywords")).unwrap();
    assert_eq!(fast.chunk_ids().unwrap(), chunk_ids(&t.engine));
    // Chunks leave while the index lags, and their removals are trimmed
    // from the log before it catches up.
    {
        let c = t.engine.store().writer();
        c.execute(
            "DELETE FROM chunks WHERE note_id = (SELECT id FROM notes WHERE rel_path = 'a.md')",
            [],
        )
        .unwrap();
        c.execute("DELETE FROM vector_removals", []).unwrap();
    }
    t.engine.store().read(|c| fast.catch_up(c)).unwrap();
    assert!(t.engine.store().read(|c| fast.is_current(c)).unwrap());
    assert_eq!(fast.chunk_ids().unwrap(), chunk_ids(&t.engine));
}

/// Chunk ids FTS5 (the source of truth) finds for one word, by its term.
fn chunks_holding(engine: &Engine, word: &str) -> HashSet<i64> {
    let term = Terms::parse(word).words.remove(0);
    column(
        engine,
        "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?1",
        [format!("\"{term}\"")],
    )
}

/// A word held by more than a fifth of the chunks is left out of the search
/// for candidates in a large index (it still counts in coverage), never in a
/// small one, and a query of common words alone still searches its rarest.
#[test]
fn common_words_are_left_out_of_the_candidate_search_only_in_a_large_index() {
    let (_notes, t) = real_notes();
    let mut fast = KeywordIndex::open(&t.data.path().join("keywords")).unwrap();
    let chunks = chunk_ids(&t.engine).len();
    let share = |w: &str| chunks_holding(&t.engine, w).len() as f64 / chunks as f64;
    let common = ["opentelemetry", "collector", "data", "use", "can"]
        .into_iter()
        .find(|w| share(w) > 0.2)
        .expect("a word in over a fifth of the real notes' chunks");
    let rare = "baggage";
    assert!(share(rare) < 0.05);
    let query = Terms::parse(&format!("{common} {rare}"));
    let holding_rare = chunks_holding(&t.engine, rare);
    let holding_common = chunks_holding(&t.engine, common);

    // Under 50k chunks (the default's size) every word is searched: chunks
    // holding only the common word are found too.
    let all = fast.search(&query, None, 10_000).unwrap();
    let only_common = all
        .iter()
        .filter(|m| !holding_rare.contains(&m.chunk_id))
        .count();
    assert!(
        only_common > 0,
        "{common} alone finds chunks in a small index"
    );

    // From the size on, only chunks holding the rare word are candidates,
    // and those also holding the common word still cover the whole query.
    fast.set_common_words(CommonWords {
        share: 0.2,
        from_chunks: 0,
    });
    let cut = fast.search(&query, None, 10_000).unwrap();
    assert!(!cut.is_empty());
    assert_eq!(cut.len(), holding_rare.len(), "every chunk holding {rare}");
    for m in &cut {
        assert!(holding_rare.contains(&m.chunk_id), "chunk {}", m.chunk_id);
        let both = holding_common.contains(&m.chunk_id);
        assert_eq!(m.terms_held, 1 + both as usize, "chunk {}", m.chunk_id);
    }
    assert!(cut.iter().any(|m| m.terms_held == 2 && m.coverage == 1.0));

    // Nothing but common words: the rarest of them is searched.
    let found = fast.search(&Terms::parse(common), None, 10).unwrap();
    assert_eq!(found.len(), 10);
    assert!(found.iter().all(|m| holding_common.contains(&m.chunk_id)));
}

#[test]
fn the_fast_index_catches_up_while_the_first_batch_is_embedded() {
    let notes = tempfile::tempdir().unwrap();
    for i in 0..20 {
        std::fs::write(
            notes.path().join(format!("n{i}.md")),
            format!("# Note {i}\n\nParagraph about topic{i} and gardens.\n"),
        )
        .unwrap();
    }
    let t = open(notes.path(), Some(Arc::new(FakeEmbedder)));
    // Held at the embedding stage's first report (the run waits in its
    // progress callback): the fast index is brought up meanwhile, not at the
    // run's end, so searches during the embedding stage do not fall back to
    // FTS5 scoring every match.
    let seen = std::cell::Cell::new(None);
    let progress = |p: &sift::Progress| {
        if p.phase == sift::Phase::Embedding && seen.get().is_none() {
            let waited = std::time::Instant::now();
            let mut current = false;
            while !current && waited.elapsed() < std::time::Duration::from_secs(20) {
                current = t.engine.status().unwrap().keyword_index_current;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            seen.set(Some(current));
        }
    };
    t.engine
        .index(&progress, &std::sync::atomic::AtomicBool::new(false))
        .unwrap();
    assert_eq!(seen.get(), Some(true));
    assert!(t.engine.status().unwrap().keyword_index_current);
}
