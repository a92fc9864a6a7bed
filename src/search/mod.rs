//! Answering queries: keyword (FTS5 BM25), semantic (usearch) and hybrid
//! (reciprocal rank fusion), with filters, per-note grouping, snippets and
//! "related notes".

mod backlinks;
pub mod filter;
mod fusion;
pub mod keyword;
pub mod meaning_fill;
mod second_thread;
pub mod snippet;
pub mod terms;

use serde::{Deserialize, Serialize};

pub use backlinks::backlinks;
pub use filter::{DateSource, Filters};
pub use fusion::{
    candidates, fuse, fuse_with, rank_notes, related_notes, Candidates, Combine, FusionParams,
    QueryShape, RankedNote,
};
pub use snippet::SnippetPart;

use crate::error::Result;

/// Which rankers answer a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Keywords and meaning, fused.
    #[default]
    Hybrid,
    /// FTS5 BM25 only.
    Keyword,
    /// Vector similarity only.
    Semantic,
}

impl std::str::FromStr for Mode {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Mode> {
        match s {
            "hybrid" => Ok(Mode::Hybrid),
            "keyword" => Ok(Mode::Keyword),
            "semantic" => Ok(Mode::Semantic),
            other => Err(crate::Error::new(
                crate::ErrorKind::InvalidInput,
                format!("unknown mode '{other}': use hybrid, keyword or semantic"),
            )),
        }
    }
}

/// A search request (also the desktop IPC shape).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Query {
    /// What the user typed.
    pub text: String,
    /// Rankers to use.
    pub mode: Mode,
    /// Most notes to return.
    pub limit: usize,
    /// Keyword share of hybrid fusion, 0..=1 (None: the setting).
    pub keyword_weight: Option<f32>,
    /// Folder prefix, relative to the indexed folder.
    pub folder: Option<String>,
    /// Required tags.
    pub tags: Vec<String>,
    /// Allowed extensions.
    pub exts: Vec<String>,
    /// Modified on or after (YYYY-MM-DD).
    pub after: Option<String>,
    /// Modified on or before (YYYY-MM-DD, inclusive).
    pub before: Option<String>,
    /// Which date `after` and `before` look at: the file's modification time
    /// (default) or the note's front-matter date where it has one.
    pub date: DateSource,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            text: String::new(),
            mode: Mode::Hybrid,
            limit: 10,
            keyword_weight: None,
            folder: None,
            tags: Vec::new(),
            exts: Vec::new(),
            after: None,
            before: None,
            date: DateSource::Modified,
        }
    }
}

impl Query {
    /// A hybrid query for `text` with default settings.
    pub fn new(text: impl Into<String>) -> Query {
        Query {
            text: text.into(),
            ..Query::default()
        }
    }

    /// The filters this query asks for.
    pub fn filters(&self) -> Result<Filters> {
        let nonempty = |s: &Option<String>| s.as_ref().filter(|s| !s.trim().is_empty()).cloned();
        Ok(Filters {
            folder: nonempty(&self.folder),
            tags: self
                .tags
                .iter()
                .filter(|t| !t.is_empty())
                .cloned()
                .collect(),
            exts: self
                .exts
                .iter()
                .filter(|t| !t.is_empty())
                .cloned()
                .collect(),
            after: nonempty(&self.after)
                .map(|d| filter::parse_date(&d))
                .transpose()?,
            before: nonempty(&self.before)
                .map(|d| filter::parse_date(&d).map(|t| t + 86_400))
                .transpose()?,
            date: self.date,
        })
    }
}

/// One note in the results, with its best chunk and why it ranked.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Hit {
    /// Path relative to its indexed folder, `/`-separated.
    pub path: String,
    /// Absolute path.
    pub abs_path: String,
    /// The indexed folder.
    pub root: String,
    /// Note title.
    pub title: String,
    /// Headings in effect at the best chunk.
    pub heading_path: Vec<String>,
    /// 1-based line of the first match in the best chunk (its start if none);
    /// for converted documents, a line of the extracted text.
    pub line: usize,
    /// Page of the first match, for paged documents (PDF).
    pub page: Option<u32>,
    /// Snippet of the best chunk, terms highlighted.
    pub snippet: Vec<SnippetPart>,
    /// Fused score (higher is better).
    pub score: f64,
    /// The note's rank among keyword results (1 = best).
    pub keyword_rank: Option<usize>,
    /// Best cosine similarity of the note's chunks to the query.
    pub vector_similarity: Option<f32>,
    /// Note tags.
    pub tags: Vec<String>,
    /// The note's aliases (front matter), other names it goes by.
    pub aliases: Vec<String>,
    /// Modification time (Unix seconds).
    pub modified: i64,
    /// The note's own date from front matter (`date`, else `created`).
    pub note_date: Option<i64>,
    /// Which date the query's date filter used for this note: its front-matter
    /// date when asked for and present, else its modification time.
    pub date_source: DateSource,
    /// File extension.
    pub ext: String,
    /// Best chunk id.
    pub chunk_id: i64,
}

/// What a search returns.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResults {
    /// Notes, best first.
    pub hits: Vec<Hit>,
    /// Time taken in milliseconds.
    pub took_ms: f64,
    /// The mode actually used (hybrid falls back to keyword without a model).
    pub mode: Mode,
    /// Something the user should know (e.g. keyword-only because no model).
    pub warning: Option<String>,
}
