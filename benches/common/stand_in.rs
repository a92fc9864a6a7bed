//! Shared by the benches that exclude embedding (ingest, encryption_cost):
//! their command-line flags, a stand-in embedder and SciFact as notes.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sift::embed::{normalize, Embedder};

/// The value after the flag `name`, if given.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// A pseudo-random unit vector per text, seeded by the text: embedding at no cost.
#[derive(Default)]
pub struct RandomVectors {
    pub nanos: AtomicU64,
}

impl Embedder for RandomVectors {
    fn id(&self) -> &str {
        "bench/random"
    }
    fn dimensions(&self) -> usize {
        384
    }
    fn max_input_tokens(&self) -> usize {
        254
    }
    fn count_tokens(&self, text: &str) -> usize {
        sift::chunk::count_word_pieces(text)
    }
    fn embed_documents(&self, texts: &[String]) -> sift::Result<Vec<Vec<f32>>> {
        let started = Instant::now();
        let out = texts.iter().map(|t| random_vector(t)).collect();
        self.nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(out)
    }
    fn embed_query(&self, text: &str) -> sift::Result<Vec<f32>> {
        Ok(random_vector(text))
    }
}

fn random_vector(text: &str) -> Vec<f32> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    let mut rng = StdRng::seed_from_u64(h.finish());
    let mut v: Vec<f32> = (0..384).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    normalize(&mut v);
    v
}

/// Each abstract as a note (`# title` + text), as the SciFact bench writes them.
pub fn write_scifact(corpus: &Path, notes: &Path) -> u64 {
    fs::create_dir_all(notes).unwrap();
    let mut bytes = 0;
    for line in BufReader::new(fs::File::open(corpus).expect("corpus.jsonl")).lines() {
        let doc: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let text = format!(
            "# {}\n\n{}\n",
            doc["title"].as_str().unwrap_or(""),
            doc["text"].as_str().unwrap_or("")
        );
        bytes += text.len() as u64;
        write_if_changed(
            &notes.join(format!("{}.md", doc["_id"].as_str().unwrap())),
            &text,
        );
    }
    bytes
}

pub fn write_if_changed(path: &Path, text: &str) {
    if fs::read_to_string(path).ok().as_deref() != Some(text) {
        fs::write(path, text).unwrap();
    }
}
