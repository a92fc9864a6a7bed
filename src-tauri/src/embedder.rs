//! Building the embedder a provider setting names. The shell adds one thing to
//! the engine's rules: the local model bundled in the app's resources is the
//! last place looked, so an installed app searches by meaning on first launch,
//! offline, without `sift model fetch`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sift::embed::{build_embedder, Embedder, ProviderConfig};
use sift::keys::KeyStore;

/// Builds embedders with the OS keychain and an optional bundled model.
pub struct EmbedderFactory {
    keys: KeyStore,
    bundled_model: Option<PathBuf>,
}

impl EmbedderFactory {
    /// `bundled_model`: the model folder shipped with the app, if any.
    pub fn new(keys: KeyStore, bundled_model: Option<PathBuf>) -> Self {
        let bundled_model = bundled_model.filter(|dir| sift::model::is_model_dir(dir));
        EmbedderFactory {
            keys,
            bundled_model,
        }
    }

    /// The keychain API keys come from.
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// The bundled model folder, when the app ships one.
    pub fn bundled_model(&self) -> Option<&Path> {
        self.bundled_model.as_deref()
    }

    /// The embedder `cfg` names, ready to embed.
    pub fn build(&self, cfg: &ProviderConfig) -> sift::Result<Arc<dyn Embedder>> {
        build_embedder(&self.resolve(cfg), &self.keys)
    }

    /// An embedder only for counting tokens and naming its cache (estimates):
    /// OpenAI and Gemini without a saved key get a placeholder key, which is never
    /// sent because nothing is embedded with it.
    pub fn build_for_estimate(&self, cfg: &ProviderConfig) -> sift::Result<Arc<dyn Embedder>> {
        let provider = cfg.provider_name();
        let has_key = matches!(self.keys.get(provider), Ok(Some(_)));
        if matches!(provider, "openai" | "gemini") && !has_key {
            let placeholder = KeyStore::in_memory();
            placeholder.set(provider, "estimate-only-placeholder-key")?;
            return build_embedder(cfg, &placeholder);
        }
        self.build(cfg)
    }

    /// `cfg` with the bundled model filled in when the local model is found
    /// nowhere else (setting, `SIFT_MODEL_DIR`, the user cache).
    pub fn resolve(&self, cfg: &ProviderConfig) -> ProviderConfig {
        match (cfg, &self.bundled_model) {
            (ProviderConfig::Local { model_dir }, Some(bundled))
                if sift::model::resolve_model_dir(model_dir.as_deref()).is_none() =>
            {
                ProviderConfig::Local {
                    model_dir: Some(bundled.clone()),
                }
            }
            _ => cfg.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_settings_pass_through() {
        let factory = EmbedderFactory::new(KeyStore::in_memory(), None);
        let cfg: ProviderConfig =
            serde_json::from_str(r#"{"provider":"openai","model":"text-embedding-3-small"}"#)
                .unwrap();
        assert_eq!(factory.resolve(&cfg), cfg);
    }

    #[test]
    fn estimates_need_no_key() {
        let factory = EmbedderFactory::new(KeyStore::in_memory(), None);
        let cfg: ProviderConfig =
            serde_json::from_str(r#"{"provider":"openai","model":"text-embedding-3-small"}"#)
                .unwrap();
        assert!(factory.build(&cfg).is_err(), "no key: cannot embed");
        let e = factory.build_for_estimate(&cfg).unwrap();
        assert_eq!(e.id(), "openai/text-embedding-3-small");
        assert!(e.count_tokens("hello world") > 0);
    }

    #[test]
    fn a_missing_bundle_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let factory = EmbedderFactory::new(KeyStore::in_memory(), Some(dir.path().into()));
        assert!(factory.bundled_model().is_none());
    }
}
