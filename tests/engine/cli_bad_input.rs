//! Bad input through the real `sift` binary (issue 10, "found by a bad-input
//! run of the release CLI"): each case once aborted, panicked with a backtrace
//! or said something unhelpful.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A data folder and a notes folder indexed by the binary with its test-only
/// fake embedder (src/cli/test_embedder.rs).
struct Cli {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    notes: PathBuf,
    log: PathBuf,
}

impl Cli {
    fn new(notes: usize) -> Cli {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let notes_dir = tmp.path().join("notes");
        fs::create_dir_all(&notes_dir).unwrap();
        for i in 0..notes {
            fs::write(
                notes_dir.join(format!("n{i}.md")),
                format!("# Note {i}\n\nalpha beta gamma, note number {i} about gardens\n"),
            )
            .unwrap();
        }
        let cli = Cli {
            log: tmp.path().join("embed.log"),
            _tmp: tmp,
            data,
            notes: notes_dir,
        };
        if notes > 0 {
            let out = cli.run(&["index", cli.notes.to_str().unwrap()]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
        cli
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sift"));
        cmd.args(args)
            .env("SIFT_DATA_DIR", &self.data)
            .env("SIFT_TEST_EMBEDDER", format!("fake:{}", self.log.display()))
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_no_panic(out: &Output) {
    let err = stderr(out);
    assert!(
        !err.contains("panicked") && !err.contains("internal error") && !err.contains("backtrace"),
        "{err}"
    );
}

/// `--limit 4294967296` aborted allocating 137 GB; `related --limit
/// u64::MAX` panicked with a capacity overflow. Both are lowered, and said so.
#[test]
fn huge_limits_are_lowered_and_the_user_told() {
    let cli = Cli::new(12);
    for mode in ["keyword", "hybrid", "semantic"] {
        let out = cli.run(&[
            "search",
            "alpha",
            "--mode",
            mode,
            "--limit",
            "4294967296",
            "--json",
        ]);
        assert!(out.status.success(), "{mode}: {}", stderr(&out));
        assert_no_panic(&out);
        assert!(stderr(&out).contains("at most 1000"), "{}", stderr(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let hits = doc["hits"].as_array().unwrap().len();
        // Meaning-only hits must come close to the best one (a floor).
        assert!((1..=12).contains(&hits), "{mode}: {hits}");
        if mode == "keyword" {
            assert_eq!(hits, 12);
        }
    }
    let note = cli.notes.join("n0.md");
    let out = cli.run(&[
        "related",
        note.to_str().unwrap(),
        "--limit",
        &u64::MAX.to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_no_panic(&out);
    assert!(stderr(&out).contains("at most 1000"), "{}", stderr(&out));
}

/// `--keyword-weight` took NaN, inf, 5 and -1 (NaN gave `"score": null`).
#[test]
fn keyword_weights_outside_0_to_1_are_refused() {
    let cli = Cli::new(3);
    for bad in ["NaN", "inf", "5", "-1", "1.5", "half"] {
        let out = cli.run(&["search", "alpha", &format!("--keyword-weight={bad}")]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("not a number from 0 to 1"),
            "{}",
            stderr(&out)
        );
    }
    let out = cli.run(&["search", "alpha", "--keyword-weight", "0.25", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["hits"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["score"].is_f64()));
}

/// `sift search ... | head -1` panicked on the broken pipe. The binary now
/// stops quietly and successfully, as grep and ripgrep do.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let cli = Cli::new(60);
    for args in [
        &["search", "alpha", "--limit", "60"][..],
        &["search", "alpha", "--limit", "60", "--json"],
        &["status", "--files"],
    ] {
        let mut child = cli
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the first line: every write fails.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_no_panic(&out);
        assert!(
            out.status.success(),
            "{args:?}: {:?} {}",
            out.status,
            stderr(&out)
        );
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}

/// Errors name the path and say what to do.
#[test]
fn errors_name_the_path_and_what_to_do() {
    let cli = Cli::new(3);
    fs::write(cli.notes.join("empty.md"), "").unwrap();
    let out = cli.run(&["index"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let missing = cli.notes.join("missing.md");
    let out = cli.run(&["related", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("{} does not exist", missing.display())),
        "{}",
        stderr(&out)
    );

    let empty = cli.notes.join("empty.md");
    let out = cli.run(&["related", empty.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "an empty note printed nothing and succeeded"
    );
    assert!(
        stderr(&out).contains("has no text to compare"),
        "{}",
        stderr(&out)
    );

    let file = cli.notes.join("n0.md");
    let out = cli.run(&["--data-dir", file.to_str().unwrap(), "status"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("the data folder {}", file.display()))
            && stderr(&out).contains("is a file, not a folder")
            && stderr(&out).contains("--data-dir"),
        "{}",
        stderr(&out)
    );
}

/// A damaged index: the error names the database and the way out, and the
/// way out (`sift index --rebuild`) works.
#[test]
fn a_damaged_index_is_named_and_rebuild_repairs_it() {
    let cli = Cli::new(5);
    let db = cli.data.join("sift.db");
    let _ = fs::remove_file(cli.data.join("sift.db-wal"));
    let _ = fs::remove_file(cli.data.join("sift.db-shm"));
    fs::write(&db, vec![0x5a; 8192]).unwrap();

    let out = cli.run(&["search", "alpha"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&db.display().to_string()), "{err}");
    assert!(
        err.contains("damaged") && err.contains("sift index --rebuild"),
        "{err}"
    );

    let out = cli.run(&["index", "--rebuild"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the old index is now in"),
        "{}",
        stderr(&out)
    );
    let out = cli.run(&["search", "alpha", "--mode", "keyword", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["hits"].as_array().unwrap().len(), 5);
}

/// A read-only data folder (a read-only bind mount, made in a private mount
/// namespace with `unshare`; root ignores permission bits). Skipped, saying
/// so, where mounts are not allowed.
#[test]
fn a_read_only_data_folder_is_named() {
    let cli = Cli::new(3);
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    let ro = tmp.path().join("ro");
    fs::create_dir_all(&empty).unwrap();
    fs::create_dir_all(&ro).unwrap();
    let sift = env!("CARGO_BIN_EXE_sift");
    // An empty read-only data folder, then the indexed one read-only: search
    // still works there, indexing says which file cannot be written.
    let script = format!(
        "mount -o bind,ro {empty} {ro} || exit 77
         {sift} --data-dir {ro} status; echo \"exit=$?\"
         umount {ro}; mount -o bind,ro {data} {ro} || exit 77
         {sift} --data-dir {ro} search alpha --mode keyword >/dev/null; echo \"exit=$?\"
         {sift} --data-dir {ro} index {notes}; echo \"exit=$?\"",
        empty = sh_quote(&empty),
        ro = sh_quote(&ro),
        data = sh_quote(&cli.data),
        notes = sh_quote(&cli.notes),
        sift = sh_quote(Path::new(sift)),
    );
    fs::write(cli.notes.join("new.md"), "# New\n\nneeds writing").unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "sh", "-c", &script])
        .env("SIFT_TEST_EMBEDDER", format!("fake:{}", cli.log.display()))
        .output();
    let out = match out {
        Ok(out) if out.status.code() != Some(77) && !stderr(&out).contains("unshare:") => out,
        _ => {
            eprintln!("skipped: no private mount namespace here (unshare --mount)");
            return;
        }
    };
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    let exits: Vec<&str> = text.lines().filter(|l| l.starts_with("exit=")).collect();
    assert_eq!(exits, ["exit=1", "exit=0", "exit=1"], "{text}");
    assert!(
        text.contains(&format!("the data folder {} is not writable", ro.display())),
        "{text}"
    );
    // Indexing first records the folder in the settings (under the settings
    // lock) or writes the database: either way the file is named.
    assert!(
        text.contains(&format!(
            "{}: the index database cannot be written",
            ro.join("sift.db").display()
        )) || text.contains(&format!(
            "{}: cannot be written (read-only file system)",
            ro.join("settings.lock").display()
        )),
        "{text}"
    );
}

fn sh_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}
