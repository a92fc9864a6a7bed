//! Asking the OS to read an index's files into its page cache ahead of use.
//!
//! A search reads the vector graph and the keyword postings at random: on a
//! cold page cache (after a boot) every read waits for the disk, and a
//! hybrid query at 1M chunks took 22 ms instead of 5 (BENCHMARKS.md, "Hybrid
//! latency at scale, fifth round"). A long-lived process (the app, `sift
//! watch`, the MCP server) asks the kernel, right after opening, to read
//! them in the background in large sequential reads, so that searches made
//! a few seconds later find them in memory. A one-shot `sift search` does
//! not: it reads only what its query needs.
//!
//! Only files that fit comfortably are asked for: together at most half the
//! memory the system has available, so that warming the index never pushes
//! out what the user is working with. The pages stay the kernel's to drop
//! (page cache, not the process's memory). Linux only (`posix_fadvise`);
//! elsewhere nothing is done.

use std::path::PathBuf;
use std::thread::JoinHandle;

/// How much of a file one advice covers: the kernel reads each part before
/// the next is asked for, so a search meanwhile is not queued behind a
/// whole gigabyte.
const PART_BYTES: u64 = 32 << 20;

/// What [`prefetch_in_background`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefetched {
    /// Files asked for.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Why nothing was asked for, when nothing was.
    pub skipped: Option<String>,
}

/// Asks the kernel to read `files` (missing ones are left out) into the
/// page cache, on a thread of its own; the handle tells what was asked for.
pub fn prefetch_in_background(files: Vec<PathBuf>) -> Option<JoinHandle<Prefetched>> {
    std::thread::Builder::new()
        .name("sift-prefetch".into())
        .spawn(move || prefetch(&files, available_memory()))
        .ok()
}

fn prefetch(files: &[PathBuf], available: Option<u64>) -> Prefetched {
    let sized: Vec<(&PathBuf, u64)> = files
        .iter()
        .filter_map(|f| Some((f, std::fs::metadata(f).ok().filter(|m| m.is_file())?.len())))
        .collect();
    let bytes: u64 = sized.iter().map(|(_, len)| len).sum();
    let Some(available) = available else {
        return Prefetched {
            skipped: Some("this system cannot be asked to read files ahead".into()),
            ..Prefetched::default()
        };
    };
    if bytes > available / 2 {
        return Prefetched {
            skipped: Some(format!(
                "{} MB of index is more than half of the {} MB of memory available",
                bytes >> 20,
                available >> 20
            )),
            ..Prefetched::default()
        };
    }
    let mut done = Prefetched::default();
    for (path, len) in sized {
        if advise_will_need(path, len) {
            done.files += 1;
            done.bytes += len;
        }
    }
    done
}

#[cfg(target_os = "linux")]
fn advise_will_need(path: &std::path::Path, len: u64) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut offset = 0;
    while offset < len {
        let part = PART_BYTES.min(len - offset);
        // SAFETY: an advice on an open descriptor; it reads nothing into
        // this process.
        let rc = unsafe {
            libc::posix_fadvise(
                file.as_raw_fd(),
                offset as libc::off_t,
                part as libc::off_t,
                libc::POSIX_FADV_WILLNEED,
            )
        };
        if rc != 0 {
            return false;
        }
        offset += part;
    }
    true
}

#[cfg(not(target_os = "linux"))]
fn advise_will_need(_path: &std::path::Path, _len: u64) -> bool {
    false
}

/// Memory the system could give without swapping (Linux: `MemAvailable`).
#[cfg(target_os = "linux")]
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(not(target_os = "linux"))]
fn available_memory() -> Option<u64> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn files_that_fit_are_asked_for_and_missing_ones_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, vec![1u8; 3 * PART_BYTES as usize + 5]).unwrap();
        std::fs::write(&b, b"postings").unwrap();
        let files = vec![a, b, dir.path().join("gone"), dir.path().to_path_buf()];
        let done = prefetch(&files, Some(1 << 40));
        assert_eq!(done.files, 2);
        assert_eq!(done.bytes, 3 * PART_BYTES + 5 + 8);
        assert_eq!(done.skipped, None);
        let handle = prefetch_in_background(files).unwrap();
        assert_eq!(handle.join().unwrap().files, 2, "{:?}", available_memory());
    }

    #[test]
    fn an_index_larger_than_half_the_memory_available_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, vec![0u8; 4096]).unwrap();
        let done = prefetch(&[a], Some(8000));
        assert_eq!((done.files, done.bytes), (0, 0));
        assert!(done.skipped.unwrap().contains("more than half"));
    }
}
