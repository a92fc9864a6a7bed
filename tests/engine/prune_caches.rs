//! Issue 15: the embedding cache and the vector removal log stop growing
//! without bound. Unused cache entries survive a grace period (an undo
//! costs no embedding) and are deleted after it; the removal log is trimmed,
//! and an index that had not applied what was trimmed rebuilds from the cache.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use sift::embed::Embedder;
use sift::{Engine, Mode, PrunePolicy, Settings, CACHE_GRACE_SECS};

use super::common::{self, Counting, FakeEmbedder};

fn count(engine: &Engine, sql: &str) -> i64 {
    engine
        .store()
        .read(|c| Ok(c.query_row(sql, [], |r| r.get::<_, i64>(0))?))
        .unwrap()
}

const UNUSED: &str = "SELECT count(*) FROM embed_cache e WHERE NOT EXISTS
    (SELECT 1 FROM chunks c WHERE c.embed_hash = e.hash)";

fn notes(dir: &Path) {
    std::fs::write(
        dir.join("bees.md"),
        "# Bees\n\nthe hive needs a new queen in spring\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("boats.md"),
        "# Boats\n\nvarnish the hull before the regatta\n",
    )
    .unwrap();
}

#[test]
fn an_unused_vector_outlives_an_undo_and_goes_after_the_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    notes(tmp.path());
    let counting = Counting::new(Arc::new(FakeEmbedder));
    let t = common::open(tmp.path(), Some(counting.clone()));
    common::index(&t.engine);
    let original = std::fs::read_to_string(tmp.path().join("bees.md")).unwrap();
    let edited = "# Bees\n\nthe hive swarmed into the apple tree\n";

    std::fs::write(tmp.path().join("bees.md"), edited).unwrap();
    common::index(&t.engine);
    assert_eq!(
        count(&t.engine, UNUSED),
        1,
        "the old text's vector is kept for now"
    );
    assert_eq!(
        count(
            &t.engine,
            "SELECT count(*) FROM embed_cache WHERE unused_since IS NOT NULL"
        ),
        1
    );

    // Undo within the grace period: nothing is embedded.
    counting.reset();
    std::fs::write(tmp.path().join("bees.md"), &original).unwrap();
    common::index(&t.engine);
    assert_eq!(counting.embedded(), 0, "the undo came from the cache");
    assert_eq!(
        count(
            &t.engine,
            "SELECT count(*) FROM embed_cache WHERE unused_since IS NOT NULL"
        ),
        1,
        "the original's vector is in use again; the edit's is now unused"
    );

    // After the grace period the unused entry goes; used ones stay.
    let later = PrunePolicy {
        now: chrono::Utc::now().timestamp() + CACHE_GRACE_SECS + 60,
        ..PrunePolicy::default()
    };
    let report = t.engine.prune(&later).unwrap();
    assert_eq!(report.cache_deleted, 1, "{report:?}");
    assert_eq!(count(&t.engine, UNUSED), 0);
    let used = count(&t.engine, "SELECT count(DISTINCT embed_hash) FROM chunks");
    assert_eq!(count(&t.engine, "SELECT count(*) FROM embed_cache"), used);

    // Really gone: the edit, made again, is embedded again.
    counting.reset();
    std::fs::write(tmp.path().join("bees.md"), edited).unwrap();
    common::index(&t.engine);
    assert_eq!(counting.embedded(), 1);
    assert_eq!(
        common::search(&t.engine, "swarmed apple tree", Mode::Semantic)[0],
        "bees.md"
    );
}

#[test]
fn a_trimmed_removal_log_makes_lagging_indexes_rebuild_not_miss_removals() {
    let tmp = tempfile::tempdir().unwrap();
    notes(tmp.path());
    let data = tempfile::tempdir().unwrap();
    let writer = Engine::open_with(
        data.path(),
        Settings::default(),
        Some(Arc::new(FakeEmbedder)),
    )
    .unwrap();
    writer.add_folder(tmp.path()).unwrap();
    common::index(&writer);
    // Another process, idle since it opened.
    let idle = Engine::open(data.path(), Some(Arc::new(FakeEmbedder))).unwrap();
    assert_eq!(
        common::search(&idle, "varnish the hull before the regatta", Mode::Semantic)[0],
        "boats.md"
    );

    let no_log = PrunePolicy {
        removal_log_keep: 0,
        ..PrunePolicy::default()
    };
    for round in 0..5 {
        std::fs::write(
            tmp.path().join("boats.md"),
            format!("# Boats\n\nround {round}: the mast needs new rigging\n"),
        )
        .unwrap();
        common::index(&writer);
        writer.prune(&no_log).unwrap();
        assert_eq!(
            count(&writer, "SELECT count(*) FROM vector_removals"),
            0,
            "round {round}"
        );
    }
    std::fs::remove_file(tmp.path().join("boats.md")).unwrap();
    common::index(&writer);
    writer.prune(&no_log).unwrap();
    assert_eq!(count(&writer, "SELECT count(*) FROM vector_removals"), 0);

    // The idle process missed every removal in the log: it rebuilds.
    let found = common::search(&idle, "regatta hull mast rigging", Mode::Semantic);
    assert!(!found.contains(&"boats.md".to_string()), "{found:?}");
    assert_eq!(idle.vector_count(), 1);
    assert_eq!(
        idle.vector_count() as i64,
        count(&idle, "SELECT count(*) FROM chunks")
    );
}

/// The fake embedder under another id: a second provider.
struct Other;

impl Embedder for Other {
    fn id(&self) -> &str {
        "fake/other"
    }
    fn dimensions(&self) -> usize {
        FakeEmbedder.dimensions()
    }
    fn max_input_tokens(&self) -> usize {
        FakeEmbedder.max_input_tokens()
    }
    fn count_tokens(&self, text: &str) -> usize {
        FakeEmbedder.count_tokens(text)
    }
    fn embed_documents(&self, texts: &[String]) -> sift::Result<Vec<Vec<f32>>> {
        FakeEmbedder.embed_documents(texts)
    }
    fn embed_query(&self, text: &str) -> sift::Result<Vec<f32>> {
        FakeEmbedder.embed_query(text)
    }
}

#[test]
fn a_vector_file_older_than_the_trimmed_log_is_rebuilt_from_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    notes(tmp.path());
    let data = tempfile::tempdir().unwrap();
    let first = Counting::new(Arc::new(FakeEmbedder));
    let engine = Engine::open_with(data.path(), Settings::default(), Some(first.clone())).unwrap();
    engine.add_folder(tmp.path()).unwrap();
    common::index(&engine);
    drop(engine);

    // Another provider meanwhile: the first one's vector file is not kept up.
    let engine = Engine::open(data.path(), Some(Arc::new(Other))).unwrap();
    common::index(&engine);
    std::fs::remove_file(tmp.path().join("boats.md")).unwrap();
    common::index(&engine);
    engine
        .prune(&PrunePolicy {
            removal_log_keep: 0,
            ..PrunePolicy::default()
        })
        .unwrap();
    drop(engine);

    first.reset();
    let engine = Engine::open(data.path(), Some(first.clone())).unwrap();
    let reason = engine.vector_open_report().rebuild_reason.clone();
    assert!(
        reason.as_deref().is_some_and(|r| r.contains("trimmed")),
        "{reason:?}"
    );
    assert_eq!(engine.vector_count(), 1);
    assert!(
        !common::search(&engine, "regatta hull", Mode::Semantic).contains(&"boats.md".to_string())
    );
    assert_eq!(
        first.calls.load(Ordering::SeqCst),
        0,
        "rebuilt from the cache"
    );
}
