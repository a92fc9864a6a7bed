//! A rebuild of the vector index from the embedding cache saves its progress
//! as it goes: killed half-way, the next open carries on from the last save
//! (not from nothing) and ends with the index the store calls for, even when
//! chunks were deleted and added in between. Real SQLite, real usearch files,
//! a real SIGKILL of a process rebuilding.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::params;
use sift::store::{encode_vector, Store};
use sift::vectors::VectorIndex;

const EMBEDDER: &str = "test/rebuild-64";
const DIMS: usize = 64;
/// More than the exact-search limit: the graph is what is searched.
const CHUNKS: i64 = 12_000;
const CHECKPOINT: usize = 1_000;
const CHILD_ENV: &str = "SIFT_TEST_REBUILD_CHILD";

fn vector(id: i64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(id as u64);
    let v: Vec<f32> = (0..DIMS).map(|_| rng.random::<f32>() - 0.5).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

fn hash(id: i64) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&id.to_le_bytes());
    h
}

/// Chunk rows with cached vectors for ids in `ids`, as the indexer leaves them.
fn add_chunks(conn: &rusqlite::Connection, ids: impl Iterator<Item = i64>) {
    let tx = conn.unchecked_transaction().unwrap();
    for id in ids {
        tx.execute(
            "INSERT INTO chunks(id, note_id, seq, byte_start, byte_end, line_start, line_end,
                                heading_path, context, embed_prefix, body, embed_hash)
             VALUES (?1, 1, ?1, 0, 0, 1, 1, '[]', '', '', '', ?2)",
            params![id, &hash(id)[..]],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO embed_cache(embedder, hash, vector) VALUES (?1, ?2, ?3)",
            params![EMBEDDER, &hash(id)[..], encode_vector(&vector(id))],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

/// A store in `data` with one note of chunks 1..=`chunks`, each with a cached vector.
fn store_with_chunks(data: &Path, chunks: i64) -> Store {
    let store = Store::open(&data.join("sift.db")).unwrap();
    let conn = store.writer();
    conn.execute("INSERT INTO roots(id, path) VALUES (1, '/notes')", [])
        .unwrap();
    conn.execute(
        "INSERT INTO notes(id, root_id, rel_path, ext, size, mtime_ns, state)
         VALUES (1, 1, 'a.md', 'md', 0, 0, 'indexed')",
        [],
    )
    .unwrap();
    add_chunks(&conn, 1..=chunks);
    drop(conn);
    store
}

/// The child: rebuilds (no vector file yet) and says how far it got after
/// every batch, slowly enough to be killed half-way.
fn rebuild_child(data: &Path) {
    let store = Store::open(&data.join("sift.db")).unwrap();
    let conn = store.writer();
    VectorIndex::open_with_progress(
        &data.join("vectors"),
        EMBEDDER,
        DIMS,
        &conn,
        true,
        None,
        &|p| {
            println!("progress {} {}", p.done, p.total);
            std::thread::sleep(std::time::Duration::from_millis(150));
        },
    )
    .unwrap();
    println!("finished");
}

#[test]
fn a_killed_rebuild_carries_on_from_its_last_save_and_ends_consistent() {
    if let Ok(data) = std::env::var(CHILD_ENV) {
        rebuild_child(Path::new(&data));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let store = store_with_chunks(&data, CHUNKS);

    // A process rebuilding the index (there is no vector file), killed once
    // it has saved its progress a few times.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "vector_rebuild::a_killed_rebuild_carries_on_from_its_last_save_and_ends_consistent",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &data)
        .env("SIFT_VECTOR_CHECKPOINT_EVERY", CHECKPOINT.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        assert_ne!(line, "finished", "the rebuild ended before it was killed");
        if let Some(rest) = line.strip_prefix("progress ") {
            seen = rest.split(' ').next().unwrap().parse().unwrap();
            assert_eq!(rest.split(' ').nth(1), Some(&*CHUNKS.to_string()), "total");
            if seen >= 4 * CHECKPOINT {
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    assert!(seen >= 4 * CHECKPOINT, "progress reported: {seen}");

    // Meanwhile the store moves on: a chunk the saved part holds is deleted
    // (logged for the vector index), a chunk it does not hold yet is deleted,
    // and new chunks arrive.
    {
        let conn = store.writer();
        conn.execute("DELETE FROM chunks WHERE id IN (5, ?1)", [CHUNKS - 3])
            .unwrap();
        add_chunks(&conn, CHUNKS + 1..=CHUNKS + 50);
    }
    let expected = CHUNKS as usize - 2 + 50;

    // The next open carries on from the last save, reporting as it goes.
    let reports = std::cell::RefCell::new(Vec::new());
    let (index, report) = {
        let conn = store.writer();
        VectorIndex::open_with_progress(
            &data.join("vectors"),
            EMBEDDER,
            DIMS,
            &conn,
            true,
            None,
            &|p| reports.borrow_mut().push(p.done),
        )
        .unwrap()
    };
    let resumed = report.resumed_from.expect("resumed");
    assert!(report.rebuilt, "{report:?}");
    assert!(
        resumed >= 4 * CHECKPOINT - CHECKPOINT && resumed < CHUNKS as usize,
        "carried on from {resumed} (killed at {seen})"
    );
    assert_eq!(
        report.removed, 1,
        "chunk 5 was in the saved part: {report:?}"
    );
    assert_eq!(
        report.added,
        expected - (resumed - 1),
        "only the rest added: {report:?}"
    );
    let reports = reports.into_inner();
    assert!(
        reports.first().is_some_and(|&d| d > resumed - 1),
        "{reports:?}"
    );
    assert_eq!(reports.last(), Some(&expected));

    // Consistent: every chunk's vector and no other, found by the graph.
    assert_eq!(index.len(), expected);
    assert!(!index.contains(5) && !index.contains(CHUNKS - 3));
    for id in [1, 2, 1_000, 4_000, 7_777, CHUNKS, CHUNKS + 50] {
        let hits = index.search(&vector(id), 1, None).unwrap();
        assert_eq!(hits[0].0, id, "nearest to its own vector");
    }
    drop(index);

    // Saved whole: the next process serves it as a view, no rebuild.
    let conn = store.writer();
    let (index, report) =
        VectorIndex::open(&data.join("vectors"), EMBEDDER, DIMS, &conn, false, None).unwrap();
    assert!(!report.rebuilt, "{report:?}");
    assert!(index.is_view());
    assert_eq!(index.len(), expected);
    assert_eq!(
        index.search(&vector(CHUNKS + 7), 1, None).unwrap()[0].0,
        CHUNKS + 7
    );
}

/// The label of a vector file: the JSON before its last 12 bytes.
fn label_of(path: &Path) -> serde_json::Map<String, serde_json::Value> {
    label_of_bytes(&std::fs::read(path).unwrap())
}

/// A file written by a Sift from before the label counted the chunks waiting
/// for vectors makes every open scan all chunks; the first writer to open it
/// rewrites it once in the current format (same vectors, no rebuild), and
/// readers never write it.
#[test]
fn a_file_from_an_older_sift_is_rewritten_once_by_a_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, dir, path) = saved_index(tmp.path(), 300);
    let conn = store.writer();
    assert!(label_of(&path).contains_key("pending"));

    // As an older Sift wrote it: the same graph, a label without the counts.
    let bytes = std::fs::read(&path).unwrap();
    let mut label = label_of(&path);
    label.remove("pending");
    label.remove("links_crc32");
    let old_len = u32::from_le_bytes(bytes[bytes.len() - 12..bytes.len() - 8].try_into().unwrap());
    let old = file_of(
        &bytes[..bytes.len() - 12 - old_len as usize],
        &label,
        &bytes[bytes.len() - 8..],
    );
    std::fs::write(&path, &old).unwrap();

    let (index, report) = VectorIndex::open(&dir, EMBEDDER, DIMS, &conn, false, None).unwrap();
    assert!(!report.rebuilt, "{report:?}");
    assert_eq!(index.len(), 300);
    drop(index);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        old,
        "a reader wrote the file"
    );

    let (index, report) = VectorIndex::open(&dir, EMBEDDER, DIMS, &conn, true, None).unwrap();
    assert!(!report.rebuilt, "{report:?}");
    assert_eq!(index.len(), 300);
    assert_eq!(index.search(&vector(42), 1, None).unwrap()[0].0, 42);
    drop(index);
    let label = label_of(&path);
    assert_eq!(
        label.get("pending"),
        Some(&serde_json::json!(0)),
        "{label:?}"
    );
    assert!(label.contains_key("links_crc32"), "{label:?}");

    // Once: the next writer leaves the current file as it is.
    let rewritten = std::fs::read(&path).unwrap();
    let (index, _) = VectorIndex::open(&dir, EMBEDDER, DIMS, &conn, true, None).unwrap();
    assert!(index.is_view());
    drop(index);
    assert_eq!(std::fs::read(&path).unwrap(), rewritten);
}

/// A vector file an earlier Sift wrote with f16 storage (now i8), valid in
/// every other way (label, checksums, count): opening it rebuilds the index
/// from the embedding cache (no embedding) in i8, a reader without touching
/// the file, a writer replacing it once; searches answer the same after.
#[test]
fn an_f16_file_from_an_earlier_sift_is_rebuilt_from_the_cache_in_i8() {
    use usearch::{MetricKind, ScalarKind};
    an_earlier_file_is_rebuilt(MetricKind::Cos, ScalarKind::F16, "stores f16 vectors");
}

/// The same for the bf16 file of the Sift just before (inner product).
#[test]
fn a_bf16_file_from_an_earlier_sift_is_rebuilt_from_the_cache_in_i8() {
    use usearch::{MetricKind, ScalarKind};
    an_earlier_file_is_rebuilt(MetricKind::IP, ScalarKind::BF16, "stores bf16 vectors");
}

/// The same for a file comparing vectors by cosine (now inner product over
/// vectors made unit length on the way in).
#[test]
fn a_cosine_file_from_an_earlier_sift_is_rebuilt_from_the_cache_by_inner_product() {
    use usearch::{MetricKind, ScalarKind};
    an_earlier_file_is_rebuilt(MetricKind::Cos, ScalarKind::I8, "compares vectors by Cos");
}

/// An earlier Sift's file of `metric` and `storage`, rebuilt once from the
/// cache with a rebuild reason holding `reason`.
fn an_earlier_file_is_rebuilt(
    metric: usearch::MetricKind,
    storage: usearch::ScalarKind,
    reason_says: &str,
) {
    use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

    let tmp = tempfile::tempdir().unwrap();
    let (store, dir, path) = saved_index(tmp.path(), 300);
    let conn = store.writer();
    let storage_of = |bytes: &[u8]| {
        let graph = label_of_bytes(bytes)["graph_bytes"].as_u64().unwrap() as usize;
        let meta = Index::metadata_from_buffer(&bytes[..graph]).unwrap();
        (meta.metric, meta.quantization)
    };
    let now = (MetricKind::IP, ScalarKind::I8);
    assert_eq!(storage_of(&std::fs::read(&path).unwrap()), now);

    // As the earlier Sift wrote it: the same vectors in its graph, the same
    // label with the checksums of that graph.
    let earlier = Index::new(&IndexOptions {
        dimensions: DIMS,
        metric,
        quantization: storage,
        connectivity: 16,
        expansion_add: 64,
        expansion_search: 64,
        multi: false,
    })
    .unwrap();
    earlier.reserve(300).unwrap();
    for id in 1..=300 {
        earlier.add(id as u64, &vector(id)).unwrap();
    }
    let mut graph = vec![0u8; earlier.serialized_length()];
    earlier.save_to_buffer(&mut graph).unwrap();
    let mut label = label_of(&path);
    let rows = u32::from_le_bytes(graph[0..4].try_into().unwrap()) as usize;
    let cols = u32::from_le_bytes(graph[4..8].try_into().unwrap()) as usize;
    label.insert("graph_bytes".into(), graph.len().into());
    label.insert("crc32".into(), crc32fast::hash(&graph).into());
    label.insert(
        "links_crc32".into(),
        crc32fast::hash(&graph[8 + rows * cols..]).into(),
    );
    let old = file_of(&graph, &label, b"SIFTVEC2");
    std::fs::write(&path, &old).unwrap();
    assert_eq!(storage_of(&old), (metric, storage));

    // A reader rebuilds in memory and leaves the file to the writer.
    let (index, report) = VectorIndex::open(&dir, EMBEDDER, DIMS, &conn, false, None).unwrap();
    assert!(report.rebuilt, "{report:?}");
    let reason = report.rebuild_reason.unwrap_or_default();
    assert!(reason.contains(reason_says), "{reason}");
    assert_eq!(index.len(), 300);
    let best = index.search(&vector(42), 3, None).unwrap();
    assert_eq!(best[0].0, 42, "{best:?}");
    assert!(best[0].1 > 0.99, "{best:?}");
    drop(index);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        old,
        "a reader wrote the file"
    );

    // The writer rebuilds from the cache and saves the index in i8, once.
    let (index, report) = VectorIndex::open(&dir, EMBEDDER, DIMS, &conn, true, None).unwrap();
    assert!(report.rebuilt, "{report:?}");
    assert_eq!(report.added, 300, "{report:?}");
    assert!(report.save_error.is_none(), "{report:?}");
    assert_eq!(index.len(), 300);
    for id in [1, 42, 300] {
        assert_eq!(index.search(&vector(id), 1, None).unwrap()[0].0, id);
    }
    drop(index);
    assert_eq!(storage_of(&std::fs::read(&path).unwrap()), now);
    let (index, report) = VectorIndex::open(&dir, EMBEDDER, DIMS, &conn, true, None).unwrap();
    assert!(!report.rebuilt, "{report:?}");
    assert!(index.is_view());
    assert_eq!(index.search(&vector(42), 1, None).unwrap()[0].0, 42);
}

/// A store of `chunks` chunks in `root`/data with its vector file saved by a
/// writer: the store, the vectors folder and the file.
fn saved_index(root: &Path, chunks: i64) -> (Store, std::path::PathBuf, std::path::PathBuf) {
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let store = store_with_chunks(&data, chunks);
    let dir = data.join("vectors");
    drop(VectorIndex::open(&dir, EMBEDDER, DIMS, &store.writer(), true, None).unwrap());
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    (store, dir, path)
}

/// A vector file's bytes: the graph, the label's JSON, its length, the magic.
fn file_of(
    graph: &[u8],
    label: &serde_json::Map<String, serde_json::Value>,
    magic: &[u8],
) -> Vec<u8> {
    let json = serde_json::to_vec(label).unwrap();
    let mut out = graph.to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(magic);
    out
}

/// The label of a vector file's bytes: the JSON before its last 12 bytes.
fn label_of_bytes(bytes: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    let tail = &bytes[bytes.len() - 12..];
    let len = u32::from_le_bytes(tail[..4].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[bytes.len() - 12 - len..bytes.len() - 12]).unwrap()
}

/// A save written while searches go on (the file under a shared borrow,
/// `save_begin` / `write_shared` / `save_end`): it counts as done only if the
/// vectors did not change in between; otherwise the next save writes again.
#[test]
fn a_save_written_beside_searches_is_recorded_only_if_nothing_changed_meanwhile() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let store = store_with_chunks(&data, 300);
    let conn = store.writer();
    let dir = data.join("vectors");
    let (mut index, _) = VectorIndex::open(&dir, EMBEDDER, DIMS, &conn, true, None).unwrap();
    index.save(&conn).unwrap();
    assert!(
        index.save_begin(&conn).unwrap().is_none(),
        "saved: nothing to write"
    );

    // The store moves (chunks 301, 302): the save catches up and has work.
    add_chunks(&conn, 301..=302);
    let ticket = index
        .save_begin(&conn)
        .unwrap()
        .expect("something to write");
    index.write_shared().unwrap();
    // A vector is replaced after the ticket was taken, before it is handed
    // back (the store itself did not move).
    index.add(302, &vector(302)).unwrap();
    index.save_end(ticket);
    assert!(
        index.save_begin(&conn).unwrap().is_some(),
        "the change after the ticket must be written by the next save"
    );

    // Nothing in between: recorded, and the file is what the next open serves.
    let ticket = index.save_begin(&conn).unwrap().unwrap();
    index.write_shared().unwrap();
    index.save_end(ticket);
    assert!(index.save_begin(&conn).unwrap().is_none());
    drop(index);
    let (index, report) = VectorIndex::open(&dir, EMBEDDER, DIMS, &conn, false, None).unwrap();
    assert!(!report.rebuilt, "{report:?}");
    assert_eq!(index.search(&vector(301), 1, None).unwrap()[0].0, 301);
}
