//! Building the embedder a provider setting names. The shell adds one thing to
//! the engine's rules: the local model bundled in the app's resources is the
//! last place looked, so an installed app searches by meaning on first launch,
//! offline, without `sift model fetch`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sift::embed::{build_embedder, build_estimator, Embedder, ProviderConfig};
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
    /// it holds no key and never reaches the network, whatever base URL `cfg`
    /// names (see `sift::embed::build_estimator`).
    pub fn build_estimator(
        &self,
        cfg: &ProviderConfig,
        cached_ids: &[String],
    ) -> sift::Result<Arc<dyn Embedder>> {
        build_estimator(&self.resolve(cfg), cached_ids)
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
        let e = factory.build_estimator(&cfg, &[]).unwrap();
        assert_eq!(e.id(), "openai/text-embedding-3-small");
        assert!(e.count_tokens("hello world") > 0);
    }

    /// A page-supplied base URL with a saved key: the estimate connects to
    /// nothing (a listener there sees no connection), building fails for the
    /// key's sake before anything is sent.
    #[test]
    fn a_page_supplied_base_url_gets_no_request() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let keys = KeyStore::in_memory();
        keys.set("openai", "fake-key-for-the-real-api").unwrap();
        let factory = EmbedderFactory::new(keys, None);
        for model in ["text-embedding-3-small", "unknown-model-would-be-probed"] {
            let cfg: ProviderConfig = serde_json::from_value(
                serde_json::json!({"provider": "openai", "model": model, "base_url": base}),
            )
            .unwrap();
            let e = factory.build_estimator(&cfg, &[]).unwrap();
            assert!(e.count_tokens("hello") > 0);
            let err = factory.build(&cfg).err().expect("refused");
            assert_eq!(err.kind(), sift::ErrorKind::InvalidKey);
        }
        let cfg: ProviderConfig = serde_json::from_value(
            serde_json::json!({"provider": "compatible", "model": "m", "base_url": base}),
        )
        .unwrap();
        factory.build_estimator(&cfg, &[]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(
            listener.accept().is_err(),
            "something connected to the page's address"
        );
    }

    #[test]
    fn a_missing_bundle_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let factory = EmbedderFactory::new(KeyStore::in_memory(), Some(dir.path().into()));
        assert!(factory.bundled_model().is_none());
    }
}
