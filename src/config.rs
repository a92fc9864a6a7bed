//! Settings (persisted as JSON in the data folder) and on-disk format versions.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// Version of the SQLite schema; bump with a migration in `store::schema`.
pub const SCHEMA_VERSION: i64 = 11;

/// Version of the vector index file layout (one file: label, checksum, usearch graph).
pub const VECTOR_FORMAT_VERSION: u32 = 2;

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
    /// Follow symbolic links that lead out of the notes folder (off: such links
    /// are listed as skipped, so nothing outside the folder is read or sent to
    /// a remote provider). Links that loop back are never followed.
    pub follow_outside_links: bool,
    /// Size limit per file type (extension -> bytes); types not listed use
    /// `max_file_bytes`.
    pub max_bytes_by_type: std::collections::BTreeMap<String, u64>,
    /// Seconds a converter (PDF, DOCX, ODT, HTML) may spend on one file before
    /// the file is skipped as taking too long.
    pub convert_seconds: u64,
    /// Notes left out: .gitignore-style patterns relative to each indexed
    /// folder (`Templates/`, `*.excalidraw.md`), see [`crate::patterns`].
    pub exclude: Vec<String>,
    /// Notes kept even when an exclude pattern matches them.
    pub include: Vec<String>,
    /// Leave template boilerplate (lines repeated in many notes of a folder)
    /// out of what is embedded, see [`crate::boilerplate`]. Keyword search
    /// and snippets keep every line either way.
    pub strip_boilerplate: bool,
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
            follow_outside_links: false,
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
            exclude: Vec::new(),
            include: Vec::new(),
            strip_boilerplate: true,
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
    /// Monthly cap on remote embedding, in dollars: before every request, the
    /// month's spending so far (the usage ledger, every process) plus the
    /// request must stay within it, or indexing pauses.
    pub budget_usd: Option<f64>,
    /// Global shortcut that brings up the search window.
    pub shortcut: String,
    /// Open notes of an Obsidian vault in Obsidian (`obsidian://open`) rather
    /// than in an editor or the default app.
    pub open_in_obsidian: bool,
    /// How much of the CPU indexing may use (all cores, half, one); its
    /// threads run at lowered priority whatever the share.
    pub indexing_cpu: crate::background::CpuShare,
    /// Keep the database and vector files encrypted, the key in the OS
    /// keychain ([`crate::encryption`]). Applied when a process opens the data
    /// folder with no other Sift process in it.
    pub encrypt_at_rest: bool,
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
            open_in_obsidian: false,
            indexing_cpu: crate::background::CpuShare::All,
            encrypt_at_rest: false,
        }
    }
}

impl Settings {
    /// Reads `settings.json` from `data_dir`, or defaults when there is none. A
    /// damaged file is set aside (renamed, see [`Settings::load_reporting`]) and
    /// reported on stderr: it never stops Sift.
    pub fn load(data_dir: &Path) -> Result<Settings> {
        let (settings, warning) = Settings::load_reporting(data_dir)?;
        if let Some(warning) = warning {
            eprintln!("sift: warning: {warning}");
        }
        Ok(settings)
    }

    /// Reads `settings.json` from `data_dir`, or defaults when there is none.
    /// A file that is not valid settings JSON is renamed to
    /// `settings.json.damaged-<time>` (kept for the user to look at) and the
    /// defaults are used; the warning says so.
    pub fn load_reporting(data_dir: &Path) -> Result<(Settings, Option<String>)> {
        let (settings, _, warning) = Settings::load_stamped(data_dir)?;
        Ok((settings, warning))
    }

    /// [`Settings::load_reporting`], with the stamp of the file read.
    pub fn load_stamped(data_dir: &Path) -> Result<(Settings, Option<FileStamp>, Option<String>)> {
        let path = data_dir.join(SETTINGS_FILE);
        let Some(bytes) = crate::lock::read_if_exists(&path)? else {
            return Ok((Settings::default(), None, None));
        };
        match serde_json::from_slice(&bytes) {
            Ok(settings) => Ok((settings, Some(FileStamp::of(&bytes)), None)),
            Err(e) => {
                let aside = set_aside(&path);
                let warning = match aside {
                    Some(aside) => format!(
                        "{} is not valid settings JSON ({e}); it was set aside as {} and \
                         default settings are used (add your folders again)",
                        path.display(),
                        aside.display()
                    ),
                    None => format!(
                        "{} is not valid settings JSON ({e}); default settings are used",
                        path.display()
                    ),
                };
                Ok((Settings::default(), None, Some(warning)))
            }
        }
    }

    /// Writes `settings.json` atomically (temp file + rename).
    pub fn save(&self, data_dir: &Path) -> Result<()> {
        let path = data_dir.join(SETTINGS_FILE);
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        crate::fsutil::write_atomic(&path, &json)
    }

    /// Changes the settings of `data_dir` by read-modify-write under the
    /// settings lock, so a change made at the same time by another process (a
    /// folder added from the CLI while the app saves its options) is kept.
    ///
    /// `f` changes the settings on disk; when `ours` is given and the file has
    /// not changed since `ours` was read or written (`stamp`), `f` changes
    /// `ours` instead (settings opened with explicit values stay explicit).
    /// Returns the settings saved and the file's new stamp.
    pub fn update<T>(
        data_dir: &Path,
        ours: Option<(&Settings, Option<FileStamp>)>,
        f: impl FnOnce(&mut Settings) -> Result<T>,
    ) -> Result<(Settings, Option<FileStamp>, T)> {
        let mut lock = crate::lock::LockFile::open(data_dir, crate::lock::SETTINGS_LOCK)?;
        let _held = lock.hold(&mut |_| Ok(()))?;
        let path = data_dir.join(SETTINGS_FILE);
        let mut settings = match ours {
            Some((ours, stamp)) if stamp == file_stamp(&path) => ours.clone(),
            _ => Settings::load(data_dir)?,
        };
        let out = f(&mut settings)?;
        settings.save(data_dir)?;
        Ok((settings, file_stamp(&path), out))
    }
}

/// File name of the settings in the data folder.
pub const SETTINGS_FILE: &str = "settings.json";

/// One version of a small file on disk, by content: what a process last read
/// or wrote, to tell whether another process saved since. (Metadata is not
/// enough: two saves within one clock tick can leave the same length, time and
/// even inode number.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp([u8; 32]);

/// The stamp of the file at `path`, `None` when there is none.
pub fn file_stamp(path: &Path) -> Option<FileStamp> {
    std::fs::read(path).ok().map(|bytes| FileStamp::of(&bytes))
}

impl FileStamp {
    /// The stamp of a file holding `bytes`.
    pub fn of(bytes: &[u8]) -> FileStamp {
        use sha2::{Digest, Sha256};
        FileStamp(Sha256::digest(bytes).into())
    }
}

/// Renames a damaged file out of the way; the new name, if that worked.
pub(crate) fn set_aside(path: &Path) -> Option<PathBuf> {
    let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S");
    let name = path.file_name()?.to_string_lossy().into_owned();
    // Never over an earlier damaged copy.
    let aside = (0..100)
        .map(|n| match n {
            0 => path.with_file_name(format!("{name}.damaged-{stamp}")),
            n => path.with_file_name(format!("{name}.damaged-{stamp}-{n}")),
        })
        .find(|p| !p.exists())?;
    std::fs::rename(path, &aside).ok().map(|()| aside)
}

/// The per-user data folder (`~/.local/share/sift` on Linux).
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("sift")
}
