//! Which files are notes: a walk of a folder with the `ignore` crate.
//!
//! Honours .gitignore (even outside a git repository), skips hidden and tool
//! folders, keeps configured extensions, and records why anything else that looked
//! like a note was skipped. Nothing here reads file contents (see [`crate::note`]).

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::config::ScanSettings;

/// A candidate note found by the scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedFile {
    /// Path relative to the scanned folder, with `/` separators.
    pub rel_path: String,
    /// Absolute path.
    pub abs_path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Lower-case extension without the dot.
    pub ext: String,
}

/// A path the scan saw and refused, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    /// Path relative to the scanned folder (may be empty if unknown).
    pub rel_path: String,
    /// Why it was skipped, for people.
    pub reason: String,
}

/// Everything one scan found.
#[derive(Debug, Default, Clone)]
pub struct ScanOutcome {
    /// Notes to index.
    pub files: Vec<ScannedFile>,
    /// Note-like files (right extension) or walk errors that were skipped.
    pub skipped: Vec<SkippedFile>,
}

/// Walks `root` and returns the notes in it, sorted by path.
pub fn scan_folder(root: &Path, settings: &ScanSettings) -> ScanOutcome {
    let skip_dirs = settings.skip_dirs.clone();
    let walker = ignore::WalkBuilder::new(root)
        .hidden(true)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(true)
        .require_git(false)
        .ignore(true)
        .parents(false)
        .follow_links(true)
        .filter_entry(move |entry| {
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            !(is_dir && skip_dirs.iter().any(|d| entry.file_name() == d.as_str()))
        })
        .build();

    let mut out = ScanOutcome::default();
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                out.skipped.push(SkippedFile {
                    rel_path: error_path(&err, root),
                    reason: walk_error_reason(&err),
                });
                continue;
            }
        };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let Some(ext) = note_extension(path, &settings.extensions) else {
            continue;
        };
        let rel_path = relative_path(path, root);
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(err) => {
                out.skipped.push(SkippedFile {
                    rel_path,
                    reason: format!("cannot read file information: {err}"),
                });
                continue;
            }
        };
        if meta.len() > settings.max_file_bytes {
            out.skipped.push(SkippedFile {
                rel_path,
                reason: format!(
                    "too large: {} bytes (limit {} bytes)",
                    meta.len(),
                    settings.max_file_bytes
                ),
            });
            continue;
        }
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64);
        out.files.push(ScannedFile {
            rel_path,
            abs_path: path.to_path_buf(),
            size: meta.len(),
            mtime_ns,
            ext,
        });
    }
    out.files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    out.files.dedup_by(|a, b| a.rel_path == b.rel_path);
    out
}

/// Whether `path` (relative to some root) would be skipped by directory rules alone:
/// used by the watcher to ignore events inside hidden or tool folders.
pub fn is_in_skipped_dir(rel_path: &str, settings: &ScanSettings) -> bool {
    let mut parts: Vec<&str> = rel_path.split('/').collect();
    parts.pop();
    parts
        .iter()
        .any(|p| p.starts_with('.') || settings.skip_dirs.iter().any(|d| d == p))
}

/// The lower-case extension of `path` if it is one of `extensions`.
pub fn note_extension(path: &Path, extensions: &[String]) -> Option<String> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    extensions.iter().any(|e| *e == ext).then_some(ext)
}

/// `path` relative to `root`, with `/` separators on every platform.
pub fn relative_path(path: &Path, root: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn error_path(err: &ignore::Error, root: &Path) -> String {
    match err {
        ignore::Error::WithPath { path, .. } => relative_path(path, root),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err, root)
        }
        ignore::Error::Loop { child, .. } => relative_path(child, root),
        _ => String::new(),
    }
}

fn walk_error_reason(err: &ignore::Error) -> String {
    match err {
        ignore::Error::Loop { ancestor, .. } => {
            format!("symbolic link loop back to {}", ancestor.display())
        }
        ignore::Error::WithPath { err, .. }
        | ignore::Error::WithDepth { err, .. }
        | ignore::Error::WithLineNumber { err, .. } => walk_error_reason(err),
        other => format!("cannot read: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_dir_rules_match_hidden_and_tool_folders() {
        let s = ScanSettings::default();
        assert!(is_in_skipped_dir(".obsidian/x.md", &s));
        assert!(is_in_skipped_dir("a/node_modules/b.md", &s));
        assert!(!is_in_skipped_dir("a/b.md", &s));
        assert!(!is_in_skipped_dir(".hidden-file.md", &s));
    }
}
