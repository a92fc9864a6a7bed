//! SQLite schema and migrations. Each migration moves the schema up one version
//! inside a transaction; `PRAGMA user_version` records where a database stands.

use rusqlite::Connection;

use crate::config::SCHEMA_VERSION;
use crate::error::{Error, ErrorKind, Result};

const V1: &str = r#"
CREATE TABLE roots (
    id   INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE
);
CREATE TABLE notes (
    id           INTEGER PRIMARY KEY,
    root_id      INTEGER NOT NULL REFERENCES roots(id),
    rel_path     TEXT NOT NULL,
    ext          TEXT NOT NULL,
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    content_hash BLOB,
    title        TEXT NOT NULL DEFAULT '',
    tags         TEXT NOT NULL DEFAULT '[]',
    aliases      TEXT NOT NULL DEFAULT '[]',
    note_date    INTEGER,
    state        TEXT NOT NULL CHECK (state IN ('indexed','pending','skipped','failed')),
    reason       TEXT,
    indexed_at   INTEGER,
    UNIQUE (root_id, rel_path)
);
CREATE INDEX notes_state ON notes(state);
CREATE INDEX notes_hash ON notes(content_hash);
CREATE TABLE note_tags (
    note_id INTEGER NOT NULL REFERENCES notes(id),
    tag     TEXT NOT NULL,
    PRIMARY KEY (note_id, tag)
) WITHOUT ROWID;
CREATE INDEX note_tags_tag ON note_tags(tag);
-- AUTOINCREMENT: chunk ids are vector keys and must never be reused.
CREATE TABLE chunks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    note_id      INTEGER NOT NULL REFERENCES notes(id),
    seq          INTEGER NOT NULL,
    byte_start   INTEGER NOT NULL,
    byte_end     INTEGER NOT NULL,
    line_start   INTEGER NOT NULL,
    line_end     INTEGER NOT NULL,
    heading_path TEXT NOT NULL,
    context      TEXT NOT NULL,
    embed_prefix TEXT NOT NULL,
    body         TEXT NOT NULL,
    embed_hash   BLOB NOT NULL
);
CREATE INDEX chunks_note ON chunks(note_id);
CREATE INDEX chunks_hash ON chunks(embed_hash);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    context, body,
    content = 'chunks', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, context, body) VALUES (new.id, new.context, new.body);
END;
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, context, body)
        VALUES ('delete', old.id, old.context, old.body);
    INSERT INTO vector_removals(chunk_id) VALUES (old.id);
END;
-- Vectors by embedder id and hash of the embedded text: never pay twice.
CREATE TABLE embed_cache (
    embedder TEXT NOT NULL,
    hash     BLOB NOT NULL,
    vector   BLOB NOT NULL,
    PRIMARY KEY (embedder, hash)
) WITHOUT ROWID;
-- Chunk ids deleted since vector indexes were last saved; a vector index label
-- remembers the highest seq it has applied.
CREATE TABLE vector_removals (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_id INTEGER NOT NULL
);
"#;

/// Keys of the embedding cache without the vectors: checking which chunks have a
/// vector (every open of a vector index) reads this narrow index instead of the
/// 1.5 KB rows of the cache itself.
const V2: &str = r#"
CREATE INDEX embed_cache_keys ON embed_cache(embedder, hash);
"#;

/// The keyword index holds Sift's own terms ([`crate::text::words`]), written by
/// the store with each chunk, instead of FTS5's porter tokenizer reading raw
/// Markdown: keyword search, coverage and highlights then share one word rule,
/// and the index sees the text a reader sees. FTS5's `ascii` tokenizer splits
/// only on ASCII spaces and punctuation, so each of our terms is one token.
/// The table keeps the terms it indexed (not contentless): deleting a row must
/// take its terms out of BM25's statistics too, which a contentless table
/// cannot (scores drifted with every edit). Rebuilt from `chunks` here.
const V3: &str = r#"
DROP TRIGGER chunks_ai;
DROP TRIGGER chunks_ad;
DROP TABLE chunks_fts;
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    context, body,
    tokenize = 'ascii'
);
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
    DELETE FROM chunks_fts WHERE rowid = old.id;
    INSERT INTO vector_removals(chunk_id) VALUES (old.id);
END;
"#;

/// The store's generation: a number every committed change to chunks or to the
/// embedding cache moves on (triggers, so no writer can forget it). Processes
/// that only read compare it before a search (one row) and catch their vector
/// index up when it moved; the vector file records the generation it matches.
/// `store_id` tells one database from another (a vector file from a replaced
/// database is rebuilt), `vector_rebuilds` counts rebuilds of vector files.
const V4_GENERATION: &str = r#"
CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO store_meta(key, value) VALUES
    ('generation', 0),
    ('store_id', abs(random() % 9007199254740991)),
    ('vector_rebuilds', 0);
CREATE TRIGGER generation_chunk_insert AFTER INSERT ON chunks BEGIN
    UPDATE store_meta SET value = value + 1 WHERE key = 'generation';
END;
CREATE TRIGGER generation_chunk_delete AFTER DELETE ON chunks BEGIN
    UPDATE store_meta SET value = value + 1 WHERE key = 'generation';
END;
CREATE TRIGGER generation_cache_insert AFTER INSERT ON embed_cache BEGIN
    UPDATE store_meta SET value = value + 1 WHERE key = 'generation';
END;
"#;

/// Chunks of converted documents (PDF) remember their page.
const V5_PAGES: &str = r#"
ALTER TABLE chunks ADD COLUMN page INTEGER;
-- Documents are now converted to text first: read them again even if unchanged.
UPDATE notes SET content_hash = NULL
    WHERE ext IN ('pdf', 'docx', 'odt', 'html', 'htm', 'xhtml');
"#;

/// Links between notes (issue 16, Obsidian backlinks): one row per link a
/// note holds, keyed as [`crate::links`] says. Markdown notes are read again
/// at the next run to fill it (their chunks' vectors come from the cache).
const V6_NOTE_LINKS: &str = r#"
CREATE TABLE note_links (
    note_id     INTEGER NOT NULL REFERENCES notes(id),
    target      TEXT NOT NULL,
    exact       INTEGER NOT NULL,
    byte_offset INTEGER NOT NULL
);
CREATE INDEX note_links_target ON note_links(target);
CREATE INDEX note_links_note ON note_links(note_id);
UPDATE notes SET content_hash = NULL WHERE ext IN ('md', 'markdown');
"#;

/// The embedding cache and the removal log stop growing without bound
/// (`store::prune`): a cache entry no chunk uses is stamped with when it was
/// found unused and deleted after a grace period (an undo or a branch switch
/// within it embeds nothing); the removal log is trimmed, and a vector file
/// older than the trim point is rebuilt from the cache.
const V7_PRUNING: &str = r#"
ALTER TABLE embed_cache ADD COLUMN unused_since INTEGER;
CREATE INDEX embed_cache_unused ON embed_cache(unused_since) WHERE unused_since IS NOT NULL;
INSERT INTO store_meta(key, value) VALUES
    ('removals_pruned_through', 0),
    ('removals_checked_through', 0);
"#;

/// Template boilerplate (issue 16): lines repeated across many notes of a
/// folder are left out of the text a chunk is embedded with (kept in its body,
/// the keyword index and snippets). `embed_body` is that text when it differs
/// from `body` (NULL: the body as is); `boilerplate_lines` holds, per indexed
/// folder, the hashes of the lines found to be boilerplate
/// ([`crate::boilerplate`]), and `boilerplate_roots` when they were counted
/// and whether stripping was on (`scan.strip_boilerplate`).
const V8_BOILERPLATE: &str = r#"
ALTER TABLE chunks ADD COLUMN embed_body TEXT;
CREATE TABLE boilerplate_lines (
    root_id INTEGER NOT NULL,
    dir     TEXT NOT NULL,
    hash    INTEGER NOT NULL,
    notes   INTEGER NOT NULL,
    PRIMARY KEY (root_id, dir, hash)
) WITHOUT ROWID;
CREATE TABLE boilerplate_roots (
    root_id    INTEGER PRIMARY KEY,
    counted_at INTEGER NOT NULL,
    enabled    INTEGER NOT NULL
);
"#;

/// The last searches typed (issue 16: a provider comparison runs them on
/// the user's own notes). Bounded ([`crate::store::history`]); cleared on demand.
const V9_SEARCH_HISTORY: &str = r#"
CREATE TABLE search_history (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    query TEXT NOT NULL,
    at    INTEGER NOT NULL
);
"#;

/// The embedding cache becomes a rowid table (issue 13). As a WITHOUT ROWID
/// table a row lived in its key's b-tree, where SQLite keeps at most about
/// 1 KB of a row on a 4 KB page: every 1.5 KB vector spilled its last half
/// kilobyte onto an overflow page of its own, so the cache took three times
/// its size on disk (54 MB for SciFact's 17.7 MB of vectors) and each insert
/// wrote two random pages. Rows now sit whole, in insert order, and the keys
/// keep their narrow index (now the unique one).
const V10_CACHE_ROWS: &str = r#"
CREATE TABLE embed_cache_rows (
    embedder     TEXT NOT NULL,
    hash         BLOB NOT NULL,
    vector       BLOB NOT NULL,
    unused_since INTEGER
);
INSERT INTO embed_cache_rows(embedder, hash, vector, unused_since)
    SELECT embedder, hash, vector, unused_since FROM embed_cache;
DROP TABLE embed_cache;
ALTER TABLE embed_cache_rows RENAME TO embed_cache;
CREATE UNIQUE INDEX embed_cache_keys ON embed_cache(embedder, hash);
CREATE INDEX embed_cache_unused ON embed_cache(unused_since) WHERE unused_since IS NOT NULL;
CREATE TRIGGER generation_cache_insert AFTER INSERT ON embed_cache BEGIN
    UPDATE store_meta SET value = value + 1 WHERE key = 'generation';
END;
"#;

/// Each note remembers the script its prose is written in
/// ([`crate::language::prose_script`]), for fusion to weigh an English-only
/// model's similarity across scripts. NULL until read: notes indexed before
/// get theirs from their chunks at the next index run, without re-reading
/// their files.
const V11_NOTE_SCRIPT: &str = r#"
ALTER TABLE notes ADD COLUMN script INTEGER;
-- Every index run asks for the notes still without one: only those are here.
CREATE INDEX notes_without_script ON notes(id) WHERE script IS NULL;
"#;

/// Every migration, in order: the one at index `i` moves version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    V1,
    V2,
    V3,
    V4_GENERATION,
    V5_PAGES,
    V6_NOTE_LINKS,
    V7_PRUNING,
    V8_BOILERPLATE,
    V9_SEARCH_HISTORY,
    V10_CACHE_ROWS,
    V11_NOTE_SCRIPT,
];

/// Brings `conn` to [`SCHEMA_VERSION`], refusing databases from a newer Sift.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    check_version(version)?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    // One process migrates; others opening the same new database at the same
    // moment wait for it (IMMEDIATE takes the write lock) and then see the
    // version it reached, instead of creating the tables a second time.
    // A migration can take a while (V10 copies the embedding cache: 31 s at
    // 1M vectors): wait for another process's as long as it may take, not
    // the usual busy timeout.
    conn.busy_timeout(MIGRATION_WAIT)?;
    let migrated = migrate_now(conn);
    conn.busy_timeout(super::BUSY_TIMEOUT)?;
    migrated
}

/// How long an open waits for another process's migration to end.
const MIGRATION_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

fn migrate_now(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    check_version(version)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        if *sql == V3 {
            super::chunks::rebuild_keyword_index(&tx)?;
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}

fn check_version(version: i64) -> Result<()> {
    if version > SCHEMA_VERSION {
        return Err(Error::new(
            ErrorKind::IndexCorrupt,
            format!(
                "the index was written by a newer Sift (schema {version}, this build knows {SCHEMA_VERSION}); update Sift or choose another data folder"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process opening the database while another migrates it waits for
    /// the migration (however long past the usual busy timeout), then opens
    /// the migrated database instead of failing with "database is locked".
    #[test]
    fn an_open_waits_out_another_process_migration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sift.db");
        let mut old = Connection::open(&path).unwrap();
        old.pragma_update(None, "journal_mode", "WAL").unwrap();
        for sql in &MIGRATIONS[..9] {
            old.execute_batch(sql).unwrap();
        }
        old.pragma_update(None, "user_version", 9).unwrap();
        // The other process: takes the write lock as a migration does and
        // holds it past the busy timeout, then migrates.
        let (locked, is_locked) = std::sync::mpsc::channel();
        let other = std::thread::spawn(move || {
            let tx = old
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .unwrap();
            locked.send(()).unwrap();
            std::thread::sleep(crate::store::BUSY_TIMEOUT + std::time::Duration::from_secs(1));
            tx.commit().unwrap();
            migrate(&mut old).unwrap();
        });
        is_locked.recv().unwrap();
        let started = std::time::Instant::now();
        let store = crate::store::Store::open(&path).expect("waits for the migration");
        assert!(started.elapsed() > crate::store::BUSY_TIMEOUT);
        other.join().unwrap();
        let version: i64 = store
            .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    /// A version 9 database (vectors in the WITHOUT ROWID cache) keeps every
    /// vector, its unused stamp and its generation through V10, and the new
    /// table refuses a second row for a key as the old primary key did.
    #[test]
    fn the_cache_moves_to_a_rowid_table_with_every_vector() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..9] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 9).unwrap();
        let vector = |i: u8| vec![i; 1536];
        for i in 0..40u8 {
            conn.execute(
                "INSERT INTO embed_cache(embedder, hash, vector, unused_since) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    if i % 2 == 0 { "local" } else { "openai" },
                    vec![i; 32],
                    vector(i),
                    (i == 7).then_some(1234),
                ],
            )
            .unwrap();
        }
        let generation = |c: &Connection| -> i64 {
            c.query_row(
                "SELECT value FROM store_meta WHERE key = 'generation'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        let before = generation(&conn);
        assert!(conn
            .query_row("SELECT rowid FROM embed_cache", [], |_| Ok(()))
            .is_err());

        migrate(&mut conn).unwrap();

        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(generation(&conn), before, "vector files stay current");
        for i in 0..40u8 {
            let (embedder, stored, unused): (String, Vec<u8>, Option<i64>) = conn
                .query_row(
                    "SELECT embedder, vector, unused_since FROM embed_cache INDEXED BY embed_cache_keys
                     WHERE embedder IN ('local', 'openai') AND hash = ?1",
                    [vec![i; 32]],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap();
            assert_eq!(embedder, if i % 2 == 0 { "local" } else { "openai" });
            assert_eq!(stored, vector(i));
            assert_eq!(unused, (i == 7).then_some(1234));
        }
        // A rowid table now; a key is still cached once.
        conn.query_row("SELECT rowid FROM embed_cache LIMIT 1", [], |_| Ok(()))
            .unwrap();
        let put = |c: &Connection, v: u8| {
            c.execute(
                "INSERT OR IGNORE INTO embed_cache(embedder, hash, vector) VALUES ('local', ?1, ?2)",
                rusqlite::params![vec![0u8; 32], vector(v)],
            )
            .unwrap()
        };
        assert_eq!(put(&conn, 99), 0);
        let count: i64 = conn
            .query_row("SELECT count(*) FROM embed_cache", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 40);
        // New vectors still move the generation on.
        conn.execute(
            "INSERT INTO embed_cache(embedder, hash, vector) VALUES ('local', ?1, ?2)",
            rusqlite::params![vec![200u8; 32], vector(200)],
        )
        .unwrap();
        assert_eq!(generation(&conn), before + 1);
    }
}
