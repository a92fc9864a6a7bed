//! Issue 15, "team scale": `sift export --format chroma|qdrant` loaded into
//! the real ChromaDB and Qdrant (both in process, from PyPI, in the venv of
//! scripts/ensure-peers-venv.sh named by SIFT_TEST_PYTHON) answers a
//! nearest-neighbour query with the same top chunk as Sift, with the real
//! local model's vectors. Skipped without SIFT_TEST_PYTHON unless
//! SIFT_REQUIRE_PEERS=1 (CI), where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use sift::archive::{self, ExportFormat, PeerFormat};
use sift::{Mode, Query};

use super::common;

fn python() -> Option<PathBuf> {
    match std::env::var_os("SIFT_TEST_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var("SIFT_REQUIRE_PEERS").is_ok_and(|v| v == "1") => {
            panic!("SIFT_REQUIRE_PEERS=1 but SIFT_TEST_PYTHON is not set (scripts/ensure-peers-venv.sh)")
        }
        None => {
            eprintln!("skipped: set SIFT_TEST_PYTHON=$(scripts/ensure-peers-venv.sh)");
            None
        }
    }
}

const QUERIES: &[&str] = &[
    "vegetables to plant in spring",
    "my knee hurt after running",
    "fluffy breakfast recipe",
    "moving to another country",
    "how to launch the product",
];

#[test]
fn chroma_and_qdrant_find_the_same_nearest_chunk_as_sift() {
    let Some(python) = python() else {
        return;
    };
    let notes = common::fixture_notes();
    let model = common::local_model();
    let t = common::open(notes.path(), Some(model.clone()));
    common::index(&t.engine);
    let mut expected = Vec::new();
    let mut vectors = Vec::new();
    for q in QUERIES {
        let hits = t
            .engine
            .search(&Query {
                mode: Mode::Semantic,
                ..Query::new(*q)
            })
            .unwrap()
            .hits;
        // Sift ranks notes by their best chunk: the top note's best chunk is
        // the nearest chunk of all.
        expected.push((hits[0].chunk_id, hits[0].path.clone()));
        vectors.push(model.embed_query(q).unwrap());
    }
    let out = tempfile::tempdir().unwrap();
    let queries = out.path().join("queries.json");
    std::fs::write(&queries, serde_json::to_vec(&vectors).unwrap()).unwrap();
    for (name, format) in [
        ("chroma", PeerFormat::Chroma),
        ("qdrant", PeerFormat::Qdrant),
    ] {
        let file = out.path().join(format!("{name}.jsonl"));
        let report =
            archive::export(&t.engine, &file, ExportFormat::Peer(format), None, &|_| {}).unwrap();
        assert_eq!(report.counts.vectors, t.engine.status().unwrap().chunks);
        assert_eq!(report.embedders[0].dimensions, 384);
        let found = load(&python, name, &file, &queries);
        let found: Vec<(i64, String)> = found
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["id"].as_i64().unwrap(),
                    h["path"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(found, expected, "{name}'s nearest chunks");
    }
}

fn load(python: &Path, kind: &str, export: &Path, queries: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/peers_load.py");
    let out = Command::new(python)
        .arg(script)
        .arg(kind)
        .arg(export)
        .arg(queries)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{kind}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
