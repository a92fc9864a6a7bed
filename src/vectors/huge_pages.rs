//! Transparent huge pages for the graph's memory, on Linux.
//!
//! Adding a vector to the graph visits a few thousand vectors and neighbour
//! lists spread over the whole index: the adds wait on memory, not on
//! arithmetic (a faster i8 kernel changed nothing, BENCHMARKS.md issue 13
//! round 13). With 4 KiB pages each visit also misses the TLB: 100k vectors
//! of 384 bytes span 9,400 pages where a core's TLB holds about 2,000.
//! Most distributions leave huge pages to `madvise`, and usearch maps its
//! arenas itself (anonymous mappings, each twice the last, from 8 MiB), so
//! they get 4 KiB pages unless advised. Measured with huge pages on, six
//! alternating builds of 100k vectors: 15% less CPU per build.
//!
//! usearch gives no hook into its allocator, so the arenas are found in
//! `/proc/self/maps` by their shape: private, read-write, anonymous, a power
//! of two of at least 8 MiB. Pages touched before the advice stay small
//! (the kernel may merge them later); the rest of an arena, filled as the
//! graph grows, gets huge pages.

/// Advises huge pages for usearch's arenas not advised yet. Cheap when
/// there is nothing new (one read of `/proc/self/maps`); does nothing where
/// huge pages are always on, never on, or not Linux.
pub(crate) fn advise_arenas() {
    #[cfg(target_os = "linux")]
    linux::advise_arenas();
}

#[cfg(target_os = "linux")]
mod linux {
    use std::sync::{Mutex, OnceLock};

    /// The smallest arena usearch maps (its `min_capacity` times its
    /// growth factor).
    const SMALLEST_ARENA: usize = 8 << 20;

    pub(super) fn advise_arenas() {
        if !madvise_mode() {
            return;
        }
        static ADVISED: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            return;
        };
        let mut advised = ADVISED.lock().unwrap_or_else(|e| e.into_inner());
        // Forget arenas unmapped since (an index dropped): their addresses
        // may come back as new arenas.
        let arenas: Vec<(usize, usize)> = maps.lines().filter_map(arena).collect();
        advised.retain(|a| arenas.contains(a));
        for (start, len) in arenas {
            if advised.contains(&(start, len)) {
                continue;
            }
            // SAFETY: advice only, on a mapping of this process; it changes
            // how pages are backed, never their contents.
            unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
            advised.push((start, len));
        }
    }

    /// Whether the system gives huge pages only where advised.
    pub(super) fn madvise_mode() -> bool {
        static MODE: OnceLock<bool> = OnceLock::new();
        *MODE.get_or_init(|| {
            std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
                .is_ok_and(|s| s.contains("[madvise]"))
        })
    }

    /// The start and length of a `/proc/self/maps` line shaped like a usearch
    /// arena: `start-end rw-p offset dev 0` with no path.
    pub(super) fn arena(line: &str) -> Option<(usize, usize)> {
        let mut fields = line.split_ascii_whitespace();
        let (range, perms) = (fields.next()?, fields.next()?);
        let (_offset, _dev, inode) = (fields.next()?, fields.next()?, fields.next()?);
        if perms != "rw-p" || inode != "0" || fields.next().is_some() {
            return None;
        }
        let (start, end) = range.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let len = usize::from_str_radix(end, 16).ok()?.checked_sub(start)?;
        (len >= SMALLEST_ARENA && len.is_power_of_two()).then_some((start, len))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::linux::arena;

    #[test]
    fn arenas_are_anonymous_private_writable_powers_of_two() {
        let line = |range: &str, rest: &str| format!("{range} {rest}");
        let a16 = "7f0000000000-7f0001000000";
        assert_eq!(
            arena(&line(a16, "rw-p 00000000 00:00 0")),
            Some((0x7f00_0000_0000, 16 << 20))
        );
        // Not an arena: a file, the heap, read-only, shared, too small, not a power of two.
        assert_eq!(
            arena(&line(a16, "rw-p 00000000 08:01 1234 /data/vectors.usearch")),
            None
        );
        assert_eq!(arena(&line(a16, "rw-p 00000000 00:00 0 [heap]")), None);
        assert_eq!(arena(&line(a16, "r--p 00000000 00:00 0")), None);
        assert_eq!(arena(&line(a16, "rw-s 00000000 00:00 0")), None);
        assert_eq!(
            arena(&line("7f0000000000-7f0000400000", "rw-p 00000000 00:00 0")),
            None
        );
        assert_eq!(
            arena(&line("7f0000000000-7f0001400000", "rw-p 00000000 00:00 0")),
            None
        );
        assert_eq!(arena("garbage"), None);
    }

    /// Where the system leaves huge pages to `madvise` (as this machine and
    /// most distributions do), a graph grown by `add_many` ends with its
    /// arenas advised: `hg` in their flags.
    #[test]
    fn a_growing_graph_has_its_arenas_advised() {
        use rand::{Rng, SeedableRng};
        if !super::linux::madvise_mode() {
            eprintln!("huge pages are not left to madvise here: nothing to check");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("sift.db")).unwrap();
        let (mut index, _) = crate::vectors::VectorIndex::open(
            &dir.path().join("vectors"),
            "test/arenas",
            384,
            &store.writer(),
            false,
            None,
        )
        .unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let vectors: Vec<Vec<f32>> = (0..24_000)
            .map(|_| (0..384).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        for (b, chunk) in vectors.chunks(4_000).enumerate() {
            let items: Vec<(i64, &[f32])> = chunk
                .iter()
                .enumerate()
                .map(|(i, v)| ((b * 4_000 + i) as i64, v.as_slice()))
                .collect();
            index.add_many(&items).unwrap();
        }
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut advised_arenas = 0;
        let mut in_arena = false;
        for line in smaps.lines() {
            if line
                .split_ascii_whitespace()
                .next()
                .is_some_and(|f| f.contains('-'))
            {
                in_arena = arena(line).is_some();
            } else if in_arena && line.starts_with("VmFlags:") && line.contains(" hg") {
                advised_arenas += 1;
            }
        }
        assert!(advised_arenas > 0, "no arena advised");
    }
}
