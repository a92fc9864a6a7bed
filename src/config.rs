//! Settings (persisted as JSON in the data folder) and on-disk format versions.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// Version of the SQLite schema; bump with a migration in `store::schema`.
pub const SCHEMA_VERSION: i64 = 4;

/// Version of the vector index file layout (label + usearch file).
pub const VECTOR_FORMAT_VERSION: u32 = 1;

/// What the scanner indexes and what it skips.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ScanSettings {
    /// File extensions (lower case, no dot) that are notes.
    pub extensions: Vec<String>,
    /// Files larger than this are skipped with a reason.
    pub max_file_bytes: u64,
    /// Folder names never entered (in addition to hidden folders and .gitignore).
    pub skip_dirs: Vec<String>,
    /// Size limit per file type (extension -> bytes); types not listed use
    /// `max_file_bytes`.
    pub max_bytes_by_type: std::collections::BTreeMap<String, u64>,
    /// Seconds a converter (PDF, DOCX, ODT, HTML) may spend on one file before
    /// the file is skipped as taking too long.
    pub convert_seconds: u64,
}

impl ScanSettings {
    /// Largest file of extension `ext` that is read.
    pub fn max_bytes_for(&self, ext: &str) -> u64 {
        self.max_bytes_by_type
            .get(ext)
            .copied()
            .unwrap_or(self.max_file_bytes)
    }
}

impl Default for ScanSettings {
    fn default() -> Self {
        ScanSettings {
            extensions: ["md", "markdown", "txt", "pdf", "docx", "odt", "html", "htm"]
                .map(String::from)
                .to_vec(),
            max_file_bytes: 10 * 1024 * 1024,
            skip_dirs: vec![
                ".git".into(),
                ".obsidian".into(),
                ".trash".into(),
                "node_modules".into(),
            ],
            max_bytes_by_type: [
                ("pdf", 100 << 20),
                ("docx", 50 << 20),
                ("odt", 50 << 20),
                ("html", 20 << 20),
                ("htm", 20 << 20),
            ]
            .map(|(ext, bytes)| (ext.to_string(), bytes))
            .into(),
            convert_seconds: 30,
        }
    }
}

/// User settings, stored as `settings.json` in the data folder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Settings {
    /// Indexed note folders (absolute paths).
    pub folders: Vec<PathBuf>,
    /// Scanner rules.
    pub scan: ScanSettings,
    /// Which embedder gives chunks their vectors (local model by default).
    pub provider: crate::embed::ProviderConfig,
    /// Weight of keyword ranks in hybrid fusion, 0..=1 (vector weight = 1 - this).
    pub keyword_weight: f32,
    /// Stop remote indexing before spending more than this many dollars in a run.
    pub budget_usd: Option<f64>,
    /// Global shortcut that brings up the search window.
    pub shortcut: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            folders: Vec::new(),
            scan: ScanSettings::default(),
            provider: crate::embed::ProviderConfig::default(),
            keyword_weight: 0.5,
            budget_usd: None,
            shortcut: "CommandOrControl+Shift+Space".into(),
        }
    }
}

impl Settings {
    /// Reads `settings.json` from `data_dir`, or defaults when there is none.
    pub fn load(data_dir: &Path) -> Result<Settings> {
        let path = data_dir.join("settings.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("{} is not valid settings JSON: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Writes `settings.json` atomically (temp file + rename).
    pub fn save(&self, data_dir: &Path) -> Result<()> {
        let path = data_dir.join("settings.json");
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        crate::fsutil::write_atomic(&path, &json)
    }
}

/// The per-user data folder (`~/.local/share/sift` on Linux).
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("sift")
}
