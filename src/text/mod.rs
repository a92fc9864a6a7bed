//! Text as Sift reads it: what a word is ([`words`]), what a reader sees of a
//! Markdown note ([`reader`]) and boundary-safe positions ([`bounds`]).
//! Indexing, search, highlights and snippets all go through here, so they
//! agree on every input, however messy.

pub mod bounds;
pub mod reader;
pub mod words;

pub use reader::{reader_text, ReaderText};
pub use words::{each_token_starting, index_terms, term_of, tokens, Token};
