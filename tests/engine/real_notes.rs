//! Real notes never break search (issue 10), on notes nobody here wrote.
//!
//! HELD-OUT SET: tests/fixtures/realnotes/questions.json is a held-out check.
//! Never tune ranking, fusion, weights, stemming or chunking on it, and never
//! edit a question because a change made it pass or fail: tune on
//! tests/fixtures/eval (hybrid_quality.rs) and only report these figures. The
//! assertions on it are sanity floors, not quality targets.
//!
//! Data: tests/fixtures/realnotes, 339 Markdown pages of the OpenTelemetry
//! website (CC BY 4.0; SOURCE.md says which commit, what was copied and which
//! messy Unicode it holds): English docs and blog posts plus Chinese, Japanese,
//! Portuguese, Spanish and Ukrainian pages. Front matter in several YAML
//! shapes, Hugo shortcodes, GitHub callouts, CJK paragraphs with no spaces,
//! U+3000, U+200B, U+00A0, curly quotes, emoji.
//!
//! The test copies the notes to a temp folder, indexes them with the real local
//! model (SIFT_MODEL_DIR) and then:
//! 1. For every note, searches its title and one sentence of its body (the
//!    first body line outside code blocks with at least 6 words, else the first
//!    with at least 12 characters, clipped to 300 characters) in keyword,
//!    semantic and hybrid mode: no search may panic or return an error.
//! 2. Each note must be in the top 5 of a keyword search for its own title. A
//!    title shared by several notes (e.g. "Components" is both a concept page
//!    and a Collector page; an untranslated title in a translation folder)
//!    cannot put every namesake first, so a hit on any note with the same title
//!    counts, and the report says how many needed that.
//! 3. Runs the held-out questions and prints hit@5 and MRR@10 per mode and kind.
//!
//! Panics are caught per search (so one bug does not hide the others), grouped
//! by source location and reported; the test fails if there were any.
//!
//! `cargo test --test engine real_notes:: -- --nocapture` prints the report;
//! SIFT_EVAL_VERBOSE=1 also prints every held-out query's rank in each mode.

use crate::common;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use common::*;
use serde::Deserialize;
use sift::{Engine, Mode, Query};

const MODES: [Mode; 3] = [Mode::Keyword, Mode::Semantic, Mode::Hybrid];
const KINDS: [&str; 2] = ["keyword", "question"];
const TITLE_TOP: usize = 5;
const LIMIT: usize = 10;
const HIT_AT: usize = 5;
/// Sanity floors for the held-out set (far below what works; not targets).
const MIN_SEMANTIC_QUESTION_HIT5: f64 = 0.3;
const MIN_KEYWORD_KEYWORD_HIT5: f64 = 0.5;

#[derive(Deserialize)]
struct EvalQuery {
    query: String,
    kind: String,
    relevant: Vec<String>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/realnotes")
}

/// Copies the corpus's folders (the notes), not the files beside them
/// (SOURCE.md, LICENSE, questions.json), which are not part of it.
fn copy_notes(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        }
    }
}

/// Every `.md` file under `root`, as `/`-separated paths relative to it, sorted.
fn note_paths(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                let rel = path.strip_prefix(root).unwrap();
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// The YAML front matter (if any) and the rest of the note.
fn split_front_matter(text: &str) -> (Option<&str>, &str) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return (None, text);
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']);
        if bare == "---" || bare == "..." {
            return (Some(&rest[..offset]), &rest[offset + line.len()..]);
        }
        offset += line.len();
    }
    (None, text)
}

fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The title a reader sees: front matter `title` (a string, or a number such
/// as `title: 2024`), else the first `# ` heading outside code blocks, else the
/// file name without its extension.
fn expected_title(text: &str, rel_path: &str) -> String {
    let (yaml, body) = split_front_matter(text);
    if let Some(yaml) = yaml {
        if let Ok(value) = serde_norway::from_str::<serde_norway::Value>(yaml) {
            // `title: 2024` is a number to YAML but the reader sees "2024".
            let title = match value.get("title") {
                Some(serde_norway::Value::String(s)) => Some(s.clone()),
                Some(serde_norway::Value::Number(n)) => Some(n.to_string()),
                Some(serde_norway::Value::Bool(b)) => Some(b.to_string()),
                _ => None,
            };
            if let Some(title) = title {
                let title = collapse_ws(&title);
                if !title.is_empty() {
                    return title;
                }
            }
        }
    }
    let mut fence = false;
    for line in body.lines() {
        let t = line.trim();
        if t.starts_with("```") || t.starts_with("~~~") {
            fence = !fence;
        } else if !fence {
            if let Some(h) = t.strip_prefix("# ") {
                let h = collapse_ws(h);
                if !h.is_empty() {
                    return h;
                }
            }
        }
    }
    let name = rel_path.rsplit('/').next().unwrap_or(rel_path);
    name.rsplit_once('.')
        .map_or(name, |(stem, _)| stem)
        .to_string()
}

/// One sentence of the body, chosen deterministically: the first line outside
/// front matter and code blocks with at least 6 words, else (CJK text has few
/// spaces) the first with at least 12 non-space characters; at most 300 chars.
fn body_sentence(text: &str) -> Option<String> {
    let (_, body) = split_front_matter(text);
    let mut fence = false;
    let mut fallback = None;
    for line in body.lines() {
        let t = line.trim();
        if t.starts_with("```") || t.starts_with("~~~") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        if t.split_whitespace().count() >= 6 {
            return Some(t.chars().take(300).collect());
        }
        if fallback.is_none() && t.chars().filter(|c| !c.is_whitespace()).count() >= 12 {
            fallback = Some(t.chars().take(300).collect());
        }
    }
    fallback
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Keyword => "keyword",
        Mode::Semantic => "semantic",
        Mode::Hybrid => "hybrid",
    }
}

fn norm_title(t: &str) -> String {
    collapse_ws(t).to_lowercase()
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn rank_str(r: Option<usize>) -> String {
    r.map_or("-".to_string(), |r| r.to_string())
}

fn clip(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

thread_local! {
    /// Set while this test's searches run on this thread: the panic hook then
    /// records the panic's location here instead of printing a backtrace.
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Installs a panic hook that records panics on threads that set CAPTURING and
/// hands every other panic (other tests, worker threads) to the previous hook.
/// Dropping the guard puts the previous hook back.
struct HookGuard(Arc<Hook>);

impl HookGuard {
    fn install() -> HookGuard {
        let previous: Arc<Hook> = Arc::new(std::panic::take_hook());
        let forward = previous.clone();
        std::panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(|c| c.get()) {
                let location = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()));
                LAST_PANIC.with(|p| *p.borrow_mut() = location);
            } else {
                forward(info);
            }
        }));
        HookGuard(previous)
    }
}

impl Drop for HookGuard {
    fn drop(&mut self) {
        let _ = std::panic::take_hook();
        let previous = self.0.clone();
        std::panic::set_hook(Box::new(move |info| previous(info)));
    }
}

/// What went wrong across all searches, grouped for the report.
#[derive(Default)]
struct Failures {
    /// "file:line" -> (count, first example with its message).
    panics: BTreeMap<String, (usize, String)>,
    /// error message -> (count, first example).
    errors: BTreeMap<String, (usize, String)>,
    searches: usize,
}

impl Failures {
    fn total_panics(&self) -> usize {
        self.panics.values().map(|(n, _)| n).sum()
    }
    fn total_errors(&self) -> usize {
        self.errors.values().map(|(n, _)| n).sum()
    }
}

/// Runs one search, turning a panic into a recorded failure. Returns the
/// result paths, or None if it panicked or failed.
fn run_search(
    engine: &Engine,
    text: &str,
    mode: Mode,
    limit: usize,
    what: &str,
    failures: &mut Failures,
) -> Option<Vec<String>> {
    failures.searches += 1;
    let query = Query {
        mode,
        limit,
        ..Query::new(text)
    };
    CAPTURING.with(|c| c.set(true));
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| engine.search(&query)));
    CAPTURING.with(|c| c.set(false));
    let example = format!("{what} in {} mode: {:?}", mode_name(mode), clip(text, 80));
    match outcome {
        Ok(Ok(results)) => Some(paths(&results.hits)),
        Ok(Err(e)) => {
            let entry = failures
                .errors
                .entry(clip(&e.to_string(), 160))
                .or_insert((0, example));
            entry.0 += 1;
            None
        }
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            // Group by where it panicked: the message holds note text and offsets.
            let location = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "(location not recorded)".into());
            let entry = failures.panics.entry(location).or_insert((
                0,
                format!("{example}\n        panic: {}", clip(&message, 200)),
            ));
            entry.0 += 1;
            None
        }
    }
}

#[test]
fn every_real_note_is_searchable_without_panics_and_found_by_its_title() {
    let corpus = corpus_dir();
    let queries: Vec<EvalQuery> =
        serde_json::from_str(&std::fs::read_to_string(corpus.join("questions.json")).unwrap())
            .expect("questions.json parses");
    assert!(queries.iter().all(|q| KINDS.contains(&q.kind.as_str())));

    let notes = tempfile::tempdir().unwrap();
    copy_notes(&corpus, notes.path());
    let rel_paths = note_paths(notes.path());
    assert!(
        rel_paths.len() >= 300,
        "the corpus has {} notes",
        rel_paths.len()
    );
    for q in &queries {
        for rel in &q.relevant {
            assert!(
                rel_paths.contains(rel),
                "questions.json names a missing note: {rel}"
            );
        }
    }

    let t = open(notes.path(), Some(local_model()));
    let started = Instant::now();
    let report = index(&t.engine);
    let index_secs = started.elapsed().as_secs_f64();

    let mut table = String::new();
    writeln!(
        table,
        "\nReal notes (tests/fixtures/realnotes): {} notes found, {} indexed, {} chunks embedded in {index_secs:.1}s",
        report.files_seen, report.notes_indexed, report.chunks_embedded
    )
    .unwrap();
    if !report.skipped.is_empty() {
        writeln!(table, "Skipped or failed while indexing:").unwrap();
        for (path, reason) in &report.skipped {
            writeln!(table, "  {path}: {reason}").unwrap();
        }
    }

    // Titles and sentences, read the way a user would see them.
    let texts: Vec<String> = rel_paths
        .iter()
        .map(|p| std::fs::read_to_string(notes.path().join(p)).expect("notes are UTF-8"))
        .collect();
    let titles: Vec<String> = rel_paths
        .iter()
        .zip(&texts)
        .map(|(p, text)| expected_title(text, p))
        .collect();
    let title_of: HashMap<&str, String> = rel_paths
        .iter()
        .zip(&titles)
        .map(|(p, t)| (p.as_str(), norm_title(t)))
        .collect();

    let guard = HookGuard::install();
    let mut failures = Failures::default();

    // 1 and 2: every note, its title and a sentence, every mode.
    let started = Instant::now();
    let mut title_self = 0;
    let mut title_namesake = Vec::new();
    let mut title_missed = Vec::new();
    // [mode] -> notes found in the top 5 by their own title / sentence.
    let mut title_found = [0usize; 3];
    let mut sentence_found = [0usize; 3];
    let mut sentences = 0;
    for (i, rel) in rel_paths.iter().enumerate() {
        let title = &titles[i];
        for (m, &mode) in MODES.iter().enumerate() {
            let hits = run_search(
                &t.engine,
                title,
                mode,
                LIMIT,
                &format!("{rel} title"),
                &mut failures,
            );
            let Some(hits) = hits else { continue };
            let top = &hits[..hits.len().min(TITLE_TOP)];
            if top.contains(rel) {
                title_found[m] += 1;
            }
            if mode == Mode::Keyword {
                if top.contains(rel) {
                    title_self += 1;
                } else if let Some(other) = top
                    .iter()
                    .find(|p| title_of.get(p.as_str()) == Some(&norm_title(title)))
                {
                    title_namesake.push(format!(
                        "  {rel} {title:?}: namesake {other} ranked instead"
                    ));
                } else {
                    title_missed.push(format!(
                        "  {rel} {title:?}: missed, top {TITLE_TOP} = {top:?}"
                    ));
                }
            }
        }
        if let Some(sentence) = body_sentence(&texts[i]) {
            sentences += 1;
            for (m, &mode) in MODES.iter().enumerate() {
                let what = format!("{rel} sentence");
                if let Some(hits) =
                    run_search(&t.engine, &sentence, mode, LIMIT, &what, &mut failures)
                {
                    if hits.iter().take(HIT_AT).any(|p| p == rel) {
                        sentence_found[m] += 1;
                    }
                }
            }
        }
    }
    let per_note_secs = started.elapsed().as_secs_f64();
    let per_note_searches = failures.searches;

    writeln!(
        table,
        "Per-note searches: {per_note_searches} ({} notes x title + {sentences} sentences, x 3 modes) in {per_note_secs:.1}s",
        rel_paths.len()
    )
    .unwrap();
    writeln!(
        table,
        "  own title in the top {TITLE_TOP}:    keyword {}  semantic {}  hybrid {}  (of {})",
        title_found[0],
        title_found[1],
        title_found[2],
        rel_paths.len()
    )
    .unwrap();
    writeln!(
        table,
        "  own sentence in the top {HIT_AT}: keyword {}  semantic {}  hybrid {}  (of {sentences}; reported, not asserted)",
        sentence_found[0], sentence_found[1], sentence_found[2]
    )
    .unwrap();
    writeln!(
        table,
        "  keyword title check: {title_self} found themselves, {} only a namesake, {} missed",
        title_namesake.len(),
        title_missed.len()
    )
    .unwrap();
    for line in title_namesake.iter().chain(&title_missed) {
        writeln!(table, "{line}").unwrap();
    }

    // 3: the held-out questions.
    let started = Instant::now();
    // outcomes[query][mode] = 1-based rank of the first relevant note in the top LIMIT.
    let outcomes: Vec<Vec<Option<usize>>> = queries
        .iter()
        .map(|q| {
            MODES
                .iter()
                .map(|&mode| {
                    run_search(
                        &t.engine,
                        &q.query,
                        mode,
                        LIMIT,
                        "held-out query",
                        &mut failures,
                    )
                    .and_then(|hits| {
                        hits.iter()
                            .take(LIMIT)
                            .position(|p| q.relevant.contains(p))
                            .map(|i| i + 1)
                    })
                })
                .collect()
        })
        .collect();
    let eval_secs = started.elapsed().as_secs_f64();
    drop(guard);

    // metrics[(kind, mode)] = (hit@5, MRR@10, queries)
    let mut metrics: ModeMetrics = BTreeMap::new();
    for kind in KINDS.iter().copied().chain(["all"]) {
        let idx: Vec<usize> = (0..queries.len())
            .filter(|&i| kind == "all" || queries[i].kind == kind)
            .collect();
        for (m, &mode) in MODES.iter().enumerate() {
            let hit = mean(
                idx.iter()
                    .map(|&i| f64::from(u8::from(outcomes[i][m].is_some_and(|r| r <= HIT_AT)))),
            );
            let mrr = mean(
                idx.iter()
                    .map(|&i| outcomes[i][m].map_or(0.0, |r| 1.0 / r as f64)),
            );
            metrics.insert((kind, mode_name(mode)), (hit, mrr, idx.len()));
        }
    }
    writeln!(
        table,
        "\nHeld-out questions (never tuned on; {} queries x 3 modes in {eval_secs:.1}s)",
        queries.len()
    )
    .unwrap();
    write_metrics_table(&mut table, &KINDS, ("hit5", "MRR"), &metrics);
    if std::env::var_os("SIFT_EVAL_VERBOSE").is_some() {
        writeln!(
            table,
            "Every held-out query (rank of the first relevant note in the top {LIMIT}):"
        )
        .unwrap();
        for (q, o) in queries.iter().zip(&outcomes) {
            writeln!(
                table,
                "  [{}] {:?} kw={} sem={} hyb={} relevant={:?}",
                q.kind,
                q.query,
                rank_str(o[0]),
                rank_str(o[1]),
                rank_str(o[2]),
                q.relevant
            )
            .unwrap();
        }
    }

    writeln!(
        table,
        "\nSearches: {} in all; {} panicked, {} returned an error",
        failures.searches,
        failures.total_panics(),
        failures.total_errors()
    )
    .unwrap();
    for (what, (n, example)) in &failures.panics {
        writeln!(table, "  PANIC x{n} at {what}\n      e.g. {example}").unwrap();
    }
    for (what, (n, example)) in &failures.errors {
        writeln!(table, "  ERROR x{n}: {what}\n      e.g. {example}").unwrap();
    }
    println!("{table}");

    assert!(
        failures.panics.is_empty() && failures.errors.is_empty(),
        "{} of {} searches panicked and {} returned an error on real notes (grouped above)",
        failures.total_panics(),
        failures.searches,
        failures.total_errors()
    );
    assert!(
        report.skipped.is_empty(),
        "notes skipped or failed while indexing: {:?}",
        report.skipped
    );
    assert_eq!(
        report.notes_indexed,
        rel_paths.len(),
        "every note is indexed"
    );
    assert_eq!(report.chunks_without_vectors, 0, "every chunk has a vector");
    assert!(
        title_missed.is_empty(),
        "{} notes are not in the top {TITLE_TOP} of a keyword search for their own title (listed above)",
        title_missed.len()
    );
    let semantic_questions = metrics[&("question", "semantic")].0;
    assert!(
        semantic_questions > MIN_SEMANTIC_QUESTION_HIT5,
        "sanity: semantic hit@5 on held-out questions is {semantic_questions:.3}"
    );
    let keyword_keywords = metrics[&("keyword", "keyword")].0;
    assert!(
        keyword_keywords > MIN_KEYWORD_KEYWORD_HIT5,
        "sanity: keyword hit@5 on held-out keyword queries is {keyword_keywords:.3}"
    );
}
