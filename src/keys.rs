//! API keys in the OS keychain: macOS Keychain, Windows Credential Manager, or the
//! Secret Service (GNOME Keyring, KWallet, KeePassXC) on Linux.
//!
//! Each key is one keychain item: service `sift`, account = provider name. Keys
//! never go to SQLite, config files, logs, error messages or process arguments:
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
        let service = std::env::var(ENV_SERVICE)
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| SERVICE.to_string());
        Self::os_with_service(&service)
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

    /// Stores `key` for `provider`, replacing any previous one, and reads it back
    /// to make sure the keychain really kept it.
    pub fn set(&self, provider: &str, key: &str) -> Result<()> {
        check_provider(provider)?;
        let key = ApiKey::new(key)?;
        match &self.backend {
            Backend::Memory(map) => {
                lock(map).insert(provider.to_string(), key.0);
                Ok(())
            }
            Backend::Os { service } => {
                let entry = entry(service, provider)?;
                entry
                    .set_password(key.expose())
                    .map_err(|e| keychain_error("store the key", e))?;
                match entry.get_password() {
                    Ok(back) if back == key.0 => Ok(()),
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

    /// The key of `provider`, or `None` when none is stored.
    pub fn get(&self, provider: &str) -> Result<Option<ApiKey>> {
        check_provider(provider)?;
        match &self.backend {
            Backend::Memory(map) => Ok(lock(map).get(provider).map(|k| ApiKey(k.clone()))),
            Backend::Os { service } => match entry(service, provider)?.get_password() {
                Ok(k) => ApiKey::new(&k).map(Some),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(keychain_error("read the key", e)),
            },
        }
    }

    /// The key of `provider`, or an `InvalidKey` error that says how to set one.
    pub fn require(&self, provider: &str) -> Result<ApiKey> {
        self.get(provider)?.ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidKey,
                format!(
                    "no API key for {provider} in the OS keychain: run `sift key set {provider}`"
                ),
            )
        })
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
                Ok(KeyStatus {
                    provider: p.to_string(),
                    masked: self.get(p)?.map(|k| k.masked()),
                })
            })
            .collect()
    }
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

fn entry(service: &str, provider: &str) -> Result<keyring::Entry> {
    keyring::Entry::new(service, provider).map_err(|e| keychain_error("open the keychain", e))
}

const NO_PLAINTEXT: &str = "Sift keeps API keys only in the OS keychain (macOS Keychain, \
    Windows Credential Manager, or a Secret Service such as GNOME Keyring, KWallet or \
    KeePassXC on Linux) and never in plain text";

/// A keyring failure as an error that says what to do. Never includes secrets:
/// keyring errors carry none, except `Ambiguous`/`BadEncoding`, which are not shown.
fn keychain_error(action: &str, err: keyring::Error) -> Error {
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
