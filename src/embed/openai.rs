//! OpenAI embeddings (`POST {base}/embeddings`): text-embedding-3-small (1536),
//! text-embedding-3-large (3072) and text-embedding-ada-002 (1536), with the
//! `dimensions` option of the v3 models.
//!
//! Limits: 2048 inputs and 300k tokens a request, 8191 tokens an input, counted
//! exactly with tiktoken's `cl100k_base`, the models' own encoding.

use reqwest::StatusCode;
use serde::Deserialize;

use super::remote::{
    self, ApiError, Failure, Limits, Meta, RemoteEmbedder, RemoteOptions, Task, Wire,
};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::ApiKey;

/// Where OpenAI's API lives unless the settings say otherwise.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// OpenAI's request limits.
pub const LIMITS: Limits = Limits {
    max_inputs: 2048,
    max_request_tokens: 300_000,
    max_input_tokens: 8191,
};

/// Inputs a request unless the settings say otherwise: below OpenAI's 2048 so
/// that a large indexing call becomes several requests in flight at once, and a
/// failed request costs little time to redo.
pub const DEFAULT_BATCH_SIZE: usize = 256;

/// Native dimensions of the models Sift knows, and whether `dimensions` may
/// shorten them.
fn native(model: &str) -> Option<(usize, bool)> {
    match model {
        "text-embedding-3-small" => Some((1536, true)),
        "text-embedding-3-large" => Some((3072, true)),
        "text-embedding-ada-002" => Some((1536, false)),
        _ => None,
    }
}

/// An OpenAI embedder for `model`, optionally shortened to `dimensions`, at
/// `base_url` (default [`DEFAULT_BASE_URL`]).
///
/// A model Sift does not know is accepted (new models, gateways): its dimensions
/// are then taken from one probe request, unless `dimensions` is given.
pub fn embedder(
    model: &str,
    dimensions: Option<usize>,
    base_url: Option<&str>,
    key: ApiKey,
    mut options: RemoteOptions,
) -> Result<RemoteEmbedder> {
    options.batch_size = options.batch_size.or(Some(DEFAULT_BATCH_SIZE));
    let base = remote::parse_base_url(base_url.unwrap_or(DEFAULT_BASE_URL), "OpenAI")?;
    let (dims, send_dimensions) = match (native(model), dimensions) {
        (Some((n, _)), None) => (Some(n), None),
        (Some((n, _)), Some(d)) if d == n => (Some(n), None),
        (Some((n, true)), Some(d)) if (1..n).contains(&d) => (Some(d), Some(d)),
        (Some((n, true)), Some(d)) => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{model} can return 1 to {n} dimensions, not {d}"),
            ))
        }
        (Some((n, false)), Some(_)) => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{model} always returns {n} dimensions: remove the `dimensions` setting"),
            ))
        }
        (None, d) => (d, d),
    };
    let id = match send_dimensions {
        Some(d) => format!("openai/{model}@{d}"),
        None => format!("openai/{model}"),
    };
    let meta = Meta {
        provider: "openai",
        label: "OpenAI",
        model: model.to_string(),
        base_url: remote::display_url(&base),
    };
    let wire = OpenAiWire {
        url: format!("{base}/embeddings"),
        model: model.to_string(),
        dimensions: send_dimensions,
        key: Some(key),
        quota_code: true,
    };
    // An unknown model without `dimensions` is probed; the probe adds `@dims`.
    RemoteEmbedder::new(meta, Box::new(wire), LIMITS, options, dims, id)
}

/// The OpenAI embeddings wire format (also spoken by OpenAI-compatible servers).
pub(crate) struct OpenAiWire {
    pub url: String,
    pub model: String,
    pub dimensions: Option<usize>,
    pub key: Option<ApiKey>,
    /// Whether 429 `insufficient_quota` means "out of credit" (OpenAI's own API).
    pub quota_code: bool,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vec<f32>,
}

impl Wire for OpenAiWire {
    fn request(
        &self,
        client: &reqwest::Client,
        texts: &[String],
        _task: Task,
    ) -> reqwest::RequestBuilder {
        let mut body = serde_json::json!({ "model": self.model, "input": texts });
        if let Some(d) = self.dimensions {
            body["dimensions"] = d.into();
        }
        let mut req = client.post(&self.url).json(&body);
        if let Some(key) = &self.key {
            req = req.header(
                reqwest::header::AUTHORIZATION,
                remote::secret_header(&format!("Bearer {}", key.expose())),
            );
        }
        req
    }

    fn parse(&self, body: &[u8], _task: Task) -> std::result::Result<Vec<Vec<f32>>, String> {
        let response: Response =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON ({e})"))?;
        let n = response.data.len();
        let mut out: Vec<Option<Vec<f32>>> = vec![None; n];
        for (pos, item) in response.data.into_iter().enumerate() {
            let i = item.index.unwrap_or(pos);
            match out.get_mut(i) {
                Some(slot @ None) => *slot = Some(item.embedding),
                _ => return Err(format!("duplicate or out-of-range index {i}")),
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    fn classify(&self, meta: &Meta, status: StatusCode, err: &ApiError) -> Option<Failure> {
        if self.quota_code && status.as_u16() == 429 && err.code == "insufficient_quota" {
            return Some(Failure::Fatal(Error::new(
                ErrorKind::QuotaExhausted,
                format!(
                    "{} says the account has no quota left (insufficient_quota: {}). Add \
                     credit or raise the monthly limit in the account's billing settings, then \
                     run again: finished batches are kept.",
                    meta.label, err.message
                ),
            )));
        }
        None
    }

    fn key(&self) -> Option<&ApiKey> {
        self.key.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::Embedder;

    fn key() -> ApiKey {
        ApiKey::new("test-key-123").unwrap()
    }

    #[test]
    fn ids_and_dimensions() {
        let o = RemoteOptions::default();
        let e = embedder("text-embedding-3-small", None, None, key(), o.clone()).unwrap();
        assert_eq!(
            (e.id(), e.dimensions()),
            ("openai/text-embedding-3-small", 1536)
        );
        assert_eq!(
            (e.provider(), e.model()),
            ("openai", "text-embedding-3-small")
        );
        let e = embedder("text-embedding-3-large", Some(256), None, key(), o.clone()).unwrap();
        assert_eq!(
            (e.id(), e.dimensions()),
            ("openai/text-embedding-3-large@256", 256)
        );
        assert_eq!(e.model(), "text-embedding-3-large");
        let e = embedder("text-embedding-3-small", Some(1536), None, key(), o.clone()).unwrap();
        assert_eq!(e.id(), "openai/text-embedding-3-small");
        let err =
            embedder("text-embedding-ada-002", Some(512), None, key(), o.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err =
            embedder("text-embedding-3-small", Some(4000), None, key(), o.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = embedder("text-embedding-3-small", None, Some("ftp://x"), key(), o).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn parses_out_of_order_items() {
        let w = OpenAiWire {
            url: String::new(),
            model: String::new(),
            dimensions: None,
            key: None,
            quota_code: true,
        };
        let body =
            br#"{"data":[{"index":1,"embedding":[0.0,1.0]},{"index":0,"embedding":[1.0,0.0]}]}"#;
        let v = w.parse(body, Task::Document).unwrap();
        assert_eq!(v, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert!(w
            .parse(
                br#"{"data":[{"index":3,"embedding":[1.0]}]}"#,
                Task::Document
            )
            .is_err());
        assert!(w.parse(b"{nope", Task::Document).is_err());
    }
}
