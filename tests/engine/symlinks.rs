//! Symbolic links: followed inside the notes folder; links that lead out of it
//! are not followed by default (a setting allows them) and links that loop back
//! never are, each listed as skipped with the reason. `sift watch` does not
//! follow a loop created while it runs.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sift::{Engine, Mode, Settings};

use crate::common::{self, Counting, FakeEmbedder};
use crate::multiprocess::sift;

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn states(engine: &Engine) -> BTreeMap<String, (String, String)> {
    engine
        .file_states(false)
        .unwrap()
        .into_iter()
        .map(|f| (f.path, (f.state, f.reason.unwrap_or_default())))
        .collect()
}

#[test]
fn links_out_of_the_folder_are_skipped_unless_allowed_loops_always() {
    let tmp = tempfile::tempdir().unwrap();
    let notes = tmp.path().join("notes");
    let outside = tmp.path().join("private");
    write(
        &notes.join("inside.md"),
        "# Inside\n\nA note about tulips.\n",
    );
    write(
        &notes.join("real/deep.md"),
        "# Deep\n\nA note about orchids.\n",
    );
    write(
        &outside.join("secret.md"),
        "# Secret\n\nbank password hunter2 zebra\n",
    );
    symlink(&outside, notes.join("out")).unwrap();
    symlink(outside.join("secret.md"), notes.join("secret-link.md")).unwrap();
    symlink(&notes, notes.join("real/loop")).unwrap();
    symlink(notes.join("real"), notes.join("alias")).unwrap();

    let counter = Counting::new(Arc::new(FakeEmbedder));
    let t = common::open(&notes, Some(counter.clone()));
    let report = common::index(&t.engine);
    let st = states(&t.engine);
    assert_eq!(st["inside.md"].0, "indexed");
    assert_eq!(st["real/deep.md"].0, "indexed");
    assert_eq!(
        st["alias/deep.md"].0, "indexed",
        "links inside the folder are followed"
    );
    for link in ["out", "secret-link.md"] {
        assert_eq!(st[link].0, "skipped", "{link}");
        assert!(
            st[link].1.contains("outside the notes folder"),
            "{link}: {}",
            st[link].1
        );
    }
    assert_eq!(st["real/loop"].0, "skipped");
    assert!(st["real/loop"].1.contains("loop"), "{}", st["real/loop"].1);
    assert!(
        !st.keys()
            .any(|p| p.contains("secret.md") || p.starts_with("real/loop/")),
        "{st:?}"
    );
    assert!(report.skipped.iter().any(|(p, _)| p == "out"));
    assert!(
        !counter
            .texts
            .lock()
            .unwrap()
            .iter()
            .any(|t| t.contains("hunter2")),
        "nothing outside the folder was read or embedded"
    );
    assert!(common::search(&t.engine, "hunter2", Mode::Keyword).is_empty());

    // Allowed by the setting: the links out are followed; the loop still not.
    t.engine
        .update_settings(|s| {
            s.scan.follow_outside_links = true;
            Ok(())
        })
        .unwrap();
    common::index(&t.engine);
    let st = states(&t.engine);
    assert_eq!(st["out/secret.md"].0, "indexed");
    assert_eq!(st["secret-link.md"].0, "indexed");
    assert_eq!(st["real/loop"].0, "skipped");
    assert_eq!(
        common::search(&t.engine, "hunter2", Mode::Keyword),
        vec!["out/secret.md", "secret-link.md"]
    );
    // And off again: the notes from outside leave the index.
    t.engine
        .update_settings(|s| {
            s.scan.follow_outside_links = false;
            Ok(())
        })
        .unwrap();
    common::index(&t.engine);
    assert!(common::search(&t.engine, "hunter2", Mode::Keyword).is_empty());
}

#[test]
fn sift_watch_does_not_follow_a_link_loop_created_while_it_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let notes = tmp.path().join("notes");
    let data = tmp.path().join("data");
    let log = tmp.path().join("embedded.log");
    write(&notes.join("a.md"), "# A\n\nA note about walnuts.\n");
    write(&notes.join("d/b.md"), "# B\n\nA note about chestnuts.\n");
    let mut watch = sift(
        &data,
        &log,
        0,
        &["watch", &notes.to_string_lossy(), "--debounce-ms", "50"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let wait_for = |what: &str, f: &dyn Fn(&Engine) -> bool| {
        let started = Instant::now();
        loop {
            if let Ok(engine) = Engine::open_with(&data, Settings::load(&data).unwrap(), None) {
                if f(&engine) {
                    return engine;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "waited for {what}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("the first notes", &|e| {
        common::search(e, "chestnuts", Mode::Keyword).len() == 1
    });

    // Loops appear while it watches: back to the folder, back to a parent.
    symlink(&notes, notes.join("loop")).unwrap();
    symlink(notes.join("d"), notes.join("d/again")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    write(&notes.join("fresh.md"), "# Fresh\n\nA note about pecans.\n");
    let engine = wait_for("the fresh note", &|e| {
        common::search(e, "pecans", Mode::Keyword) == vec!["fresh.md"]
    });
    std::thread::sleep(Duration::from_millis(300));
    let st = states(&engine);
    assert!(
        !st.keys()
            .any(|p| p.starts_with("loop/") || p.starts_with("d/again/")),
        "no note through a loop: {st:?}"
    );
    assert_eq!(
        common::search(&engine, "walnuts", Mode::Keyword),
        vec!["a.md"],
        "indexed once"
    );
    assert_eq!(
        common::search(&engine, "chestnuts", Mode::Keyword),
        vec!["d/b.md"]
    );
    assert!(
        watch.try_wait().unwrap().is_none(),
        "sift watch is still running"
    );
    Command::new("kill")
        .args(["-TERM", &watch.id().to_string()])
        .status()
        .unwrap();
    let out = watch.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("skipped  loop (symbolic link loop"),
        "{stdout}"
    );
}
