//! Live watching, measured: time from saving a one-paragraph edit to that text
//! being returned by a search (p50, p95), in a folder of 5,000 notes with the
//! local model; and CPU time used by an idle `sift watch` over a minute.
//!
//! Figures, not pass/fail (target: p95 under 1 s). Usage:
//!
//! ```text
//! SIFT_MODEL_DIR=... cargo bench --bench watch_latency -- [--notes 5000] [--edits 40]
//!     [--idle-secs 60] [--dir target/bench-watch]
//! ```
//!
//! The folder and its index are kept in `--dir` (default `$CARGO_TARGET_DIR` or
//! `target`, then `bench-watch`), so only the first run pays for embedding the
//! folder. Each edit appends a new paragraph to a random note (written in place,
//! as most editors save). Three clocks stop: when a keyword search and the
//! default hybrid search return that note with the chunk holding the new text,
//! and when that chunk has its vector (searchable by meaning; a semantic-only
//! ranking of a long, mixed chunk is a question of chunking, not of latency).
//! Idle CPU is read from /proc for a real `sift watch` process (Linux).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sift::embed::local::LocalEmbedder;
use sift::embed::Embedder;
use sift::store::tables;
use sift::{Engine, Mode, Query, Settings, WatchOptions, Watcher};

struct Args {
    notes: usize,
    edits: usize,
    idle_secs: u64,
    dir: PathBuf,
}

fn parse_args() -> Args {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    let mut args = Args {
        notes: 5000,
        edits: 40,
        idle_secs: 60,
        dir: target.join("bench-watch"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match arg.as_str() {
            "--notes" => args.notes = value().parse().unwrap(),
            "--edits" => args.edits = value().parse().unwrap(),
            "--idle-secs" => args.idle_secs = value().parse().unwrap(),
            "--dir" => args.dir = PathBuf::from(value()),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

const TOPICS: &[(&str, &[&str])] = &[
    (
        "garden",
        &[
            "tomatoes",
            "compost",
            "seedlings",
            "raised beds",
            "watering",
            "mulch",
            "pruning roses",
        ],
    ),
    (
        "cooking",
        &[
            "risotto",
            "braising",
            "spice blends",
            "bread dough",
            "stock",
            "knife skills",
            "pickling",
        ],
    ),
    (
        "travel",
        &[
            "train tickets",
            "packing lists",
            "hostels",
            "visa forms",
            "night buses",
            "museums",
            "jet lag",
        ],
    ),
    (
        "finance",
        &[
            "budgets",
            "index funds",
            "tax returns",
            "invoices",
            "savings goals",
            "mortgage rates",
            "receipts",
        ],
    ),
    (
        "fitness",
        &[
            "interval runs",
            "stretching",
            "kettlebells",
            "rest days",
            "hydration",
            "squats",
            "cycling",
        ],
    ),
    (
        "work",
        &[
            "standups",
            "roadmaps",
            "code review",
            "hiring",
            "retrospectives",
            "deadlines",
            "one-on-ones",
        ],
    ),
    (
        "reading",
        &[
            "novels",
            "essays",
            "library holds",
            "annotations",
            "poetry",
            "biographies",
            "book club",
        ],
    ),
    (
        "music",
        &[
            "scales",
            "chord changes",
            "metronome practice",
            "recording",
            "guitar strings",
            "sight reading",
            "rehearsal",
        ],
    ),
    (
        "health",
        &[
            "sleep",
            "doctor visits",
            "allergies",
            "vitamins",
            "blood pressure",
            "dentist",
            "posture",
        ],
    ),
    (
        "home",
        &[
            "leaky taps",
            "paint colours",
            "shelves",
            "insulation",
            "cleaning rota",
            "boiler service",
            "furniture",
        ],
    ),
];

const VERBS: &[&str] = &[
    "planned",
    "reviewed",
    "noted",
    "tried",
    "compared",
    "scheduled",
    "fixed",
    "sketched",
];

/// One note: a title and two or three paragraphs on one topic.
fn note_text(rng: &mut StdRng, id: usize) -> String {
    let (topic, things) = TOPICS[id % TOPICS.len()];
    let mut text = format!("# {topic} notes {id}\n\n");
    for _ in 0..rng.random_range(2..4) {
        for _ in 0..rng.random_range(3..6) {
            let a = things[rng.random_range(0..things.len())];
            let b = things[rng.random_range(0..things.len())];
            let verb = VERBS[rng.random_range(0..VERBS.len())];
            text.push_str(&format!(
                "Today I {verb} {a} and thought about {b} for the {topic}. "
            ));
        }
        text.push_str("\n\n");
    }
    text
}

/// New paragraphs unlike anything in the folder, so a search can tell them apart.
const EDITS: &[&str] = &[
    "The lighthouse keeper replaced the foghorn diaphragm before the autumn gales reached the cape",
    "A volcanic eruption on the island sent ash over the fishing village for three days",
    "The orchestra's oboist taught the children how reeds are carved from cane",
    "Our beekeeping club found the queen had swarmed to the old chestnut tree",
    "The glassblower showed how a gather of molten glass becomes a thin wine goblet",
    "Astronomers at the observatory tracked a comet as it brightened near the horizon",
    "The blacksmith quenched the horseshoe in brine and fitted it to the mare",
    "A submarine cable repair ship lifted the broken fibre line from the sea floor",
];

fn prepare_folder(notes: &Path, count: usize) {
    let existing = std::fs::read_dir(notes).map_or(0, |d| d.count());
    if existing == count.div_ceil(100) {
        return;
    }
    let _ = std::fs::remove_dir_all(notes);
    let mut rng = StdRng::seed_from_u64(5000);
    for id in 0..count {
        let path = notes.join(format!("folder{:02}/note{id:05}.md", id / 100));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, note_text(&mut rng, id)).unwrap();
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let args = parse_args();
    let Some(model_dir) = std::env::var_os("SIFT_MODEL_DIR") else {
        eprintln!("watch_latency needs SIFT_MODEL_DIR (the all-MiniLM-L6-v2 folder)");
        return;
    };
    let notes = args.dir.join("notes");
    let data = args.dir.join("data");
    prepare_folder(&notes, args.notes);

    let model: Arc<dyn Embedder> = Arc::new(LocalEmbedder::load(Path::new(&model_dir)).unwrap());
    let engine = Arc::new(Engine::open_with(&data, Settings::default(), Some(model)).unwrap());
    let root = engine.add_folder(&notes).unwrap();
    let started = Instant::now();
    let report = engine
        .index(
            &|p| {
                if p.chunks_done % 512 == 0 && p.chunks_total > 0 {
                    eprint!("\rembedding {}/{}   ", p.chunks_done, p.chunks_total);
                }
            },
            &AtomicBool::new(false),
        )
        .unwrap();
    let status = engine.status().unwrap();
    println!(
        "folder: {} notes, {} chunks ({} embedded now, {:.0}s)",
        status.notes,
        status.chunks,
        report.chunks_embedded,
        started.elapsed().as_secs_f64()
    );

    // The watcher feeds the engine as `sift watch` does.
    let watcher = Watcher::start(std::slice::from_ref(&root), WatchOptions::default(), {
        let engine = engine.clone();
        move |changes| {
            let cancel = AtomicBool::new(false);
            if !changes.rescan.is_empty() {
                engine
                    .index_paths(&changes.rescan, &|_| {}, &cancel)
                    .unwrap();
            }
            if !changes.paths.is_empty() {
                engine
                    .index_changed(&changes.paths, &|_| {}, &cancel)
                    .unwrap();
            }
        }
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));

    let mut rng = StdRng::seed_from_u64(42);
    let mut semantic = Vec::new();
    let mut keyword = Vec::new();
    let mut hybrid = Vec::new();
    for i in 0..args.edits {
        let id = rng.random_range(0..args.notes);
        let path = notes.join(format!("folder{:02}/note{id:05}.md", id / 100));
        let paragraph = format!("{} (edit {i}).", EDITS[i % EDITS.len()]);
        let marker = format!("edit {i})");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!("{paragraph}\n\n"));
        let rel = sift::scan::relative_path(&path, &root);
        // What people type: the default hybrid search for the new words.
        let hybrid_query = Query::new(EDITS[i % EDITS.len()]);
        let keyword_query = Query {
            mode: Mode::Keyword,
            ..Query::new(format!("\"{}\"", EDITS[i % EDITS.len()]))
        };
        // Embed the query before the clock starts: a person types it later.
        engine.search(&hybrid_query).unwrap();

        let t0 = Instant::now();
        std::fs::write(&path, text).unwrap();
        let (mut seen_keyword, mut seen_hybrid) = (None, None);
        loop {
            let elapsed = t0.elapsed();
            let found = |q: &Query| {
                engine.search(q).unwrap().hits.iter().take(10).any(|h| {
                    h.path == rel
                        && engine
                            .store()
                            .read(|c| tables::load_chunks(c, &[h.chunk_id]))
                            .unwrap()
                            .first()
                            .is_some_and(|c| c.body.contains(&marker))
                })
            };
            if seen_keyword.is_none() && found(&keyword_query) {
                seen_keyword = Some(elapsed);
            }
            if seen_hybrid.is_none() && found(&hybrid_query) {
                seen_hybrid = Some(elapsed);
            }
            // Searchable by meaning: the new chunk is stored and has its vector.
            let embedded =
                seen_keyword.is_some() && engine.status().unwrap().chunks_without_vectors == 0;
            if let (Some(kw), Some(hy), true) = (seen_keyword, seen_hybrid, embedded) {
                keyword.push(kw.as_secs_f64() * 1000.0);
                hybrid.push(hy.as_secs_f64() * 1000.0);
                semantic.push(elapsed.as_secs_f64() * 1000.0);
                break;
            }
            assert!(
                elapsed < Duration::from_secs(30),
                "edit {i} never became searchable"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(300..800)));
    }
    drop(watcher);
    semantic.sort_by(f64::total_cmp);
    keyword.sort_by(f64::total_cmp);
    hybrid.sort_by(f64::total_cmp);
    println!(
        "edit -> found by hybrid search:      p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        percentile(&hybrid, 0.5),
        percentile(&hybrid, 0.95),
        hybrid.last().unwrap()
    );
    println!(
        "edit -> embedded, in vector index ({} edits): p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        semantic.len(),
        percentile(&semantic, 0.5),
        percentile(&semantic, 0.95),
        semantic.last().unwrap()
    );
    println!(
        "edit -> found by keyword:            p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        percentile(&keyword, 0.5),
        percentile(&keyword, 0.95),
        keyword.last().unwrap()
    );
    // Close the engine (saves vectors) before the real process opens the folder.
    drop(engine);

    idle_cpu(&data, &notes, &model_dir, args.idle_secs);
}

/// Runs a real `sift watch`, waits until it is up to date, then reads its CPU
/// time and context switches over `secs` of no changes.
fn idle_cpu(data: &Path, notes: &Path, model_dir: &std::ffi::OsStr, secs: u64) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sift"))
        .args(["watch", &notes.to_string_lossy()])
        .env("SIFT_DATA_DIR", data)
        .env("SIFT_MODEL_DIR", model_dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("up to date") {
            println!("sift watch: {line}");
            break;
        }
    }
    // Let start-up work (the model, the first reconcile) settle.
    std::thread::sleep(Duration::from_secs(2));
    let before = proc_sample(pid);
    std::thread::sleep(Duration::from_secs(secs));
    let after = proc_sample(pid);
    let ticks = clock_ticks_per_second();
    let cpu = (after.0 - before.0) as f64 / ticks;
    let switches = after.1 - before.1;
    println!(
        "idle sift watch over {secs} s: {:.3} s CPU ({:.3}% of one core), {} wake-ups ({:.1}/s), RSS {} MiB",
        cpu,
        cpu / secs as f64 * 100.0,
        switches,
        switches as f64 / secs as f64,
        after.2 / 1024
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = child.wait().unwrap();
    let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
    println!("sift watch stopped ({status}): {}", rest.join(" | "));
}

/// (utime + stime in clock ticks, context switches of all threads, RSS KiB).
fn proc_sample(pid: u32) -> (u64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the name.
    let cpu = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let mut switches = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if let Some(n) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                switches += n.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (cpu, switches, rss)
}

/// Clock ticks per second for /proc times (USER_HZ, 100 on Linux).
fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
