//! The data key: 32 random bytes in the OS keychain, found through a random
//! key id kept in the data folder (`encryption.json`, no secret in it).

use std::path::Path;

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::keys::{keychain_error, os_service};

/// The file in the data folder naming the keychain item of the data key.
pub const KEY_ID_FILE: &str = "encryption.json";

/// A 256-bit data key. Never printed, never written to disk.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(***)")
    }
}

impl DataKey {
    fn random() -> DataKey {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        DataKey(bytes)
    }

    /// The raw bytes (for sealing files).
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The value of `PRAGMA key` for this raw key: SQLCipher uses it as is,
    /// without deriving a key from a passphrase (no 256k-round PBKDF2 per open).
    pub fn sqlcipher_pragma(&self) -> String {
        format!("x'{}'", hex::encode(self.0))
    }
}

#[derive(Serialize, Deserialize)]
struct KeyIdFile {
    /// Names the keychain item `data-key <key_id>`.
    key_id: String,
}

fn entry(key_id: &str) -> Result<keyring::Entry> {
    keyring::Entry::new(&os_service(), &format!("data-key {key_id}"))
        .map_err(|e| keychain_error("open the keychain", e))
}

fn read_key_id(data_dir: &Path) -> Result<Option<String>> {
    let path = data_dir.join(KEY_ID_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<KeyIdFile>(&bytes)
            .map(|f| Some(f.key_id))
            .map_err(|e| {
                Error::new(
                    ErrorKind::EncryptionKeyMissing,
                    format!(
                        "{} is damaged ({e}): the data key cannot be found",
                        path.display()
                    ),
                )
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The data key of `data_dir`, from the keychain.
pub fn load(data_dir: &Path) -> Result<DataKey> {
    let missing = |why: &str| {
        Error::new(
            ErrorKind::EncryptionKeyMissing,
            format!(
                "the index in {} is encrypted and {why}; it cannot be opened. If the key is \
                 gone, delete the data folder (`sift forget --all`) and index the notes again",
                data_dir.display()
            ),
        )
    };
    let Some(key_id) = read_key_id(data_dir)? else {
        return Err(missing("its key id file (encryption.json) is missing"));
    };
    let hex_key = match entry(&key_id)?.get_password() {
        Ok(k) => k,
        Err(keyring::Error::NoEntry) => {
            return Err(missing("its key is not in this user's OS keychain"))
        }
        Err(e) => return Err(keychain_error("read the data key", e)),
    };
    let bytes = hex::decode(hex_key.trim()).ok().filter(|b| b.len() == 32);
    match bytes {
        Some(b) => Ok(DataKey(b.try_into().expect("32 bytes"))),
        None => Err(missing("its keychain item is not a data key")),
    }
}

/// The data key of `data_dir`, made and stored in the keychain (read back to
/// be sure it is kept) when there is none yet.
pub fn load_or_create(data_dir: &Path) -> Result<DataKey> {
    if read_key_id(data_dir)?.is_some() {
        if let Ok(key) = load(data_dir) {
            return Ok(key);
        }
    }
    let mut id = [0u8; 12];
    rand::rng().fill_bytes(&mut id);
    let key_id = hex::encode(id);
    let key = DataKey::random();
    let entry = entry(&key_id)?;
    entry
        .set_password(&hex::encode(key.0))
        .map_err(|e| keychain_error("store the data key", e))?;
    match entry.get_password() {
        Ok(back) if back == hex::encode(key.0) => {}
        Ok(_) => {
            return Err(Error::new(
                ErrorKind::KeychainUnavailable,
                "the OS keychain did not keep the data key; nothing was encrypted",
            ))
        }
        Err(e) => return Err(keychain_error("read the data key back", e)),
    }
    let json = serde_json::to_vec(&KeyIdFile { key_id }).expect("serializable");
    crate::fsutil::write_atomic(&data_dir.join(KEY_ID_FILE), &json)?;
    Ok(key)
}

/// Deletes the data key of `data_dir` from the keychain and its id file;
/// `true` when there was one.
pub fn delete(data_dir: &Path) -> Result<bool> {
    let Some(key_id) = read_key_id(data_dir).ok().flatten() else {
        return Ok(false);
    };
    let deleted = match entry(&key_id)?.delete_credential() {
        Ok(()) => true,
        Err(keyring::Error::NoEntry) => false,
        Err(e) => return Err(keychain_error("delete the data key", e)),
    };
    let path = data_dir.join(KEY_ID_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path, e)),
    }
    Ok(deleted)
}

#[cfg(test)]
impl DataKey {
    /// A fixed key for unit tests.
    pub(crate) fn for_tests(byte: u8) -> DataKey {
        DataKey([byte; 32])
    }
}
