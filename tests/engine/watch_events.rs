//! Live watching with real file-system events in temp folders: create, edit,
//! delete, rename, directory moves (inside, out of and into the folder), atomic
//! saves and a burst of 1,000 files. Each ends in the right search results, the
//! same chunks a fresh index of the folder would have, and no text embedded twice.

use crate::common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Counting, FakeEmbedder};
use sift::embed::Embedder;
use sift::{ChangeKind, Engine, IndexReport, Mode, Query, Settings, WatchOptions, Watcher};

/// An engine fed by a watcher, recording every report.
struct Live {
    engine: Arc<Engine>,
    root: PathBuf,
    counter: Arc<Counting>,
    reports: Arc<Mutex<Vec<IndexReport>>>,
    batches: Arc<AtomicUsize>,
    /// Watcher callbacks running now: a run's changes reach `reports` only
    /// after its index work is visible (searchable, vectors in).
    in_callback: Arc<AtomicUsize>,
    watcher: Option<Watcher>,
    _notes: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl Live {
    /// Writes the initial notes with `setup`, then starts watching; returns once
    /// the start-up reconcile is done.
    fn start(setup: impl FnOnce(&Path)) -> Live {
        let notes = tempfile::tempdir().unwrap();
        setup(notes.path());
        let data = tempfile::tempdir().unwrap();
        let counter = Counting::new(Arc::new(FakeEmbedder));
        let embedder: Arc<dyn Embedder> = counter.clone();
        let engine =
            Arc::new(Engine::open_with(data.path(), Settings::default(), Some(embedder)).unwrap());
        let root = engine.add_folder(notes.path()).unwrap();
        let reports = Arc::new(Mutex::new(Vec::new()));
        let batches = Arc::new(AtomicUsize::new(0));
        let in_callback = Arc::new(AtomicUsize::new(0));
        let options = WatchOptions {
            debounce: Duration::from_millis(100),
            ..WatchOptions::default()
        };
        let watcher = Watcher::start(std::slice::from_ref(&root), options, {
            let engine = engine.clone();
            let reports = reports.clone();
            let batches = batches.clone();
            let in_callback = in_callback.clone();
            move |changes| {
                in_callback.fetch_add(1, Ordering::SeqCst);
                let cancel = AtomicBool::new(false);
                if !changes.rescan.is_empty() {
                    let report = engine.index_paths(&changes.rescan, &|_| {}, &cancel);
                    reports.lock().unwrap().push(report.unwrap());
                }
                if !changes.paths.is_empty() {
                    let report = engine.index_changed(&changes.paths, &|_| {}, &cancel);
                    reports.lock().unwrap().push(report.unwrap());
                }
                batches.fetch_add(1, Ordering::SeqCst);
                in_callback.fetch_sub(1, Ordering::SeqCst);
            }
        })
        .unwrap();
        let live = Live {
            engine,
            root,
            counter,
            reports,
            batches,
            in_callback,
            watcher: Some(watcher),
            _notes: notes,
            _data: data,
        };
        live.wait_for("the start-up reconcile", || {
            live.batches.load(Ordering::SeqCst) > 0
        });
        live
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn find(&self, text: &str) -> Vec<String> {
        let query = Query {
            mode: Mode::Keyword,
            limit: 2000,
            ..Query::new(text)
        };
        let mut paths: Vec<String> = self
            .engine
            .search(&query)
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.path)
            .collect();
        paths.sort();
        paths
    }

    /// Polls `done` for up to 20 s.
    fn wait_for(&self, what: &str, done: impl Fn() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until keyword search for `text` returns exactly `paths`.
    fn wait_found(&self, text: &str, paths: &[&str]) {
        let mut expected: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        expected.sort();
        self.wait_for(&format!("'{text}' to be found in {paths:?}"), || {
            self.find(text) == expected
        });
    }

    /// Waits until the index holds exactly what a fresh index of the folder
    /// would (same notes, same chunks, once each), every chunk with a vector,
    /// and no watcher run is still between its work and its report.
    fn wait_settled(&self) {
        let started = Instant::now();
        loop {
            let expected = fresh_snapshot(&self.root);
            let actual = snapshot(&self.engine);
            let status = self.engine.status().unwrap();
            if actual == expected
                && status.chunks_without_vectors == 0
                && status.vectors == status.chunks
                && status.pending == 0
                && self.in_callback.load(Ordering::SeqCst) == 0
            {
                return;
            }
            if started.elapsed() > Duration::from_secs(20) {
                assert_eq!(actual, expected, "index differs from a fresh index");
                panic!("vectors missing: {status:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every change the watcher's runs reported, as (path, kind).
    fn changes(&self) -> Vec<(String, ChangeKind)> {
        self.reports
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| r.changes.iter().map(|c| (c.path.clone(), c.kind.clone())))
            .collect()
    }

    fn clear_log(&self) {
        self.reports.lock().unwrap().clear();
        self.counter.reset();
    }

    /// Texts embedded more than once since the last `clear_log`.
    fn embedded_twice(&self) -> Vec<String> {
        let texts = self.counter.texts.lock().unwrap();
        let mut seen = BTreeSet::new();
        texts
            .iter()
            .filter(|t| !seen.insert(t.as_str()))
            .cloned()
            .collect()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.watcher.take();
    }
}

/// (path, chunk seq, chunk text) of every stored chunk, plus the indexed paths.
type Snapshot = (BTreeSet<String>, Vec<(String, i64, String)>);

fn snapshot(engine: &Engine) -> Snapshot {
    engine
        .store()
        .read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT n.rel_path, c.seq, c.body FROM chunks c JOIN notes n ON n.id = c.note_id
                 ORDER BY n.rel_path, c.seq, c.id",
            )?;
            let chunks = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut stmt = conn.prepare("SELECT rel_path FROM notes WHERE state = 'indexed'")?;
            let notes = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<BTreeSet<String>>>()?;
            Ok((notes, chunks))
        })
        .unwrap()
}

fn fresh_snapshot(root: &Path) -> Snapshot {
    let data = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(data.path(), Settings::default(), None).unwrap();
    engine.add_folder(root).unwrap();
    engine.index(&|_| {}, &AtomicBool::new(false)).unwrap();
    snapshot(&engine)
}

fn note(title: &str, body: &str) -> String {
    format!("# {title}\n\n{body}\n")
}

fn three_notes(dir: &Path) {
    fs::write(dir.join("alpha.md"), note("Alpha", "apricot orchards")).unwrap();
    fs::write(dir.join("beta.md"), note("Beta", "bramble hedges")).unwrap();
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("sub/gamma.txt"), "gooseberry jam").unwrap();
}

#[test]
fn create_edit_and_delete_follow_the_folder() {
    let live = Live::start(three_notes);
    assert_eq!(live.find("apricot"), vec!["alpha.md"]);

    live.write("new.md", &note("New", "zebra crossing at dusk"));
    live.wait_found("zebra", &["new.md"]);

    live.write("new.md", &note("New", "giraffe necks at dawn"));
    live.wait_found("giraffe", &["new.md"]);
    assert!(live.find("zebra").is_empty(), "old text is gone");

    live.write("sub/deeper/more.txt", "quince paste");
    live.wait_found("quince", &["sub/deeper/more.txt"]);

    fs::remove_file(live.path("new.md")).unwrap();
    live.wait_found("giraffe", &[]);
    live.wait_settled();
    assert!(live.embedded_twice().is_empty());
}

#[test]
fn renames_and_moves_reuse_vectors() {
    let live = Live::start(three_notes);
    live.clear_log();

    fs::rename(live.path("alpha.md"), live.path("renamed.md")).unwrap();
    live.wait_found("apricot", &["renamed.md"]);

    fs::rename(live.path("renamed.md"), live.path("sub/alpha.md")).unwrap();
    live.wait_found("apricot", &["sub/alpha.md"]);

    // Out of the watched folder and back in.
    let outside = tempfile::tempdir().unwrap();
    fs::rename(live.path("beta.md"), outside.path().join("beta.md")).unwrap();
    live.wait_found("bramble", &[]);
    fs::rename(outside.path().join("beta.md"), live.path("back.md")).unwrap();
    live.wait_found("bramble", &["back.md"]);

    live.wait_settled();
    assert_eq!(
        live.counter.embedded(),
        0,
        "moved text comes from the cache: {:?}",
        live.counter.texts.lock().unwrap()
    );
}

#[test]
fn directory_moves_inside_out_of_and_into_the_folder() {
    let live = Live::start(|dir| {
        three_notes(dir);
        for i in 0..5 {
            let path = dir.join(format!("projects/p{i}.md"));
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, note(&format!("Project {i}"), "kiwi harvest plans")).unwrap();
        }
        fs::create_dir_all(dir.join("projects/nested")).unwrap();
        fs::write(dir.join("projects/nested/n.md"), "kiwi nested").unwrap();
    });
    live.clear_log();
    let mut in_projects: Vec<String> = (0..5)
        .map(|i| format!("projects/p{i}.md"))
        .chain(["projects/nested/n.md".to_string()])
        .collect();
    in_projects.sort();
    assert_eq!(live.find("kiwi"), in_projects);

    // Rename inside the folder, into a new parent.
    fs::create_dir_all(live.path("archive")).unwrap();
    fs::rename(live.path("projects"), live.path("archive/projects")).unwrap();
    let archived: Vec<String> = in_projects.iter().map(|p| format!("archive/{p}")).collect();
    let archived: Vec<&str> = archived.iter().map(String::as_str).collect();
    live.wait_found("kiwi", &archived);

    // The moved folder is still watched: an edit deep inside it is seen.
    live.write("archive/projects/nested/n.md", "kiwi nested and persimmon");
    live.wait_found("persimmon", &["archive/projects/nested/n.md"]);

    // Out of the folder, then back in under another name.
    let outside = tempfile::tempdir().unwrap();
    fs::rename(
        live.path("archive/projects"),
        outside.path().join("projects"),
    )
    .unwrap();
    live.wait_found("kiwi", &[]);
    fs::rename(outside.path().join("projects"), live.path("returned")).unwrap();
    let returned: Vec<String> = in_projects
        .iter()
        .map(|p| p.replacen("projects/", "returned/", 1))
        .collect();
    let returned: Vec<&str> = returned.iter().map(String::as_str).collect();
    live.wait_found("kiwi", &returned);

    // A folder deleted whole.
    fs::remove_dir_all(live.path("returned")).unwrap();
    live.wait_found("kiwi", &[]);

    live.wait_settled();
    // Only the one edited paragraph was new text.
    assert_eq!(
        live.counter.embedded(),
        1,
        "{:?}",
        live.counter.texts.lock().unwrap()
    );
}

#[test]
fn atomic_saves_index_the_note_once() {
    let live = Live::start(three_notes);
    live.clear_log();

    // vim (backupcopy=no): rename the note away, write the new one, delete the backup.
    fs::rename(live.path("alpha.md"), live.path("alpha.md~")).unwrap();
    live.write(
        "alpha.md",
        &note("Alpha", "apricot orchards and walnut groves"),
    );
    fs::remove_file(live.path("alpha.md~")).unwrap();
    live.wait_found("walnut", &["alpha.md"]);

    // VS Code / Obsidian style: write a temp file, rename it over the note.
    live.write(".beta.md.tmp", &note("Beta", "bramble hedges and hazel"));
    fs::rename(live.path(".beta.md.tmp"), live.path("beta.md")).unwrap();
    live.wait_found("hazel", &["beta.md"]);

    // An editor writing in place in several steps (truncate, then write twice).
    {
        use std::io::Write;
        let mut f = fs::File::create(live.path("sub/gamma.txt")).unwrap();
        f.write_all(b"gooseberry jam ").unwrap();
        f.flush().unwrap();
        f.write_all(b"and elderflower").unwrap();
    }
    live.wait_found("elderflower", &["sub/gamma.txt"]);
    live.wait_settled();

    let changes = live.changes();
    for path in ["alpha.md", "beta.md", "sub/gamma.txt"] {
        let of_path: Vec<&ChangeKind> = changes
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, k)| k)
            .collect();
        assert!(
            matches!(of_path.as_slice(), [ChangeKind::Indexed(_)]),
            "{path} should be indexed once, got {of_path:?}"
        );
    }
    assert!(
        changes
            .iter()
            .all(|(p, _)| !p.ends_with('~') && !p.ends_with(".tmp")),
        "temp files are not notes: {changes:?}"
    );
    assert!(live.embedded_twice().is_empty());
}

#[test]
fn ignored_paths_stay_out_and_ignore_file_changes_apply() {
    let live = Live::start(|dir| {
        three_notes(dir);
        fs::write(dir.join(".gitignore"), "drafts/\n").unwrap();
    });
    live.write(".obsidian/workspace.md", "mulberry");
    live.write("node_modules/pkg/readme.md", "mulberry");
    live.write("drafts/d.md", "mulberry");
    live.write(".hidden.md", "mulberry");
    live.write("sub/visible.md", "mulberry");
    live.wait_found("mulberry", &["sub/visible.md"]);

    // Ignoring a folder that holds notes takes them out; un-ignoring brings them in.
    fs::write(live.path(".gitignore"), "drafts/\nsub/\n").unwrap();
    live.wait_found("mulberry", &[]);
    fs::write(live.path(".gitignore"), "").unwrap();
    live.wait_found("mulberry", &["drafts/d.md", "sub/visible.md"]);
    live.wait_settled();
}

#[test]
fn a_burst_of_a_thousand_files_is_coalesced_into_batches() {
    let live = Live::start(three_notes);
    live.clear_log();
    let batches_before = live.batches.load(Ordering::SeqCst);

    for i in 0..1000 {
        live.write(
            &format!("burst/d{}/n{i}.md", i % 10),
            &note(
                &format!("Burst {i}"),
                &format!("token{i} in the burst of notes"),
            ),
        );
    }
    live.wait_for("1,000 new notes", || {
        live.engine.status().unwrap().notes == 1003
    });
    live.wait_settled();
    for i in [0, 1, 499, 998, 999] {
        assert_eq!(
            live.find(&format!("token{i}")),
            vec![format!("burst/d{}/n{i}.md", i % 10)]
        );
    }

    let batches = live.batches.load(Ordering::SeqCst) - batches_before;
    assert!(batches <= 50, "1,000 files took {batches} batches");
    let indexed = live
        .changes()
        .iter()
        .filter(|(_, k)| matches!(k, ChangeKind::Indexed(_)))
        .count();
    assert_eq!(indexed, 1000, "each new note indexed once");
    assert!(live.embedded_twice().is_empty());
    println!("1,000 files arrived in {batches} batches");
}

/// With the real local model: a note written while watching is found by meaning.
#[test]
fn a_new_note_is_found_by_meaning() {
    let Some(model_dir) = std::env::var_os("SIFT_MODEL_DIR") else {
        eprintln!("SIFT_MODEL_DIR not set: skipping the real-model watch test");
        return;
    };
    let notes = tempfile::tempdir().unwrap();
    three_notes(notes.path());
    let data = tempfile::tempdir().unwrap();
    let model: Arc<dyn Embedder> =
        Arc::new(sift::embed::local::LocalEmbedder::load(Path::new(&model_dir)).unwrap());
    let engine =
        Arc::new(Engine::open_with(data.path(), Settings::default(), Some(model)).unwrap());
    let root = engine.add_folder(notes.path()).unwrap();
    let _watcher = Watcher::start(std::slice::from_ref(&root), WatchOptions::default(), {
        let engine = engine.clone();
        move |changes| {
            let cancel = AtomicBool::new(false);
            if !changes.rescan.is_empty() {
                engine
                    .index_paths(&changes.rescan, &|_| {}, &cancel)
                    .unwrap();
            }
            engine
                .index_changed(&changes.paths, &|_| {}, &cancel)
                .unwrap();
        }
    })
    .unwrap();
    fs::write(
        root.join("bread.md"),
        note(
            "Sourdough",
            "Feed the starter the night before, mix flour, water and salt, \
             fold the dough every half hour, shape a loaf and bake it in a hot Dutch oven.",
        ),
    )
    .unwrap();
    let query = Query {
        mode: Mode::Semantic,
        ..Query::new("how do I bake bread at home")
    };
    let started = Instant::now();
    loop {
        let hits = engine.search(&query).unwrap().hits;
        if hits.first().is_some_and(|h| h.path == "bread.md") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "bread.md not found by meaning: {:?}",
            hits.iter().map(|h| &h.path).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
