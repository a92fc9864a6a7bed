//! End-to-end tests of the desktop app: the real binary, a real window under
//! Xvfb, driven through tauri-driver and WebKitWebDriver.
//!
//! Run them with `scripts/e2e.sh` (which builds the UI and checks the setup), or:
//! ```sh
//! cargo install tauri-driver --locked            # once
//! (cd ui && npm ci && npm run build)
//! SIFT_E2E=1 SIFT_MODEL_DIR=/path/to/model cargo test -p sift-desktop --test e2e
//! ```
//! Without `SIFT_E2E=1` they are skipped; with it, a missing prerequisite fails.
//! Screenshots go to `bench-out/screenshots/` (or `$SIFT_E2E_SHOTS`).

mod compare;
mod desktop;
mod harness;
// The engine tests' loopback embedding server (OpenAI wire format, std only).
#[path = "../../../tests/engine/loopback/mod.rs"]
mod loopback;

use std::time::Duration;

use harness::{paths, tools, App, Folders, Launch};
use serde_json::json;

/// Notes the fixture folder indexes: 7 notes, skipping the binary file and the
/// broken UTF-8 file, `.obsidian/`, `node_modules/` and the git-ignored `private/`.
const FIXTURE_NOTES: u64 = 6;

/// Generated notes that make the first index run last long enough to search
/// during it (the test build embeds about 100 of them a second).
const BULK_NOTES: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_welcome_then_folder_indexing_search_and_settings_persist() {
    let Some((tools, _serial)) = tools().await else {
        return;
    };
    let folders = Folders::new();
    let app = App::launch(&tools, &folders, Launch::default()).await;

    // First run: the welcome screen, nothing indexed.
    app.el("#welcome").await;
    app.screenshot("01-welcome").await;

    // Enough notes that embedding them takes a while.
    let bulk = folders.notes.join("bulk");
    std::fs::create_dir_all(&bulk).unwrap();
    for i in 0..BULK_NOTES {
        std::fs::write(
            bulk.join(format!("meeting-{i:03}.md")),
            format!(
                "# Meeting {i}\n\nWe reviewed item {i} of the quarterly roadmap, assigned owners \
                 for the follow-ups and agreed to revisit the budget for project {} next week.\n\n\
                 ## Notes\n\nThe team walked through the open questions on hiring, the vendor \
                 contract renewal and the migration of the reporting dashboards. Each owner \
                 summarised the risks they see for the coming sprint, what they need from the \
                 other groups, and which decisions can wait until the review at the end of \
                 the month. Item {i} stays on the list until its owner reports back.\n",
                i % 17
            ),
        )
        .unwrap();
    }

    // The page cannot add a folder on its own: a typed path needs the user's
    // confirmation (the picker runs in the shell and takes no path).
    let refused = app
        .invoke(
            "add_folder",
            json!({ "path": folders.notes.to_str().unwrap(), "confirmed": false }),
        )
        .await
        .expect_err("added without confirmation");
    assert_eq!(refused["code"], "invalid_input", "{refused}");

    // Choose the folder by typed path (the native dialog cannot be driven),
    // confirmed in the window.
    app.type_into("#welcome-path", folders.notes.to_str().unwrap())
        .await;
    app.click("#welcome-add").await;
    app.click("#welcome-confirm").await;
    app.wait_js(
        "the search screen",
        "return !document.querySelector('#welcome') && !!document.querySelector('#search-input')",
    )
    .await;

    // Indexing runs in the background with progress, and search already works:
    // notes are keyword-searchable before their vectors are computed.
    app.wait_js(
        "the progress panel",
        "return !!document.querySelector('#progress')",
    )
    .await;
    app.click("#mode-keyword").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = app.search("compost").await;
        if paths(&rows).first() == Some(&"projects/garden.md") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no keyword results while indexing: {rows:?}"
        );
        app.type_into("#search-input", "").await;
    }
    let status = app.invoke("status", json!({})).await.unwrap();
    assert_eq!(
        status["indexing"],
        json!(true),
        "indexing ended before the search: raise BULK_NOTES to test searching during indexing"
    );
    eprintln!(
        "e2e: at the search: {} vectors, {} without",
        status["vectors"], status["chunks_without_vectors"]
    );
    app.screenshot("02-indexing-while-searching").await;
    app.wait_indexed(FIXTURE_NOTES + BULK_NOTES as u64).await;
    let rows = app.search("compost").await;
    assert_eq!(
        paths(&rows).first(),
        Some(&"projects/garden.md"),
        "{rows:?}"
    );

    // The folder is saved in the engine's settings.json in the data folder.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folders.data.join("settings.json")).unwrap())
            .unwrap();
    assert_eq!(saved["folders"], json!([folders.notes.to_str().unwrap()]));
    app.quit().await;

    // A second launch goes straight to search, with the index of the first.
    let app = App::launch(&tools, &folders, Launch::default()).await;
    assert_eq!(
        app.js("return !!document.querySelector('#welcome')").await,
        json!(false)
    );
    let rows = app.search("pancakes").await;
    assert_eq!(
        paths(&rows).first(),
        Some(&"recipes/pancakes.md"),
        "{rows:?}"
    );
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_notes_by_meaning_and_by_keyword_and_filters_narrow() {
    let Some((tools, _serial)) = tools().await else {
        return;
    };
    let folders = Folders::new();
    let app = App::launch(
        &tools,
        &folders,
        Launch {
            with_notes: true,
            ..Launch::default()
        },
    )
    .await;
    app.wait_indexed(FIXTURE_NOTES).await;

    // By meaning: no word of the query is in the note.
    app.click("#mode-semantic").await;
    let rows = app.search("how can I rest better at night").await;
    assert_eq!(paths(&rows).first(), Some(&"journal/sleep.txt"), "{rows:?}");
    app.click("#mode-hybrid").await;
    let rows = app.search("what should I cook for breakfast").await;
    assert_eq!(
        paths(&rows).first(),
        Some(&"recipes/pancakes.md"),
        "{rows:?}"
    );
    app.screenshot("03-search-results").await;

    // By keyword: exact words, highlighted.
    app.click("#mode-keyword").await;
    let rows = app.search("compost").await;
    assert_eq!(paths(&rows), ["projects/garden.md"], "{rows:?}");
    let marks = app.js("return [...document.querySelectorAll('.result mark')].map((m) => m.textContent.toLowerCase())").await;
    assert!(
        marks.as_array().unwrap().iter().any(|m| m == "compost"),
        "{marks}"
    );
    // Git-ignored notes are not indexed.
    let rows = app.search("swordfish").await;
    assert!(rows.is_empty(), "private/ is git-ignored: {rows:?}");

    // Filters narrow a hybrid query that matches notes in three folders.
    app.click("#mode-hybrid").await;
    let all = app.search("cooking garden sleep launch").await;
    assert!(all.len() >= 4, "{all:?}");
    for folder in ["projects/", "journal/", "recipes/"] {
        assert!(all.iter().any(|r| r.path.starts_with(folder)), "{all:?}");
    }
    app.type_into("#filter-folder", "recipes").await;
    let rows = app.settled_results().await;
    assert!(!rows.is_empty() && rows.len() < all.len(), "{rows:?}");
    assert!(
        rows.iter().all(|r| r.path.starts_with("recipes/")),
        "{rows:?}"
    );
    app.type_into("#filter-folder", "").await;
    app.type_into("#filter-ext", "txt").await;
    let rows = app.settled_results().await;
    assert_eq!(paths(&rows), ["journal/sleep.txt"], "{rows:?}");
    app.type_into("#filter-ext", "").await;
    app.type_into("#filter-tag", "#cooking").await;
    let rows = app.settled_results().await;
    assert_eq!(paths(&rows), ["recipes/pancakes.md"], "{rows:?}");
    app.click("#filters-clear").await;
    let rows = app.settled_results().await;
    assert_eq!(rows.len(), all.len(), "{rows:?}");
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn note_text_is_shown_as_text_never_run() {
    let Some((tools, _serial)) = tools().await else {
        return;
    };
    let folders = Folders::new();
    let app = App::launch(
        &tools,
        &folders,
        Launch {
            with_notes: true,
            ..Launch::default()
        },
    )
    .await;
    app.wait_indexed(FIXTURE_NOTES).await;

    app.click("#mode-keyword").await;
    let rows = app.search("tricky html alert").await;
    assert_eq!(paths(&rows).first(), Some(&"recipes/xss.md"), "{rows:?}");
    let xss = &rows[0];
    assert_eq!(xss.title, "Tricky HTML note");
    assert!(
        xss.snippet.contains("<script>alert('pwned')</script>"),
        "{xss:?}"
    );
    assert!(
        xss.snippet.contains("<img src=x onerror=\"alert(1)\">"),
        "{xss:?}"
    );
    app.screenshot("04-script-note-as-text").await;

    // Nothing from the note became markup, nothing ran.
    let injected = app.js("return document.querySelectorAll('.result script, .result img, .result iframe, [onerror]').length").await;
    assert_eq!(injected, json!(0));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!app.alert_open().await, "an alert opened");
    // Opening the details of the hit re-renders the text: still inert.
    app.click(".result .why-toggle").await;
    let injected = app
        .js("return document.querySelectorAll('.result script, .result img').length")
        .await;
    assert_eq!(injected, json!(0));
    assert!(!app.alert_open().await, "an alert opened");

    // The CSP refuses inline scripts, even ones the page itself would add.
    let ran = app
        .js("const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; document.body.appendChild(s); return window.__inline === 1")
        .await;
    assert_eq!(
        ran,
        json!(false),
        "an inline script ran: the CSP is not in force"
    );
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_disk_show_up_in_the_results_live() {
    let Some((tools, _serial)) = tools().await else {
        return;
    };
    let folders = Folders::new();
    let app = App::launch(
        &tools,
        &folders,
        Launch {
            with_notes: true,
            ..Launch::default()
        },
    )
    .await;
    app.wait_indexed(FIXTURE_NOTES).await;
    app.click("#mode-keyword").await;

    // An edited note: the query on screen re-runs by itself with the new text.
    assert!(app.search("garlic").await.is_empty());
    let garden = folders.notes.join("projects/garden.md");
    let mut text = std::fs::read_to_string(&garden).unwrap();
    text.push_str("\n## Autumn\nPlant garlic cloves in October, pointy end up.\n");
    std::fs::write(&garden, &text).unwrap();
    let garlic_line = text.lines().position(|l| l.contains("garlic")).unwrap() as u64 + 1;
    let rows = app
        .wait_results("the edited note", |rows| !rows.is_empty())
        .await;
    assert_eq!(paths(&rows), ["projects/garden.md"], "{rows:?}");
    assert!(
        rows[0].snippet.contains("Plant garlic cloves in October"),
        "{rows:?}"
    );
    assert_eq!(
        rows[0].line, garlic_line,
        "the line of the new text: {rows:?}"
    );

    // A new note appears, a deleted one disappears.
    assert!(app.search("beekeeping").await.is_empty());
    std::fs::write(
        folders.notes.join("journal/bees.md"),
        "# Beekeeping\n\nStart two hives next spring; order the bees in January.\n",
    )
    .unwrap();
    let rows = app
        .wait_results("the new note", |rows| !rows.is_empty())
        .await;
    assert_eq!(paths(&rows), ["journal/bees.md"], "{rows:?}");

    assert_eq!(paths(&app.search("caffeine").await), ["journal/sleep.txt"]);
    std::fs::remove_file(folders.notes.join("journal/sleep.txt")).unwrap();
    app.wait_results("the deleted note to go", |rows| rows.is_empty())
        .await;
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_view_shows_skipped_files_with_reasons() {
    let Some((tools, _serial)) = tools().await else {
        return;
    };
    let folders = Folders::new();
    let app = App::launch(
        &tools,
        &folders,
        Launch {
            with_notes: true,
            ..Launch::default()
        },
    )
    .await;
    let status = app.wait_indexed(FIXTURE_NOTES).await;
    assert_eq!(status["notes"], json!(FIXTURE_NOTES), "{status}");

    app.nav("status").await;
    app.el("#status-view").await;
    let rows = app
        .wait_js(
            "the problem files",
            "const rows = [...document.querySelectorAll('.file-state')].map((r) => ({ path: r.dataset.path, state: r.dataset.state, reason: r.querySelector('.reason')?.textContent ?? '' })); return rows.length >= 2 ? rows : null",
        )
        .await;
    let rows = rows.as_array().unwrap();
    for path in ["projects/archive.md", "journal/broken.md"] {
        let row = rows
            .iter()
            .find(|r| r["path"] == path)
            .unwrap_or_else(|| panic!("{path} is not listed: {rows:?}"));
        assert_eq!(row["state"], "skipped", "{row}");
        assert!(
            row["reason"].as_str().unwrap().trim().len() > 3,
            "no reason: {row}"
        );
    }
    let notes = app
        .js("return document.querySelector('#stat-notes').textContent")
        .await;
    assert!(
        notes.as_str().unwrap().contains(&FIXTURE_NOTES.to_string()),
        "{notes}"
    );
    // The model line names what the local model multiplies in on this CPU
    // (the app runs on this machine with this environment).
    let model = app
        .js("return document.querySelector('#status-model').textContent")
        .await;
    let arithmetic = sift::embed::local::arithmetic();
    assert!(
        model.as_str().unwrap().contains(&format!("({arithmetic})")),
        "{model} does not name {arithmetic}"
    );
    app.screenshot("05-status").await;

    // Reindex by hand: a background run, then the same figures.
    app.click("#reindex").await;
    let again = app.wait_indexed(FIXTURE_NOTES).await;
    assert_eq!(again["notes"], status["notes"], "{again}");
    assert_eq!(again["skipped"], json!(2), "{again}");
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_open_at_their_line_and_only_inside_indexed_folders() {
    let Some((tools, _serial)) = tools().await else {
        return;
    };
    let folders = Folders::new();
    // A stand-in editor that writes down what it was asked to open.
    let opened = folders.root.join("opened.txt");
    let editor = folders.root.join("editor.sh");
    std::fs::write(
        &editor,
        format!("#!/bin/sh\necho \"$1:$2\" >> '{}'\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let launch = Launch {
        with_notes: true,
        editor: Some(format!("{} {{file}} {{line}}", editor.display())),
        ..Launch::default()
    };
    let app = App::launch(&tools, &folders, launch).await;
    app.wait_indexed(FIXTURE_NOTES).await;

    // Enter opens the selected result at its line.
    app.click("#mode-keyword").await;
    let rows = app.search("compost").await;
    assert_eq!(paths(&rows), ["projects/garden.md"]);
    app.el("#search-input")
        .await
        .send_keys(thirtyfour::Key::Enter)
        .await
        .unwrap();
    let expected = format!(
        "{}:{}",
        folders.notes.join("projects/garden.md").display(),
        rows[0].line
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while harness::read(&opened).trim() != expected {
        assert!(
            std::time::Instant::now() < deadline,
            "opened: {:?}, expected {expected}",
            harness::read(&opened)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A file inside the folder that Sift did not index, and an indexed note
    // made executable, are refused too.
    std::fs::write(folders.notes.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    let err = app
        .invoke(
            "open_note",
            json!({ "abs_path": folders.notes.join("run.sh"), "line": 1 }),
        )
        .await
        .expect_err("run.sh was opened");
    assert_eq!(err["code"], "not_indexed", "{err}");
    let garden = folders.notes.join("projects/garden.md");
    std::fs::set_permissions(&garden, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let err = app
        .invoke("open_note", json!({ "abs_path": garden, "line": 1 }))
        .await
        .expect_err("an executable note was opened");
    assert_eq!(err["code"], "invalid_input", "{err}");
    std::fs::set_permissions(&garden, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();

    // Anything outside the indexed folders is refused, however it is spelled.
    let outside = folders.root.join("outside.md");
    std::fs::write(&outside, "# not a note of ours\n").unwrap();
    std::os::unix::fs::symlink(&outside, folders.notes.join("link.md")).unwrap();
    for path in [
        "/etc/passwd".to_string(),
        outside.display().to_string(),
        format!("{}/../outside.md", folders.notes.display()),
        folders.notes.join("link.md").display().to_string(),
        folders.data.join("settings.json").display().to_string(),
        "projects/garden.md".to_string(),
    ] {
        let err = app
            .invoke("open_note", json!({ "abs_path": path, "line": 1 }))
            .await
            .expect_err(&format!("{path} was opened"));
        assert_eq!(err["code"], "not_indexed", "{path}: {err}");
    }
    assert_eq!(
        harness::read(&opened).lines().count(),
        1,
        "nothing else was opened"
    );

    // The page cannot reach around the command: the capability grants the
    // window no opener, shell or file-system access.
    for (cmd, args) in [
        ("plugin:opener|open_path", json!({ "path": "/etc/passwd" })),
        (
            "plugin:opener|open_url",
            json!({ "url": "https://example.com" }),
        ),
        ("plugin:dialog|save", json!({ "options": {} })),
        (
            "plugin:dialog|open",
            json!({ "options": { "directory": true } }),
        ),
        ("plugin:fs|read_text_file", json!({ "path": "/etc/passwd" })),
    ] {
        let refused = app.invoke(cmd, args).await;
        assert!(refused.is_err(), "{cmd} was allowed: {refused:?}");
    }
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdf_hit_shows_its_page_and_opens_there() {
    let Some((tools, _serial)) = tools().await else {
        return;
    };
    let folders = Folders::new();
    // A real PDF (LibreOffice, 5 pages; tests/fixtures/docs/README.md).
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/docs/sampling.pdf");
    std::fs::copy(&fixture, folders.notes.join("sampling.pdf")).unwrap();
    // A stand-in PDF viewer that writes down what it was asked to open.
    let opened = folders.root.join("opened.txt");
    let viewer = folders.root.join("viewer.sh");
    std::fs::write(
        &viewer,
        format!("#!/bin/sh\necho \"$1:$2\" >> '{}'\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(&viewer, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let launch = Launch {
        with_notes: true,
        pdf_viewer: Some(format!("{} {{file}} {{page}}", viewer.display())),
        ..Launch::default()
    };
    let app = App::launch(&tools, &folders, launch).await;
    app.wait_indexed(FIXTURE_NOTES + 1).await;

    // "inspecting" is on page 3 only.
    app.click("#mode-keyword").await;
    let rows = app.search("inspecting").await;
    assert_eq!(paths(&rows), ["sampling.pdf"]);
    let page = app
        .js("return document.querySelector('.result .result-page')?.textContent ?? null")
        .await;
    assert_eq!(page, json!("p. 3"));
    app.el("#search-input")
        .await
        .send_keys(thirtyfour::Key::Enter)
        .await
        .unwrap();
    let expected = format!("{}:3", folders.notes.join("sampling.pdf").display());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while harness::read(&opened).trim() != expected {
        assert!(
            std::time::Instant::now() < deadline,
            "opened: {:?}, expected {expected}",
            harness::read(&opened)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.screenshot("pdf-hit-page").await;
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_and_cost_panel() {
    let Some((tools, _serial)) = tools().await else {
        return;
    };
    let folders = Folders::new();
    let app = App::launch(
        &tools,
        &folders,
        Launch {
            with_notes: true,
            ..Launch::default()
        },
    )
    .await;
    app.wait_indexed(FIXTURE_NOTES).await;

    // Settings: the folder and the local provider are shown; a budget is saved.
    app.nav("settings").await;
    app.el("#settings-view").await;
    let folder = app
        .js("return document.querySelector('.folder')?.dataset.path")
        .await;
    assert_eq!(folder, json!(folders.notes.to_str().unwrap()));
    assert_eq!(
        app.js("return document.querySelector('#provider-local').checked")
            .await,
        json!(true)
    );
    app.type_into("#budget", "5").await;
    app.click("#settings-save").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(folders.data.join("settings.json")).unwrap())
                .unwrap();
        if saved["budget_usd"] == json!(5.0) {
            assert_eq!(saved["provider"], json!({ "provider": "local" }));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "budget not saved: {saved}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.screenshot("06-settings").await;

    // API keys go to the OS keychain (a private one under scripts/with-keyring.sh,
    // service "sift-e2e"), never into files; the page only ever sees them masked.
    app.choose("#provider-openai").await;
    match app.invoke("key_status", json!({})).await {
        Err(err) if std::env::var_os("SIFT_REQUIRE_KEYCHAIN").is_none() => {
            eprintln!("e2e: no OS keychain here ({err}); key steps skipped");
        }
        _ => {
            let key = "fake-e2e-0123456789abcdefghijklmnop";
            app.type_into("#key-input", key).await;
            app.click("#key-save").await;
            app.wait_js(
                "the key to be saved",
                "return document.querySelector('#key-status')?.dataset.present === 'true'",
            )
            .await;
            let shown = app.js("return document.body.innerText").await;
            let shown = shown.as_str().unwrap();
            assert!(!shown.contains(key) && shown.contains("mnop"), "{shown}");
            assert_eq!(
                app.js("return document.querySelector('#key-input').value")
                    .await,
                json!("")
            );
            for file in harness::files_under(&folders.data) {
                let bytes = std::fs::read(&file).unwrap_or_default();
                assert!(
                    !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
                    "the key is in {}",
                    file.display()
                );
            }
            app.click("#key-delete").await;
            app.wait_js(
                "the key to be deleted",
                "return document.querySelector('#key-status')?.dataset.present === 'false'",
            )
            .await;
        }
    }

    // The estimate of switching to OpenAI needs no key and sends nothing.
    app.click("#provider-apply").await;
    app.el("#provider-confirm").await;
    let chunks = app
        .js("return document.querySelector('#estimate-chunks').textContent")
        .await;
    assert!(
        chunks
            .as_str()
            .unwrap()
            .starts_with(|c: char| c.is_ascii_digit() && c != '0'),
        "{chunks}"
    );
    app.click("#provider-confirm-no").await;

    // Cost panel: nothing spent with the local model; an estimate for re-indexing.
    app.nav("cost").await;
    app.el("#cost-panel").await;
    app.wait_js(
        "the estimate",
        "const t = document.querySelector('#cost-estimate')?.textContent ?? ''; return /chunks/.test(t) ? t : null",
    )
    .await;
    app.screenshot("07-cost").await;
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_provider_reindexes_in_the_background_then_swaps() {
    let Some((tools, _serial)) = tools().await else {
        return;
    };
    let folders = Folders::new();
    let app = App::launch(
        &tools,
        &folders,
        Launch {
            with_notes: true,
            ..Launch::default()
        },
    )
    .await;
    let status = app.wait_indexed(FIXTURE_NOTES).await;
    let local_id = status["embedder_id"].as_str().unwrap().to_string();
    assert!(local_id.starts_with("local/"), "{status}");
    let sleepy = json!({ "query": { "text": "how can I rest better at night", "mode": "semantic", "limit": 5 } });

    // An OpenAI-compatible server on loopback, slow enough to watch the switch.
    let server = loopback::Server::start(None);
    server.set_latency(Duration::from_secs(3));
    app.nav("settings").await;
    app.choose("#provider-compatible").await;
    app.type_into("#provider-base-url", &server.openai_base())
        .await;
    app.type_into("#provider-model", "nomic-embed-text").await;
    app.click("#provider-apply").await;
    let shown = app
        .wait_js(
            "the estimate",
            "const e = document.querySelector('#provider-error'); if (e) return 'error: ' + e.textContent; return document.querySelector('#estimate-chunks')?.textContent ?? null",
        )
        .await;
    let chunks = shown.as_str().unwrap();
    assert!(
        chunks.starts_with(&FIXTURE_NOTES.to_string()),
        "all chunks are new to this embedder: {chunks}"
    );
    app.click("#provider-confirm-yes").await;
    let started = app
        .wait_js(
            "the switch to start",
            "const e = document.querySelector('#provider-error'); if (e) return 'error: ' + e.textContent; return !document.querySelector('#provider-confirm')",
        )
        .await;
    assert_eq!(started, json!(true), "the switch was refused");

    // While the new engine indexes, the old one answers, by meaning too.
    let during = app.invoke("status", json!({})).await.unwrap();
    assert_eq!(during["embedder_id"], json!(local_id), "{during}");
    assert_eq!(during["indexing"], json!(true), "{during}");
    let hits = app.invoke("search", sleepy.clone()).await.unwrap();
    assert_eq!(hits["hits"][0]["path"], "journal/sleep.txt", "{hits}");

    // Then the new engine takes over.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let after = loop {
        let st = app.invoke("status", json!({})).await.unwrap();
        if st["embedder_id"]
            .as_str()
            .unwrap_or("")
            .starts_with("compatible/")
            && st["indexing"] == json!(false)
        {
            break st;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no switch: {st}\n{}",
            harness::read(&app.log)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(after["vectors"], json!(FIXTURE_NOTES), "{after}");
    let sent: usize = server.successes().iter().map(|l| l.inputs.len()).sum();
    assert!(
        sent > FIXTURE_NOTES as usize,
        "the notes went to the server (and one probe): {sent}"
    );
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folders.data.join("settings.json")).unwrap())
            .unwrap();
    assert_eq!(saved["provider"]["provider"], "compatible", "{saved}");
    assert_eq!(
        saved["provider"]["base_url"],
        json!(server.openai_base()),
        "{saved}"
    );
    server.clear_log();
    server.set_latency(Duration::ZERO);
    let hits = app.invoke("search", sleepy.clone()).await.unwrap();
    assert_eq!(hits["mode"], "semantic", "{hits}");
    assert_eq!(
        server.successes().len(),
        1,
        "the query was embedded by the new provider"
    );

    // The choice persists: a new launch opens with the compatible provider.
    app.quit().await;
    let app = App::launch(&tools, &folders, Launch::default()).await;
    let status = app.wait_indexed(FIXTURE_NOTES).await;
    assert!(
        status["embedder_id"]
            .as_str()
            .unwrap()
            .starts_with("compatible/"),
        "{status}"
    );
    let hits = app.invoke("search", sleepy.clone()).await.unwrap();
    assert_eq!(hits["mode"], "semantic", "{hits}");
    assert!(hits["warning"].is_null(), "{hits}");

    // Back to the local model: every vector is still cached, nothing to embed.
    app.nav("settings").await;
    app.choose("#provider-local").await;
    app.click("#provider-apply").await;
    app.el("#provider-confirm").await;
    let chunks = app
        .js("return document.querySelector('#estimate-chunks').textContent")
        .await;
    assert!(chunks.as_str().unwrap().starts_with('0'), "{chunks}");
    app.click("#provider-confirm-yes").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let st = app.invoke("status", json!({})).await.unwrap();
        if st["embedder_id"] == json!(local_id) && st["indexing"] == json!(false) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no switch back: {st}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let hits = app.invoke("search", sleepy).await.unwrap();
    assert_eq!(hits["hits"][0]["path"], "journal/sleep.txt", "{hits}");
    app.quit().await;
}

/// Issue 16: the fixture folder is an Obsidian vault (`.obsidian/`): a hit
/// shows its aliases and the notes linking to it; Settings offers opening in
/// Obsidian; an exclusion pattern's live count comes before saving, and saving
/// takes the notes out of the results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obsidian_links_aliases_and_exclusions_with_a_live_count() {
    let Some((tools, _serial)) = tools().await else {
        return;
    };
    let folders = Folders::new();
    std::fs::write(
        folders.notes.join("projects/allotment.md"),
        "---\naliases: [Veg patch]\n---\n# Allotment\n\nThe allotment plot by the river: rhubarb and beans.\n",
    )
    .unwrap();
    std::fs::write(
        folders.notes.join("journal/2024-03-09.md"),
        "# Saturday again\n\nDug the [[allotment|plot]] all morning, then [planned beds](../projects/allotment.md).\n",
    )
    .unwrap();
    let app = App::launch(
        &tools,
        &folders,
        Launch {
            with_notes: true,
            ..Launch::default()
        },
    )
    .await;
    app.wait_indexed(FIXTURE_NOTES + 2).await;

    app.click("#mode-keyword").await;
    let rows = app.search("rhubarb").await;
    assert_eq!(paths(&rows), ["projects/allotment.md"], "{rows:?}");
    let aliases = app
        .js("return document.querySelector('.result .result-aliases')?.textContent")
        .await;
    assert!(
        aliases.as_str().unwrap_or("").contains("Veg patch"),
        "{aliases}"
    );
    app.click(".result .links-toggle").await;
    let linking = app
        .wait_js(
            "notes linking here",
            "return [...document.querySelectorAll('.backlink-hit')].map((l) => l.dataset.path)",
        )
        .await;
    assert_eq!(linking, json!(["journal/2024-03-09.md"]));
    app.screenshot("08-links-here").await;

    app.nav("settings").await;
    app.el("#open-in-obsidian").await;
    app.type_into("#exclude-patterns", "recipes/").await;
    let count = app
        .wait_js(
            "the live count of recipes/",
            "return document.querySelector('.pattern-count[data-pattern=\"recipes/\"]')?.dataset.files",
        )
        .await;
    // recipes/ holds pancakes.md and xss.md.
    assert_eq!(count, json!("2"));
    let total = app
        .js("return document.querySelector('#exclusion-total')?.dataset.excluded")
        .await;
    assert_eq!(total, json!("2"));
    app.screenshot("09-exclusions-live-count").await;
    // Nothing is saved until asked.
    let saved = std::fs::read_to_string(folders.data.join("settings.json")).unwrap_or_default();
    assert!(!saved.contains("recipes/"), "{saved}");
    app.click("#exclusions-save").await;
    app.wait_js(
        "the exclusions saved",
        "return document.querySelector('#exclusions .ok-text') !== null",
    )
    .await;
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folders.data.join("settings.json")).unwrap())
            .unwrap();
    assert_eq!(saved["scan"]["exclude"], json!(["recipes/"]));

    app.nav("search").await;
    app.click("#mode-keyword").await;
    app.type_into("#search-input", "eggs flour").await;
    app.wait_results("recipes/ to leave the results", |rows| rows.is_empty())
        .await;
    app.quit().await;
}
