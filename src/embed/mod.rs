//! Embedders turn text into vectors. One trait, one module per provider.
//!
//! The engine only talks to [`Embedder`]; which provider sits behind it is a
//! setting. Every embedder has a stable [`Embedder::id`] that names the model and
//! its output shape: vectors and cache entries are kept per id, so switching model
//! can never mix vectors of different spaces or dimensions.

use crate::error::Result;

/// Turns text into L2-normalised vectors.
///
/// Contract:
/// - `embed_documents` returns exactly one vector per input, in input order, each of
///   `dimensions()` floats, L2-normalised.
/// - No input passed in is longer than `max_input_tokens()` as counted by
///   `count_tokens`; callers (the chunker) guarantee it, embedders may reject longer
///   input with `ErrorKind::InputTooLong` but must never silently truncate.
/// - Blocking: remote providers run their own requests (with concurrency) inside.
pub trait Embedder: Send + Sync {
    /// Stable identifier of model and output shape, e.g.
    /// `local/all-MiniLM-L6-v2` or `openai/text-embedding-3-small@512`.
    fn id(&self) -> &str;

    /// Length of every vector this embedder returns.
    fn dimensions(&self) -> usize;

    /// Largest input, in this embedder's own tokens, it accepts without truncation
    /// (special tokens excluded).
    fn max_input_tokens(&self) -> usize;

    /// Number of tokens `text` costs this embedder (special tokens excluded).
    fn count_tokens(&self, text: &str) -> usize;

    /// Embeds passages for indexing.
    fn embed_documents(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;

    /// Embeds one search query (providers may use a query-specific task type).
    fn embed_query(&self, text: &str) -> Result<Vec<f32>>;
}

/// Scales `v` to unit length in place (no-op for the zero vector).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}
