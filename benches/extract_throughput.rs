//! Document conversion throughput and robustness: converts every PDF, DOCX,
//! ODT and HTML file under a folder (default tests/fixtures/docs; give another
//! as the first argument, e.g. a copy of pdf.js's test/pdfs with 900+ odd and
//! broken PDFs) with Sift's converters and their time budget, and prints pages
//! per second, outcomes by reason, and the slowest files. Figures, not pass/fail.
//!
//! `cargo bench --bench extract_throughput -- /path/to/pdfs`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sift::extract::{extract, DocKind};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/docs"));
    let budget = Duration::from_secs(10);
    let mut all = Vec::new();
    files(&dir, &mut all);
    all.sort();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut timings = Vec::new();
    let (mut pages, mut bytes_total, mut ok_time) = (0usize, 0u64, Duration::ZERO);
    let started = Instant::now();
    for path in &all {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let Some(kind) = DocKind::of_ext(&ext) else {
            continue;
        };
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let size = bytes.len() as u64;
        let t = Instant::now();
        let result = extract(kind, bytes, budget);
        let took = t.elapsed();
        timings.push((
            took,
            path.file_name().unwrap().to_string_lossy().into_owned(),
        ));
        match result {
            Ok(doc) => {
                pages += doc.page_starts.len().max(1);
                bytes_total += size;
                ok_time += took;
                *outcomes.entry(format!("{ext}: converted")).or_default() += 1;
            }
            Err(reason) => {
                let short: String = reason.split(['(', ':']).next().unwrap_or("").trim().into();
                *outcomes
                    .entry(format!("{ext}: skipped, {short}"))
                    .or_default() += 1;
            }
        }
    }
    println!("folder: {}", dir.display());
    println!(
        "{} files in {:.1} s; converted {} pages ({:.1} MB) in {:.2} s: {:.1} pages/s",
        timings.len(),
        started.elapsed().as_secs_f64(),
        pages,
        bytes_total as f64 / 1e6,
        ok_time.as_secs_f64(),
        pages as f64 / ok_time.as_secs_f64().max(1e-9)
    );
    for (outcome, n) in &outcomes {
        println!("  {n:5}  {outcome}");
    }
    timings.sort_by_key(|t| std::cmp::Reverse(t.0));
    println!("slowest:");
    for (took, name) in timings.iter().take(5) {
        println!("  {:8.1} ms  {name}", took.as_secs_f64() * 1000.0);
    }
}
