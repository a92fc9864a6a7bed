//! Google Gemini embeddings: text-embedding-004 (768) and gemini-embedding-001
//! (3072, or fewer with `dimensions`), through `models/{model}:batchEmbedContents`
//! (at most 100 texts a batch) for passages with task type `RETRIEVAL_DOCUMENT`
//! and `models/{model}:embedContent` for queries with `RETRIEVAL_QUERY`.
//!
//! The key goes in the `x-goog-api-key` header, never in the URL (URLs end up in
//! logs and error messages).
//!
//! Gemini counts tokens with its own tokenizer, which Sift cannot run offline;
//! `cl100k_base` stands in for it, with the input limit set well below Gemini's
//! 2048 so that inputs are split rather than truncated by the server.

use reqwest::StatusCode;
use serde::Deserialize;

use super::remote::{
    self, ApiError, Failure, Limits, Meta, RemoteEmbedder, RemoteOptions, Task, Wire,
};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::ApiKey;

/// Where the Gemini API lives unless the settings say otherwise.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";

/// Gemini's limits, in `cl100k_base` tokens: 100 texts a batch; 2048 Gemini
/// tokens an input, of which Sift uses 1500 `cl100k_base` tokens to leave room
/// for the difference between the tokenizers.
pub const LIMITS: Limits = Limits {
    max_inputs: 100,
    max_request_tokens: 100 * 1500,
    max_input_tokens: 1500,
};

fn native(model: &str) -> Option<usize> {
    match model {
        "text-embedding-004" => Some(768),
        "gemini-embedding-001" => Some(3072),
        _ => None,
    }
}

/// A Gemini embedder for `model`, optionally shortened to `dimensions`
/// (`outputDimensionality`), at `base_url` (default [`DEFAULT_BASE_URL`]).
pub fn embedder(
    model: &str,
    dimensions: Option<usize>,
    base_url: Option<&str>,
    key: ApiKey,
    options: RemoteOptions,
) -> Result<RemoteEmbedder> {
    let model = model.strip_prefix("models/").unwrap_or(model);
    let base = remote::parse_base_url(base_url.unwrap_or(DEFAULT_BASE_URL), "Gemini")?;
    let (dims, send) = match (native(model), dimensions) {
        (Some(n), None) => (Some(n), None),
        (Some(n), Some(d)) if d == n => (Some(n), None),
        (Some(n), Some(d)) if (1..n).contains(&d) => (Some(d), Some(d)),
        (Some(n), Some(d)) => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{model} can return 1 to {n} dimensions, not {d}"),
            ))
        }
        (None, d) => (d, d),
    };
    let id = match send {
        Some(d) => format!("gemini/{model}@{d}"),
        None => format!("gemini/{model}"),
    };
    let meta = Meta {
        provider: "gemini",
        label: "Gemini",
        model: model.to_string(),
        base_url: remote::display_url(&base),
    };
    let wire = GeminiWire {
        base,
        model: model.to_string(),
        dimensions: send,
        key,
    };
    RemoteEmbedder::new(meta, Box::new(wire), LIMITS, options, dims, id)
}

struct GeminiWire {
    base: String,
    model: String,
    dimensions: Option<usize>,
    key: ApiKey,
}

#[derive(Deserialize)]
struct Values {
    values: Vec<f32>,
}

#[derive(Deserialize)]
struct BatchResponse {
    embeddings: Vec<Values>,
}

#[derive(Deserialize)]
struct SingleResponse {
    embedding: Values,
}

fn task_type(task: Task) -> &'static str {
    match task {
        Task::Document => "RETRIEVAL_DOCUMENT",
        Task::Query => "RETRIEVAL_QUERY",
    }
}

impl GeminiWire {
    fn content(&self, text: &str, task: Task) -> serde_json::Value {
        let mut v = serde_json::json!({
            "model": format!("models/{}", self.model),
            "content": { "parts": [{ "text": text }] },
            "taskType": task_type(task),
        });
        if let Some(d) = self.dimensions {
            v["outputDimensionality"] = d.into();
        }
        v
    }

    fn single(task: Task, texts: &[String]) -> bool {
        task == Task::Query && texts.len() == 1
    }
}

impl Wire for GeminiWire {
    fn request(
        &self,
        client: &reqwest::Client,
        texts: &[String],
        task: Task,
    ) -> reqwest::RequestBuilder {
        let (method, body) = if Self::single(task, texts) {
            ("embedContent", self.content(&texts[0], task))
        } else {
            let requests: Vec<_> = texts.iter().map(|t| self.content(t, task)).collect();
            (
                "batchEmbedContents",
                serde_json::json!({ "requests": requests }),
            )
        };
        client
            .post(format!("{}/models/{}:{method}", self.base, self.model))
            .header("x-goog-api-key", remote::secret_header(self.key.expose()))
            .json(&body)
    }

    fn parse(&self, body: &[u8], task: Task) -> std::result::Result<Vec<Vec<f32>>, String> {
        // A query is a single embedContent; its answer is {"embedding": ...}.
        if task == Task::Query {
            if let Ok(one) = serde_json::from_slice::<SingleResponse>(body) {
                return Ok(vec![one.embedding.values]);
            }
        }
        let batch: BatchResponse =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON ({e})"))?;
        Ok(batch.embeddings.into_iter().map(|v| v.values).collect())
    }

    fn error_details(&self, body: &str) -> ApiError {
        let mut err = ApiError::default();
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(body) {
            let e = &json["error"];
            err.message = e["message"].as_str().unwrap_or_default().to_string();
            // The most specific code: an ErrorInfo reason such as API_KEY_INVALID.
            let reason = e["details"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|d| d["reason"].as_str());
            err.code = reason
                .or_else(|| e["status"].as_str())
                .unwrap_or_default()
                .to_string();
        }
        err
    }

    fn classify(&self, meta: &Meta, status: StatusCode, err: &ApiError) -> Option<Failure> {
        // Gemini answers a bad key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
        let bad_key = err.code == "API_KEY_INVALID" || err.message.contains("API key not valid");
        if status.as_u16() == 400 && bad_key {
            return Some(Failure::Fatal(Error::new(
                ErrorKind::InvalidKey,
                format!(
                    "{} rejected the API key ({}). Check it and store it again with \
                     `sift key set gemini`.",
                    meta.label, err.message
                ),
            )));
        }
        None
    }

    /// Gemini has one 429 for rate limits and daily quotas alike; when 429s
    /// outlast the retries, the quota is the likely cause.
    fn rate_limit_exhausted_kind(&self) -> ErrorKind {
        ErrorKind::QuotaExhausted
    }

    fn key(&self) -> Option<&ApiKey> {
        Some(&self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::Embedder;

    #[test]
    fn ids_and_dimensions() {
        let key = || ApiKey::new("test-key-123").unwrap();
        let o = RemoteOptions::default();
        let e = embedder("models/text-embedding-004", None, None, key(), o.clone()).unwrap();
        assert_eq!((e.id(), e.dimensions()), ("gemini/text-embedding-004", 768));
        let e = embedder("gemini-embedding-001", Some(768), None, key(), o.clone()).unwrap();
        assert_eq!(
            (e.id(), e.dimensions()),
            ("gemini/gemini-embedding-001@768", 768)
        );
        assert_eq!(e.model(), "gemini-embedding-001");
        assert_eq!(e.max_input_tokens(), 1500);
        let err = embedder("text-embedding-004", Some(1024), None, key(), o).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn reads_error_reason() {
        let w = GeminiWire {
            base: String::new(),
            model: String::new(),
            dimensions: None,
            key: ApiKey::new("test-key-123").unwrap(),
        };
        let body = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#;
        let e = w.error_details(body);
        assert_eq!(e.code, "API_KEY_INVALID");
    }
}
