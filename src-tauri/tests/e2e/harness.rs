//! Runs the real app binary in a real window: Xvfb (a private X display),
//! tauri-driver (WebDriver front) and WebKitWebDriver (the native driver that
//! starts the app), driven with thirtyfour.
//!
//! Each [`App`] gets its own display, ports, data folder and copy of the fixture
//! notes. Processes are ended by process group (each group is one we created)
//! when the `App` is dropped.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use thirtyfour::prelude::*;
use thirtyfour::Key;

/// The app binary under test, built by cargo for this test.
pub const APP: &str = env!("CARGO_BIN_EXE_sift-desktop");

/// How long to wait for searches and screens.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// How long an index run may take (debug builds embed a few chunks a second).
pub const INDEX_TIMEOUT: Duration = Duration::from_secs(240);

/// One app at a time: every test starts its own display and app, and two cores
/// do not run several indexing apps well.
static SERIAL: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();

/// What the tests need from the machine.
pub struct Tools {
    pub tauri_driver: PathBuf,
    pub webkit_driver: PathBuf,
    pub model_dir: PathBuf,
}

/// The tools, or `None` (with a note) when end-to-end tests are not asked for.
/// With `SIFT_E2E=1` a missing tool fails the test, naming the setup step.
pub async fn tools() -> Option<(Tools, tokio::sync::MutexGuard<'static, ()>)> {
    let required = std::env::var("SIFT_E2E").is_ok_and(|v| v == "1");
    if !required {
        eprintln!("e2e: skipped (set SIFT_E2E=1, or run scripts/e2e.sh)");
        return None;
    }
    let mut missing = Vec::new();
    let tauri_driver = std::env::var_os("TAURI_DRIVER")
        .map(PathBuf::from)
        .or_else(|| which("tauri-driver"))
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            let p = Path::new(&home).join(".cargo/bin/tauri-driver");
            p.is_file().then_some(p)
        });
    if tauri_driver.is_none() {
        missing.push("tauri-driver (cargo install tauri-driver --locked)");
    }
    let webkit_driver = std::env::var_os("WEBKIT_WEBDRIVER")
        .map(PathBuf::from)
        .or_else(|| which("WebKitWebDriver"));
    if webkit_driver.is_none() {
        missing.push("WebKitWebDriver (apt-get install webkit2gtk-driver)");
    }
    if which("Xvfb").is_none() {
        missing.push("Xvfb (apt-get install xvfb)");
    }
    let model_dir = sift::model::resolve_model_dir(None);
    if model_dir.is_none() {
        missing.push("the local model (set SIFT_MODEL_DIR, or run `sift model fetch`)");
    }
    if !ui_dist().join("index.html").is_file() {
        missing
            .push("the built UI, ui/dist (cd ui && npm ci && npm run build, then rebuild the app)");
    }
    assert!(
        missing.is_empty(),
        "SIFT_E2E=1 but end-to-end prerequisites are missing: {}. scripts/e2e.sh sets all of this up.",
        missing.join("; ")
    );
    let guard = SERIAL
        .get_or_init(|| tokio::sync::Mutex::new(()))
        .lock()
        .await;
    Some((
        Tools {
            tauri_driver: tauri_driver.unwrap(),
            webkit_driver: webkit_driver.unwrap(),
            model_dir: model_dir.unwrap(),
        },
        guard,
    ))
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn ui_dist() -> PathBuf {
    workspace().join("ui/dist")
}

/// Where screenshots go: `$SIFT_E2E_SHOTS`, else `bench-out/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("SIFT_E2E_SHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("bench-out/screenshots"))
}

/// A temporary copy of `tests/fixtures/notes` and an empty data folder.
pub struct Folders {
    _tmp: tempfile::TempDir,
    pub notes: PathBuf,
    pub data: PathBuf,
    pub root: PathBuf,
}

impl Folders {
    pub fn new() -> Folders {
        let tmp = tempfile::Builder::new()
            .prefix("sift-e2e-")
            .tempdir()
            .expect("temp dir");
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        let notes = root.join("notes");
        copy_dir(&workspace().join("tests/fixtures/notes"), &notes);
        let data = root.join("data");
        std::fs::create_dir_all(&data).unwrap();
        Folders {
            _tmp: tmp,
            notes,
            data,
            root,
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A child process in its own process group, ended with the group.
struct Group(Child);

impl Group {
    fn spawn(cmd: &mut Command) -> std::io::Result<Group> {
        cmd.process_group(0).spawn().map(Group)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let pgid = format!("-{}", self.0.id());
        let kill = |signal: &str| {
            Command::new("kill")
                .args([signal, "--", &pgid])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        kill("-TERM");
        let deadline = Instant::now() + Duration::from_secs(3);
        // `kill -0` succeeds while any process of the group is alive.
        while Instant::now() < deadline && kill("-0") {
            let _ = self.0.try_wait();
            std::thread::sleep(Duration::from_millis(50));
        }
        kill("-KILL");
        let _ = self.0.wait();
    }
}

/// `N` distinct free ports. The listeners are all held until every port is
/// chosen: taken one after another, a port freed by the first could come back
/// as the second (tauri-driver and WebKitWebDriver on one port: "Unable to
/// listen for HTTP server").
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("a bound port").port())
}

/// Settings of one launch.
#[derive(Default)]
pub struct Launch {
    /// Set `SIFT_NOTES_DIR` to the fixture copy (skips the welcome screen).
    pub with_notes: bool,
    /// `SIFT_EDITOR` for the app.
    pub editor: Option<String>,
    /// `SIFT_PDF_VIEWER` for the app.
    pub pdf_viewer: Option<String>,
    /// Start without the local model: no `SIFT_MODEL_DIR`, and the user cache
    /// (where a download goes) is the test's empty `xdg-cache`.
    pub no_model: bool,
    /// More environment for the app (download sources, `HOME`).
    pub env: Vec<(String, std::ffi::OsString)>,
    /// Command-line arguments of the app.
    pub args: Vec<String>,
    /// Run a system tray host on the display (trayer), so the app's tray icon
    /// is shown and can be clicked.
    pub tray_host: bool,
}

/// The app in a window, with its WebDriver session.
pub struct App {
    pub driver: WebDriver,
    // Dropped in this order: the driver group (driver, app), then the display.
    driver_group: Group,
    _tray_host: Option<Group>,
    _xvfb: Group,
    pub log: PathBuf,
    /// The app's X display (`:N`), for tools that drive X directly (xdotool).
    pub display: String,
}

impl App {
    /// Starts Xvfb, tauri-driver and the app with `folders`.
    pub async fn launch(tools: &Tools, folders: &Folders, launch: Launch) -> App {
        let started = Instant::now();
        let (xvfb, display) = start_xvfb();
        let tray_host = launch.tray_host.then(|| {
            let mut cmd = Command::new("trayer");
            cmd.args(["--edge", "top", "--align", "right", "--widthtype", "pixel"])
                .args(["--width", "120", "--height", "24", "--SetDockType", "false"])
                .env("DISPLAY", &display)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            Group::spawn(&mut cmd).expect("start trayer (apt-get install trayer)")
        });
        let [port, native_port] = free_ports();
        let log = folders.root.join(format!("app-{port}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(&tools.tauri_driver);
        cmd.args(["--port", &port.to_string()])
            .args(["--native-port", &native_port.to_string()])
            .arg("--native-driver")
            .arg(&tools.webkit_driver)
            .env("DISPLAY", &display)
            .env("SIFT_DATA_DIR", &folders.data)
            .env("SIFT_MODEL_DIR", &tools.model_dir)
            // A keychain service of our own: never touch the user's keys.
            .env("SIFT_KEYRING_SERVICE", "sift-e2e")
            // The webview's own storage (localStorage, caches) starts empty too.
            .env("XDG_DATA_HOME", folders.root.join("xdg-data"))
            .env("XDG_CACHE_HOME", folders.root.join("xdg-cache"))
            .env("XDG_CONFIG_HOME", folders.root.join("xdg-config"))
            .env_remove("SIFT_NOTES_DIR")
            .env_remove("SIFT_EDITOR")
            .env_remove("SIFT_PDF_VIEWER")
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        if launch.with_notes {
            cmd.env("SIFT_NOTES_DIR", &folders.notes);
        }
        if let Some(editor) = &launch.editor {
            cmd.env("SIFT_EDITOR", editor);
        }
        if let Some(viewer) = &launch.pdf_viewer {
            cmd.env("SIFT_PDF_VIEWER", viewer);
        }
        if launch.no_model {
            cmd.env_remove("SIFT_MODEL_DIR");
        }
        for (name, value) in &launch.env {
            cmd.env(name, value);
        }
        let group = Group::spawn(&mut cmd).expect("start tauri-driver");
        // tauri-driver starts WebKitWebDriver itself; both must listen.
        wait_for_port(port);
        wait_for_port(native_port);

        let mut caps = Capabilities::new();
        caps.set("browserName", "wry").unwrap();
        caps.set(
            "tauri:options",
            json!({ "application": APP, "args": launch.args }),
        )
        .unwrap();
        let driver = WebDriver::new(format!("http://127.0.0.1:{port}"), caps)
            .await
            .unwrap_or_else(|e| panic!("no WebDriver session: {e}\n{}", read(&log)));
        let app = App {
            driver,
            driver_group: group,
            _tray_host: tray_host,
            _xvfb: xvfb,
            log,
            display,
        };
        app.wait_js(
            "the UI to load",
            "return !!document.querySelector('#welcome, #search-input')",
        )
        .await;
        eprintln!("e2e: app up in {:.1}s", started.elapsed().as_secs_f64());
        app
    }

    /// Runs `script` in the page and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.driver
            .execute(script.to_string(), Vec::<Value>::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
            .json()
            .clone()
    }

    /// Polls `script` until it returns something truthy; returns that.
    pub async fn wait_js(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let v = self.js(script).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Object(_) => true,
            };
            if truthy {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\napp log:\n{}",
                read(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Calls a shell command the way the UI does; `Ok(value)` or `Err({code, message})`.
    pub async fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        let script = r#"
            const [cmd, args, done] = arguments;
            window.__TAURI_INTERNALS__.invoke(cmd, args)
                .then((v) => done({ ok: v === undefined ? null : v }), (e) => done({ err: e }));
        "#;
        let out = self
            .driver
            .execute_async(script, vec![json!(cmd), args])
            .await
            .unwrap_or_else(|e| panic!("invoke {cmd} failed to run: {e}"))
            .json()
            .clone();
        match out.get("err") {
            Some(err) => Err(err.clone()),
            None => Ok(out.get("ok").cloned().unwrap_or(Value::Null)),
        }
    }

    /// Waits until indexing is over and `notes` notes are indexed with vectors.
    pub async fn wait_indexed(&self, notes: u64) -> Value {
        let deadline = Instant::now() + INDEX_TIMEOUT;
        loop {
            let status = self.invoke("status", json!({})).await.expect("status");
            let done = !status["indexing"].as_bool().unwrap_or(true)
                && status["notes"].as_u64() >= Some(notes)
                && status["vectors"].as_u64() > Some(0)
                && self.js("return !document.querySelector('#progress')").await == json!(true);
            if done {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "indexing did not finish: {status}\napp log:\n{}",
                read(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn el(&self, css: &str) -> WebElement {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(el) = self.driver.find(By::Css(css)).await {
                return el;
            }
            assert!(Instant::now() < deadline, "no element {css}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks a radio button or checkbox until it is checked. A click lands
    /// where the element was when it was found: a part of the page that
    /// finishes loading meanwhile (a banner, a count) can move it away, and
    /// the click then hits nothing that reacts (CI, 2026-12-03: after a click
    /// on a provider radio its Switch button never came, most likely so).
    pub async fn choose(&self, css: &str) {
        let deadline = Instant::now() + TIMEOUT;
        let checked = format!("return document.querySelector({css:?})?.checked === true");
        loop {
            self.click(css).await;
            if self.js(&checked).await == Value::Bool(true) {
                return;
            }
            assert!(Instant::now() < deadline, "{css} stays unchecked");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        self.el(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Replaces the text of an input the way a user does (select all, type).
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.el(css).await;
        el.click().await.unwrap();
        el.send_keys(Key::Control + "a").await.unwrap();
        el.send_keys(Key::Backspace).await.unwrap();
        if !text.is_empty() {
            el.send_keys(text).await.unwrap();
        }
    }

    /// Switches view with the nav button `#nav-<view>`.
    pub async fn nav(&self, view: &str) {
        self.click(&format!("#nav-{view}")).await;
        self.wait_js(
            &format!("the {view} view"),
            // A view still loading (aria-busy) may grow and move what the
            // next click aims at.
            &format!("return document.querySelector('#nav-{view}').getAttribute('aria-current') === 'page' && !document.querySelector('.page[aria-busy=\"true\"]')"),
        )
        .await;
    }

    /// Types `text` in the search box and waits for results (or the no-results
    /// state) for exactly that text; returns the result rows.
    pub async fn search(&self, text: &str) -> Vec<Row> {
        self.type_into("#search-input", text).await;
        self.settled_results().await
    }

    /// Waits for the shown results to stop changing, then returns them.
    pub async fn settled_results(&self) -> Vec<Row> {
        let script = r#"
            if (document.querySelector('.searchbar.busy')) return null;
            const rows = [...document.querySelectorAll('.result')].map((r) => ({
                path: r.dataset.path, line: Number(r.dataset.line),
                title: r.querySelector('.result-title')?.textContent ?? '',
                snippet: r.querySelector('.result-snippet')?.textContent ?? '',
            }));
            if (rows.length === 0 && !document.querySelector('#no-results')) return null;
            return JSON.stringify(rows);
        "#;
        // Two equal readings 400 ms apart: the debounced search has landed.
        let mut last = String::new();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let now = self.js(script).await;
            if let Value::String(s) = now {
                if s == last {
                    return serde_json::from_str(&s).unwrap();
                }
                last = s;
            }
            assert!(Instant::now() < deadline, "search results did not settle");
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }

    /// Waits until the results on screen satisfy `done`, without touching the
    /// query (the UI re-runs it when notes change); returns them.
    pub async fn wait_results(&self, what: &str, done: impl Fn(&[Row]) -> bool) -> Vec<Row> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let rows = self.settled_results().await;
            if done(&rows) {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {rows:?}\napp log:\n{}",
                read(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Saves WebDriver's capture of the window as `<screenshot_dir>/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        // Let the last change paint: two animation frames.
        self.driver
            .execute_async(
                "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                Vec::<Value>::new(),
            )
            .await
            .expect("the page renders frames");
        let path = dir.join(format!("{name}.png"));
        let png = self.driver.screenshot_as_png().await.expect("screenshot");
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Whether a JavaScript dialog (alert, confirm) is open.
    pub async fn alert_open(&self) -> bool {
        self.driver.get_alert_text().await.is_ok()
    }

    /// Ends the session (closing the app), then the driver and the display.
    pub async fn quit(self) {
        let App {
            driver,
            driver_group,
            _tray_host,
            _xvfb,
            ..
        } = self;
        let _ = driver.quit().await;
        drop(driver_group);
        drop(_tray_host);
        drop(_xvfb);
    }
}

/// One search result as shown.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Row {
    pub path: String,
    pub line: u64,
    pub title: String,
    pub snippet: String,
}

pub fn paths(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|r| r.path.as_str()).collect()
}

fn start_xvfb() -> (Group, String) {
    let mut cmd = Command::new("Xvfb");
    cmd.args([
        "-displayfd",
        "1",
        "-screen",
        "0",
        "1280x800x24",
        "-nolisten",
        "tcp",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut group = Group::spawn(&mut cmd).expect("start Xvfb");
    let stdout = group.0.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let n: u32 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("Xvfb said {line:?}"));
    (group, format!(":{n}"))
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "no WebDriver listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
