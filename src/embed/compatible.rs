//! Servers that speak OpenAI's embeddings format: Ollama (`http://localhost:11434/v1`),
//! LM Studio (`http://localhost:1234/v1`), vLLM, LocalAI, gateways.
//!
//! Configured by base URL and model name. The dimensions are discovered from the
//! server's first answer (one probe request when the embedder is built) and
//! become part of the embedder id, so a model swapped on the server under the
//! same name gets its own index instead of a dimension mismatch.
//!
//! Their tokenizers are unknown to Sift: tokens are counted with `cl100k_base`
//! and the input limit is a setting (default [`DEFAULT_MAX_INPUT_TOKENS`],
//! which suits 512-token models such as BGE or nomic-embed-text's default
//! context); many servers truncate silently past their context, so set it no
//! higher than the model's window.

use super::openai::OpenAiWire;
use super::remote::{self, Limits, Meta, RemoteEmbedder, RemoteOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::ApiKey;

/// Default input limit, in `cl100k_base` tokens.
pub const DEFAULT_MAX_INPUT_TOKENS: usize = 400;

/// Default inputs per request.
pub const DEFAULT_BATCH_SIZE: usize = 64;

/// An embedder for `model` on the server at `base_url` (ending in `/v1` for most
/// servers: requests go to `{base_url}/embeddings`). `key` is sent as a bearer
/// token when the server wants one (vLLM `--api-key`, gateways).
pub fn embedder(
    base_url: &str,
    model: &str,
    max_input_tokens: Option<usize>,
    key: Option<ApiKey>,
    options: RemoteOptions,
) -> Result<RemoteEmbedder> {
    if model.trim().is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the OpenAI-compatible provider needs a model name (e.g. nomic-embed-text)",
        ));
    }
    let base = remote::parse_base_url(base_url, "the OpenAI-compatible server")?;
    let max_input = max_input_tokens.unwrap_or(DEFAULT_MAX_INPUT_TOKENS).max(16);
    let batch = options.batch_size.unwrap_or(DEFAULT_BATCH_SIZE).max(1);
    let limits = Limits {
        max_inputs: batch,
        max_request_tokens: batch * max_input,
        max_input_tokens: max_input,
    };
    let meta = Meta {
        provider: "compatible",
        label: "the OpenAI-compatible server",
        model: model.to_string(),
        base_url: remote::display_url(&base),
    };
    let wire = OpenAiWire {
        url: format!("{base}/embeddings"),
        model: model.to_string(),
        dimensions: None,
        key,
        quota_code: false,
    };
    RemoteEmbedder::new(
        meta,
        Box::new(wire),
        limits,
        options,
        None,
        format!("compatible/{model}"),
    )
}
