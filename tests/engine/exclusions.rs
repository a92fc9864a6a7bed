//! Exclusion patterns (issue 16, Settings > Exclusions): a live count per
//! pattern before saving, bad patterns refused with a reason, and saved
//! patterns taking notes out of the index (and back in when removed).

use std::fs;
use std::path::Path;
use std::sync::Arc;

use sift::{ErrorKind, Mode, Query};

use crate::common::{self, FakeEmbedder};

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn patterns_are_counted_before_saving_and_applied_after() {
    let tmp = tempfile::tempdir().unwrap();
    let notes = tmp.path();
    write(
        notes,
        "Templates/Daily.md",
        "# {{date}}\n\n## Tasks\nsourdough starter\n",
    );
    write(
        notes,
        "Templates/Meeting.md",
        "# Meeting\n\nsourdough agenda\n",
    );
    write(
        notes,
        "Drawings/plan.excalidraw.md",
        "# Plan\n\nsourdough drawing\n",
    );
    write(
        notes,
        "Daily/2024-03-02.md",
        "# Saturday\n\nFed the sourdough starter.\n",
    );
    write(
        notes,
        "Projects/Templates.md",
        "# About templates\n\nsourdough templates\n",
    );
    let t = common::open(notes, Some(Arc::new(FakeEmbedder)));
    common::index(&t.engine);
    let found = || {
        let mut p = common::paths(
            &t.engine
                .search(&Query {
                    mode: Mode::Keyword,
                    ..Query::new("sourdough")
                })
                .unwrap()
                .hits,
        );
        p.sort();
        p
    };
    assert_eq!(found().len(), 5);

    let exclude = strings(&["Templates/", "*.excalidraw.md", "Daily/2023-*"]);
    let include = strings(&["Templates/Meeting.md"]);
    let preview = t.engine.preview_exclusions(&exclude, &include);
    let counts: Vec<(&str, usize)> = preview
        .exclude
        .iter()
        .map(|c| (c.pattern.as_str(), c.files))
        .collect();
    assert_eq!(
        counts,
        [
            ("Templates/", 2),
            ("*.excalidraw.md", 1),
            ("Daily/2023-*", 0)
        ]
    );
    assert_eq!(preview.include[0].files, 1);
    assert_eq!((preview.notes_total, preview.notes_excluded), (5, 2));
    // A preview changes nothing.
    assert_eq!(found().len(), 5);

    // A bad pattern is refused with its reason, and nothing is saved.
    let bad = t.engine.update_settings(|s| {
        s.scan.exclude = strings(&["Templates/", "Daily/[2023"]);
        Ok(())
    });
    let err = bad.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("Daily/[2023"), "{}", err.message());
    assert!(t.engine.settings().scan.exclude.is_empty());
    let preview = t.engine.preview_exclusions(&strings(&["Daily/[2023"]), &[]);
    assert!(preview.exclude[0].error.is_some());

    t.engine
        .update_settings(|s| {
            s.scan.exclude = exclude.clone();
            s.scan.include = include.clone();
            Ok(())
        })
        .unwrap();
    common::index(&t.engine);
    assert_eq!(
        found(),
        [
            "Daily/2024-03-02.md",
            "Projects/Templates.md",
            "Templates/Meeting.md"
        ]
    );
    // A new file under an excluded folder, as the watcher reports it: left out.
    write(
        notes,
        "Templates/Weekly.md",
        "# Weekly\n\nsourdough weekly\n",
    );
    t.engine
        .index_changed(
            &[t.notes.join("Templates/Weekly.md")],
            &|_| {},
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap();
    assert_eq!(found().len(), 3);

    // Patterns removed: the notes come back.
    t.engine
        .update_settings(|s| {
            s.scan.exclude.clear();
            Ok(())
        })
        .unwrap();
    common::index(&t.engine);
    assert_eq!(found().len(), 6);
}
