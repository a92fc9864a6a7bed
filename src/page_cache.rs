//! Asking the OS to read an index's files into its page cache ahead of use.
//!
//! A search reads the vector graph and the keyword postings at random: on a
//! cold page cache (after a boot) every read waits for the disk, and a
//! hybrid query at 1M chunks took 22 ms instead of 5 (BENCHMARKS.md, "Hybrid
//! latency at scale, fifth round"). A long-lived process (the app, `sift
//! watch`, the MCP server) reads them through once right after opening, on a
//! low-priority thread in large sequential reads (discarded: the point is the
//! page cache), so that searches made a few seconds later find them in
//! memory: 917 MB of vectors in 1.7 s here. A one-shot `sift search` does
//! not: it reads only what its query needs. (Asking the kernel instead, with
//! `posix_fadvise(WILLNEED)`, left three quarters of that file unread.)
//!
//! Only files that fit comfortably are read: together at most half the
//! memory the system has available, so that warming the index never pushes
//! out what the user is working with. The pages stay the kernel's to drop
//! (page cache, not the process's memory). Linux only (where the available
//! memory is known); elsewhere nothing is done.

use std::io::Read;
use std::path::PathBuf;

/// One read: large enough to be sequential for the disk, small enough that
/// a search's own reads are not queued behind much.
const PART_BYTES: usize = 1 << 20;

/// What [`prefetch`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefetched {
    /// Files read through.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Why nothing was read, when nothing was.
    pub skipped: Option<String>,
}

/// Reads `files` (missing ones are left out) through once, on this thread
/// (callers run it on a low-priority one); what was read.
pub fn prefetch(files: &[PathBuf]) -> Prefetched {
    prefetch_within(files, available_memory())
}

fn prefetch_within(files: &[PathBuf], available: Option<u64>) -> Prefetched {
    let sized: Vec<(&PathBuf, u64)> = files
        .iter()
        .filter_map(|f| Some((f, std::fs::metadata(f).ok().filter(|m| m.is_file())?.len())))
        .collect();
    let bytes: u64 = sized.iter().map(|(_, len)| len).sum();
    let Some(available) = available else {
        return Prefetched {
            skipped: Some("the memory available is not known on this system".into()),
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
    let mut buffer = vec![0u8; PART_BYTES];
    for (path, _) in sized {
        if let Some(read) = read_through(path, &mut buffer) {
            done.files += 1;
            done.bytes += read;
        }
    }
    done
}

/// Reads `path` to its end into `buffer` over and over; the bytes read.
fn read_through(path: &std::path::Path, buffer: &mut [u8]) -> Option<u64> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut total = 0;
    loop {
        match file.read(buffer) {
            Ok(0) => return Some(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_fit_are_read_through_and_missing_ones_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, vec![1u8; 3 * PART_BYTES + 5]).unwrap();
        std::fs::write(&b, b"postings").unwrap();
        let files = vec![a, b, dir.path().join("gone"), dir.path().to_path_buf()];
        let done = prefetch_within(&files, Some(1 << 40));
        assert_eq!(done.files, 2);
        assert_eq!(done.bytes, 3 * PART_BYTES as u64 + 5 + 8);
        assert_eq!(done.skipped, None);
        if cfg!(target_os = "linux") {
            assert_eq!(prefetch(&files).files, 2, "{:?}", available_memory());
        }
    }

    #[test]
    fn an_index_larger_than_half_the_memory_available_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, vec![0u8; 4096]).unwrap();
        let done = prefetch_within(&[a], Some(8000));
        assert_eq!((done.files, done.bytes), (0, 0));
        assert!(done.skipped.unwrap().contains("more than half"));
    }
}
