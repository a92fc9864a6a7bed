//! Which embedder to use, as a setting, and building it.
//!
//! ```json
//! {"provider": "local"}
//! {"provider": "openai", "model": "text-embedding-3-small", "dimensions": 512}
//! {"provider": "gemini", "model": "gemini-embedding-001", "base_url": "https://gateway.example/v1beta"}
//! {"provider": "compatible", "base_url": "http://localhost:11434/v1", "model": "nomic-embed-text"}
//! ```
//!
//! Remote providers also take the [`RemoteOptions`] fields (`concurrency`,
//! `max_retries`, `timeout_ms`, ...) beside their own.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::remote::RemoteOptions;
use super::{compatible, gemini, openai, Embedder};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::KeyStore;

fn default_openai_model() -> String {
    "text-embedding-3-small".to_string()
}

fn default_gemini_model() -> String {
    "gemini-embedding-001".to_string()
}

/// The embedding provider and model, as stored in the settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum ProviderConfig {
    /// The bundled local model (free, offline).
    Local {
        /// Folder of the model files; `None`: `SIFT_MODEL_DIR` or the user cache.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model_dir: Option<PathBuf>,
    },
    /// OpenAI.
    #[serde(rename = "openai")]
    OpenAi {
        /// `text-embedding-3-small` (default), `text-embedding-3-large`,
        /// `text-embedding-ada-002`.
        #[serde(default = "default_openai_model")]
        model: String,
        /// Shorter vectors from a v3 model.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dimensions: Option<usize>,
        /// A proxy or gateway instead of OpenAI's API.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base_url: Option<String>,
        /// Concurrency, retries, timeouts.
        #[serde(flatten)]
        options: RemoteOptions,
    },
    /// Google Gemini.
    Gemini {
        /// `gemini-embedding-001` (default) or `text-embedding-004`.
        #[serde(default = "default_gemini_model")]
        model: String,
        /// Shorter vectors (`outputDimensionality`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dimensions: Option<usize>,
        /// A proxy or gateway instead of Google's API.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base_url: Option<String>,
        /// Concurrency, retries, timeouts.
        #[serde(flatten)]
        options: RemoteOptions,
    },
    /// An OpenAI-compatible server (Ollama, LM Studio, vLLM).
    Compatible {
        /// E.g. `http://localhost:11434/v1`.
        base_url: String,
        /// The server's model name.
        model: String,
        /// Input limit in `cl100k_base` tokens (default 400).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_input_tokens: Option<usize>,
        /// Concurrency, retries, timeouts, batch size.
        #[serde(flatten)]
        options: RemoteOptions,
    },
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig::Local { model_dir: None }
    }
}

impl ProviderConfig {
    /// `local`, `openai`, `gemini` or `compatible`: also the keychain account.
    pub fn provider_name(&self) -> &'static str {
        match self {
            ProviderConfig::Local { .. } => "local",
            ProviderConfig::OpenAi { .. } => "openai",
            ProviderConfig::Gemini { .. } => "gemini",
            ProviderConfig::Compatible { .. } => "compatible",
        }
    }

    /// True for providers reached over the network.
    pub fn is_remote(&self) -> bool {
        !matches!(self, ProviderConfig::Local { .. })
    }
}

/// Builds the embedder `cfg` describes, taking API keys from `keys`.
///
/// A key is used only for the host it was saved for ([`KeyStore::require_for`]):
/// an OpenAI or Gemini setting whose base URL points elsewhere fails with
/// `InvalidKey` before anything is sent; an OpenAI-compatible server gets its
/// key only when the key was saved for its address.
///
/// Remote embedders with unknown dimensions (OpenAI-compatible servers, models
/// Sift has no table entry for) send one small probe request here.
pub fn build_embedder(cfg: &ProviderConfig, keys: &KeyStore) -> Result<Arc<dyn Embedder>> {
    Ok(match cfg {
        ProviderConfig::Local { model_dir } => {
            let Some(dir) = crate::model::resolve_model_dir(model_dir.as_deref()) else {
                return Err(Error::new(
                    ErrorKind::ModelMissing,
                    format!(
                        "the local embedding model is not installed (looked in SIFT_MODEL_DIR and {}): run `sift model fetch`; keyword search works meanwhile",
                        crate::model::default_model_dir().display()
                    ),
                ));
            };
            Arc::new(super::local::LocalEmbedder::load(&dir)?)
        }
        ProviderConfig::OpenAi {
            model,
            dimensions,
            base_url,
            options,
        } => Arc::new(openai::embedder(
            model,
            *dimensions,
            base_url.as_deref(),
            keys.require_for(
                "openai",
                base_url.as_deref().unwrap_or(openai::DEFAULT_BASE_URL),
            )?,
            options.clone(),
        )?),
        ProviderConfig::Gemini {
            model,
            dimensions,
            base_url,
            options,
        } => Arc::new(gemini::embedder(
            model,
            *dimensions,
            base_url.as_deref(),
            keys.require_for(
                "gemini",
                base_url.as_deref().unwrap_or(gemini::DEFAULT_BASE_URL),
            )?,
            options.clone(),
        )?),
        ProviderConfig::Compatible {
            base_url,
            model,
            max_input_tokens,
            options,
        } => {
            // Local servers rarely need a key; without a keychain they still
            // work. A key saved for another address is not sent here.
            let key = keys.get_for("compatible", base_url).unwrap_or(None);
            Arc::new(compatible::embedder(
                base_url,
                model,
                *max_input_tokens,
                key,
                options.clone(),
            )?)
        }
    })
}

/// An embedder for estimates only ([`crate::cost::estimate`]): it names the
/// cache `cfg`'s embedder would use and counts tokens as it would, but never
/// touches the network and holds no key. When the real embedder's id depends
/// on a probe (an OpenAI-compatible server, a model of unknown dimensions), it
/// takes the id of that model among `cached_ids` (the embedders that have
/// cached vectors), else one no cache entry has (everything counts as new).
pub fn build_estimator(cfg: &ProviderConfig, cached_ids: &[String]) -> Result<Arc<dyn Embedder>> {
    let placeholder = || crate::keys::ApiKey::new("estimate-only-never-sent");
    let probe_id = |provider: &str, model: &str| {
        let prefix = format!("{provider}/{model}@");
        cached_ids
            .iter()
            .find(|id| id.starts_with(&prefix))
            .cloned()
            .unwrap_or_else(|| format!("{prefix}unknown"))
    };
    Ok(match cfg {
        ProviderConfig::Local { .. } => build_embedder(cfg, &KeyStore::in_memory())?,
        ProviderConfig::OpenAi {
            model,
            dimensions,
            base_url,
            options,
        } => {
            let known = matches!(
                model.as_str(),
                "text-embedding-3-small" | "text-embedding-3-large" | "text-embedding-ada-002"
            );
            if known || dimensions.is_some() {
                let e = openai::embedder(
                    model,
                    *dimensions,
                    base_url.as_deref(),
                    placeholder()?,
                    options.clone(),
                )?;
                Arc::new(Estimator::new(e.id(), e.max_input_tokens()))
            } else {
                Arc::new(Estimator::new(
                    &probe_id("openai", model),
                    openai::LIMITS.max_input_tokens,
                ))
            }
        }
        ProviderConfig::Gemini {
            model,
            dimensions,
            base_url,
            options,
        } => {
            let model = model.strip_prefix("models/").unwrap_or(model);
            let known = matches!(model, "text-embedding-004" | "gemini-embedding-001");
            if known || dimensions.is_some() {
                let e = gemini::embedder(
                    model,
                    *dimensions,
                    base_url.as_deref(),
                    placeholder()?,
                    options.clone(),
                )?;
                Arc::new(Estimator::new(e.id(), e.max_input_tokens()))
            } else {
                Arc::new(Estimator::new(
                    &probe_id("gemini", model),
                    gemini::LIMITS.max_input_tokens,
                ))
            }
        }
        ProviderConfig::Compatible {
            model,
            max_input_tokens,
            ..
        } => Arc::new(Estimator::new(
            &probe_id("compatible", model),
            max_input_tokens.unwrap_or(compatible::DEFAULT_MAX_INPUT_TOKENS),
        )),
    })
}

/// Counts and names, never embeds (see [`build_estimator`]).
struct Estimator {
    id: String,
    max_input_tokens: usize,
}

impl Estimator {
    fn new(id: &str, max_input_tokens: usize) -> Estimator {
        Estimator {
            id: id.to_string(),
            max_input_tokens,
        }
    }
}

impl Embedder for Estimator {
    fn id(&self) -> &str {
        &self.id
    }
    fn dimensions(&self) -> usize {
        0
    }
    fn max_input_tokens(&self) -> usize {
        self.max_input_tokens
    }
    fn count_tokens(&self, text: &str) -> usize {
        crate::cost::tokens::count_tokens(text)
    }
    fn embed_documents(&self, _texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Err(Error::new(
            ErrorKind::Internal,
            "an estimate-only embedder cannot embed",
        ))
    }
    fn embed_query(&self, _text: &str) -> Result<Vec<f32>> {
        Err(Error::new(
            ErrorKind::Internal,
            "an estimate-only embedder cannot embed",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip() {
        let cases = [
            r#"{"provider":"local"}"#,
            r#"{"provider":"openai","model":"text-embedding-3-large","dimensions":256}"#,
            r#"{"provider":"gemini","base_url":"http://127.0.0.1:9/v1beta","concurrency":2}"#,
            r#"{"provider":"compatible","base_url":"http://localhost:11434/v1","model":"nomic-embed-text","batch_size":16}"#,
        ];
        for text in cases {
            let cfg: ProviderConfig = serde_json::from_str(text).unwrap();
            let back: ProviderConfig =
                serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
            assert_eq!(cfg, back, "{text}");
        }
        let cfg: ProviderConfig = serde_json::from_str(cases[2]).unwrap();
        let ProviderConfig::Gemini { model, options, .. } = &cfg else {
            panic!("{cfg:?}")
        };
        assert_eq!(model, "gemini-embedding-001");
        assert_eq!(options.concurrency, 2);
        assert_eq!(options.max_retries, RemoteOptions::default().max_retries);
        let cfg: ProviderConfig = serde_json::from_str(cases[3]).unwrap();
        let ProviderConfig::Compatible { options, .. } = &cfg else {
            panic!()
        };
        assert_eq!(options.batch_size, Some(16));
        assert_eq!(ProviderConfig::default().provider_name(), "local");
    }

    #[test]
    fn missing_key_says_how_to_set_it() {
        let cfg: ProviderConfig = serde_json::from_str(r#"{"provider":"openai"}"#).unwrap();
        let Err(err) = build_embedder(&cfg, &KeyStore::in_memory()) else {
            panic!("built without a key")
        };
        assert_eq!(err.kind(), ErrorKind::InvalidKey);
        assert!(err.message().contains("sift key set openai"));
    }
}
