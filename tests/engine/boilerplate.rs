//! Template boilerplate (issue 16): in a folder of daily notes sharing one
//! template, the template's lines are left out of what is embedded, so a
//! search about what a day held finds that day, not a bare-template day;
//! keyword search and snippets keep every line; switching it off and on
//! re-embeds only what changed, once.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use sift::store::tables;
use sift::{Mode, Query};

use crate::common::{index, local_model, open};

const TEMPLATE_TOP: &str = "## Tasks\n- [ ] Review inbox\n- [ ] Plan tomorrow\n\n## Notes\n";
const TEMPLATE_BOTTOM: &str = "\n## Mood\nMood (1-5):\nEnergy:\nSleep:\n\n## Gratitude\nThree things I am grateful for today:\n\n## Reflection\nWhat went well today?\nWhat could have gone better?\nWhat will I do differently tomorrow?\n";

/// What the days held (one line each, as many daily notes do).
const DAYS: [&str; 20] = [
    "Replaced the brake pads on the bicycle and adjusted the rear derailleur.",
    "Dentist appointment: one small cavity, filling booked for next month.",
    "Planted tomato seedlings and basil in the raised bed by the fence.",
    "Finished reading the novel about the lighthouse keeper's daughter.",
    "The water heater leaked again; the plumber will replace the valve.",
    "Long call with grandma about her childhood in the fishing village.",
    "Baked sourdough bread; the crumb was dense, needs a longer proof.",
    "Quarterly tax payment sent, receipts filed in the accounting folder.",
    "Hiked to the waterfall with Sam, saw two herons near the river.",
    "Team retrospective: deployments are too slow, we will automate them.",
    "Cat was sick in the night; vet says a mild stomach bug, bland food.",
    "Learned to make dumplings from scratch at the cooking class.",
    "Power cut for three hours, candles and board games with the kids.",
    "Booked train tickets and a hostel for the trip to Lisbon in May.",
    "Ran 10 km for the first time without stopping, knee felt fine.",
    "Painted the hallway a pale green; two coats, the ceiling still to do.",
    "Interviewed a candidate for the data engineer role, strong on SQL.",
    "Car insurance renewal went up 20 percent, compared three other quotes.",
    "Volunteered at the food bank sorting tins and packing parcels.",
    "Tried meditation before bed and fell asleep much faster.",
];
const BARE_DAYS: usize = 10;

/// (query, the day it is about)
const QUERIES: [(&str, usize); 8] = [
    ("fixing my bike", 0),
    ("tooth filling at the dentist", 1),
    ("growing vegetables in the garden", 2),
    ("plumbing problem with hot water", 4),
    ("making bread at home", 6),
    ("pet illness and the vet", 10),
    ("travel plans to Portugal", 13),
    ("job interview for an engineer", 16),
];

/// Writes the vault; returns the relative paths of the days with content.
fn write_vault(dir: &Path) -> Vec<String> {
    let daily = dir.join("Daily");
    std::fs::create_dir_all(&daily).unwrap();
    let mut content_paths = Vec::new();
    let mut day = 0;
    for (i, line) in DAYS.iter().enumerate() {
        let rel = format!("Daily/2024-05-{:02}.md", day + 1);
        std::fs::write(
            dir.join(&rel),
            format!(
                "# 2024-05-{:02}\n\n{TEMPLATE_TOP}{line}\n{TEMPLATE_BOTTOM}",
                day + 1
            ),
        )
        .unwrap();
        content_paths.push(rel);
        day += 1;
        if i % 2 == 1 && day < 31 && i / 2 < BARE_DAYS {
            let rel = format!("Daily/2024-05-{:02}.md", day + 1);
            std::fs::write(
                dir.join(&rel),
                format!(
                    "# 2024-05-{:02}\n\n{TEMPLATE_TOP}{TEMPLATE_BOTTOM}",
                    day + 1
                ),
            )
            .unwrap();
            day += 1;
        }
    }
    content_paths
}

fn embedded_texts(engine: &sift::Engine) -> Vec<(String, String)> {
    engine
        .store()
        .read(|c| {
            let mut stmt = c.prepare("SELECT c.id, c.body FROM chunks c ORDER BY c.id")?;
            let rows: Vec<(i64, String)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
            let texts = tables::embed_texts(c, &ids)?;
            Ok(rows.into_iter().map(|(_, b)| b).zip(texts).collect())
        })
        .unwrap()
}

#[test]
fn template_lines_are_not_embedded_and_the_day_with_the_content_wins() {
    let notes = tempfile::tempdir().unwrap();
    let days = write_vault(notes.path());
    let t = open(notes.path(), Some(local_model()));
    let first = index(&t.engine);
    let chunks = t.engine.store().read(tables::count_chunks).unwrap() as usize;
    assert_eq!(first.notes_indexed, DAYS.len() + BARE_DAYS);

    // Each chunk is embedded without the template (a bare-template day is
    // embedded as its heading, the date: all it holds of its own).
    let texts = embedded_texts(&t.engine);
    for (body, embedded) in &texts {
        assert!(
            body.contains("What went well today?"),
            "the body keeps it: {body}"
        );
        assert!(!embedded.contains("What went well today?"), "{embedded}");
        assert!(!embedded.contains("## Tasks"), "{embedded}");
        assert!(!embedded.contains("Mood (1-5):"), "{embedded}");
        if let Some(day) = DAYS.iter().find(|d| body.contains(*d)) {
            assert!(embedded.contains(day), "{embedded}");
        }
    }
    assert_eq!(
        first.chunks_embedded,
        DAYS.len() + BARE_DAYS,
        "each text embedded once, never the unstripped form first"
    );

    // Meaning search finds the day the query is about, first.
    for (query, day) in QUERIES {
        for mode in [Mode::Semantic, Mode::Hybrid] {
            let hits = t
                .engine
                .search(&Query {
                    mode,
                    ..Query::new(query)
                })
                .unwrap()
                .hits;
            assert_eq!(
                hits[0].path,
                days[day],
                "{query} ({mode:?}): {:?}",
                crate::common::paths(&hits)
            );
        }
    }
    // Keyword search and snippets still see the template.
    let hits = t
        .engine
        .search(&Query {
            mode: Mode::Keyword,
            limit: 100,
            ..Query::new("\"what went well today\"")
        })
        .unwrap()
        .hits;
    assert_eq!(hits.len(), DAYS.len() + BARE_DAYS);

    // A full run with nothing changed redoes nothing.
    let again = index(&t.engine);
    assert_eq!((again.chunks_embedded, again.notes_indexed), (0, 0));

    // A day written later (the watcher's path) is stripped at once.
    let new_day = notes.path().join("Daily/2024-06-01.md");
    std::fs::write(
        &new_day,
        format!("# 2024-06-01\n\n{TEMPLATE_TOP}Repaired the garden shed roof with new felt.\n{TEMPLATE_BOTTOM}"),
    )
    .unwrap();
    let changed = t
        .engine
        .index_changed(
            &[t.notes.join("Daily/2024-06-01.md")],
            &|_| {},
            &AtomicBool::new(false),
        )
        .unwrap();
    assert_eq!(changed.chunks_embedded, 1);
    let texts = embedded_texts(&t.engine);
    let (_, embedded) = texts
        .iter()
        .find(|(b, _)| b.contains("garden shed"))
        .unwrap();
    assert!(!embedded.contains("What went well today?"), "{embedded}");

    // Off: every day is embedded whole again (their notes are
    // not read again); on again: all from the cache.
    t.engine
        .update_settings(|s| {
            s.scan.strip_boilerplate = false;
            Ok(())
        })
        .unwrap();
    let off = index(&t.engine);
    assert_eq!(off.notes_indexed, 0);
    assert_eq!(off.chunks_embedded, DAYS.len() + BARE_DAYS + 1);
    assert!(embedded_texts(&t.engine)
        .iter()
        .all(|(body, embedded)| embedded.ends_with(body.as_str())));
    t.engine
        .update_settings(|s| {
            s.scan.strip_boilerplate = true;
            Ok(())
        })
        .unwrap();
    let on = index(&t.engine);
    assert_eq!(on.chunks_embedded, 0, "cached from the first time");
    assert_eq!(
        t.engine.store().read(tables::count_chunks).unwrap() as usize,
        chunks + 1
    );
    assert_eq!(t.engine.vector_count(), chunks + 1);

    // A day moved to a folder of its own keeps its embedded text: nothing sent.
    std::fs::create_dir(notes.path().join("Archive")).unwrap();
    std::fs::rename(
        notes.path().join(&days[3]),
        notes.path().join("Archive/moved.md"),
    )
    .unwrap();
    let moved = index(&t.engine);
    assert_eq!((moved.notes_indexed, moved.chunks_embedded), (1, 0));
    let hits = t
        .engine
        .search(&Query {
            mode: Mode::Semantic,
            ..Query::new("a novel about a lighthouse")
        })
        .unwrap()
        .hits;
    assert_eq!(hits[0].path, "Archive/moved.md");
}
