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
/// With `real`, real MiniLM vectors instead (see [`RealVectors`]).
#[derive(Default)]
pub struct RandomVectors {
    pub nanos: AtomicU64,
    pub real: Option<RealVectors>,
}

/// Real all-MiniLM-L6-v2 vectors from a Sift database's embedding cache: the
/// cached vector of a text embedded before (same chunker, same text: the same
/// embed hash), else a mix of 2 or 3 cached ones (weights in [0.5, 1], noise
/// of 0.01 a dimension) seeded by the text, like benches/vectors_scale.rs. Real
/// vectors are clustered; pseudo-random unit vectors are HNSW's hardest case.
pub struct RealVectors {
    by_hash: std::collections::HashMap<[u8; 32], Vec<f32>>,
    pool: Vec<Vec<f32>>,
    pub hits: AtomicU64,
    pub mixed: AtomicU64,
}

impl RealVectors {
    /// Every `local/all-MiniLM-L6-v2` vector cached in the database `db`.
    #[allow(dead_code)] // not every bench that shares this file uses it
    pub fn from_db(db: &Path) -> RealVectors {
        let conn =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .expect("database with real vectors");
        let mut stmt = conn
            .prepare("SELECT hash, vector FROM embed_cache WHERE embedder = ?1 ORDER BY hash")
            .unwrap();
        let rows = stmt
            .query_map(["local/all-MiniLM-L6-v2"], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .unwrap();
        let mut by_hash = std::collections::HashMap::new();
        let mut pool = Vec::new();
        for row in rows {
            let (hash, bytes) = row.unwrap();
            let v = sift::store::decode_cached(&bytes);
            assert_eq!(v.len(), 384, "MiniLM vectors have 384 dimensions");
            pool.push(v.clone());
            if let Ok(hash) = <[u8; 32]>::try_from(hash.as_slice()) {
                by_hash.insert(hash, v);
            }
        }
        assert!(
            pool.len() >= 100,
            "too few cached vectors in {}",
            db.display()
        );
        RealVectors {
            by_hash,
            pool,
            hits: AtomicU64::new(0),
            mixed: AtomicU64::new(0),
        }
    }

    fn vector(&self, text: &str) -> Vec<f32> {
        use sha2::{Digest, Sha256};
        let hash: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        if let Some(v) = self.by_hash.get(&hash) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return v.clone();
        }
        self.mixed.fetch_add(1, Ordering::Relaxed);
        let mut rng = StdRng::from_seed(hash);
        let mut v = vec![0f32; 384];
        for _ in 0..rng.random_range(2..=3) {
            let src = &self.pool[rng.random_range(0..self.pool.len())];
            let w: f32 = rng.random_range(0.5..1.0);
            v.iter_mut().zip(src).for_each(|(a, x)| *a += w * x);
        }
        for a in v.iter_mut() {
            // Box-Muller: a standard normal sample.
            let u1: f32 = rng.random::<f32>().max(f32::MIN_POSITIVE);
            let u2: f32 = rng.random();
            *a += 0.01 * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
        }
        normalize(&mut v);
        v
    }
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
        let out = texts
            .iter()
            .map(|t| match &self.real {
                Some(real) => real.vector(t),
                None => random_vector(t),
            })
            .collect();
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
