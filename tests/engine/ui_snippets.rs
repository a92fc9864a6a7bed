//! The UI's mock backend shows snippets the engine returned, never highlights
//! of its own: ui/src/lib/recorded-snippets.json holds, per note body and
//! query, the engine's snippet parts and line. This test runs the engine on
//! each entry and fails if the recording no longer matches, so the mock cannot
//! drift from the one word rule. `SIFT_RECORD_SNIPPETS=1` rewrites the file.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use serde::{Deserialize, Serialize};
use sift::search::SnippetPart;
use sift::{Mode, Query};

#[derive(Serialize, Deserialize)]
struct Recorded {
    path: String,
    body: String,
    query: String,
    snippet: Vec<Part>,
    line: usize,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Part {
    text: String,
    highlight: bool,
}

impl From<&SnippetPart> for Part {
    fn from(p: &SnippetPart) -> Part {
        Part {
            text: p.text.clone(),
            highlight: p.highlight,
        }
    }
}

#[test]
fn mock_snippets_are_the_engines() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/src/lib/recorded-snippets.json");
    let mut entries: Vec<Recorded> =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let record = std::env::var_os("SIFT_RECORD_SNIPPETS").is_some();
    for entry in &mut entries {
        let notes = tempfile::tempdir().unwrap();
        let path = notes.path().join(&entry.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &entry.body).unwrap();
        let t = open(notes.path(), Some(Arc::new(FakeEmbedder)));
        index(&t.engine);
        let q = Query {
            mode: Mode::Keyword,
            ..Query::new(entry.query.clone())
        };
        let hits = t.engine.search(&q).unwrap().hits;
        let hit = hits
            .iter()
            .find(|h| h.path == entry.path)
            .unwrap_or_else(|| panic!("{} not found for {:?}", entry.path, entry.query));
        let snippet: Vec<Part> = hit.snippet.iter().map(Part::from).collect();
        if record {
            entry.snippet = snippet;
            entry.line = hit.line;
        } else {
            assert_eq!(
                snippet, entry.snippet,
                "{}: rerun with SIFT_RECORD_SNIPPETS=1",
                entry.path
            );
            assert_eq!(hit.line, entry.line, "{}", entry.path);
            assert!(entry.snippet.iter().any(|p| p.highlight));
        }
    }
    if record {
        let json = serde_json::to_string_pretty(&entries).unwrap();
        std::fs::write(&file, json + "\n").unwrap();
    }
}
