//! Sealing whole files (the vector files) with ChaCha20-Poly1305: a magic,
//! a random nonce, then the ciphertext with its tag. A sealed file that was
//! changed or cut fails to open instead of loading garbage.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

use super::DataKey;

/// First bytes of a sealed file.
pub const MAGIC: &[u8; 8] = b"SIFTSEAL";

const NONCE_LEN: usize = 12;

/// Whether `head` (a file's first bytes) starts a sealed file.
pub fn is_sealed(head: &[u8]) -> bool {
    head.starts_with(MAGIC)
}

/// `plain`, sealed with `key`.
pub fn seal(key: &DataKey, plain: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key.bytes()));
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), plain)
        .expect("ChaCha20-Poly1305 encrypts any length this process can hold");
    let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// The plain bytes of `sealed`; an error message if it is not a sealed file,
/// was sealed with another key, or was changed.
pub fn open(key: &DataKey, sealed: &[u8]) -> Result<Vec<u8>, String> {
    if !is_sealed(sealed) || sealed.len() < MAGIC.len() + NONCE_LEN + 16 {
        return Err("not a sealed file".into());
    }
    let (nonce, body) = sealed[MAGIC.len()..].split_at(NONCE_LEN);
    ChaCha20Poly1305::new(Key::from_slice(key.bytes()))
        .decrypt(Nonce::from_slice(nonce), body)
        .map_err(|_| "the sealed file is damaged or was sealed with another key".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_changes_and_other_keys() {
        let key = DataKey::for_tests(7);
        let plain = b"vectors and a label".repeat(100);
        let sealed = seal(&key, &plain);
        assert!(is_sealed(&sealed));
        assert!(
            !sealed.windows(7).any(|w| w == b"vectors"),
            "no plain text left"
        );
        assert_eq!(open(&key, &sealed).unwrap(), plain);
        let mut changed = sealed.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert!(open(&key, &changed).is_err());
        assert!(open(&DataKey::for_tests(8), &sealed).is_err());
        assert!(open(&key, &sealed[..20]).is_err());
        assert!(open(&key, &plain).is_err());
    }
}
