//! Shared test fixtures: a deterministic fake embedder, a counting wrapper,
//! the real local model, and a temp copy of the fixture notes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sift::embed::remote::{RemoteEmbedder, RemoteOptions};
use sift::embed::{normalize, openai, Embedder};
use sift::keys::ApiKey;
use sift::{Engine, Settings};

/// Bag-of-words hashed into 64 dimensions: texts sharing words are close.
pub struct FakeEmbedder;

impl Embedder for FakeEmbedder {
    fn id(&self) -> &str {
        "fake/bag-of-words"
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
        Ok(texts.iter().map(|t| fake_vector(t)).collect())
    }
    fn embed_query(&self, text: &str) -> sift::Result<Vec<f32>> {
        Ok(fake_vector(text))
    }
}

fn fake_vector(text: &str) -> Vec<f32> {
    use std::hash::{Hash, Hasher};
    let mut v = vec![0f32; 64];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        word.to_lowercase().hash(&mut h);
        v[(h.finish() % 64) as usize] += 1.0;
    }
    v[0] += 0.01;
    normalize(&mut v);
    v
}

/// Wraps an embedder and records every text it is asked to embed.
pub struct Counting {
    inner: Arc<dyn Embedder>,
    pub texts: Mutex<Vec<String>>,
    pub calls: AtomicUsize,
}

impl Counting {
    pub fn new(inner: Arc<dyn Embedder>) -> Arc<Counting> {
        Arc::new(Counting {
            inner,
            texts: Mutex::new(Vec::new()),
            calls: AtomicUsize::new(0),
        })
    }
    pub fn embedded(&self) -> usize {
        self.texts.lock().unwrap().len()
    }
    pub fn reset(&self) {
        self.texts.lock().unwrap().clear();
        self.calls.store(0, Ordering::SeqCst);
    }
}

impl Embedder for Counting {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }
    fn max_input_tokens(&self) -> usize {
        self.inner.max_input_tokens()
    }
    fn count_tokens(&self, text: &str) -> usize {
        self.inner.count_tokens(text)
    }
    fn embed_documents(&self, texts: &[String]) -> sift::Result<Vec<Vec<f32>>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.texts.lock().unwrap().extend(texts.iter().cloned());
        self.inner.embed_documents(texts)
    }
    fn embed_query(&self, text: &str) -> sift::Result<Vec<f32>> {
        self.inner.embed_query(text)
    }
}

/// The real local model (SIFT_MODEL_DIR must point at it; CI sets it).
pub fn local_model() -> Arc<dyn Embedder> {
    static MODEL: std::sync::OnceLock<Arc<dyn Embedder>> = std::sync::OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = std::env::var_os("SIFT_MODEL_DIR").expect(
                "SIFT_MODEL_DIR must point at the all-MiniLM-L6-v2 model (see README: `sift model fetch`)",
            );
            Arc::new(sift::embed::local::LocalEmbedder::load(Path::new(&dir)).expect("model loads"))
        })
        .clone()
}

/// A temp copy of tests/fixtures/notes (tests may edit it).
pub fn fixture_notes() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notes"),
        dir.path(),
    );
    dir
}

/// Copies the folder `from` into `to`, recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// An engine over `notes` with a fresh data folder.
pub struct TestEngine {
    pub engine: Engine,
    pub data: tempfile::TempDir,
    pub notes: PathBuf,
}

pub fn open(notes: &Path, embedder: Option<Arc<dyn Embedder>>) -> TestEngine {
    let data = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(data.path(), Settings::default(), embedder).unwrap();
    let notes = engine.add_folder(notes).unwrap();
    TestEngine {
        engine,
        data,
        notes,
    }
}

pub fn index(engine: &Engine) -> sift::IndexReport {
    engine.index(&|_| {}, &AtomicBool::new(false)).unwrap()
}

pub fn paths(results: &[sift::Hit]) -> Vec<String> {
    results.iter().map(|h| h.path.clone()).collect()
}

pub fn search(engine: &Engine, text: &str, mode: sift::Mode) -> Vec<String> {
    let q = sift::Query {
        mode,
        ..sift::Query::new(text)
    };
    paths(&engine.search(&q).unwrap().hits)
}

/// An OpenAI embedder talking to a loopback server at `base` with `key`.
pub fn loopback_openai(
    base: &str,
    model: &str,
    dims: Option<usize>,
    key: &str,
    opts: RemoteOptions,
) -> RemoteEmbedder {
    openai::embedder(model, dims, Some(base), ApiKey::new(key).unwrap(), opts).unwrap()
}

/// Remote options for tests that provoke failures: three requests at once,
/// one retry after 10-20 ms, `batch` texts a request.
pub fn quick_retries(batch: usize) -> RemoteOptions {
    RemoteOptions {
        concurrency: 3,
        max_retries: 1,
        backoff_base_ms: 10,
        backoff_max_ms: 20,
        timeout_ms: 10_000,
        batch_size: Some(batch),
        ..RemoteOptions::default()
    }
}

/// Per-kind, per-mode quality metrics: (first metric, second metric, queries)
/// for each (kind, mode), where mode is "keyword", "semantic" or "hybrid".
pub type ModeMetrics<'a> = std::collections::BTreeMap<(&'a str, &'a str), (f64, f64, usize)>;

/// Appends the table of `metrics` for `kinds` plus "all": one row per kind,
/// the first metric (`names.0`) then the second (`names.1`) for keyword,
/// semantic and hybrid.
pub fn write_metrics_table(
    table: &mut String,
    kinds: &[&str],
    names: (&str, &str),
    metrics: &ModeMetrics<'_>,
) {
    use std::fmt::Write as _;
    let (a, b) = names;
    writeln!(
        table,
        "{:<9} {:>3} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}",
        "kind",
        "n",
        format!("{a} kw"),
        format!("{a} sem"),
        format!("{a} hyb"),
        format!("{b} kw"),
        format!("{b} sem"),
        format!("{b} hyb")
    )
    .unwrap();
    for kind in kinds.iter().copied().chain(["all"]) {
        let g = |m: &str| metrics[&(kind, m)];
        writeln!(
            table,
            "{:<9} {:>3} | {:>8.3} {:>8.3} {:>8.3} | {:>8.3} {:>8.3} {:>8.3}",
            kind,
            g("hybrid").2,
            g("keyword").0,
            g("semantic").0,
            g("hybrid").0,
            g("keyword").1,
            g("semantic").1,
            g("hybrid").1,
        )
        .unwrap();
    }
}
