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
            keys.require("openai")?,
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
            keys.require("gemini")?,
            options.clone(),
        )?),
        ProviderConfig::Compatible {
            base_url,
            model,
            max_input_tokens,
            options,
        } => {
            // Local servers rarely need a key; without a keychain they still work.
            let key = keys.get("compatible").unwrap_or(None);
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
