//! What each provider charges, in US dollars per million input tokens.
//!
//! Built-in defaults (OpenAI's published list prices, local models free) are
//! overlaid with the user's `prices.json` in the data folder, so a price change or
//! a gateway's own price needs no new release:
//!
//! ```json
//! { "usd_per_million_tokens": { "openai/text-embedding-3-small": 0.02, "compatible/*": 0 } }
//! ```
//!
//! Keys are `provider/model`; `provider/*` sets a price for every model of a
//! provider that has none of its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// File name of the user's price overrides in the data folder.
pub const PRICES_FILE: &str = "prices.json";

/// Built-in prices, USD per million tokens.
///
/// Gemini's are Google's list prices for the paid tier when this was written
/// (text-embedding-004 free of charge, gemini-embedding-001 $0.15); servers on
/// the user's own machine cost nothing. Override any of them in `prices.json`.
const DEFAULTS: &[(&str, f64)] = &[
    ("local/*", 0.0),
    ("openai/text-embedding-3-small", 0.02),
    ("openai/text-embedding-3-large", 0.13),
    ("openai/text-embedding-ada-002", 0.10),
    ("gemini/text-embedding-004", 0.0),
    ("gemini/gemini-embedding-001", 0.15),
    ("compatible/*", 0.0),
];

#[derive(Debug, Default, Serialize, Deserialize)]
struct PriceFile {
    #[serde(default)]
    usd_per_million_tokens: BTreeMap<String, f64>,
}

/// Prices per `provider/model`, in USD per million tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    per_million: BTreeMap<String, f64>,
}

impl Default for PriceTable {
    fn default() -> Self {
        PriceTable {
            per_million: DEFAULTS.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }
}

impl PriceTable {
    /// The built-in prices overlaid with `data_dir/prices.json` when it exists.
    /// A damaged file is set aside and reported on stderr (see
    /// [`PriceTable::load_reporting`]): it never stops indexing.
    pub fn load(data_dir: &Path) -> Result<Self> {
        let (table, warning) = Self::load_reporting(data_dir)?;
        if let Some(warning) = warning {
            eprintln!("sift: warning: {warning}");
        }
        Ok(table)
    }

    /// The built-in prices overlaid with `data_dir/prices.json` when it exists.
    /// A file that is not a valid price file is renamed to
    /// `prices.json.damaged-<time>` and the built-in prices are used; the
    /// warning says so. (A cap on a model only the damaged file priced then
    /// refuses to run: it cannot be enforced without a price.)
    pub fn load_reporting(data_dir: &Path) -> Result<(Self, Option<String>)> {
        let path = Self::file_path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((PriceTable::default(), None))
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => String::from("\u{0}"),
            Err(e) => return Err(Error::io(path, e)),
        };
        let parsed = serde_json::from_str::<PriceFile>(&text)
            .map_err(|e| e.to_string())
            .and_then(|file| {
                let mut table = PriceTable::default();
                for (key, price) in file.usd_per_million_tokens {
                    table
                        .set(&key, price)
                        .map_err(|e| e.message().to_string())?;
                }
                Ok(table)
            });
        match parsed {
            Ok(table) => Ok((table, None)),
            Err(why) => {
                let aside = crate::config::set_aside(&path);
                let warning = format!(
                    "{} is not a valid price file ({why}; expected \
                     {{\"usd_per_million_tokens\": {{\"provider/model\": 0.02}}}}); {}the \
                     built-in prices are used",
                    path.display(),
                    aside.map_or(String::new(), |a| format!(
                        "it was set aside as {}; ",
                        a.display()
                    ))
                );
                Ok((PriceTable::default(), Some(warning)))
            }
        }
    }

    /// Where the user's overrides live.
    pub fn file_path(data_dir: &Path) -> PathBuf {
        data_dir.join(PRICES_FILE)
    }

    /// Sets the price of `key` (`provider/model` or `provider/*`), USD per million
    /// tokens, in this table only (see [`PriceTable::save_override`]).
    pub fn set(&mut self, key: &str, usd_per_million: f64) -> Result<()> {
        validate(key, usd_per_million)?;
        self.per_million.insert(key.to_string(), usd_per_million);
        Ok(())
    }

    /// Records a price in `data_dir/prices.json` (keeping the other overrides
    /// there) so later runs use it.
    pub fn save_override(data_dir: &Path, key: &str, usd_per_million: f64) -> Result<()> {
        validate(key, usd_per_million)?;
        let path = Self::file_path(data_dir);
        let mut file = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str::<PriceFile>(&text).unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => PriceFile::default(),
            Err(e) => return Err(Error::io(path, e)),
        };
        file.usd_per_million_tokens
            .insert(key.to_string(), usd_per_million);
        let text = serde_json::to_string_pretty(&file)
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        std::fs::create_dir_all(data_dir).map_err(|e| Error::io(data_dir, e))?;
        std::fs::write(&path, text + "\n").map_err(|e| Error::io(path, e))
    }

    /// USD per million tokens for `model` of `provider`, if known.
    pub fn per_million(&self, provider: &str, model: &str) -> Option<f64> {
        self.per_million
            .get(&format!("{provider}/{model}"))
            .or_else(|| self.per_million.get(&format!("{provider}/*")))
            .copied()
    }

    /// Dollars for `tokens` tokens of `model`, if its price is known.
    pub fn dollars(&self, provider: &str, model: &str, tokens: u64) -> Option<f64> {
        self.per_million(provider, model)
            .map(|p| p * tokens as f64 / 1_000_000.0)
    }

    /// Every price in the table, sorted by key.
    pub fn entries(&self) -> impl Iterator<Item = (&str, f64)> {
        self.per_million.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

fn validate(key: &str, usd_per_million: f64) -> Result<()> {
    let ok_key = key
        .split_once('/')
        .is_some_and(|(p, m)| !p.is_empty() && !m.is_empty());
    if !ok_key {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("price key {key:?} should look like provider/model or provider/*"),
        ));
    }
    if !usd_per_million.is_finite() || usd_per_million < 0.0 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("price for {key} must be a non-negative number of dollars per million tokens"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_wildcards() {
        let t = PriceTable::default();
        assert_eq!(
            t.per_million("openai", "text-embedding-3-small"),
            Some(0.02)
        );
        assert_eq!(
            t.per_million("openai", "text-embedding-3-large"),
            Some(0.13)
        );
        assert_eq!(
            t.per_million("openai", "text-embedding-ada-002"),
            Some(0.10)
        );
        assert_eq!(t.per_million("local", "all-MiniLM-L6-v2"), Some(0.0));
        assert_eq!(t.per_million("compatible", "nomic-embed-text"), Some(0.0));
        assert_eq!(t.per_million("openai", "unknown-model"), None);
        let d = t
            .dollars("openai", "text-embedding-3-large", 2_000_000)
            .unwrap();
        assert!((d - 0.26).abs() < 1e-12);
    }

    #[test]
    fn user_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        PriceTable::save_override(dir.path(), "gemini/gemini-embedding-001", 0.2).unwrap();
        PriceTable::save_override(dir.path(), "compatible/*", 0.01).unwrap();
        let t = PriceTable::load(dir.path()).unwrap();
        assert_eq!(t.per_million("gemini", "gemini-embedding-001"), Some(0.2));
        assert_eq!(t.per_million("compatible", "anything"), Some(0.01));
        assert_eq!(
            t.per_million("openai", "text-embedding-3-small"),
            Some(0.02)
        );
        assert!(PriceTable::save_override(dir.path(), "nokey", 1.0).is_err());
        assert!(PriceTable::save_override(dir.path(), "a/b", -1.0).is_err());
    }

    #[test]
    fn a_damaged_file_is_set_aside_and_reported() {
        for bad in [
            "{ nope",
            r#"{"usd_per_million_tokens": {"openai/x": -1}}"#,
            "\u{ff}\u{fe}",
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(PRICES_FILE), bad).unwrap();
            let (table, warning) = PriceTable::load_reporting(dir.path()).unwrap();
            assert_eq!(table, PriceTable::default(), "{bad}");
            let warning = warning.unwrap();
            assert!(warning.contains("prices.json"), "{warning}");
            assert!(warning.contains("set aside"), "{warning}");
            assert!(!dir.path().join(PRICES_FILE).exists());
            let aside: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert!(aside[0].starts_with("prices.json.damaged-"), "{aside:?}");
            // The next load is clean.
            assert!(PriceTable::load_reporting(dir.path()).unwrap().1.is_none());
        }
    }
}
