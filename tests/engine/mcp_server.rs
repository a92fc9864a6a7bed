//! `sift mcp` driven by a real MCP client: the official Python SDK (`mcp` 2.x
//! from PyPI) runs tests/engine/mcp_client.py, which starts the real binary
//! over stdio and makes the calls below on one session. The index is built by
//! the binary with the real local model.
//!
//! The client's Python is `SIFT_MCP_PYTHON` (scripts/mcp-venv.sh makes a venv
//! with `mcp` and prints it; scripts/test.sh sets it). Without it the test says
//! so and passes, unless `SIFT_REQUIRE_MCP=1` (CI), where it fails.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

fn python() -> Option<String> {
    match std::env::var("SIFT_MCP_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ if std::env::var("SIFT_REQUIRE_MCP").is_ok_and(|v| v == "1") => {
            panic!("SIFT_REQUIRE_MCP=1 but SIFT_MCP_PYTHON is not set: run scripts/mcp-venv.sh")
        }
        _ => {
            eprintln!("SKIPPED: the MCP client test needs SIFT_MCP_PYTHON=$(scripts/mcp-venv.sh)");
            None
        }
    }
}

/// Runs the client with `calls` against the binary over `data`; its answer.
fn run_client(python: &str, data: &Path, calls: Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engine/mcp_client.py");
    let mut child = Command::new(python)
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_sift"))
        .env("SIFT_DATA_DIR", data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    serde_json::to_writer(child.stdin.take().unwrap(), &calls).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "MCP client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "client printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn paths(answer: &Value) -> Vec<String> {
    answer["structured"]["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("no hits in {answer}"))
        .iter()
        .map(|h| h["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn python_client_searches_reads_and_is_refused_outside() {
    let Some(python) = python() else { return };
    let notes = crate::common::fixture_notes();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let outside = tmp.path().join("secret.md");
    std::fs::write(&outside, "# Secret\npasswords live here\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sift"))
        .args(["index", notes.path().to_str().unwrap()])
        .env("SIFT_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let garden = notes.path().join("projects/garden.md");
    let answer = run_client(
        &python,
        &data,
        json!([
            // 0: meaning search, no shared words with the note
            {"tool": "search", "args": {"query": "when to plant vegetables outdoors", "mode": "semantic", "limit": 3}},
            // 1: keyword search with filters
            {"tool": "search", "args": {"query": "eggs flour", "mode": "keyword", "tags": ["cooking"], "exts": ["md"], "folder": "recipes"}},
            // 2: a filter that excludes the match
            {"tool": "search", "args": {"query": "eggs flour", "mode": "keyword", "folder": "projects"}},
            // 3: related, by a path relative to the indexed folder
            {"tool": "related", "args": {"path": "projects/garden.md", "limit": 5}},
            // 4: get note by absolute path
            {"tool": "get_note", "args": {"path": garden.to_str().unwrap()}},
            // 5: a file outside the indexed folders: refused
            {"tool": "get_note", "args": {"path": outside.to_str().unwrap()}},
            // 6: escaping the folder with ../: refused
            {"tool": "get_note", "args": {"path": "../secret.md"}},
            // 7: bad arguments: wrong type
            {"tool": "search", "args": {"query": "garden", "limit": "ten"}},
            // 8: bad arguments: missing query
            {"tool": "search", "args": {"mode": "keyword"}},
            // 9: an argument the engine refuses: not a date
            {"tool": "search", "args": {"query": "garden", "after": "last tuesday"}},
            // 10: unknown mode
            {"tool": "search", "args": {"query": "garden", "mode": "psychic"}},
            // 11: status still answers after the errors
            {"tool": "status", "args": {}},
            // 12: a tool that does not exist
            {"tool": "delete_everything", "args": {}},
        ]),
    );
    assert_eq!(answer["server"], "sift");
    let tools = answer["tools"].as_object().unwrap();
    let mut names: Vec<&String> = tools.keys().collect();
    names.sort();
    assert_eq!(names, ["get_note", "related", "search", "status"]);
    // The search schema lists every filter, so assistants can use them.
    let props = tools["search"]["properties"].as_object().unwrap();
    for field in [
        "query",
        "mode",
        "limit",
        "keyword_weight",
        "folder",
        "tags",
        "exts",
        "after",
        "before",
        "date",
    ] {
        assert!(props.contains_key(field), "search schema lacks {field}");
    }
    let a = answer["answers"].as_array().unwrap();
    assert_eq!(a.len(), 13);

    assert_eq!(a[0]["is_error"], false, "{}", a[0]);
    assert_eq!(a[0]["structured"]["mode"], "semantic");
    assert_eq!(paths(&a[0])[0], "projects/garden.md", "{}", a[0]);

    assert_eq!(paths(&a[1]), ["recipes/pancakes.md"]);
    let hit = &a[1]["structured"]["hits"][0];
    assert_eq!(hit["title"], "Fluffy pancakes");
    assert!(hit["snippet"].as_str().unwrap().contains("eggs"));
    assert!(paths(&a[2]).is_empty());

    assert_eq!(a[3]["is_error"], false, "{}", a[3]);
    let related = paths(&a[3]);
    assert!(!related.is_empty() && !related.contains(&"projects/garden.md".to_string()));

    assert_eq!(a[4]["is_error"], false, "{}", a[4]);
    let note = &a[4]["structured"];
    assert_eq!(note["path"], "projects/garden.md");
    assert_eq!(note["title"], "Vegetable garden plan");
    assert_eq!(
        note["text"].as_str().unwrap(),
        std::fs::read_to_string(&garden).unwrap()
    );
    assert_eq!(note["tags"], json!(["gardening", "outdoors", "watering"]));

    for i in [5, 6] {
        assert_eq!(a[i]["is_error"], true, "call {i}: {}", a[i]);
        assert_eq!(a[i]["structured"]["error"], "not_indexed", "call {i}");
        assert!(!a[i]["text"].as_str().unwrap().contains("passwords"));
    }

    // Arguments that do not fit the schema: refused (as a tool error the
    // assistant reads, or as invalid params), saying what was wrong.
    for (i, says) in [(7, "\"ten\""), (8, "query"), (10, "psychic")] {
        let message = match a[i].get("protocol_error") {
            Some(err) => {
                assert_eq!(err["code"], -32602, "call {i}: {}", a[i]);
                err["message"].as_str().unwrap().to_string()
            }
            None => {
                assert_eq!(a[i]["is_error"], true, "call {i}: {}", a[i]);
                a[i]["text"].as_str().unwrap().to_string()
            }
        };
        assert!(message.contains(says), "call {i}: {message}");
    }
    assert_eq!(a[9]["is_error"], true, "{}", a[9]);
    assert_eq!(a[9]["structured"]["error"], "invalid_input");
    assert!(a[9]["text"].as_str().unwrap().contains("YYYY-MM-DD"));

    assert_eq!(a[11]["is_error"], false, "{}", a[11]);
    assert!(a[11]["structured"]["notes"].as_u64().unwrap() >= 5);
    assert_eq!(a[11]["structured"]["model_available"], true);

    assert!(
        a[12].get("protocol_error").is_some() || a[12]["is_error"] == true,
        "{}",
        a[12]
    );
}
