//! Where indexing's heavy work runs: a thread pool of lowered priority whose
//! size follows the user's CPU setting, so that a search (normal priority,
//! global pool) is served first while notes are read and embedded.
//!
//! Reading and chunking notes and embedding documents with the local model go
//! through [`install`]; embedding a query does not. The pool's threads lower
//! their own priority when they start (Linux: nice 10 per thread; macOS:
//! background band). Elsewhere priority is left as it is. On battery the pool
//! shrinks to one thread (`crate::power`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How much of the machine an index run may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuShare {
    /// Every core.
    #[default]
    All,
    /// Half of the cores (at least one).
    Half,
    /// One core.
    One,
}

impl CpuShare {
    /// Threads for this share on this machine.
    pub fn threads(self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        match self {
            CpuShare::All => cores,
            CpuShare::Half => (cores / 2).max(1),
            CpuShare::One => 1,
        }
    }
}

/// Threads the next background work may use (set by each index run).
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets the share of the CPU background work uses from now on.
pub fn set_share(share: CpuShare) {
    THREADS.store(share.threads(), Ordering::SeqCst);
}

/// Threads background work uses now: the set share, or one on battery.
pub fn threads() -> usize {
    let chosen = match THREADS.load(Ordering::SeqCst) {
        0 => CpuShare::All.threads(),
        n => n,
    };
    threads_for(chosen, crate::power::on_battery())
}

/// On battery an index run keeps to one core whatever the setting; asked
/// before every batch, so unplugging slows a run down at once.
fn threads_for(chosen: usize, on_battery: bool) -> usize {
    if on_battery {
        1
    } else {
        chosen
    }
}

/// Runs `op` on the background pool (parallel iterators inside it use that
/// pool's threads). Falls back to the calling thread's pool if a pool cannot
/// be made.
pub fn install<R: Send>(op: impl FnOnce() -> R + Send) -> R {
    install_with(threads(), op)
}

/// [`install`] on a pool of `threads` threads (at least one), for work that
/// runs beside other work of the same run and shares the run's threads
/// with it.
pub fn install_with<R: Send>(threads: usize, op: impl FnOnce() -> R + Send) -> R {
    install_on(Role::Work, threads, op)
}

/// [`install_with`] on pools of their own, for adds to the vector graph made
/// beside embedding. On the embedding's pool, a thread waiting inside an add
/// (holding the vector index's write lock) picks up an embedding task
/// meanwhile and keeps the lock for its length: searches stalled 270 ms.
pub fn install_for_graph<R: Send>(threads: usize, op: impl FnOnce() -> R + Send) -> R {
    install_on(Role::Graph, threads, op)
}

/// What a pool is for: work of one kind never waits inside work of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    Work,
    Graph,
}

fn install_on<R: Send>(role: Role, threads: usize, op: impl FnOnce() -> R + Send) -> R {
    if on_background_thread() {
        return op();
    }
    match pool(role, threads.max(1)) {
        Some(pool) => {
            let _running = Running::start();
            pool.install(op)
        }
        None => op(),
    }
}

/// Background work in progress on the pools (calls of [`install_with`] and
/// [`install_for_graph`]).
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Counts one call of background work for as long as it lives.
struct Running;

impl Running {
    fn start() -> Running {
        RUNNING.fetch_add(1, Ordering::SeqCst);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether background work is running now: here, or in another Sift process
/// whose index run wrote to the store within [`ELSEWHERE_WINDOW`] (its threads
/// hold the cores just the same).
pub fn busy() -> bool {
    RUNNING.load(Ordering::SeqCst) > 0 || since_work_elsewhere() < ELSEWHERE_WINDOW
}

/// How long after another process's last write to the store searches still
/// assume it is indexing: an embedding batch lands every second or two.
const ELSEWHERE_WINDOW: Duration = Duration::from_secs(3);

/// When work elsewhere was last seen, in milliseconds after [`epoch`] plus one
/// (0: never).
static ELSEWHERE_SEEN: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Records that another process's index run just wrote to the store (a
/// search found the store moved without this process writing).
pub fn note_work_elsewhere() {
    let ms = epoch().elapsed().as_millis() as u64 + 1;
    ELSEWHERE_SEEN.store(ms, Ordering::SeqCst);
}

fn since_work_elsewhere() -> Duration {
    match ELSEWHERE_SEEN.load(Ordering::SeqCst) {
        0 => Duration::MAX,
        seen => epoch()
            .elapsed()
            .saturating_sub(Duration::from_millis(seen - 1)),
    }
}

/// Runs a search's own heavy work (embedding a query with the local model):
/// on the global pool when the machine is idle, on one normal-priority thread
/// while background work runs. A parallel step wakes a pool thread, which then
/// waits for a core the index threads hold; a query makes dozens of such steps,
/// so under indexing its time was mostly waiting (BENCHMARKS.md "Search while
/// indexing"). On one thread it is scheduled once.
pub fn foreground<R: Send>(op: impl FnOnce() -> R + Send) -> R {
    if !busy() || on_background_thread() {
        return op();
    }
    match search_thread() {
        Some(pool) => pool.install(op),
        None => op(),
    }
}

/// One long-lived thread at normal priority for searches' own work: the
/// second core of an idle search (`search::second_thread`), the whole of a
/// query's embedding while background work runs ([`foreground`]). Kept, not
/// spawned per search, so starting work on it costs a wake-up and its
/// remembered word stems stay warm. `None` if it could not be started.
pub(crate) fn search_thread() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "sift-search".to_string())
            .build()
            .ok()
    })
    .as_ref()
}

thread_local! {
    static BACKGROUND: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn on_background_thread() -> bool {
    BACKGROUND.with(|b| b.get())
}

/// One pool per role and thread count, made on first use and kept (a pool
/// cannot be resized; the setting has three values).
fn pool(role: Role, threads: usize) -> Option<Arc<rayon::ThreadPool>> {
    type Pools = HashMap<(Role, usize), Arc<rayon::ThreadPool>>;
    static POOLS: OnceLock<Mutex<Pools>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(pool) = pools.get(&(role, threads)) {
        return Some(pool.clone());
    }
    let name = match role {
        Role::Work => "sift-index",
        Role::Graph => "sift-graph",
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{name}-{i}"))
        .start_handler(|_| {
            BACKGROUND.with(|b| b.set(true));
            lower_this_thread_priority();
        })
        .build()
        .ok()?;
    let pool = Arc::new(pool);
    pools.insert((role, threads), pool.clone());
    Some(pool)
}

/// Lowers the calling thread's scheduling priority (never raises it).
pub(crate) fn lower_this_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id; failure
    // (e.g. a sandbox refusing it) leaves the priority as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        // Linux keeps a nice value per thread.
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
    #[cfg(target_os = "macos")]
    // SAFETY: as above; PRIO_DARWIN_THREAD with 0 is the calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_DARWIN_THREAD, 0, libc::PRIO_DARWIN_BG);
    }
}

/// The calling thread's nice value (Linux), for tests.
#[cfg(target_os = "linux")]
pub fn this_thread_nice() -> i32 {
    // SAFETY: reads the calling thread's own priority.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::getpriority(libc::PRIO_PROCESS, tid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_map_to_thread_counts() {
        let cores = CpuShare::All.threads();
        assert!(cores >= 1);
        assert_eq!(CpuShare::One.threads(), 1);
        assert_eq!(CpuShare::Half.threads(), (cores / 2).max(1));
    }

    #[test]
    fn battery_keeps_indexing_to_one_core() {
        assert_eq!(threads_for(8, true), 1);
        assert_eq!(threads_for(8, false), 8);
        assert_eq!(threads_for(1, false), 1);
    }

    #[test]
    fn background_work_runs_on_lowered_threads_of_the_set_size() {
        let p = pool(Role::Work, 1).unwrap();
        let (n, nice) = p.install(|| (rayon::current_num_threads(), this_nice()));
        assert_eq!(n, 1);
        #[cfg(target_os = "linux")]
        assert!(nice >= 10, "background thread nice {nice}");
        let _ = nice;
        // The caller's own priority is untouched.
        #[cfg(target_os = "linux")]
        assert!(this_nice() < 10);
    }

    #[test]
    fn searches_keep_to_one_thread_only_while_background_work_runs() {
        let beside = install_with(1, || {
            // What a search on another thread sees meanwhile.
            std::thread::spawn(|| (busy(), foreground(rayon::current_num_threads)))
                .join()
                .unwrap()
        });
        assert_eq!(beside, (true, 1));
    }

    #[test]
    fn another_process_writing_counts_as_background_work_for_a_while() {
        note_work_elsewhere();
        assert!(busy());
        assert!(since_work_elsewhere() < ELSEWHERE_WINDOW);
        // Seen long ago: no longer.
        ELSEWHERE_SEEN.store(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(5));
        assert!(since_work_elsewhere() >= Duration::from_millis(5));
    }

    fn this_nice() -> i32 {
        #[cfg(target_os = "linux")]
        return this_thread_nice();
        #[cfg(not(target_os = "linux"))]
        0
    }
}
