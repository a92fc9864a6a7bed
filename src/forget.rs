//! Leaving without a trace: [`forget_all`] removes the data folder (index,
//! vectors, settings, cost ledger, locks), the desktop app's own storage
//! (recent searches), and on request the downloaded model and the API keys
//! in the keychain. Removing one folder from the index is
//! [`crate::Engine::remove_folder`].
//!
//! Only what Sift made is deleted: in the data folder, entries Sift names;
//! anything else found there (a file the user put) is left and reported, so
//! a mistaken `--data-dir` cannot delete a folder of someone's files.

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::keys::{KeyStore, PROVIDERS};

/// The words a person types to confirm [`forget_all`] in the desktop app.
pub const CONFIRM_PHRASE: &str = "delete everything";

/// The desktop app's identifier: its web view keeps storage under it.
pub const APP_IDENTIFIER: &str = "app.sift.desktop";

/// What to delete besides the data folder.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct ForgetOptions {
    /// The local model Sift downloaded (the cache folder `sift`); a model
    /// folder chosen by the user (`SIFT_MODEL_DIR`, settings) is theirs.
    pub model: bool,
    /// Every provider's API key in the keychain.
    pub keys: bool,
}

/// What [`forget_all`] deleted and what it left.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Forgotten {
    /// Files and folders deleted.
    pub removed: Vec<PathBuf>,
    /// Providers whose key was deleted from the keychain.
    pub keys_deleted: Vec<String>,
    /// Entries found in the data folder that Sift did not make: not deleted.
    pub left: Vec<PathBuf>,
    /// Why the keychain was not searched (there is none here, so it holds no
    /// key of Sift's: Sift never keeps keys anywhere else).
    pub keychain_note: Option<String>,
}

/// Whether `name`, in a data folder, is something Sift made.
fn is_sift_entry(name: &str) -> bool {
    let exact = [
        crate::data_dir::DB_FILE,
        crate::data_dir::VECTORS_DIR,
        crate::engine::KEYWORDS_DIR,
        crate::config::SETTINGS_FILE,
        crate::cost::prices::PRICES_FILE,
        crate::lock::WRITER_LOCK,
        crate::lock::SETTINGS_LOCK,
        crate::lock::OPEN_LOCK,
        crate::encryption::key::KEY_ID_FILE,
    ];
    let prefixes = [
        "sift.db-",
        "sift.db.",
        "settings.json.",
        "prices.json.",
        "old-index-",
        ".sift-write-check",
        ".tmp",
    ];
    exact.contains(&name) || prefixes.iter().any(|p| name.starts_with(p))
}

/// Deletes everything Sift keeps for `data_dir` (see the module docs).
/// Refused while another Sift process is indexing it (stop that first: its
/// next write would bring files back).
pub fn forget_all(data_dir: &Path, options: ForgetOptions, keys: &KeyStore) -> Result<Forgotten> {
    let mut out = Forgotten::default();
    if data_dir.is_dir() {
        // Held while deleting, so no index run starts meanwhile.
        let mut lock = crate::lock::LockFile::open(data_dir, crate::lock::WRITER_LOCK)?;
        let Some(_held) = lock.try_hold()? else {
            return Err(Error::new(
                ErrorKind::Busy,
                format!(
                    "{}: stop it (quit the app, end `sift watch`), then forget again",
                    lock.holder().describe()
                ),
            ));
        };
        // The data key opens nothing once the folder is gone: it always goes.
        match crate::encryption::key::delete(data_dir) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::KeychainUnavailable => {
                out.keychain_note = Some(e.message().to_string());
            }
            Err(e) => return Err(e),
        }
        let entries = std::fs::read_dir(data_dir).map_err(|e| Error::io(data_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(data_dir, e))?;
            let path = entry.path();
            if is_sift_entry(&entry.file_name().to_string_lossy()) {
                remove(&path, &mut out)?;
            } else {
                out.left.push(path);
            }
        }
        if out.left.is_empty() {
            remove(data_dir, &mut out)?;
        }
    }
    for base in [dirs::data_dir(), dirs::cache_dir(), dirs::config_dir()]
        .into_iter()
        .flatten()
    {
        remove(&base.join(APP_IDENTIFIER), &mut out)?;
    }
    if options.model {
        // `<cache>/sift`: the default model folder and download leftovers.
        if let Some(cache) = dirs::cache_dir() {
            remove(&cache.join("sift"), &mut out)?;
        }
    }
    if options.keys {
        for provider in PROVIDERS {
            match keys.delete(provider) {
                Ok(true) => out.keys_deleted.push(provider.to_string()),
                Ok(false) => {}
                Err(e) if e.kind() == ErrorKind::KeychainUnavailable => {
                    out.keychain_note = Some(e.message().to_string());
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

/// Deletes the file or folder at `path` if it exists, noting it.
fn remove(path: &Path, out: &mut Forgotten) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let removed = if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    removed.map_err(|e| Error::io(path, e))?;
    out.removed.push(path.to_path_buf());
    Ok(())
}
