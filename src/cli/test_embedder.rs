//! TEST ONLY: a deterministic stand-in embedder for tests that run the real
//! binary (the crash tests), chosen with the hidden environment variable
//! `SIFT_TEST_EMBEDDER=fake:<log file>`. Never use it for real notes: its vectors
//! are hashed bags of words, not meaning.
//!
//! Each `embed_documents` call appends one line per text to the log, written
//! when the vectors are obtained: `<pid> <call number> <sha256 of the text>`, so
//! a test can count how often each text was embedded across killed and
//! restarted processes. `SIFT_TEST_EMBED_DELAY_MS` makes every call take that
//! long first, like a model or a network would.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sift::embed::{normalize, Embedder};

/// Embedder id of the fake (vectors are kept per id, apart from real ones).
pub const FAKE_ID: &str = "test/fake-bag-of-words";
/// Its vector length.
pub const FAKE_DIMENSIONS: usize = 64;

struct FakeEmbedder {
    log: PathBuf,
    delay: Duration,
    calls: AtomicU64,
}

/// The fake embedder if `SIFT_TEST_EMBEDDER` asks for it.
pub fn from_env() -> Option<Arc<dyn Embedder>> {
    let spec = std::env::var("SIFT_TEST_EMBEDDER").ok()?;
    let log = spec.strip_prefix("fake:")?;
    let delay = std::env::var("SIFT_TEST_EMBED_DELAY_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(Duration::ZERO, Duration::from_millis);
    Some(Arc::new(FakeEmbedder {
        log: PathBuf::from(log),
        delay,
        calls: AtomicU64::new(0),
    }))
}

impl Embedder for FakeEmbedder {
    fn id(&self) -> &str {
        FAKE_ID
    }

    fn dimensions(&self) -> usize {
        FAKE_DIMENSIONS
    }

    fn max_input_tokens(&self) -> usize {
        254
    }

    fn count_tokens(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn embed_documents(&self, texts: &[String]) -> sift::Result<Vec<Vec<f32>>> {
        std::thread::sleep(self.delay);
        let vectors = texts.iter().map(|t| fake_vector(t)).collect();
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let mut lines = String::new();
        for text in texts {
            let hash = hex::encode(Sha256::digest(text.as_bytes()));
            lines.push_str(&format!("{pid} {call} {hash}\n"));
        }
        // One append per call: lines of a killed process are whole.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .and_then(|mut f| f.write_all(lines.as_bytes()))
            .map_err(|e| sift::Error::io(&self.log, e))?;
        Ok(vectors)
    }

    fn embed_query(&self, text: &str) -> sift::Result<Vec<f32>> {
        Ok(fake_vector(text))
    }
}

/// Words hashed into buckets: texts sharing words are close.
fn fake_vector(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; FAKE_DIMENSIONS];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let digest = Sha256::digest(word.to_lowercase().as_bytes());
        v[digest[0] as usize % FAKE_DIMENSIONS] += 1.0;
    }
    v[0] += 0.01;
    normalize(&mut v);
    v
}
