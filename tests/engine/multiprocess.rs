//! Several engines and real `sift` processes on one data folder: one writer at a
//! time (the writer lock), readers that see the writer's notes and vectors
//! without reopening, runs that wait for the writer and say so, a killed writer
//! that releases the lock, and settings that keep every process's change.
//!
//! Engines inside this test process stand in for processes where that is
//! enough (the lock is per open file, so two engines contend like two
//! processes); the binary is run where a real process matters.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sift::embed::{normalize, Embedder};
use sift::lock::{LockFile, WRITER_LOCK};
use sift::{Engine, ErrorKind, Mode, Phase, Query, Settings};

use crate::common::{self, Counting, FakeEmbedder};

/// The binary's test-only embedder (src/cli/test_embedder.rs), reproduced so
/// engines here share its vectors and its cache; with a log, it appends the
/// same lines as the binary's (`<pid> <call> <sha256 of the text>`).
#[derive(Default)]
pub struct BinaryFake {
    log: Option<PathBuf>,
    calls: std::sync::atomic::AtomicU64,
}

pub const BINARY_FAKE_ID: &str = "test/fake-bag-of-words";

impl BinaryFake {
    /// A fake that logs what it embeds to `log`.
    pub fn logging(log: &Path) -> BinaryFake {
        BinaryFake {
            log: Some(log.to_path_buf()),
            ..BinaryFake::default()
        }
    }
}

impl Embedder for BinaryFake {
    fn id(&self) -> &str {
        BINARY_FAKE_ID
    }
    fn dimensions(&self) -> usize {
        64
    }
    fn max_input_tokens(&self) -> usize {
        254
    }
    fn count_tokens(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
    fn embed_documents(&self, texts: &[String]) -> sift::Result<Vec<Vec<f32>>> {
        if let Some(log) = &self.log {
            use std::io::Write;
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            let pid = std::process::id();
            let lines: String = texts
                .iter()
                .map(|t| {
                    format!(
                        "{pid} {call} {}\n",
                        hex::encode(Sha256::digest(t.as_bytes()))
                    )
                })
                .collect();
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .and_then(|mut f| f.write_all(lines.as_bytes()))
                .unwrap();
        }
        Ok(texts.iter().map(|t| binary_fake_vector(t)).collect())
    }
    fn embed_query(&self, text: &str) -> sift::Result<Vec<f32>> {
        Ok(binary_fake_vector(text))
    }
}

fn binary_fake_vector(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; 64];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let digest = Sha256::digest(word.to_lowercase().as_bytes());
        v[digest[0] as usize % 64] += 1.0;
    }
    v[0] += 0.01;
    normalize(&mut v);
    v
}

/// `sift` with the fake embedder on `data`, logging embedded texts to `log`.
pub fn sift(data: &Path, log: &Path, delay_ms: u64, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sift"));
    cmd.args(args)
        .env("SIFT_DATA_DIR", data)
        .env("SIFT_TEST_EMBEDDER", format!("fake:{}", log.display()))
        .env("SIFT_TEST_EMBED_DELAY_MS", delay_ms.to_string())
        .stdin(Stdio::null());
    cmd
}

fn note(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn semantic(engine: &Engine, text: &str) -> Vec<String> {
    common::search(engine, text, Mode::Semantic)
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if f() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Whether some process holds the writer lock of `data`.
fn lock_busy(data: &Path) -> bool {
    sift::lock::writer_busy(data).is_some()
}

#[test]
fn a_reader_sees_the_writers_notes_and_vectors_without_reopening() {
    let notes = common::fixture_notes();
    let data = tempfile::tempdir().unwrap();
    let writer_embedder = Counting::new(Arc::new(FakeEmbedder));
    let reader_embedder = Counting::new(Arc::new(FakeEmbedder));
    let writer = Engine::open_with(
        data.path(),
        Settings::default(),
        Some(writer_embedder.clone()),
    )
    .unwrap();
    // The reader opens first, on an empty index.
    let reader = Engine::open_with(
        data.path(),
        Settings::default(),
        Some(reader_embedder.clone()),
    )
    .unwrap();
    assert_eq!(reader.vector_count(), 0);

    writer.add_folder(notes.path()).unwrap();
    common::index(&writer);
    let vectors = writer.vector_count();
    assert!(vectors > 0);

    // The reader catches up before its next search: the writer's notes are
    // found by meaning, and its settings name the writer's folder.
    assert_eq!(
        semantic(&reader, "pancake batter eggs flour")
            .first()
            .map(String::as_str),
        Some("recipes/pancakes.md")
    );
    assert_eq!(reader.vector_count(), vectors);
    assert_eq!(reader.settings().folders, writer.settings().folders);
    assert_eq!(reader_embedder.embedded(), 0, "readers never embed");

    // An edit and a delete by the writer: the reader follows.
    note(
        notes.path(),
        "recipes/pancakes.md",
        "# Pancakes\n\nNow a note about kayak paddles and river rapids.\n",
    );
    fs::remove_file(notes.path().join("projects/garden.md")).unwrap();
    common::index(&writer);
    assert_eq!(
        semantic(&reader, "kayak paddles river rapids")
            .first()
            .map(String::as_str),
        Some("recipes/pancakes.md")
    );
    assert!(!common::search(&reader, "tomatoes", Mode::Hybrid)
        .contains(&"projects/garden.md".to_string()));
    assert_eq!(reader.vector_count(), writer.vector_count());

    // A run by the reader now finds nothing to embed: the writer did it.
    writer_embedder.reset();
    let report = common::index(&reader);
    assert_eq!((report.chunks_embedded, reader_embedder.embedded()), (0, 0));
    assert_eq!(reader.status().unwrap().chunks_without_vectors, 0);
}

#[test]
fn readers_never_write_the_vector_file() {
    let notes = common::fixture_notes();
    let data = tempfile::tempdir().unwrap();
    let writer = Engine::open_with(
        data.path(),
        Settings::default(),
        Some(Arc::new(FakeEmbedder)),
    )
    .unwrap();
    writer.add_folder(notes.path()).unwrap();
    common::index(&writer);
    drop(writer);
    let file = fs::read_dir(data.path().join("vectors"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "vectors"))
        .unwrap();
    let before = fs::read(&file).unwrap();

    // Another process is the writer, and the store moved on since the file was
    // saved (a keyword-only run: new chunks, no vectors).
    let keyword_only =
        Engine::open_with(data.path(), Settings::load(data.path()).unwrap(), None).unwrap();
    note(
        notes.path(),
        "new.md",
        "# New\n\nA brand new note about lighthouses.\n",
    );
    common::index(&keyword_only);
    let mut lock = LockFile::open(data.path(), WRITER_LOCK).unwrap();
    let held = lock.try_hold().unwrap();
    assert!(held.is_some());

    let reader = Engine::open_with(
        data.path(),
        Settings::default(),
        Some(Arc::new(FakeEmbedder)),
    )
    .unwrap();
    assert!(!common::search(&reader, "pancakes", Mode::Hybrid).is_empty());
    reader.status().unwrap();
    drop(reader);
    assert!(
        fs::read(&file).unwrap() == before,
        "the reader left the vector file alone"
    );
    assert!(
        fs::read_dir(data.path().join("vectors"))
            .unwrap()
            .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp")),
        "no temp file either"
    );

    // The writer gone, the next engine saves the caught-up file.
    drop(held);
    let next = Engine::open_with(
        data.path(),
        Settings::default(),
        Some(Arc::new(FakeEmbedder)),
    )
    .unwrap();
    assert!(fs::read(&file).unwrap() != before);
    assert!(next.vector_open_report().save_error.is_none());
}

#[test]
fn a_run_waits_for_the_writer_and_says_who_it_is() {
    let notes = common::fixture_notes();
    let data = tempfile::tempdir().unwrap();
    let engine = Arc::new(
        Engine::open_with(
            data.path(),
            Settings::default(),
            Some(Arc::new(FakeEmbedder)),
        )
        .unwrap(),
    );
    engine.add_folder(notes.path()).unwrap();

    let mut lock = LockFile::open(data.path(), WRITER_LOCK).unwrap();
    let held = lock.try_hold().unwrap();

    // Told not to wait: a clear error at once.
    engine.set_wait_for_writer(false);
    let err = engine.index(&|_| {}, &AtomicBool::new(false)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Busy);
    // (The holder is this test process; another process is named by its pid,
    // see the CLI test below.)
    assert!(
        err.message().contains("another index run of this process"),
        "{}",
        err.message()
    );
    engine.set_wait_for_writer(true);

    // Waiting: the progress says so, the run starts when the lock is free.
    let said = Arc::new(Mutex::new(Vec::<String>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let run = std::thread::spawn({
        let (engine, said, done) = (engine.clone(), said.clone(), done.clone());
        move || {
            let progress = |p: &sift::Progress| {
                if p.phase == Phase::Waiting {
                    said.lock()
                        .unwrap()
                        .push(p.current.clone().unwrap_or_default());
                }
            };
            let report = engine.index(&progress, &AtomicBool::new(false)).unwrap();
            done.store(true, Ordering::SeqCst);
            report
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!done.load(Ordering::SeqCst), "the run waits for the writer");
    let message = said.lock().unwrap().clone();
    assert_eq!(message.len(), 1, "said once: {message:?}");
    assert!(message[0].ends_with("; waiting"), "{message:?}");
    assert!(engine.status().unwrap().indexing);
    drop(held);
    let report = run.join().unwrap();
    assert!(report.notes_indexed > 0);

    // A cancelled wait stops without indexing.
    let held = lock.try_hold().unwrap();
    let cancel = AtomicBool::new(true);
    let err = engine.index(&|_| {}, &cancel).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    drop(held);
}

#[test]
fn cli_index_waits_for_another_process_or_refuses_with_no_wait() {
    let notes = common::fixture_notes();
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("embedded.log");
    let folder = notes.path().to_string_lossy().to_string();

    // A slow `sift index` holds the lock while it embeds (held for its run, not
    // only the moment its open saves the vector file).
    let mut first = sift(data.path(), &log, 3_000, &["index", &folder])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || {
        lock_busy(data.path()) && {
            std::thread::sleep(Duration::from_millis(300));
            lock_busy(data.path())
        }
    })
    .is_some());

    let out = sift(data.path(), &log, 0, &["index", "--no-wait"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "--no-wait fails while another process indexes"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "indexing is running in another Sift process (pid {})",
            first.id()
        )),
        "{stderr}"
    );

    let waiting = sift(data.path(), &log, 0, &["index"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first_status = first.wait().unwrap();
    assert!(first_status.success());
    let out = waiting.wait_with_output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "indexing is running in another Sift process (pid {}); waiting",
            first.id()
        )),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("0 chunks embedded"),
        "the first run embedded everything: {stdout}"
    );
}

#[test]
fn a_killed_writer_releases_the_lock_at_once() {
    let notes = common::fixture_notes();
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("embedded.log");
    let folder = notes.path().to_string_lossy().to_string();
    let mut writer = sift(data.path(), &log, 5_000, &["index", &folder])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || {
        lock_busy(data.path()) && {
            std::thread::sleep(Duration::from_millis(300));
            lock_busy(data.path())
        }
    })
    .is_some());
    writer.kill().unwrap(); // SIGKILL
    writer.wait().unwrap();
    let freed = wait_until(Duration::from_secs(2), || !lock_busy(data.path()));
    assert!(freed.is_some(), "the OS released the dead writer's lock");

    let engine = Engine::open_with(
        data.path(),
        Settings::load(data.path()).unwrap(),
        Some(Arc::new(BinaryFake::default())),
    )
    .unwrap();
    engine.set_wait_for_writer(false);
    common::index(&engine);
    assert_eq!(engine.status().unwrap().chunks_without_vectors, 0);
}

#[test]
fn folders_added_by_many_processes_at_once_are_all_kept() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("embedded.log");
    let root = tempfile::tempdir().unwrap();
    let folders: Vec<PathBuf> = (0..6)
        .map(|i| {
            let dir = root.path().join(format!("notes{i}"));
            note(
                &dir,
                "a.md",
                &format!("# Folder {i}\n\nnote in folder {i}\n"),
            );
            dir.canonicalize().unwrap()
        })
        .collect();
    let engine = Engine::open_with(data.path(), Settings::default(), None).unwrap();
    let children: Vec<Child> = folders[..5]
        .iter()
        .map(|f| {
            sift(
                data.path(),
                &log,
                0,
                &["index", &f.to_string_lossy(), "--dry-run"],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    // Meanwhile this engine adds its own folder and changes an option.
    engine.add_folder(&folders[5]).unwrap();
    engine
        .update_settings(|s| {
            s.keyword_weight = 0.3;
            Ok(())
        })
        .unwrap();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let saved: BTreeSet<PathBuf> = Settings::load(data.path())
        .unwrap()
        .folders
        .into_iter()
        .collect();
    let expected: BTreeSet<PathBuf> = folders.iter().cloned().collect();
    assert_eq!(saved, expected, "every folder added is kept");
    assert_eq!(Settings::load(data.path()).unwrap().keyword_weight, 0.3);
    // And this engine sees them without reopening.
    let seen: BTreeSet<PathBuf> = engine.settings().folders.into_iter().collect();
    assert_eq!(seen, expected);

    // Saving whole settings read before another process's change keeps it only
    // through update_settings; the app's save goes through it.
    let stale = engine.settings();
    let extra = root.path().join("extra");
    note(&extra, "b.md", "b");
    let child_out = sift(
        data.path(),
        &log,
        0,
        &["index", &extra.to_string_lossy(), "--dry-run"],
    )
    .output()
    .unwrap();
    assert!(child_out.status.success());
    engine
        .update_settings(|s| {
            s.keyword_weight = stale.keyword_weight + 0.1;
            Ok(())
        })
        .unwrap();
    assert!(engine
        .settings()
        .folders
        .contains(&extra.canonicalize().unwrap()));
}

/// Texts of every chunk in the store: (path, embed text).
fn stored_chunks(engine: &Engine) -> Vec<(String, String)> {
    engine
        .store()
        .read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT n.rel_path, c.embed_prefix, c.body FROM chunks c
                 JOIN notes n ON n.id = c.note_id ORDER BY c.id",
            )?;
            let rows = stmt.query_map([], |r| {
                let prefix: String = r.get(1)?;
                let body: String = r.get(2)?;
                Ok((r.get(0)?, sift::chunk::embed_text(&prefix, &body)))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .unwrap()
}

/// Note text with a unique word, three paragraphs, versioned.
fn note_text(id: usize, version: usize) -> String {
    format!(
        "# Note {id}\n\nuniq{id} version {version}. The note number {id} talks about item {id}.\n\n\
         Second paragraph of note {id}, edited {version} times, with words like lantern{id}.\n"
    )
}

#[test]
fn app_engine_watch_and_two_index_processes_share_one_data_folder() {
    let server = crate::loopback::Server::start(None);
    server.set_latency(Duration::from_millis(15));
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let notes = tmp.path().join("notes");
    let extra: Vec<PathBuf> = (0..4)
        .map(|i| tmp.path().join(format!("extra{i}")))
        .collect();
    fs::create_dir_all(&notes).unwrap();
    for (i, dir) in extra.iter().enumerate() {
        note(
            dir,
            "extra.md",
            &format!("# Extra {i}\n\nextra folder {i} of process {i}\n"),
        );
    }
    fs::create_dir_all(&data).unwrap();
    // Every process embeds with one OpenAI-compatible server (no key).
    let provider = serde_json::json!({
        "provider": "compatible", "base_url": server.openai_base(), "model": "loop-embed",
        "concurrency": 2, "max_retries": 1, "backoff_base_ms": 10,
    });
    fs::write(
        data.join("settings.json"),
        serde_json::json!({ "provider": provider }).to_string(),
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sift"));
        cmd.args(args)
            .env("SIFT_DATA_DIR", &data)
            .env_remove("SIFT_TEST_EMBEDDER")
            .stdin(Stdio::null());
        cmd
    };

    // The app's engine (in this process).
    let settings = Settings::load(&data).unwrap();
    let embedder =
        sift::embed::build_embedder(&settings.provider, &sift::keys::KeyStore::in_memory())
            .unwrap();
    let app = Arc::new(Engine::open_with(&data, settings, Some(embedder)).unwrap());
    app.add_folder(&notes).unwrap();

    // 200 notes are created, edited and deleted while everyone works.
    let expected: Arc<Mutex<HashMap<String, (usize, usize)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mutator = std::thread::spawn({
        let (notes, expected, stop) = (notes.clone(), expected.clone(), stop.clone());
        move || {
            let mut rng: u64 = 0x9e3779b97f4a7c15;
            let mut next = || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            for id in 0..200 {
                let rel = format!("d{}/n{id}.md", id % 5);
                note(&notes, &rel, &note_text(id, 0));
                expected.lock().unwrap().insert(rel, (id, 0));
                if id % 3 == 0 {
                    // Edit a note written earlier.
                    let mut map = expected.lock().unwrap();
                    let keys: Vec<String> = map.keys().cloned().collect();
                    let k = &keys[next() as usize % keys.len()];
                    let entry = map.get_mut(k).unwrap();
                    entry.1 += 1;
                    note(&notes, k, &note_text(entry.0, entry.1));
                }
                if id % 7 == 6 {
                    let mut map = expected.lock().unwrap();
                    let keys: Vec<String> = map.keys().cloned().collect();
                    let k = keys[next() as usize % keys.len()].clone();
                    map.remove(&k);
                    fs::remove_file(notes.join(&k)).unwrap();
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            stop.store(true, Ordering::SeqCst);
        }
    });

    // `sift watch` on the notes folder (it adds the folder too).
    let watch = cli(&["watch", &notes.to_string_lossy(), "--debounce-ms", "50"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Two `sift index` loops, each first adding its own folder, then indexing all.
    let loops: Vec<_> = (0..2)
        .map(|i| {
            let extra = extra[i].clone();
            let stop = stop.clone();
            let data = data.clone();
            std::thread::spawn(move || {
                let run = |args: &[&str]| {
                    let out = Command::new(env!("CARGO_BIN_EXE_sift"))
                        .args(args)
                        .env("SIFT_DATA_DIR", &data)
                        .env_remove("SIFT_TEST_EMBEDDER")
                        .stdin(Stdio::null())
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "sift {args:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                };
                run(&["index", &extra.to_string_lossy()]);
                let mut runs = 1;
                while !stop.load(Ordering::SeqCst) {
                    run(&["index"]);
                    runs += 1;
                }
                runs
            })
        })
        .collect();
    // The app adds folders and indexes on its own, searching all the while.
    app.add_folder(&extra[2]).unwrap();
    let searches = std::thread::spawn({
        let (app, stop) = (app.clone(), stop.clone());
        move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                app.search(&Query::new("note lantern")).unwrap();
                n += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            n
        }
    });
    let mut app_runs = 0;
    while !stop.load(Ordering::SeqCst) {
        app.index(&|_| {}, &AtomicBool::new(false)).unwrap();
        app_runs += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    app.add_folder(&extra[3]).unwrap();
    mutator.join().unwrap();
    let index_runs: Vec<usize> = loops.into_iter().map(|l| l.join().unwrap()).collect();
    let app_searches = searches.join().unwrap();

    // Let the watcher take the last changes, stop it, then one last run.
    std::thread::sleep(Duration::from_millis(1500));
    sigterm(&watch);
    let watch_out = watch.wait_with_output().unwrap();
    assert!(watch_out.status.success());
    let last = cli(&["index"]).output().unwrap();
    assert!(
        last.status.success(),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );

    // Settings hold every folder added, by every process.
    let folders: BTreeSet<PathBuf> = Settings::load(&data).unwrap().folders.into_iter().collect();
    let mut wanted: BTreeSet<PathBuf> = extra.iter().map(|d| d.canonicalize().unwrap()).collect();
    wanted.insert(notes.canonicalize().unwrap());
    assert_eq!(folders, wanted);

    // Each note indexed once, with its last text.
    let expected = expected.lock().unwrap().clone();
    let files = app.file_states(false).unwrap();
    let in_notes: Vec<_> = files
        .iter()
        .filter(|f| Path::new(&f.root) == notes.canonicalize().unwrap())
        .collect();
    let paths: BTreeSet<String> = in_notes.iter().map(|f| f.path.clone()).collect();
    assert_eq!(in_notes.len(), paths.len(), "each note once");
    assert_eq!(paths, expected.keys().cloned().collect::<BTreeSet<_>>());
    assert!(in_notes.iter().all(|f| f.state == "indexed"), "all indexed");
    for (rel, (id, version)) in &expected {
        let hits = common::search(&app, &format!("uniq{id}"), Mode::Keyword);
        assert_eq!(hits, vec![rel.clone()], "uniq{id}");
        let chunks = stored_chunks(&app);
        assert!(
            chunks
                .iter()
                .any(|(p, t)| p == rel && t.contains(&format!("uniq{id} version {version}."))),
            "{rel} holds version {version}"
        );
    }

    // Every chunk text was embedded exactly once, across all processes.
    let mut sent: HashMap<String, usize> = HashMap::new();
    for req in server.successes() {
        for input in req.inputs {
            if input != "dimension probe" {
                *sent.entry(input).or_default() += 1;
            }
        }
    }
    let twice: Vec<_> = sent.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "embedded more than once: {twice:?}");
    let chunks = stored_chunks(&app);
    for (path, text) in &chunks {
        assert!(sent.contains_key(text), "{path}: chunk never embedded");
    }
    assert_eq!(app.status().unwrap().chunks_without_vectors, 0);

    // The app's engine, never reopened, finds by meaning what others indexed.
    let (path, text) = chunks
        .iter()
        .find(|(p, _)| p == "extra.md" || p.starts_with('d'))
        .unwrap();
    assert_eq!(semantic(&app, text).first(), Some(path));
    assert_eq!(app.vector_count(), chunks.len());
    // And a fresh `sift search` process finds by meaning a note of the app's folder.
    let (path, text) = chunks.iter().find(|(p, _)| p.starts_with("d")).unwrap();
    let out = cli(&[
        "search", text, "--mode", "semantic", "--json", "--limit", "1",
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["hits"][0]["path"].as_str(),
        Some(path.as_str()),
        "{doc}"
    );

    // A note indexed by another process is searchable by meaning here within a second.
    note(
        &notes,
        "late.md",
        "# Late\n\nuniqlate a late note about zeppelins.\n",
    );
    let out = cli(&["index"]).output().unwrap();
    assert!(out.status.success());
    let text = stored_chunks(&app)
        .into_iter()
        .find(|(p, _)| p == "late.md")
        .unwrap()
        .1;
    let seen = wait_until(Duration::from_secs(1), || {
        semantic(&app, &text).first().map(String::as_str) == Some("late.md")
    });
    assert!(seen.is_some(), "seen by meaning within a second");

    let unique: HashSet<&String> = chunks.iter().map(|(_, t)| t).collect();
    println!(
        "{} notes, {} chunks ({} distinct texts) embedded once each in {} requests; \
         sift index runs {index_runs:?}, app runs {app_runs}, app searches {app_searches}; \
         caught up by meaning in {:?}",
        expected.len(),
        chunks.len(),
        unique.len(),
        server.successes().len(),
        seen.unwrap()
    );
}

/// Asks a child to stop (SIGTERM) so it saves and exits cleanly.
fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
