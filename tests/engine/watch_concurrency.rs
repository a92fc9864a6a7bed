//! Search during indexing: readers never wait for a long index run and never see
//! a note half written (some of its chunks old, some new, or some missing).

use crate::common;

use std::collections::HashMap;
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::FakeEmbedder;
use sift::embed::Embedder;
use sift::{Engine, Mode, Query, Settings};

/// The fake embedder, slowed down like a real model.
struct Slow(FakeEmbedder);

impl Embedder for Slow {
    fn id(&self) -> &str {
        self.0.id()
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
        std::thread::sleep(Duration::from_millis(150));
        self.0.embed_documents(texts)
    }
    fn embed_query(&self, text: &str) -> sift::Result<Vec<f32>> {
        self.0.embed_query(text)
    }
}

/// A note of several chunks, each tagged with the version.
fn note(id: usize, version: usize) -> String {
    let mut text = format!("# Note {id}\n\n");
    for s in 0..4 {
        text.push_str(&format!("## Section {s}\n\n"));
        for w in 0..60 {
            text.push_str(&format!("v{version}w{} ", (w * 7 + s + id) % 97));
        }
        text.push_str(&format!("version{version}\n\n"));
    }
    text
}

/// Chunks a note of this version has.
fn chunk_count(id: usize, version: usize) -> usize {
    let text = note(id, version);
    sift::chunk::chunk_note(&text, &sift::note::parse_note(&text, true), true).len()
}

/// Per note, the version tag of each chunk a reader sees.
fn visible(engine: &Engine) -> HashMap<String, Vec<String>> {
    engine
        .store()
        .read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT n.rel_path, c.body FROM chunks c JOIN notes n ON n.id = c.note_id",
            )?;
            let mut out: HashMap<String, Vec<String>> = HashMap::new();
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (path, body) = row?;
                // Every word carries its version: `v2w17`, `version2`.
                let version = body
                    .split_whitespace()
                    .find_map(|w| {
                        let digits = w.strip_prefix("version").or_else(|| w.strip_prefix('v'))?;
                        let digits: String =
                            digits.chars().take_while(|c| c.is_ascii_digit()).collect();
                        (!digits.is_empty()).then_some(digits)
                    })
                    .unwrap_or_else(|| "?".into());
                out.entry(path).or_default().push(version);
            }
            Ok(out)
        })
        .unwrap()
}

#[test]
fn searches_run_during_a_long_index_and_see_whole_notes_only() {
    let notes = tempfile::tempdir().unwrap();
    for id in 0..250 {
        fs::write(notes.path().join(format!("n{id}.md")), note(id, 1)).unwrap();
    }
    let data = tempfile::tempdir().unwrap();
    let engine = Arc::new(
        Engine::open_with(
            data.path(),
            Settings::default(),
            Some(Arc::new(Slow(FakeEmbedder))),
        )
        .unwrap(),
    );
    engine.add_folder(notes.path()).unwrap();
    let expected: HashMap<(usize, usize), usize> = (0..250)
        .flat_map(|id| [(id, 1), (id, 2)])
        .map(|key| (key, chunk_count(key.0, key.1)))
        .collect();

    for version in 1..=2 {
        if version == 2 {
            for id in 0..250 {
                fs::write(notes.path().join(format!("n{id}.md")), note(id, 2)).unwrap();
            }
        }
        let done = Arc::new(AtomicBool::new(false));
        let indexer = std::thread::spawn({
            let engine = engine.clone();
            let done = done.clone();
            move || {
                let started = Instant::now();
                engine.index(&|_| {}, &AtomicBool::new(false)).unwrap();
                done.store(true, Ordering::SeqCst);
                started.elapsed()
            }
        });
        let mut searches = 0;
        let mut slowest = Duration::ZERO;
        while !done.load(Ordering::SeqCst) {
            for mode in [Mode::Keyword, Mode::Semantic, Mode::Hybrid] {
                let query = Query {
                    mode,
                    ..Query::new("version2 section")
                };
                let started = Instant::now();
                engine.search(&query).unwrap();
                slowest = slowest.max(started.elapsed());
                searches += 1;
            }
            for (path, versions) in visible(&engine) {
                assert!(
                    versions.iter().all(|v| v == &versions[0]),
                    "{path} mixes versions: {versions:?}"
                );
                let id: usize = path[1..path.len() - 3].parse().unwrap();
                let version: usize = versions[0].parse().unwrap();
                assert_eq!(
                    versions.len(),
                    expected[&(id, version)],
                    "{path} is half written"
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let run = indexer.join().unwrap();
        println!(
            "version {version}: index run {:.1}s, {searches} searches meanwhile, slowest {:.0} ms",
            run.as_secs_f64(),
            slowest.as_secs_f64() * 1000.0
        );
        assert!(searches >= 10, "searches kept running during the run");
        // Relative to the run, not a fixed time: on a loaded machine a debug
        // search takes up to a second, but one that waited for the writer
        // would take most of the run.
        assert!(
            slowest < run / 4,
            "a search waited {slowest:?} during a {run:?} run"
        );
    }
}
