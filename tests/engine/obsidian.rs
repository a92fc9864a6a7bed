//! Obsidian vaults (issue 16): backlinks from wikilinks, embeds and Markdown
//! links stored at index time and kept up to date as notes change; aliases on
//! hits; "open" as an obsidian:// URL when the setting asks for it; the date
//! filter on a note's front-matter date.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use sift::search::DateSource;
use sift::{Mode, OpenTarget, Query};

use crate::common::{self, FakeEmbedder};

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A small vault: `Garden.md` is linked by name, by path, by embed, by a
/// Markdown link with an encoded space, and not by a URL or a heading link.
fn vault() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let v = tmp.path().join("My Vault");
    fs::create_dir_all(v.join(".obsidian")).unwrap();
    write(
        &v,
        "Projects/Garden.md",
        "---\naliases: [Veg patch, Allotment]\ndate: 2023-05-01\n---\n# Garden\n\nCompost the raised beds before spring.\n",
    );
    write(
        &v,
        "Daily/2024-03-02.md",
        "# Saturday\n\nWorked on the [[Garden]] today, then read about sourdough.\n",
    );
    write(
        &v,
        "Daily/2024-03-03.md",
        "# Sunday\n\nMore beds: see [[Projects/Garden#Soil|the soil part]] and ![[Garden]].\n",
    );
    write(
        &v,
        "Notes/Plans.md",
        "# Plans\n\nThe [garden plan](../Projects/Garden.md) needs seeds.\n",
    );
    write(
        &v,
        "Notes/Web.md",
        "# Web\n\nA site: [garden](https://example.com/Garden.md) and [[#Web|self]].\n",
    );
    write(&v, "Notes/Other Garden.md", "# Other\n\nNot linked.\n");
    tmp
}

fn paths(hits: &[sift::Hit]) -> Vec<String> {
    common::paths(hits)
}

#[test]
fn backlinks_follow_wikilinks_embeds_and_markdown_links() {
    let tmp = vault();
    let v = tmp.path().join("My Vault");
    let t = common::open(&v, Some(Arc::new(FakeEmbedder)));
    common::index(&t.engine);
    let garden = t.notes.join("Projects/Garden.md");

    let links = t.engine.backlinks(&garden, 10).unwrap();
    let mut found = paths(&links);
    // Most links first: the 3rd of March links twice.
    assert_eq!(found[0], "Daily/2024-03-03.md", "{found:?}");
    found.sort();
    assert_eq!(
        found,
        [
            "Daily/2024-03-02.md",
            "Daily/2024-03-03.md",
            "Notes/Plans.md"
        ]
    );
    // Shown at the passage holding the link.
    let plans = links.iter().find(|h| h.path == "Notes/Plans.md").unwrap();
    let snippet: String = plans.snippet.iter().map(|p| p.text.as_str()).collect();
    assert!(snippet.contains("garden plan"), "{snippet}");

    // A note nobody links to; a note linked only by a URL elsewhere.
    assert!(t
        .engine
        .backlinks(&t.notes.join("Notes/Other Garden.md"), 10)
        .unwrap()
        .is_empty());

    // Edits and deletions keep backlinks true.
    fs::write(
        t.notes.join("Daily/2024-03-02.md"),
        "# Saturday\n\nNo links now.\n",
    )
    .unwrap();
    fs::remove_file(t.notes.join("Notes/Plans.md")).unwrap();
    common::index(&t.engine);
    assert_eq!(
        paths(&t.engine.backlinks(&garden, 10).unwrap()),
        ["Daily/2024-03-03.md"]
    );

    // A note outside the folders is refused, not answered.
    let outside = tmp.path().join("outside.md");
    fs::write(&outside, "x").unwrap();
    let err = t.engine.backlinks(&outside, 10).unwrap_err();
    assert_eq!(err.kind(), sift::ErrorKind::NotIndexed);
}

#[test]
fn hits_carry_aliases_and_open_goes_to_obsidian_when_chosen() {
    let tmp = vault();
    let v = tmp.path().join("My Vault");
    let t = common::open(&v, Some(Arc::new(FakeEmbedder)));
    common::index(&t.engine);
    // Aliases are searchable (keyword index) and shown with the hit.
    let hits = t
        .engine
        .search(&Query {
            mode: Mode::Keyword,
            ..Query::new("allotment")
        })
        .unwrap()
        .hits;
    assert_eq!(paths(&hits), ["Projects/Garden.md"]);
    assert_eq!(hits[0].aliases, ["Veg patch", "Allotment"]);

    let status = t.engine.status().unwrap();
    assert_eq!(status.obsidian_vaults, [t.notes.to_string_lossy()]);

    let garden = t.notes.join("Projects/Garden.md");
    // Off by default: the file.
    assert_eq!(
        t.engine.open_target(&garden).unwrap(),
        OpenTarget::File(fs::canonicalize(&garden).unwrap())
    );
    t.engine
        .update_settings(|s| {
            s.open_in_obsidian = true;
            Ok(())
        })
        .unwrap();
    assert_eq!(
        t.engine.open_target(&garden).unwrap(),
        OpenTarget::Url("obsidian://open?vault=My%20Vault&file=Projects%2FGarden.md".into())
    );
    // Outside the indexed folders: refused either way.
    let outside = tmp.path().join("outside.md");
    fs::write(&outside, "x").unwrap();
    assert_eq!(
        t.engine.open_target(&outside).unwrap_err().kind(),
        sift::ErrorKind::NotIndexed
    );
}

#[test]
fn date_filter_uses_front_matter_dates_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let notes = tmp.path().join("notes");
    write(
        &notes,
        "old-meeting.md",
        "---\ndate: 2021-06-15\n---\n# Meeting\n\nBudget review with the board.\n",
    );
    write(
        &notes,
        "created.md",
        "---\ncreated: 2022-01-10T09:30\n---\n# Kickoff\n\nBudget kickoff notes.\n",
    );
    write(&notes, "undated.md", "# Undated\n\nBudget ideas.\n");
    let t = common::open(&notes, Some(Arc::new(FakeEmbedder)));
    common::index(&t.engine);
    let search = |after: &str, before: &str, date: DateSource| {
        let results = t
            .engine
            .search(&Query {
                mode: Mode::Keyword,
                after: Some(after.into()),
                before: Some(before.into()),
                date,
                ..Query::new("budget")
            })
            .unwrap();
        let mut hits: Vec<(String, DateSource)> = results
            .hits
            .into_iter()
            .map(|h| (h.path, h.date_source))
            .collect();
        hits.sort_by(|a, b| a.0.cmp(&b.0));
        hits
    };
    // The files were all written today: by modification time, 2021 is empty.
    assert!(search("2021-01-01", "2021-12-31", DateSource::Modified).is_empty());
    assert_eq!(
        search("2021-01-01", "2021-12-31", DateSource::FrontMatter),
        [("old-meeting.md".to_string(), DateSource::FrontMatter)]
    );
    assert_eq!(
        search("2022-01-10", "2022-01-10", DateSource::FrontMatter),
        [("created.md".to_string(), DateSource::FrontMatter)]
    );
    // A note without a front-matter date falls back to its modification time,
    // and says so.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(
        search(&today, &today, DateSource::FrontMatter),
        [("undated.md".to_string(), DateSource::Modified)]
    );
    assert_eq!(search(&today, &today, DateSource::Modified).len(), 3);
}
