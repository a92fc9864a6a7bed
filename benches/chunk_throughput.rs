//! Reading notes without the database: parse and chunk (word-piece sizing and
//! keyword terms included) every Markdown note of a folder, on one thread,
//! the notes already in memory. Stage 1 of a first index is this plus SQLite;
//! figures, not pass/fail.
//!
//! ```text
//! cargo bench --bench chunk_throughput -- DIR [--rounds R]
//! ```
//! Prints MB/s and chunks/s per round (CPU time of this thread's process), so
//! two builds run alternately compare on the same notes.

use std::path::Path;
use std::time::Instant;

use sift::chunk::chunk_note;
use sift::note::parse_note;

#[path = "common/cpu_time.rs"]
mod cpu_time;
use cpu_time::cpu_seconds;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .filter(|a| !a.starts_with("--"))
        .expect("usage: chunk_throughput DIR [--rounds R]");
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map_or(3, |r| r.parse().expect("--rounds"));
    let mut notes = Vec::new();
    collect(Path::new(&dir), &mut notes);
    let mb = notes.iter().map(String::len).sum::<usize>() as f64 / 1e6;
    println!("{} notes, {mb:.1} MB from {dir}", notes.len());
    for round in 1..=rounds {
        let (t, cpu) = (Instant::now(), cpu_seconds());
        let chunks: usize = notes
            .iter()
            .map(|text| chunk_note(text, &parse_note(text, true), true).len())
            .sum();
        let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        println!(
            "round {round}: {chunks} chunks, {wall:.2} s, {cpu:.2} CPU-s = {:.2} MB per CPU-second, {:.0} chunks per CPU-second",
            mb / cpu,
            chunks as f64 / cpu
        );
    }
}

fn collect(dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            if let Ok(text) = std::fs::read_to_string(&path) {
                out.push(text);
            }
        }
    }
}
