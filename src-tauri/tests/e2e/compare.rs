//! Provider comparison in the real window (issue 16): searches typed in the
//! box are kept, Settings shows what comparing with an OpenAI-compatible
//! loopback server would cost (nothing sent), runs it once confirmed and
//! shows both rankings side by side with their overlap; nothing is switched.

use std::time::Duration;

use serde_json::json;

use crate::harness::{self, tools, App, Folders, Launch};
use crate::{loopback, FIXTURE_NOTES};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comparing_providers_shows_cost_then_results_side_by_side_and_switches_nothing() {
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

    // Searches typed in the box are kept (one entry per search, not per key).
    app.search("how can I rest better at night").await;
    app.search("garden watering").await;
    let kept = app.invoke("search_history", json!({})).await.unwrap();
    assert_eq!(
        kept,
        json!(["garden watering", "how can I rest better at night"]),
        "{kept}"
    );

    let server = loopback::Server::start(None);
    app.nav("settings").await;
    app.choose("#provider-compatible").await;
    app.type_into("#provider-base-url", &server.openai_base())
        .await;
    app.type_into("#provider-model", "nomic-embed-text").await;
    app.el("#compare-kept").await;
    app.click("#compare-estimate").await;
    let tokens = app
        .wait_js(
            "the comparison's cost",
            "const e = document.querySelector('#compare-error'); if (e) return 'error: ' + e.textContent; return document.querySelector('#compare-cost-tokens')?.textContent ?? null",
        )
        .await;
    assert!(!tokens.as_str().unwrap().starts_with("error"), "{tokens}");
    let chunks = app
        .js("return document.querySelector('#compare-chunks').textContent")
        .await;
    assert!(
        chunks
            .as_str()
            .unwrap()
            .starts_with(&FIXTURE_NOTES.to_string()),
        "every chunk is in the sample: {chunks}"
    );
    assert!(server.log().is_empty(), "the estimate sent nothing");
    app.screenshot("compare-01-cost").await;

    app.click("#compare-run").await;
    let mean = app
        .wait_js(
            "the comparison's results",
            "const e = document.querySelector('#compare-error'); if (e) return 'error: ' + e.textContent; return document.querySelector('#compare-mean')?.textContent ?? null",
        )
        .await;
    assert!(mean.as_str().unwrap().ends_with('%'), "{mean}");
    let shown = app
        .js(
            "return [...document.querySelectorAll('.compare-query')].map((q) => ({
                query: q.querySelector('h4').firstChild.textContent.trim(),
                current: q.querySelectorAll('.compare-current li').length,
                other: q.querySelectorAll('.compare-other li').length,
            }))",
        )
        .await;
    let shown = shown.as_array().unwrap();
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert_eq!(shown[0]["query"], "garden watering");
    for q in shown {
        assert_eq!(q["current"], json!(FIXTURE_NOTES), "{q}");
        assert_eq!(q["other"], json!(FIXTURE_NOTES), "{q}");
    }
    // Note text is text: the fixture's HTML note adds no element.
    let injected = app
        .js("return document.querySelectorAll('#compare-results script, #compare-results img, #compare-results b').length")
        .await;
    assert_eq!(injected, json!(0));
    app.js("document.querySelector('#compare-results').scrollIntoView(); return true")
        .await;
    app.screenshot("compare-02-results").await;
    let sent: usize = server.successes().iter().map(|l| l.inputs.len()).sum();
    assert!(
        sent >= FIXTURE_NOTES as usize + 2,
        "the sample and both searches went to the server: {sent}"
    );

    // Nothing switched: the local model still answers, settings unchanged.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = app.invoke("status", json!({})).await.unwrap();
    assert_eq!(after["embedder_id"], json!(local_id), "{after}");
    assert_eq!(after["indexing"], json!(false), "{after}");
    let saved = harness::read(&folders.data.join("settings.json"));
    assert!(!saved.contains("compatible"), "{saved}");

    // The history can be cleared.
    app.click("#compare-clear-history").await;
    app.wait_js(
        "the history to clear",
        "return document.querySelector('#compare-kept')?.textContent.startsWith('0 ')",
    )
    .await;
    app.quit().await;
}
