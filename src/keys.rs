//! API keys in the OS keychain: macOS Keychain, Windows Credential Manager, or the
//! Secret Service (GNOME Keyring, KWallet, KeePassXC) on Linux.
//!
//! Each key is one keychain item: service `sift`, account = provider name. Keys
//! stay with their providers: a key is only handed out for the host it was
//! saved for ([`KeyStore::require_for`]): OpenAI's or Google's API by default,
//! or a base URL saved together with the key (the user typed the key for it).
//! A base URL in the settings alone (which the app's page or any program can
//! write) never receives a key. The item holds the key, and after a line break
//! the base URL it is for, when one was given. Keys never go to SQLite, config
//! files, logs, error messages or process arguments:
//! [`ApiKey`] prints as `ApiKey(***)`, and when no keychain is available this
//! says so ([`ErrorKind::KeychainUnavailable`]) instead of falling back to a file.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};

/// Keychain service name of every item Sift stores.
pub const SERVICE: &str = "sift";

/// Environment variable that replaces [`SERVICE`] (tests, side-by-side
/// installs). It names keychain items; it never holds a key.
pub const ENV_SERVICE: &str = "SIFT_KEYRING_SERVICE";

/// Providers that can hold a key, in display order.
pub const PROVIDERS: &[&str] = &["openai", "gemini", "compatible"];

/// A secret API key. Its `Debug` never shows it; use [`ApiKey::expose`] only to
/// put it in a request header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps `key`, trimming surrounding whitespace (a pasted newline).
    pub fn new(key: &str) -> Result<Self> {
        let key = key.trim();
        if key.is_empty() {
            return Err(Error::new(ErrorKind::InvalidKey, "the API key is empty"));
        }
        if key.chars().any(|c| c.is_control() || c == ' ') {
            return Err(Error::new(
                ErrorKind::InvalidKey,
                "the API key contains spaces or control characters; paste the key alone",
            ));
        }
        Ok(ApiKey(key.to_string()))
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A hint that identifies the key without revealing it: `sk-…wxyz` for long
    /// keys, only its length for short ones.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() >= 20 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail} ({} chars)", chars.len())
    } else {
        format!("set ({} chars)", chars.len())
    }
}

/// Whether a provider has a key, as `sift key status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyStatus {
    /// Provider name.
    pub provider: String,
    /// The masked key, or `None` when no key is stored.
    pub masked: Option<String>,
    /// The base URL the key was saved for; `None` for the provider's own API.
    pub saved_for: Option<String>,
}

enum Backend {
    Os { service: String },
    Memory(Mutex<HashMap<String, String>>),
}

/// Where API keys live.
pub struct KeyStore {
    backend: Backend,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.backend {
            Backend::Os { .. } => "os",
            Backend::Memory(_) => "memory",
        };
        f.debug_struct("KeyStore").field("backend", &kind).finish()
    }
}

impl KeyStore {
    /// The OS keychain, items under service [`SERVICE`] (or `$SIFT_KEYRING_SERVICE`).
    pub fn os() -> Self {
        Self::os_with_service(&os_service())
    }

    /// The OS keychain, items under `service`.
    pub fn os_with_service(service: &str) -> Self {
        KeyStore {
            backend: Backend::Os {
                service: service.to_string(),
            },
        }
    }

    /// A store that lives in this process only: for tests, and for programs that
    /// hand Sift a key they keep themselves. Never used as a fallback.
    pub fn in_memory() -> Self {
        KeyStore {
            backend: Backend::Memory(Mutex::new(HashMap::new())),
        }
    }

    /// Stores `key` for `provider` and its own API host, replacing any previous
    /// one, and reads it back to make sure the keychain really kept it.
    pub fn set(&self, provider: &str, key: &str) -> Result<()> {
        self.set_for_url(provider, key, None)
    }

    /// Stores `key` for `provider`, to be sent only to `base_url` (its host),
    /// or with `None` only to the provider's own API host (OpenAI, Gemini; a
    /// key of an OpenAI-compatible server needs its URL).
    pub fn set_for_url(&self, provider: &str, key: &str, base_url: Option<&str>) -> Result<()> {
        check_provider(provider)?;
        let key = ApiKey::new(key)?;
        let base_url = match base_url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => Some(origin(url)?.1),
            None => None,
        };
        let item = match &base_url {
            Some(url) => format!("{}\n{url}", key.expose()),
            None => key.expose().to_string(),
        };
        match &self.backend {
            Backend::Memory(map) => {
                lock(map).insert(provider.to_string(), item);
                Ok(())
            }
            Backend::Os { service } => {
                let entry = entry(service, provider)?;
                entry
                    .set_password(&item)
                    .map_err(|e| keychain_error("store the key", e))?;
                match entry.get_password() {
                    Ok(back) if back == item => Ok(()),
                    Ok(_) => Err(Error::new(
                        ErrorKind::KeychainUnavailable,
                        "the OS keychain accepted the key but returned something else on \
                         read-back; the key was not stored reliably",
                    )),
                    Err(e) => Err(keychain_error("read the key back", e)),
                }
            }
        }
    }

    /// The key of `provider`, or `None` when none is stored (to show it
    /// masked; to send it, use [`KeyStore::require_for`]).
    pub fn get(&self, provider: &str) -> Result<Option<ApiKey>> {
        Ok(self.item(provider)?.map(|(key, _)| key))
    }

    /// The base URL the key of `provider` was saved for; `None` for the
    /// provider's own API host, or when there is no key.
    pub fn saved_url(&self, provider: &str) -> Result<Option<String>> {
        Ok(self.item(provider)?.and_then(|(_, url)| url))
    }

    fn item(&self, provider: &str) -> Result<Option<(ApiKey, Option<String>)>> {
        check_provider(provider)?;
        let raw = match &self.backend {
            Backend::Memory(map) => lock(map).get(provider).cloned(),
            Backend::Os { service } => match entry(service, provider)?.get_password() {
                Ok(k) => Some(k),
                Err(keyring::Error::NoEntry) => None,
                Err(e) => return Err(keychain_error("read the key", e)),
            },
        };
        let Some(raw) = raw else { return Ok(None) };
        let (key, url) = match raw.split_once('\n') {
            Some((key, url)) => (key, Some(url.trim().to_string()).filter(|u| !u.is_empty())),
            None => (raw.as_str(), None),
        };
        Ok(Some((ApiKey::new(key)?, url)))
    }

    /// The key of `provider` for a request to `base_url`, or an `InvalidKey`
    /// error that says how to set one. The key is handed out only when
    /// `base_url` is on the host it was saved for (see the module doc).
    pub fn require_for(&self, provider: &str, base_url: &str) -> Result<ApiKey> {
        let Some((key, saved)) = self.item(provider)? else {
            return Err(Error::new(
                ErrorKind::InvalidKey,
                format!(
                    "no API key for {provider} in the OS keychain: run `sift key set {provider}`"
                ),
            ));
        };
        let allowed = saved.or_else(|| default_url(provider).map(str::to_string));
        let wanted = origin(base_url)?;
        match allowed {
            Some(allowed) if origin(&allowed)?.0 == wanted.0 => Ok(key),
            allowed => Err(Error::new(
                ErrorKind::InvalidKey,
                format!(
                    "the {provider} API key is saved for {}, so Sift does not send it to {}. To \
                     use it there, save the key again for that address (`sift key set {provider} \
                     --base-url {}`, or API keys in the app's settings)",
                    allowed.map_or("no address".to_string(), |a| origin(&a).map_or(a, |o| o.0)),
                    wanted.0,
                    wanted.1,
                ),
            )),
        }
    }

    /// [`KeyStore::require_for`], `None` instead of an error when there is no
    /// key or it is for another host (servers that may need no key).
    pub fn get_for(&self, provider: &str, base_url: &str) -> Result<Option<ApiKey>> {
        match self.require_for(provider, base_url) {
            Ok(key) => Ok(Some(key)),
            Err(e) if e.kind() == ErrorKind::InvalidKey => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The key of `provider` for its own API host, or an `InvalidKey` error
    /// that says how to set one.
    pub fn require(&self, provider: &str) -> Result<ApiKey> {
        let url = default_url(provider).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidKey,
                format!("{provider} has no API host of its own: give its base URL"),
            )
        })?;
        self.require_for(provider, url)
    }

    /// Deletes the key of `provider`; `false` when there was none.
    pub fn delete(&self, provider: &str) -> Result<bool> {
        check_provider(provider)?;
        match &self.backend {
            Backend::Memory(map) => Ok(lock(map).remove(provider).is_some()),
            Backend::Os { service } => match entry(service, provider)?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring::Error::NoEntry) => Ok(false),
                Err(e) => Err(keychain_error("delete the key", e)),
            },
        }
    }

    /// Every provider and whether it has a key (masked).
    pub fn status(&self) -> Result<Vec<KeyStatus>> {
        PROVIDERS
            .iter()
            .map(|p| {
                let item = self.item(p)?;
                Ok(KeyStatus {
                    provider: p.to_string(),
                    masked: item.as_ref().map(|(k, _)| k.masked()),
                    saved_for: item.and_then(|(_, url)| url),
                })
            })
            .collect()
    }
}

/// The API a provider's key is for unless saved for another address.
fn default_url(provider: &str) -> Option<&'static str> {
    match provider {
        "openai" => Some(crate::embed::openai::DEFAULT_BASE_URL),
        "gemini" => Some(crate::embed::gemini::DEFAULT_BASE_URL),
        _ => None,
    }
}

/// (`scheme://host:port`, the URL cleaned) of an http(s) URL: what a key is
/// bound to. User names and passwords in the URL are refused.
fn origin(url: &str) -> Result<(String, String)> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{why}: {}", crate::embed::remote::display_url(url)),
        )
    };
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| bad(&format!("not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("an API address must start with http:// or https://"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("an API address must not hold a user name or password"));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| bad("an API address needs a host"))?;
    let port = parsed
        .port_or_known_default()
        .map_or(String::new(), |p| format!(":{p}"));
    Ok((
        format!("{}://{}{port}", parsed.scheme(), host.to_ascii_lowercase()),
        url.trim().trim_end_matches('/').to_string(),
    ))
}

fn lock(
    map: &Mutex<HashMap<String, String>>,
) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
    map.lock().unwrap_or_else(|e| e.into_inner())
}

fn check_provider(provider: &str) -> Result<()> {
    if PROVIDERS.contains(&provider) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "unknown provider {provider:?}: expected one of {}",
                PROVIDERS.join(", ")
            ),
        ))
    }
}

/// The keychain service Sift's items live under: [`SERVICE`], or
/// `$SIFT_KEYRING_SERVICE`.
pub(crate) fn os_service() -> String {
    std::env::var(ENV_SERVICE)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| SERVICE.to_string())
}

fn entry(service: &str, provider: &str) -> Result<keyring::Entry> {
    keyring::Entry::new(service, provider).map_err(|e| keychain_error("open the keychain", e))
}

const NO_PLAINTEXT: &str = "Sift keeps API keys only in the OS keychain (macOS Keychain, \
    Windows Credential Manager, or a Secret Service such as GNOME Keyring, KWallet or \
    KeePassXC on Linux) and never in plain text";

/// A keyring failure as an error that says what to do. Never includes secrets:
/// keyring errors carry none, except `Ambiguous`/`BadEncoding`, which are not shown.
pub(crate) fn keychain_error(action: &str, err: keyring::Error) -> Error {
    use keyring::Error as K;
    let message = match err {
        K::NoStorageAccess(e) => format!(
            "could not {action}: the OS keychain is locked or refused access ({e}). \
             Unlock it (on Linux: the login collection of your Secret Service) and retry. \
             {NO_PLAINTEXT}."
        ),
        K::PlatformFailure(e) => format!(
            "could not {action}: no OS keychain is available ({e}). \
             {NO_PLAINTEXT}; start or install one and retry."
        ),
        K::BadEncoding(_) => format!(
            "could not {action}: the stored key is not valid UTF-8; run `sift key set` again"
        ),
        K::Ambiguous(items) => format!(
            "could not {action}: the keychain holds {} items for the same provider; \
             remove the duplicates (service \"{SERVICE}\") and run `sift key set` again",
            items.len()
        ),
        other => format!("could not {action} in the OS keychain: {other}"),
    };
    Error::new(ErrorKind::KeychainUnavailable, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_mask_hide_the_key() {
        let k = ApiKey::new("  test-key-123-abcdefghijkl\n").unwrap();
        assert_eq!(k.expose(), "test-key-123-abcdefghijkl");
        assert_eq!(format!("{k:?}"), "ApiKey(***)");
        assert_eq!(k.masked(), "tes…ijkl (25 chars)");
        assert_eq!(
            ApiKey::new("test-key-123").unwrap().masked(),
            "set (12 chars)"
        );
        assert!(ApiKey::new(" \n").is_err());
        assert!(ApiKey::new("two words").is_err());
    }

    #[test]
    fn keys_go_only_to_the_host_they_were_saved_for() {
        let s = KeyStore::in_memory();
        s.set("openai", "test-key-123").unwrap();
        let ok = |p: &str, u: &str| s.require_for(p, u).map(|k| k.expose().to_string());
        assert_eq!(
            ok("openai", "https://api.openai.com/v1").unwrap(),
            "test-key-123"
        );
        assert_eq!(
            ok("openai", "https://API.openai.com:443/v2/").unwrap(),
            "test-key-123"
        );
        for elsewhere in [
            "http://127.0.0.1:9/v1",
            "http://api.openai.com/v1",
            "https://api.openai.com.evil.example/v1",
            "https://api.openai.com:8443/v1",
        ] {
            let err = s.require_for("openai", elsewhere).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidKey, "{elsewhere}");
            assert!(
                err.message()
                    .contains("saved for https://api.openai.com:443"),
                "{err}"
            );
            assert!(!err.message().contains("test-key-123"));
        }
        // Saved with a gateway's address: that host only.
        s.set_for_url("openai", "test-key-456", Some("http://127.0.0.1:9/v1"))
            .unwrap();
        assert_eq!(
            ok("openai", "http://127.0.0.1:9/other").unwrap(),
            "test-key-456"
        );
        assert!(s
            .require_for("openai", "https://api.openai.com/v1")
            .is_err());
        assert_eq!(
            s.saved_url("openai").unwrap().as_deref(),
            Some("http://127.0.0.1:9/v1")
        );
        assert_eq!(s.get("openai").unwrap().unwrap().expose(), "test-key-456");
        // A compatible server's key has no default host.
        s.set("compatible", "test-key-789").unwrap();
        assert_eq!(
            s.get_for("compatible", "http://localhost:11434/v1")
                .unwrap(),
            None
        );
        assert!(s
            .set_for_url("openai", "k", Some("http://user:pw@host/v1"))
            .is_err());
    }

    #[test]
    fn memory_store_round_trip() {
        let s = KeyStore::in_memory();
        assert_eq!(s.get("openai").unwrap(), None);
        s.set("openai", "test-key-123").unwrap();
        assert_eq!(s.get("openai").unwrap().unwrap().expose(), "test-key-123");
        let st = s.status().unwrap();
        assert_eq!(st[0].masked.as_deref(), Some("set (12 chars)"));
        assert_eq!(st[1].masked, None);
        assert!(s.delete("openai").unwrap());
        assert!(!s.delete("openai").unwrap());
        assert_eq!(
            s.require("gemini").unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
        assert_eq!(
            s.set("nope", "x").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
