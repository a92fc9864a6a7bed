//! Sift: make a folder of notes searchable by meaning and by keywords.
//!
//! Data flow: [`scan`] finds note files, [`note`] reads them (title, tags,
//! headings), [`chunk`] cuts them into embedder-sized pieces with line ranges,
//! [`embed`] turns chunks into vectors, [`store`] keeps metadata, full-text and an
//! embedding cache in SQLite, [`vectors`] keeps a usearch index beside it, and
//! [`search`] answers keyword, semantic and hybrid queries.

pub mod embed;
pub mod error;

pub use error::{Error, ErrorKind, Result};
