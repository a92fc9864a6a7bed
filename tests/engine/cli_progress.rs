//! `sift index` with stderr not a terminal (a log file, a pipe): progress
//! comes as plain lines, one when each phase starts and then one every ten
//! seconds, not one per batch and not nothing.

use std::fs;
use std::process::{Command, Stdio};

#[test]
fn progress_without_a_terminal_is_a_few_plain_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let notes = tmp.path().join("notes");
    fs::create_dir_all(&notes).unwrap();
    // 300 notes: five write batches and three embedding batches.
    for i in 0..300 {
        fs::write(
            notes.join(format!("n{i}.md")),
            format!("# Note {i}\n\nseeds and soil, note {i} of the garden log\n"),
        )
        .unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_sift"))
        .args(["index", notes.to_str().unwrap()])
        .env("SIFT_DATA_DIR", tmp.path().join("data"))
        .env(
            "SIFT_TEST_EMBEDDER",
            format!("fake:{}", tmp.path().join("embed.log").display()),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let starting = |label: &str| lines.iter().filter(|l| l.starts_with(label)).count();
    assert_eq!(starting("reading notes "), 1, "{stderr}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("reading notes ") && l.ends_with("/300")),
        "{stderr}"
    );
    assert_eq!(starting("embedding chunks "), 1, "{stderr}");
    assert!(lines.len() <= 6, "one line a phase: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("indexed 300 notes"), "{stdout}");
}
