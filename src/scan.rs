//! Which files are notes: a walk of a folder with the `ignore` crate.
//!
//! Honours .gitignore (even outside a git repository), skips hidden and tool
//! folders, keeps configured extensions, and records why anything else that looked
//! like a note was skipped. Symbolic links are followed inside the folder; links
//! that lead out of it (unless `follow_outside_links`) or loop back to a folder
//! above them are skipped with that reason. Nothing here reads file contents
//! (see [`crate::note`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

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
    let mut out = ScanOutcome::default();
    walk_into(root, root, settings, &mut out);
    apply_patterns(root, settings, &mut out);
    out.files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    out.files.dedup_by(|a, b| a.rel_path == b.rel_path);
    out
}

/// Scans only `paths` (files or folders inside `root`, which may no longer
/// exist), applying the same rules as [`scan_folder`] would for them: the
/// watcher's view of a few changed paths. A folder is walked whole. Paths that
/// are gone or excluded contribute nothing: notes stored under them are stale.
pub fn scan_paths(root: &Path, paths: &[PathBuf], settings: &ScanSettings) -> ScanOutcome {
    let mut out = ScanOutcome::default();
    let mut rules = PathRules::new(root, settings);
    for path in paths {
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let rel = relative_path(rel, Path::new(""));
        if rel.is_empty() {
            walk_into(root, root, settings, &mut out);
            continue;
        }
        if let Some(skip) = refused_link(root, &rel, settings) {
            // A link created while watching (a loop, a way out): not followed.
            out.skipped.push(skip);
            continue;
        }
        let meta = std::fs::metadata(path);
        let is_dir = meta.as_ref().is_ok_and(|m| m.is_dir());
        if rules.excludes(&rel, is_dir) {
            continue;
        }
        match meta {
            Ok(meta) if meta.is_dir() => {
                let mut sub = ScanOutcome::default();
                walk_into(path, root, settings, &mut sub);
                // The walk below `path` knew nothing of ignore files above it.
                out.files.extend(
                    sub.files
                        .into_iter()
                        .filter(|f| !rules.excludes(&f.rel_path, false)),
                );
                out.skipped.extend(
                    sub.skipped
                        .into_iter()
                        .filter(|s| !s.rel_path.is_empty() && !rules.excludes(&s.rel_path, false)),
                );
            }
            Ok(meta) if meta.is_file() => match file_entry(path, root, settings) {
                Some(Ok(file)) => out.files.push(file),
                Some(Err(skip)) => out.skipped.push(skip),
                None => {}
            },
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                if note_extension(path, &settings.extensions).is_some() {
                    out.skipped.push(SkippedFile {
                        rel_path: rel,
                        reason: format!("cannot read file information: {err}"),
                    });
                }
            }
        }
    }
    apply_patterns(root, settings, &mut out);
    out.files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    out.files.dedup_by(|a, b| a.rel_path == b.rel_path);
    out.skipped.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    out.skipped.dedup_by(|a, b| a.rel_path == b.rel_path);
    out
}

/// Leaves out what the user's exclusion patterns exclude: as if not there,
/// so notes indexed before the pattern was added are removed. Patterns that
/// do not compile (settings.json edited by hand; saving refuses them) exclude
/// nothing.
fn apply_patterns(root: &Path, settings: &ScanSettings, out: &mut ScanOutcome) {
    if settings.exclude.is_empty() {
        return;
    }
    let Ok(rules) = crate::patterns::Patterns::new(root, &settings.exclude, &settings.include)
    else {
        return;
    };
    out.files.retain(|f| !rules.excludes(&f.rel_path));
    out.skipped
        .retain(|s| s.rel_path.is_empty() || !rules.excludes(&s.rel_path));
}

/// Walks `start` (`root` or a folder inside it), naming files relative to `root`.
fn walk_into(start: &Path, root: &Path, settings: &ScanSettings, out: &mut ScanOutcome) {
    let skip_dirs = settings.skip_dirs.clone();
    let refused: Arc<Mutex<Vec<SkippedFile>>> = Arc::default();
    let real_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let follow_outside = settings.follow_outside_links;
    let walker = ignore::WalkBuilder::new(start)
        .hidden(true)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(true)
        .require_git(false)
        .ignore(true)
        .parents(false)
        .follow_links(true)
        .filter_entry({
            let (refused, root) = (refused.clone(), root.to_path_buf());
            move |entry| {
                let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
                if is_dir && skip_dirs.iter().any(|d| entry.file_name() == d.as_str()) {
                    return false;
                }
                if entry.path_is_symlink() {
                    if let Some(reason) = link_refusal(entry.path(), &real_root, follow_outside) {
                        refused
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(SkippedFile {
                                rel_path: relative_path(entry.path(), &root),
                                reason,
                            });
                        return false;
                    }
                }
                true
            }
        })
        .build();

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
        match file_entry(entry.path(), root, settings) {
            Some(Ok(file)) => out.files.push(file),
            Some(Err(skip)) => out.skipped.push(skip),
            None => {}
        }
    }
    out.skipped.extend(std::mem::take(
        &mut *refused.lock().unwrap_or_else(|e| e.into_inner()),
    ));
}

/// Why the symbolic link at `path` is not followed, if it is not: it loops
/// back to a folder above it, or (unless `follow_outside`) leads out of the
/// notes folder `real_root` (its canonical path). `None` for anything else,
/// a dangling link included (the walk reports those).
fn link_refusal(path: &Path, real_root: &Path, follow_outside: bool) -> Option<String> {
    let target = std::fs::canonicalize(path).ok()?;
    let parent = path.parent().and_then(|p| std::fs::canonicalize(p).ok());
    if target.is_dir() && parent.is_some_and(|p| p.starts_with(&target)) {
        return Some(format!(
            "symbolic link loop back to {} (not followed)",
            target.display()
        ));
    }
    if !follow_outside && !target.starts_with(real_root) {
        return Some(format!(
            "symbolic link to {}, outside the notes folder (not followed; set \
             scan.follow_outside_links to follow such links)",
            target.display()
        ));
    }
    None
}

/// The first symbolic link on the way from `root` to `rel` that is not
/// followed, as a skip of that link with the reason.
fn refused_link(root: &Path, rel: &str, settings: &ScanSettings) -> Option<SkippedFile> {
    let real_root = std::fs::canonicalize(root).ok()?;
    let mut path = root.to_path_buf();
    let mut rel_so_far = Vec::new();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        path.push(part);
        rel_so_far.push(part);
        let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        if is_link {
            if let Some(reason) = link_refusal(&path, &real_root, settings.follow_outside_links) {
                return Some(SkippedFile {
                    rel_path: rel_so_far.join("/"),
                    reason,
                });
            }
        }
    }
    None
}

/// One file the walk accepted: a note, a skip with its reason, or nothing (not
/// a note extension).
fn file_entry(
    path: &Path,
    root: &Path,
    settings: &ScanSettings,
) -> Option<Result<ScannedFile, SkippedFile>> {
    let ext = note_extension(path, &settings.extensions)?;
    let rel_path = relative_path(path, root);
    if let Some(reason) = not_utf8(path.strip_prefix(root).unwrap_or(path)) {
        return Some(Err(SkippedFile { rel_path, reason }));
    }
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) => {
            return Some(Err(SkippedFile {
                rel_path,
                reason: format!("cannot read file information: {err}"),
            }))
        }
    };
    let limit = settings.max_bytes_for(&ext);
    if meta.len() > limit {
        return Some(Err(SkippedFile {
            rel_path,
            reason: format!("too large: {} bytes (limit {limit} bytes)", meta.len()),
        }));
    }
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    Some(Ok(ScannedFile {
        rel_path,
        abs_path: path.to_path_buf(),
        size: meta.len(),
        mtime_ns,
        ext,
    }))
}

/// The walk's rules for single paths, for callers that learn of paths one at a
/// time (the watcher): hidden entries, skipped folders, and ignore files
/// (`.ignore`, `.gitignore`, `.git/info/exclude`) from the root down, with the
/// walk's precedence (`.ignore` over `.gitignore` over excludes, deeper files
/// first, `.gitignore` files not crossing a nested repository). Ignore files are
/// read once per folder per `PathRules`.
pub struct PathRules<'a> {
    root: PathBuf,
    settings: &'a ScanSettings,
    dirs: HashMap<PathBuf, Rc<DirRules>>,
}

struct DirRules {
    ignore: Gitignore,
    git_ignore: Gitignore,
    git_exclude: Gitignore,
    has_git: bool,
}

impl<'a> PathRules<'a> {
    /// Rules for paths under `root`.
    pub fn new(root: &Path, settings: &'a ScanSettings) -> Self {
        PathRules {
            root: root.to_path_buf(),
            settings,
            dirs: HashMap::new(),
        }
    }

    /// Whether a walk of the root would leave out `rel_path` (`/`-separated,
    /// relative to the root) or a folder above it; `is_dir` tells what the last
    /// part is. Says nothing of extensions or sizes.
    pub fn excludes(&mut self, rel_path: &str, is_dir: bool) -> bool {
        let parts: Vec<&str> = rel_path.split('/').filter(|p| !p.is_empty()).collect();
        let mut dir = self.root.clone();
        let mut levels = vec![self.rules_of(&dir)];
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let entry_is_dir = !last || is_dir;
            if part.starts_with('.')
                || (entry_is_dir && self.settings.skip_dirs.iter().any(|d| d == part))
            {
                return true;
            }
            let path = dir.join(part);
            if ignored_by(&levels, &path, entry_is_dir) {
                return true;
            }
            if !last {
                dir = path;
                levels.push(self.rules_of(&dir));
            }
        }
        false
    }

    fn rules_of(&mut self, dir: &Path) -> Rc<DirRules> {
        if let Some(rules) = self.dirs.get(dir) {
            return rules.clone();
        }
        let has_git = dir.join(".git").exists();
        let rules = Rc::new(DirRules {
            ignore: load_ignore(dir, &[dir.join(".ignore")]),
            git_ignore: load_ignore(dir, &[dir.join(".gitignore")]),
            git_exclude: if has_git {
                load_ignore(dir, &[dir.join(".git/info/exclude")])
            } else {
                Gitignore::empty()
            },
            has_git,
        });
        self.dirs.insert(dir.to_path_buf(), rules.clone());
        rules
    }
}

fn load_ignore(dir: &Path, files: &[PathBuf]) -> Gitignore {
    let mut builder = GitignoreBuilder::new(dir);
    for file in files.iter().filter(|f| f.is_file()) {
        // A broken line drops that line, as in the walk.
        let _ = builder.add(file);
    }
    builder.build().unwrap_or_else(|_| Gitignore::empty())
}

/// The walk's decision for one entry from the ignore files of its folders
/// (`levels`, root first): first kind that matches at all decides, deepest first.
fn ignored_by(levels: &[Rc<DirRules>], path: &Path, is_dir: bool) -> bool {
    let mut m_ignore = Match::None;
    let mut m_git = Match::None;
    let mut m_exclude = Match::None;
    let mut saw_git = false;
    for level in levels.iter().rev() {
        if m_ignore.is_none() {
            m_ignore = level.ignore.matched(path, is_dir);
        }
        if !saw_git && m_git.is_none() {
            m_git = level.git_ignore.matched(path, is_dir);
        }
        if !saw_git && m_exclude.is_none() {
            m_exclude = level.git_exclude.matched(path, is_dir);
        }
        saw_git = saw_git || level.has_git;
    }
    m_ignore.or(m_git).or(m_exclude).is_ignore()
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
    extensions.contains(&ext).then_some(ext)
}

/// `path` relative to `root`, with `/` separators on every platform. Bytes
/// of a name that are not UTF-8 are written `\xFF` (as in [`display_path`]),
/// so two such names stay two paths.
pub fn relative_path(path: &Path, root: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| escape_name(c.as_os_str()))
        .collect::<Vec<_>>()
        .join("/")
}

/// `path` for people: as is when it is UTF-8, else with each byte that is not
/// written `\xFF`.
pub fn display_path(path: &Path) -> String {
    escape_name(path.as_os_str()).into_owned()
}

fn escape_name(name: &OsStr) -> Cow<'_, str> {
    if let Some(text) = name.to_str() {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    for chunk in name.as_encoded_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02X}"));
        }
    }
    Cow::Owned(out)
}

/// Why a file whose path (relative to its folder) is not UTF-8 cannot be a
/// note: the store keeps paths as text, and the desktop app and JSON output
/// pass them as text, so such a file could be neither found again nor opened.
/// Skipped with this reason rather than indexed under a changed name.
fn not_utf8(rel: &Path) -> Option<String> {
    if rel.to_str().is_some() {
        return None;
    }
    Some(if rel.file_name().is_some_and(|n| n.to_str().is_none()) {
        "file name is not valid UTF-8: rename the file to index it".to_string()
    } else {
        "a folder name in its path is not valid UTF-8: rename the folder to index it".to_string()
    })
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

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Every file of a tree with nested ignore files: the per-path rules and
    /// `scan_paths` must agree with a full walk.
    #[test]
    fn path_rules_agree_with_the_walk() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, ".gitignore", "private/\n*.draft.md\n/top-only.md\n");
        write(root, "a/.gitignore", "!keep.draft.md\nlocal.md\n");
        write(root, "b/.ignore", "!b-local.md\n");
        write(root, "b/.gitignore", "b-local.md\n");
        let files = [
            "n.md",
            "top-only.md",
            "x/top-only.md",
            "private/secret.md",
            "x/private/deep.md",
            "a/keep.draft.md",
            "a/other.draft.md",
            "a/local.md",
            "local.md",
            "b/b-local.md",
            ".hidden.md",
            "h/.hidden/n.md",
            "node_modules/pkg/readme.md",
            "c/d/e/deep.md",
            "c/notes.txt",
            "c/image.png",
        ];
        for f in files {
            write(root, f, "text");
        }
        let settings = ScanSettings::default();
        let full: Vec<String> = scan_folder(root, &settings)
            .files
            .into_iter()
            .map(|f| f.rel_path)
            .collect();
        let mut rules = PathRules::new(root, &settings);
        for f in files {
            let by_rules = !rules.excludes(f, false)
                && note_extension(Path::new(f), &settings.extensions).is_some();
            assert_eq!(by_rules, full.contains(&f.to_string()), "{f}");
        }
        let paths: Vec<PathBuf> = files.iter().map(|f| root.join(f)).collect();
        let one_by_one: Vec<String> = scan_paths(root, &paths, &settings)
            .files
            .into_iter()
            .map(|f| f.rel_path)
            .collect();
        assert_eq!(one_by_one, full);
        let by_folder: Vec<String> = scan_paths(
            root,
            &[root.join("a"), root.join("x"), root.join("c")],
            &settings,
        )
        .files
        .into_iter()
        .map(|f| f.rel_path)
        .collect();
        let expected: Vec<String> = full
            .iter()
            .filter(|f| ["a/", "x/", "c/"].iter().any(|p| f.starts_with(p)))
            .cloned()
            .collect();
        assert_eq!(by_folder, expected);
        assert!(
            scan_paths(root, &[root.join("gone.md"), root.join("gone")], &settings)
                .files
                .is_empty()
        );
    }
}
