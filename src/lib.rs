//! Sift: make a folder of notes searchable by meaning and by keywords.
//!
//! Data flow: [`scan`] finds note files, [`note`] reads them (title, tags,
//! headings), [`chunk`] cuts them into embedder-sized pieces with line ranges,
//! [`embed`] turns chunks into vectors, [`store`] keeps metadata, full text and an
//! embedding cache in SQLite, [`vectors`] keeps a usearch index beside it,
//! [`index`] drives the two, and [`search`] answers keyword, semantic and hybrid
//! queries. [`Engine`] ties one data folder together for the CLI and the app;
//! [`watch`] follows folders live and feeds changed paths back to it.

pub mod archive;
pub mod background;
pub mod boilerplate;
pub mod chunk;
pub mod compare;
pub mod config;
pub mod cost;
pub mod data_dir;
pub mod embed;
pub mod encryption;
mod engine;
pub mod error;
pub mod extract;
pub mod file_types;
pub mod forget;
mod fsutil;
pub mod index;
pub mod keys;
pub mod keyword_index;
pub mod language;
pub mod links;
pub mod lock;
pub mod model;
pub mod note;
pub mod obsidian;
pub mod page_cache;
pub mod panics;
pub mod patterns;
pub mod power;
pub mod scan;
pub mod search;
pub mod search_history;
pub mod store;
pub mod text;
pub mod vectors;
pub mod watch;

pub use background::CpuShare;
pub use config::Settings;
pub use engine::{
    Engine, NoteView, OpenTarget, PrunePolicy, Status, WarmUp, CACHE_GRACE_SECS, MAX_LIMIT,
    REMOVAL_LOG_KEEP, VECTOR_SAVE_EVERY,
};
pub use error::{Error, ErrorKind, Result};
pub use index::{ChangeKind, IndexReport, NoteChange, Phase, Progress};
pub use search::{Hit, Mode, Query, SearchResults};
pub use watch::{Changes, WatchOptions, Watcher};
