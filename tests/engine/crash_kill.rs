//! Crash safety: real `sift index` and `sift watch` processes are killed with
//! SIGKILL at random moments across many iterations while the folder keeps
//! changing, and restarted. After every kill, the next start finds SQLite, FTS5,
//! the fast keyword index (once caught up) and the usearch index in agreement; at the end every note is searchable, the
//! index equals a fresh one, and no text was embedded twice.
//!
//! The binary embeds with its test-only fake (`SIFT_TEST_EMBEDDER=fake:<log>`),
//! which logs every text it embedded with the process id and call number. The
//! only repeat allowed is the last call of a killed process: its vectors were
//! obtained but the process died before they reached the cache.
//!
//! `SIFT_CRASH_SEED` replays a run; `SIFT_CRASH_ITERATIONS` sets its length.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sift::keyword_index::KeywordIndex;
use sift::store::Store;
use sift::vectors::VectorIndex;
use sift::{Engine, Mode, Query, Settings};

/// The binary's fake embedder (src/cli/test_embedder.rs).
const FAKE_ID: &str = "test/fake-bag-of-words";
const FAKE_DIMENSIONS: usize = 64;

const WORDS: &[&str] = &[
    "river", "lantern", "copper", "meadow", "violin", "harbor", "thistle", "granite", "falcon",
    "orchard", "ember", "glacier", "saffron", "compass", "willow", "marble", "tundra", "beacon",
    "cedar", "quartz", "lagoon", "pepper", "anchor", "velvet", "summit", "canyon", "maple",
    "cobalt", "prairie", "juniper", "walnut", "harvest",
];

/// The notes folder and what it should hold: path -> (note id, version).
struct Folder {
    root: PathBuf,
    notes: BTreeMap<String, (usize, usize)>,
    next_id: usize,
}

impl Folder {
    fn new(root: &Path, count: usize) -> Folder {
        let mut folder = Folder {
            root: root.to_path_buf(),
            notes: BTreeMap::new(),
            next_id: 0,
        };
        for _ in 0..count {
            folder.add();
        }
        folder
    }

    fn write(&self, rel: &str) {
        let (id, version) = self.notes[rel];
        let path = self.root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, note_text(id, version)).unwrap();
    }

    fn add(&mut self) {
        let id = self.next_id;
        self.next_id += 1;
        let rel = format!("d{}/note{id}.md", id % 7);
        self.notes.insert(rel.clone(), (id, 0));
        self.write(&rel);
    }

    fn pick(&self, rng: &mut StdRng) -> String {
        let i = rng.random_range(0..self.notes.len());
        self.notes.keys().nth(i).unwrap().clone()
    }

    /// A mix of edits, new notes, deletes, renames and a folder move.
    fn mutate(&mut self, rng: &mut StdRng) {
        for _ in 0..6 {
            let rel = self.pick(rng);
            self.notes.get_mut(&rel).unwrap().1 += 1;
            self.write(&rel);
        }
        for _ in 0..4 {
            self.add();
        }
        for _ in 0..2 {
            let rel = self.pick(rng);
            self.notes.remove(&rel);
            fs::remove_file(self.root.join(&rel)).unwrap();
        }
        for _ in 0..2 {
            let rel = self.pick(rng);
            let entry = self.notes.remove(&rel).unwrap();
            let to = format!("moved/{}", rel.replace('/', "-"));
            fs::create_dir_all(self.root.join("moved")).unwrap();
            fs::rename(self.root.join(&rel), self.root.join(&to)).unwrap();
            self.notes.insert(to, entry);
        }
        if rng.random_bool(0.3) {
            // Rename a whole folder.
            let from = format!("d{}", rng.random_range(0..7));
            let to = format!("{from}x");
            if self.root.join(&from).is_dir() && !self.root.join(&to).exists() {
                fs::rename(self.root.join(&from), self.root.join(&to)).unwrap();
                let moved: Vec<String> = self
                    .notes
                    .keys()
                    .filter(|k| k.starts_with(&format!("{from}/")))
                    .cloned()
                    .collect();
                for rel in moved {
                    let entry = self.notes.remove(&rel).unwrap();
                    self.notes.insert(rel.replacen(&from, &to, 1), entry);
                }
            }
        }
    }
}

/// Three sections of about 120 words; version changes one section's text.
fn note_text(id: usize, version: usize) -> String {
    let mut text = format!("# Note {id}\n\nuniq{id} opens this note.\n\n");
    for part in 0..3 {
        text.push_str(&format!("## Part {part}\n\n"));
        let seed = id * 7919 + part * 104_729 + if part == version % 3 { version } else { 0 };
        let mut rng = StdRng::seed_from_u64(seed as u64);
        for w in 0..120 {
            text.push_str(WORDS[rng.random_range(0..WORDS.len())]);
            text.push(if w % 15 == 14 { '.' } else { ' ' });
        }
        text.push_str("\n\n");
    }
    text
}

struct Run<'a> {
    data: &'a Path,
    notes: &'a Path,
    log: &'a Path,
}

impl Run<'_> {
    fn spawn(&self, args: &[&str]) -> Child {
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.with_extension("stderr"))
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_sift"))
            .args(args)
            .env("SIFT_DATA_DIR", self.data)
            .env("SIFT_TEST_EMBEDDER", format!("fake:{}", self.log.display()))
            .env("SIFT_TEST_EMBED_DELAY_MS", "40")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap()
    }

    fn index(&self) -> Child {
        self.spawn(&["index", &self.notes.to_string_lossy()])
    }

    fn watch(&self) -> Child {
        self.spawn(&[
            "watch",
            &self.notes.to_string_lossy(),
            "--debounce-ms",
            "50",
        ])
    }
}

/// Opens the data folder as the next start would and checks that the three
/// stores agree. Returns (chunks, chunks with vectors, vector index rebuilt?).
fn check_agreement(data: &Path) -> (usize, usize, bool) {
    if !data.join("sift.db").exists() {
        // Killed before it created the data folder: nothing to disagree.
        return (0, 0, false);
    }
    let store = Store::open(&data.join("sift.db")).unwrap();
    let conn = store.writer();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok", "SQLite integrity");
    conn.execute(
        "INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)",
        [],
    )
    .expect("FTS5 index matches the chunks table");
    let chunks: usize = conn
        .query_row("SELECT count(*) FROM chunks", [], |r| r.get(0))
        .unwrap();
    let fts_rows: usize = conn
        .query_row("SELECT count(*) FROM chunks_fts_docsize", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fts_rows, chunks, "one FTS5 row per chunk");
    let duplicates: usize = conn
        .query_row(
            "SELECT count(*) FROM (SELECT note_id, seq FROM chunks GROUP BY note_id, seq HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(duplicates, 0, "no duplicate chunks");

    let (vectors, report) = VectorIndex::open(
        &data.join("vectors"),
        FAKE_ID,
        FAKE_DIMENSIONS,
        &conn,
        true,
        None,
    )
    .unwrap();
    let with_vectors: Vec<i64> = {
        let mut stmt = conn
            .prepare(
                "SELECT c.id FROM chunks c JOIN embed_cache e ON e.embedder = ?1 AND e.hash = c.embed_hash",
            )
            .unwrap();
        stmt.query_map([FAKE_ID], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert_eq!(
        vectors.len(),
        with_vectors.len(),
        "usearch holds exactly the chunks with cached vectors ({report:?})"
    );
    for id in &with_vectors {
        assert!(vectors.contains(*id), "chunk {id} lacks its vector");
    }

    // The fast keyword index, as the next writer finds it (behind, or cut off
    // mid-commit) and catches it up: exactly the store's chunks.
    let mut keywords = KeywordIndex::open(&data.join("keywords")).unwrap();
    keywords.catch_up(&conn).unwrap();
    assert!(keywords.is_current(&conn).unwrap());
    let ids: Vec<i64> = {
        let mut stmt = conn.prepare("SELECT id FROM chunks ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert_eq!(
        keywords.chunk_ids().unwrap(),
        ids,
        "keyword index holds the store's chunks"
    );
    (chunks, with_vectors.len(), report.rebuilt)
}

/// (path, seq, text) of every chunk, after a fresh keyword-only index of `notes`.
fn chunks_of(engine: &Engine) -> Vec<(String, i64, String)> {
    engine
        .store()
        .read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT n.rel_path, c.seq, c.body FROM chunks c JOIN notes n ON n.id = c.note_id
                 ORDER BY n.rel_path, c.seq, c.id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .unwrap()
}

/// Checks the embedding log: returns (texts embedded, tolerated repeats).
fn check_log(log: &Path, killed: &HashSet<u32>) -> (usize, usize) {
    let text = fs::read_to_string(log).unwrap_or_default();
    let mut last_call: HashMap<u32, u64> = HashMap::new();
    let mut entries = Vec::new();
    for line in text.lines() {
        let mut parts = line.split(' ');
        let pid: u32 = parts.next().unwrap().parse().unwrap();
        let call: u64 = parts.next().unwrap().parse().unwrap();
        let hash = parts.next().unwrap().to_string();
        let last = last_call.entry(pid).or_insert(call);
        *last = (*last).max(call);
        entries.push((pid, call, hash));
    }
    let mut first_seen: HashMap<&str, (u32, u64)> = HashMap::new();
    let mut tolerated = 0;
    let mut violations = Vec::new();
    for (pid, call, hash) in &entries {
        match first_seen.get(hash.as_str()) {
            None => {
                first_seen.insert(hash, (*pid, *call));
            }
            Some(&(prev_pid, prev_call)) => {
                if killed.contains(&prev_pid) && last_call[&prev_pid] == prev_call {
                    tolerated += 1;
                    // The repeat is now the one that reached the cache.
                    first_seen.insert(hash, (*pid, *call));
                } else {
                    violations.push(format!(
                        "{hash}: embedded by pid {prev_pid} call {prev_call} and again by pid {pid} call {call}"
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "texts embedded twice:\n{}",
        violations.join("\n")
    );
    (first_seen.len(), tolerated)
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_repeats_nothing() {
    let seed: u64 = std::env::var("SIFT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        });
    let iterations: usize = std::env::var("SIFT_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    println!("crash test seed {seed} (SIFT_CRASH_SEED={seed} replays it), {iterations} kills");
    let mut rng = StdRng::seed_from_u64(seed);

    let tmp = tempfile::tempdir().unwrap();
    let notes = tmp.path().join("notes");
    let data = tmp.path().join("data");
    let log = tmp.path().join("embedded.log");
    fs::create_dir_all(&notes).unwrap();
    let mut folder = Folder::new(&notes, 250);
    let run = Run {
        data: &data,
        notes: &notes,
        log: &log,
    };

    let started = Instant::now();
    let mut killed = HashSet::new();
    let mut finished_runs = 0;
    let mut rebuilt = 0;
    for i in 0..iterations {
        if i > 0 {
            folder.mutate(&mut rng);
        }
        let watch = i % 4 == 3;
        let mut child = if watch { run.watch() } else { run.index() };
        let kill_after = Duration::from_millis(rng.random_range(0..900));
        if watch {
            // Change files while it watches, then kill it mid-way.
            std::thread::sleep(kill_after / 2);
            folder.mutate(&mut rng);
            std::thread::sleep(kill_after / 2);
        } else {
            std::thread::sleep(kill_after);
        }
        let exited = child.try_wait().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        match exited {
            Some(status) => {
                assert!(status.success(), "sift exited with {status}");
                finished_runs += 1;
            }
            None => {
                killed.insert(child.id());
            }
        }
        let (_, _, was_rebuilt) = check_agreement(&data);
        rebuilt += was_rebuilt as usize;
    }

    // One last run to the end, then everything must be there exactly once.
    let status = run.index().wait().unwrap();
    assert!(status.success());
    let (chunks, with_vectors, _) = check_agreement(&data);
    assert_eq!(chunks, with_vectors, "every chunk has its vector");

    let out = Command::new(env!("CARGO_BIN_EXE_sift"))
        .args(["status", "--files", "--json"])
        .env("SIFT_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let states: BTreeMap<String, String> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: BTreeMap<String, String> = folder
        .notes
        .keys()
        .map(|p| (p.clone(), "indexed".to_string()))
        .collect();
    assert_eq!(states, expected, "sift status --files");

    let engine = Engine::open_with(&data, Settings::load(&data).unwrap(), None).unwrap();
    for (path, (id, _)) in &folder.notes {
        let query = Query {
            mode: Mode::Keyword,
            ..Query::new(format!("uniq{id}"))
        };
        let hits: Vec<String> = engine
            .search(&query)
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.path)
            .collect();
        assert_eq!(hits, vec![path.clone()], "uniq{id} finds its note");
    }
    let fresh_data = tempfile::tempdir().unwrap();
    let fresh = Engine::open_with(fresh_data.path(), Settings::default(), None).unwrap();
    fresh.add_folder(&notes).unwrap();
    fresh.index(&|_| {}, &AtomicBool::new(false)).unwrap();
    assert!(
        chunks_of(&engine) == chunks_of(&fresh),
        "the index equals a fresh index of the folder"
    );
    let distinct: BTreeSet<(String, i64, String)> = chunks_of(&engine).into_iter().collect();
    assert_eq!(distinct.len(), chunks);

    let (embedded, tolerated) = check_log(&log, &killed);
    println!(
        "{} kills, {finished_runs} runs finished before their kill, {rebuilt} vector rebuilds on restart; \
         {chunks} chunks, {embedded} texts embedded once each, {tolerated} repeats of a call cut short by a kill; {:.1}s",
        killed.len(),
        started.elapsed().as_secs_f64()
    );
}

/// SIGKILL of the writer while a reader searches: the OS frees the lock at
/// once, the next process (or the reader itself) becomes the writer, the
/// reader's searches never fail and, without reopening, end up seeing every
/// note by keyword and by meaning; no text is embedded twice.
#[test]
fn killing_the_writer_while_a_reader_searches_loses_nothing() {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use crate::multiprocess::BinaryFake;

    let seed: u64 = std::env::var("SIFT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let mut rng = StdRng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let notes = tmp.path().join("notes");
    let data = tmp.path().join("data");
    let log = tmp.path().join("embedded.log");
    fs::create_dir_all(&notes).unwrap();
    fs::create_dir_all(&data).unwrap();
    let mut folder = Folder::new(&notes, 150);
    let run = Run {
        data: &data,
        notes: &notes,
        log: &log,
    };
    // The reader: opened once, before anything is indexed.
    let mut settings = Settings::default();
    settings.folders.push(notes.canonicalize().unwrap());
    settings.save(&data).unwrap();
    let reader = Arc::new(
        Engine::open_with(&data, settings, Some(Arc::new(BinaryFake::logging(&log)))).unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let searcher = std::thread::spawn({
        let (reader, stop) = (reader.clone(), stop.clone());
        move || {
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                for mode in [Mode::Keyword, Mode::Semantic, Mode::Hybrid] {
                    let query = Query {
                        mode,
                        ..Query::new(format!("uniq{} river lantern", n % 150))
                    };
                    reader.search(&query).expect("searches never fail");
                }
                n += 1;
            }
            n
        }
    });

    let mut killed = HashSet::new();
    let mut reader_runs = 0;
    for i in 0..12 {
        folder.mutate(&mut rng);
        let mut child = run.index();
        std::thread::sleep(Duration::from_millis(rng.random_range(100..800)));
        if child.try_wait().unwrap().is_none() {
            killed.insert(child.id());
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let freed = Instant::now();
        while sift::lock::writer_busy(&data).is_some() {
            assert!(
                freed.elapsed() < Duration::from_secs(1),
                "the dead writer's lock is released"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        if i % 3 == 2 {
            // The reader becomes the writer for one run.
            reader.index(&|_| {}, &AtomicBool::new(false)).unwrap();
            reader_runs += 1;
        }
    }
    assert!(run.index().wait().unwrap().success());
    stop.store(true, Ordering::SeqCst);
    let searches = searcher.join().unwrap();

    // The reader, never reopened, sees everything the last writer left.
    let (chunks, with_vectors, _) = check_agreement(&data);
    assert_eq!(chunks, with_vectors);
    assert_eq!(reader.vector_count(), chunks);
    for (path, (id, _)) in &folder.notes {
        let query = Query {
            mode: Mode::Keyword,
            ..Query::new(format!("uniq{id}"))
        };
        let hits: Vec<String> = reader
            .search(&query)
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.path)
            .collect();
        assert_eq!(hits, vec![path.clone()], "uniq{id}");
    }
    let texts: Vec<(String, String)> = reader
        .store()
        .read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT n.rel_path, c.embed_prefix, c.body FROM chunks c
                 JOIN notes n ON n.id = c.note_id ORDER BY c.id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    sift::chunk::embed_text(&r.get::<_, String>(1)?, &r.get::<_, String>(2)?),
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .unwrap();
    for (path, text) in texts.iter().step_by(7) {
        let query = Query {
            mode: Mode::Semantic,
            limit: 3,
            ..Query::new(text.clone())
        };
        let hits: Vec<String> = reader
            .search(&query)
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.path)
            .collect();
        assert!(hits.contains(path), "{path} found by meaning: {hits:?}");
    }
    let (embedded, tolerated) = check_log(&log, &killed);
    println!(
        "{} writers killed, {reader_runs} runs by the reader, {searches} rounds of searches \
         without an error; {chunks} chunks, {embedded} texts embedded once each, {tolerated} \
         repeats of a call cut short by a kill",
        killed.len()
    );
}
