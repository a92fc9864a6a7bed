//! Vector files and figures shared by the vector benches (vectors_vs_peers,
//! vectors_scale): Gaussian noise, unit vectors, raw f32 files, percentiles
//! and folder sizes.

use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use rand::rngs::StdRng;
use rand::Rng;

/// A standard normal sample (Box-Muller).
pub fn gauss(rng: &mut StdRng) -> f32 {
    let u1: f32 = rng.random::<f32>().max(f32::MIN_POSITIVE);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

pub fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Writes `data` as little-endian f32.
pub fn write_f32(path: &Path, data: &[f32]) {
    let mut w = BufWriter::new(fs::File::create(path).unwrap());
    for x in data {
        w.write_all(&x.to_le_bytes()).unwrap();
    }
    w.flush().unwrap();
}

/// Reads up to `limit` f32s.
pub fn read_f32(path: &Path, limit: usize) -> Vec<f32> {
    let mut bytes = Vec::new();
    fs::File::open(path)
        .unwrap()
        .take((limit as u64).saturating_mul(4))
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The `p`th percentile of ascending `sorted`.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Bytes of the files directly in `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
