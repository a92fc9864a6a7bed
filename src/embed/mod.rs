//! Embedders turn text into vectors. One trait, one module per provider.
//!
//! The engine only talks to [`Embedder`]; which provider sits behind it is a
//! setting. Every embedder has a stable [`Embedder::id`] that names the model and
//! its output shape: vectors and cache entries are kept per id, so switching model
//! can never mix vectors of different spaces or dimensions.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, ErrorKind, Result};

pub mod compatible;
pub mod gemini;
pub mod openai;
pub mod provider;
pub mod remote;

pub use provider::{build_embedder, build_estimator, ProviderConfig};

pub mod local;

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

    /// Who serves the vectors, for the cost ledger: `local`, `openai`, `gemini`,
    /// `compatible`. Defaults to the part of [`Embedder::id`] before the first `/`.
    fn provider(&self) -> &str {
        self.id().split_once('/').map_or("", |(p, _)| p)
    }

    /// The model's name, for the cost ledger and the price table: the part of
    /// [`Embedder::id`] after the first `/` and before any `@` (output shape).
    fn model(&self) -> &str {
        let rest = self.id().split_once('/').map_or(self.id(), |(_, m)| m);
        rest.split_once('@').map_or(rest, |(m, _)| m)
    }

    /// Gets ready for many queries in a long-lived process (the app, `sift
    /// mcp`, `sift watch`): the local model packs its weights for bfloat16
    /// products where the CPU has them (about 45 MB; queries then take a third
    /// of the time). A one-shot `sift search` skips it and stays light.
    /// Default: nothing.
    fn prepare_for_queries(&self) {}

    /// Requests and tokens sent to the provider since the last call (then resets).
    /// Local embedders send nothing and keep the default.
    fn take_usage(&self) -> Usage {
        Usage::default()
    }

    /// Embeds passages for indexing, handing each finished batch to `sink` as
    /// `(offset of its first text in texts, vectors)` as soon as it is done, so a
    /// caller can store it before the next one: a failure or cancellation later in
    /// the run loses nothing that was already paid for. Batches may finish out of
    /// order; every text is delivered exactly once on success. `control` can cancel
    /// the run or refuse a batch before it is sent (budget caps).
    ///
    /// The default cuts `texts` into slices of 32 and calls
    /// [`Embedder::embed_documents`] on each.
    fn embed_documents_with(
        &self,
        texts: &[String],
        control: &RunControl<'_>,
        sink: &mut dyn FnMut(usize, Vec<Vec<f32>>) -> Result<()>,
    ) -> Result<()> {
        for (i, slice) in texts.chunks(32).enumerate() {
            control.check_cancelled()?;
            // Counting is a tokenization of every text: only for a gate.
            let tokens = if control.has_gate() {
                slice.iter().map(|t| self.count_tokens(t) as u64).sum()
            } else {
                0
            };
            control.admit(&Outgoing {
                texts: slice.len(),
                tokens,
            })?;
            sink(i * 32, self.embed_documents(slice)?)?;
        }
        Ok(())
    }
}

/// What an embedder sent to its provider: what the provider bills.
///
/// Only requests that succeeded count (failed attempts are not billed by
/// OpenAI or Gemini); tokens are this embedder's own count of what was sent
/// (tiktoken `cl100k_base` for remote providers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Successful requests.
    pub requests: u64,
    /// Tokens in the inputs of those requests.
    pub tokens_sent: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, rhs: Usage) {
        self.requests += rhs.requests;
        self.tokens_sent += rhs.tokens_sent;
    }
}

/// One request about to be sent, as shown to a [`RunControl`] gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    /// Inputs in the request.
    pub texts: usize,
    /// Their tokens.
    pub tokens: u64,
}

/// A check run before each request is sent; an error stops the run (after
/// requests already in flight are finished and delivered).
pub type Gate<'a> = &'a (dyn Fn(&Outgoing) -> Result<()> + Sync);

/// Per-run controls of [`Embedder::embed_documents_with`]: a cancel flag that is
/// checked between requests (and while waiting for them), and an optional gate
/// (a budget cap) that may refuse a request before it is sent.
#[derive(Clone, Copy, Default)]
pub struct RunControl<'a> {
    cancel: Option<&'a AtomicBool>,
    gate: Option<Gate<'a>>,
}

impl std::fmt::Debug for RunControl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunControl")
            .field("cancelled", &self.is_cancelled())
            .field("gate", &self.gate.is_some())
            .finish()
    }
}

impl<'a> RunControl<'a> {
    /// No cancellation, no gate.
    pub fn new() -> Self {
        RunControl::default()
    }

    /// Cancels the run when `flag` becomes true.
    pub fn with_cancel(mut self, flag: &'a AtomicBool) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// Runs `gate` before each request.
    pub fn with_gate(mut self, gate: Gate<'a>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// True once the cancel flag is set.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// `Err(Cancelled)` once the cancel flag is set.
    pub fn check_cancelled(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::new(
                ErrorKind::Cancelled,
                "indexing was cancelled; everything embedded so far is kept and the next run resumes",
            ))
        } else {
            Ok(())
        }
    }

    /// Whether a gate looks at requests (else their tokens need no counting).
    pub fn has_gate(&self) -> bool {
        self.gate.is_some()
    }

    /// Asks the gate whether `next` may be sent.
    pub fn admit(&self, next: &Outgoing) -> Result<()> {
        match self.gate {
            Some(gate) => gate(next),
            None => Ok(()),
        }
    }
}

/// Scales `v` to unit length in place (no-op for the zero vector): the
/// local encoder's own, so every embedder's vectors are made unit length alike.
pub use sift_encoder::normalize;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its token counts; every text is one token per word.
    #[derive(Default)]
    struct Counting {
        counts: AtomicUsize,
    }

    impl Embedder for Counting {
        fn id(&self) -> &str {
            "test/counting"
        }
        fn dimensions(&self) -> usize {
            1
        }
        fn max_input_tokens(&self) -> usize {
            100
        }
        fn count_tokens(&self, text: &str) -> usize {
            self.counts.fetch_add(1, Ordering::Relaxed);
            text.split_whitespace().count()
        }
        fn embed_documents(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
            Ok(texts.iter().map(|_| vec![1.0]).collect())
        }
        fn embed_query(&self, _text: &str) -> Result<Vec<f32>> {
            Ok(vec![1.0])
        }
    }

    #[test]
    fn tokens_are_counted_for_a_gate_only() {
        let texts: Vec<String> = (0..40).map(|i| format!("text number {i}")).collect();
        let embedder = Counting::default();
        let mut delivered = 0;
        let mut sink = |_: usize, v: Vec<Vec<f32>>| {
            delivered += v.len();
            Ok(())
        };
        embedder
            .embed_documents_with(&texts, &RunControl::new(), &mut sink)
            .unwrap();
        assert_eq!(embedder.counts.load(Ordering::Relaxed), 0);

        let seen = std::sync::Mutex::new(Vec::new());
        let gate = |o: &Outgoing| {
            seen.lock().unwrap().push(*o);
            Ok(())
        };
        embedder
            .embed_documents_with(&texts, &RunControl::new().with_gate(&gate), &mut sink)
            .unwrap();
        assert_eq!(delivered, 80);
        let seen = seen.into_inner().unwrap();
        assert_eq!(
            seen,
            [
                Outgoing {
                    texts: 32,
                    tokens: 96
                },
                Outgoing {
                    texts: 8,
                    tokens: 24
                }
            ]
        );
    }
}
