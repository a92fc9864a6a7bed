//! The fast keyword index: a tantivy index of every chunk's terms, beside the
//! database in `keywords/`.
//!
//! SQLite stays the source of truth: its FTS5 table holds each chunk's terms
//! (by the one word rule) and answers keyword queries whenever this index is
//! missing, damaged or behind. This index is derived from it, the way the
//! vector file is derived from the embedding cache: its commit carries a label
//! (store id, the highest chunk id it holds, the last entry of the
//! `vector_removals` log it applied). Chunk ids are never reused, so catching
//! up is "add the chunks after `max_chunk_id`, delete the removed ones".
//!
//! Why a second index: FTS5 scores every chunk that matches any query term
//! (an OR query over common words touches most of a large vault), while
//! tantivy's block-max WAND skips whole blocks that cannot reach the top k.
//!
//! Only the process holding the writer lock ([`crate::lock`]) writes it; other
//! processes reload it when its label moves and use FTS5 while it is behind.

mod search;
mod top_k;

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use tantivy::indexer::LogMergePolicy;
use tantivy::schema::{IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::error::{Error, ErrorKind, Result};
use crate::store::tables;

pub use search::KeywordMatch;

/// Version of the on-disk layout (schema and label); another one is rebuilt.
/// 2: each chunk's note title terms, for the title boost.
const FORMAT: u32 = 2;

/// Memory the writer may buffer before flushing a segment.
const WRITER_MEMORY: usize = 50_000_000;

/// Share of a segment's documents deleted before it is merged.
const DELETED_SHARE_BEFORE_MERGE: f32 = 0.1;

/// Which query words are too common to search for candidates: a word held by
/// more than `share` of the chunks, once the index holds at least
/// `from_chunks` chunks, is left out of the search (the rarest word is kept
/// if none is left); it still counts in coverage.
///
/// Why: such a word's IDF is small (at most ln 5 for a fifth of the chunks),
/// so it barely moves a chunk's BM25, but its postings are the longest the
/// search walks. At 100k chunks, leaving out words in over a fifth of them
/// made tantivy's top 100 about 1.5x cheaper; SciFact keyword nDCG@10 went
/// from 0.6833 to 0.6870, hybrid unchanged (BENCHMARKS.md, issue 12). In a
/// small vault the postings are short anyway, and a word in a fifth of its
/// chunks can be its subject (the held-out real notes lost a keyword query
/// with the cut applied at 1.6k chunks), so words are only left out from
/// `from_chunks` on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommonWords {
    /// Share of the chunks above which a word is common.
    pub share: f64,
    /// Index size from which common words are left out.
    pub from_chunks: u64,
}

impl Default for CommonWords {
    fn default() -> Self {
        CommonWords {
            share: 0.2,
            from_chunks: 50_000,
        }
    }
}

/// Chunks read from SQLite per batch while catching up.
const BATCH: usize = 2048;

/// What the index holds, written with each commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    format: u32,
    store_id: i64,
    /// Highest chunk id added (ids are handed out in order, never reused).
    max_chunk_id: i64,
    /// Last `vector_removals` entry applied.
    removal_seq: i64,
}

#[derive(Clone, Copy)]
struct Fields {
    chunk_id: tantivy::schema::Field,
    note_id: tantivy::schema::Field,
    terms: tantivy::schema::Field,
    /// The distinct terms of the note's title (not searched: the title
    /// boost reads which query terms it holds from its postings).
    title: tantivy::schema::Field,
    /// How many distinct terms the title has.
    title_terms: tantivy::schema::Field,
    /// 1 when the note has aliases (their matches are read from SQLite).
    aliases: tantivy::schema::Field,
}

/// The keyword index of one data folder.
pub struct KeywordIndex {
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// The label of the commit the reader sees.
    label: Option<Label>,
    /// Query words too common to search for candidates.
    common_words: CommonWords,
    /// Weight of BM25 over the title field beside the terms field (0: the
    /// title counts only through its terms held twice in the terms field).
    title_weight: f32,
}

impl KeywordIndex {
    /// Opens the index in `dir`, creating it when missing. A damaged index or
    /// one of another database or format is deleted and created empty (its
    /// label then says it holds nothing, so the writer refills it).
    pub fn open(dir: &Path) -> Result<KeywordIndex> {
        match KeywordIndex::open_existing(dir) {
            Ok(ki) => Ok(ki),
            Err(_) => {
                let _ = std::fs::remove_dir_all(dir);
                KeywordIndex::create(dir)
            }
        }
    }

    fn open_existing(dir: &Path) -> Result<KeywordIndex> {
        let index = Index::open_in_dir(dir).map_err(kw_err)?;
        let fields = fields_of(&index.schema())?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(kw_err)?;
        let mut ki = KeywordIndex {
            dir: dir.to_path_buf(),
            index,
            reader,
            fields,
            label: None,
            common_words: CommonWords::default(),
            title_weight: 0.0,
        };
        ki.label = ki.read_label();
        Ok(ki)
    }

    fn create(dir: &Path) -> Result<KeywordIndex> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let index = Index::create_in_dir(dir, schema()).map_err(kw_err)?;
        let fields = fields_of(&index.schema())?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(kw_err)?;
        Ok(KeywordIndex {
            dir: dir.to_path_buf(),
            index,
            reader,
            fields,
            label: None,
            common_words: CommonWords::default(),
            title_weight: 0.0,
        })
    }

    /// Sets which query words are left out of the candidate search (for
    /// measuring variants; searches use [`CommonWords::default`]).
    pub fn set_common_words(&mut self, common: CommonWords) {
        self.common_words = common;
    }

    /// Sets the weight of a BM25 over the title field added to each chunk's
    /// score (for measuring variants; searches use 0).
    pub fn set_title_weight(&mut self, weight: f32) {
        self.title_weight = weight;
    }

    /// Whether the index (as last reloaded) holds exactly the chunks the
    /// store holds now, so it can answer instead of FTS5.
    pub fn is_current(&self, conn: &Connection) -> Result<bool> {
        Ok(self.label == Some(store_label(conn)?))
    }

    /// Brings the index up to the store: deletes removed chunks, adds new
    /// ones, commits with the new label. Only the holder of the writer lock
    /// may call this. Returns the chunks added (0 when already current).
    pub fn catch_up(&mut self, conn: &Connection) -> Result<usize> {
        self.reload();
        let want = store_label(conn)?;
        if self.label == Some(want) {
            return Ok(0);
        }
        let mut writer: IndexWriter<TantivyDocument> = self
            .index
            .writer_with_num_threads(1, WRITER_MEMORY)
            .map_err(kw_err)?;
        // A writer killed mid-commit leaves files its meta never named (a
        // segment's deletes, say); this commit may want the same names
        // ("FileAlreadyExists", seen in crash_kill). Collected first; a
        // failure here only leaves them for the commit's own collection.
        let _ = writer.garbage_collect_files().wait();
        // Deleted documents still count in BM25's statistics until their
        // segment is merged: merge a segment once a tenth of it is deleted, so
        // scores drift little as notes are edited (FTS5 stays exact).
        let mut policy = LogMergePolicy::default();
        policy.set_del_docs_ratio_before_merge(DELETED_SHARE_BEFORE_MERGE);
        writer.set_merge_policy(Box::new(policy));
        let trimmed = |l: &Label| -> Result<bool> {
            // Removals this index never applied were trimmed from the log.
            Ok(match tables::oldest_removal_seq(conn)? {
                Some(oldest) => oldest > l.removal_seq + 1,
                None => want.removal_seq > l.removal_seq,
            })
        };
        let from = match self.label {
            Some(l) if l.format == FORMAT && l.store_id == want.store_id && !trimmed(&l)? => l,
            // Another database's (a copied data folder), an older layout, or
            // too far behind the removal log: start over from the store.
            _ => {
                writer.delete_all_documents().map_err(kw_err)?;
                Label {
                    max_chunk_id: 0,
                    removal_seq: 0,
                    ..want
                }
            }
        };
        // Read the store in one snapshot so the label matches what was added.
        let tx = conn.unchecked_transaction()?;
        let now = store_label(&tx)?;
        let mut removal_seq = from.removal_seq;
        for (seq, chunk_id) in tables::removals_after(&tx, from.removal_seq)? {
            writer.delete_term(Term::from_field_u64(self.fields.chunk_id, chunk_id as u64));
            removal_seq = seq;
        }
        let mut added = 0;
        let mut after = from.max_chunk_id;
        loop {
            let rows = tables::keyword_terms_after(&tx, after, now.max_chunk_id, BATCH)?;
            let Some(last) = rows.last() else { break };
            after = last.chunk_id;
            for row in &rows {
                writer.add_document(self.document(row)).map_err(kw_err)?;
                added += 1;
            }
        }
        drop(tx);
        let label = Label {
            removal_seq: removal_seq.max(now.removal_seq),
            ..now
        };
        let payload = serde_json::to_string(&label)
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        let mut commit = writer.prepare_commit().map_err(kw_err)?;
        commit.set_payload(&payload);
        commit.commit().map_err(kw_err)?;
        writer.wait_merging_threads().map_err(kw_err)?;
        self.reload();
        Ok(added)
    }

    /// Deletes the index's files and starts empty (after damage found while
    /// searching); the writer refills it on its next catch-up.
    pub fn reset(&mut self) -> Result<()> {
        let _ = std::fs::remove_dir_all(&self.dir);
        *self = KeywordIndex::create(&self.dir)?;
        Ok(())
    }

    /// Chunks in the index as the reader sees it.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Every chunk id the index holds (deleted documents left out), for
    /// checking it against the store.
    pub fn chunk_ids(&self) -> Result<Vec<i64>> {
        let searcher = self.reader.searcher();
        let mut ids = Vec::new();
        for segment in searcher.segment_readers() {
            let column = segment.fast_fields().u64("chunk_id").map_err(kw_err)?;
            for doc in segment.doc_ids_alive() {
                if let Some(id) = column.first(doc) {
                    ids.push(id as i64);
                }
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// Whether the index holds no chunk.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sees the latest commit (another process's, or this one's).
    pub fn reload(&mut self) {
        if self.reader.reload().is_ok() {
            self.label = self.read_label();
        }
    }

    /// The label of the last commit, if it is one of ours.
    fn read_label(&self) -> Option<Label> {
        let metas = self.index.load_metas().ok()?;
        let label: Label = serde_json::from_str(metas.payload.as_deref()?).ok()?;
        (label.format == FORMAT).then_some(label)
    }

    fn document(&self, row: &tables::KeywordTerms) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_u64(self.fields.chunk_id, row.chunk_id as u64);
        doc.add_u64(self.fields.note_id, row.note_id as u64);
        // Title, aliases and headings count twice, as FTS5's column weight
        // of 2 made them: one field keeps every query a plain union of term
        // queries, the shape block-max WAND prunes.
        doc.add_text(
            self.fields.terms,
            format!("{0} {0} {1}", row.context, row.body),
        );
        // The title's terms as `Terms::title_match` cuts them: the boost
        // of a query that is (nearly) a note's title is read from postings
        // instead of tokenizing a hundred candidate titles per query.
        let title = crate::search::terms::distinct_terms(&row.title);
        doc.add_text(self.fields.title, title.join(" "));
        doc.add_u64(self.fields.title_terms, title.len() as u64);
        let has_aliases =
            serde_json::from_str::<Vec<String>>(&row.aliases).map_or(true, |a| !a.is_empty());
        doc.add_u64(self.fields.aliases, has_aliases as u64);
        doc
    }
}

/// What the index must hold to match the store now.
fn store_label(conn: &Connection) -> Result<Label> {
    Ok(Label {
        format: FORMAT,
        store_id: tables::store_id(conn)?,
        max_chunk_id: tables::max_chunk_id(conn)?,
        removal_seq: tables::last_removal_seq(conn)?,
    })
}

fn schema() -> Schema {
    let mut builder = Schema::builder();
    let id = NumericOptions::default().set_indexed().set_fast();
    builder.add_u64_field("chunk_id", id.clone());
    builder.add_u64_field("note_id", NumericOptions::default().set_fast());
    // The terms are Sift's own (stemmed, folded, CJK pairs), space-separated:
    // tantivy only splits them, so both engines share the one word rule.
    let indexing = TextFieldIndexing::default()
        .set_tokenizer("whitespace")
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    builder.add_text_field(
        "terms",
        TextOptions::default().set_indexing_options(indexing),
    );
    let title = TextFieldIndexing::default()
        .set_tokenizer("whitespace")
        .set_index_option(IndexRecordOption::Basic);
    builder.add_text_field("title", TextOptions::default().set_indexing_options(title));
    builder.add_u64_field("title_terms", NumericOptions::default().set_fast());
    builder.add_u64_field("aliases", NumericOptions::default().set_fast());
    builder.build()
}

fn fields_of(schema: &Schema) -> Result<Fields> {
    let field = |name: &str| {
        schema.get_field(name).map_err(|_| {
            Error::new(
                ErrorKind::KeywordIndex,
                format!("keyword index lacks {name}"),
            )
        })
    };
    Ok(Fields {
        chunk_id: field("chunk_id")?,
        note_id: field("note_id")?,
        terms: field("terms")?,
        title: field("title")?,
        title_terms: field("title_terms")?,
        aliases: field("aliases")?,
    })
}

fn kw_err(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::KeywordIndex, format!("keyword index: {e}"))
}
