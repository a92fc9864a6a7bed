//! What is indexed: status, file states, and single notes looked up by path.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::{Engine, NoteView, Status};
use crate::embed::local;
use crate::error::{Error, ErrorKind, Result};
use crate::search::Mode;
use crate::store::{tables, FileStateRow, Store};

impl Engine {
    /// Counts and state for status displays.
    pub fn status(&self) -> Result<Status> {
        self.catch_up_vectors()?;
        let embedder_id = self.embedder.as_ref().map(|e| e.id().to_string());
        let indexing = self.indexing.load(Ordering::SeqCst);
        let other_writer = if indexing {
            None
        } else {
            crate::lock::writer_busy(&self.data_dir).map(|h| h.describe())
        };
        let settings = self.settings();
        let warnings = self
            .warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let month_spent_usd = self.month_spent()?;
        let budget_reached = self.stopped_by_cap.load(Ordering::SeqCst)
            || settings
                .budget_usd
                .is_some_and(|cap| month_spent_usd >= cap - 1e-12);
        let vectors = self
            .vectors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |v| v.len() as u64);
        let keyword_index_current = self.current_keywords(Mode::Keyword).is_some();
        self.store.read(|conn| {
            let (notes, pending, skipped, failed) = tables::state_counts(conn)?;
            let chunks = tables::count_chunks(conn)?;
            let chunks_without_vectors = match &embedder_id {
                Some(id) => tables::count_missing_vectors(conn, id)?,
                None => chunks,
            };
            Ok(Status {
                folders: settings
                    .folders
                    .iter()
                    .map(|f| f.to_string_lossy().into_owned())
                    .collect(),
                notes,
                chunks,
                vectors,
                pending,
                skipped,
                failed,
                chunks_without_vectors,
                model_available: embedder_id.is_some(),
                local_arithmetic: (embedder_id.as_deref() == Some(local::MODEL_ID))
                    .then(|| local::arithmetic().to_string()),
                embedder_id: embedder_id.clone(),
                last_indexed: tables::last_indexed(conn)?,
                indexing,
                other_writer: other_writer.clone(),
                vector_rebuilds: tables::vector_rebuilds(conn)?.max(0) as u64,
                keyword_index_current,
                encrypted: self.store.key().is_some(),
                warnings: warnings.clone(),
                unavailable_folders: settings
                    .folders
                    .iter()
                    .filter(|f| !f.is_dir())
                    .map(|f| f.to_string_lossy().into_owned())
                    .collect(),
                budget_usd: settings.budget_usd,
                month_spent_usd,
                budget_reached,
                obsidian_vaults: settings
                    .folders
                    .iter()
                    .filter(|f| crate::obsidian::is_in_vault(f))
                    .map(|f| f.to_string_lossy().into_owned())
                    .collect(),
                data_dir: self.data_dir.to_string_lossy().into_owned(),
                language_hint: crate::language::hint(conn, embedder_id.as_deref())?,
            })
        })
    }

    /// Files of each readable type in the indexed folders, enabled or not.
    pub fn file_type_counts(&self) -> Vec<crate::file_types::TypeCount> {
        let settings = self.settings();
        crate::file_types::count_types(&settings.folders, &settings.scan)
    }

    /// What exclusion patterns would do before they are saved (Settings'
    /// live count): the notes each pattern matches in the indexed folders, and
    /// how many the rules together leave out. Nothing is changed.
    pub fn preview_exclusions(
        &self,
        exclude: &[String],
        include: &[String],
    ) -> crate::patterns::PatternPreview {
        let settings = self.settings();
        let mut scan = settings.scan.clone();
        scan.exclude.clear();
        scan.include.clear();
        let notes: Vec<(PathBuf, Vec<String>)> = settings
            .folders
            .iter()
            .filter(|f| f.is_dir())
            .map(|f| {
                let files = crate::scan::scan_folder(f, &scan).files;
                (f.clone(), files.into_iter().map(|n| n.rel_path).collect())
            })
            .collect();
        crate::patterns::preview(&notes, exclude, include)
    }

    /// Every file's state, or only those not indexed.
    pub fn file_states(&self, only_problems: bool) -> Result<Vec<FileStateRow>> {
        self.store
            .read(|conn| tables::file_states(conn, only_problems))
    }

    /// The real path of the note at `path` (absolute) if Sift indexed it: after
    /// resolving symlinks it lies inside an indexed folder and the store holds
    /// it as indexed. Anything else (a file Sift skipped or never saw, a path
    /// outside the folders, a folder) is refused with `NotIndexed`.
    pub fn indexed_note(&self, path: &Path) -> Result<PathBuf> {
        let refuse = || {
            Error::new(
                ErrorKind::NotIndexed,
                format!("{} is not a note Sift indexed", path.display()),
            )
        };
        if !path.is_absolute() {
            return Err(refuse());
        }
        let real = std::fs::canonicalize(path).map_err(|_| refuse())?;
        if !real.is_file() {
            return Err(refuse());
        }
        let folders = self.settings().folders;
        let root = folders
            .iter()
            .filter(|f| real.starts_with(f))
            .max_by_key(|f| f.as_os_str().len())
            .ok_or_else(refuse)?;
        let rel = crate::scan::relative_path(&real, root);
        let state = self
            .store
            .read(|conn| match tables::find_root(conn, root)? {
                Some(root_id) => Ok(tables::note_state(conn, root_id, &rel)?.map(|(_, s, _)| s)),
                None => Ok(None),
            })?;
        match state.as_deref() {
            Some("indexed") => Ok(real),
            _ => Err(refuse()),
        }
    }

    /// A note path as a person or an assistant gives it: absolute as is;
    /// relative, joined to the first indexed folder holding such a file (else
    /// left as is, for the caller to refuse with a reason).
    pub fn resolve_note_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        self.settings()
            .folders
            .iter()
            .map(|f| f.join(path))
            .find(|p| p.is_file())
            .unwrap_or_else(|| path.to_path_buf())
    }

    /// The whole text of an indexed note with what Sift knows of it (`get
    /// note` for AI assistants). `path` is absolute, or relative to an indexed
    /// folder; only notes Sift indexed are read (see [`Engine::indexed_note`]),
    /// so `../` or a link cannot lead outside the folders. Converted documents
    /// (PDF, DOCX, ...) give their extracted text.
    pub fn note(&self, path: &Path) -> Result<NoteView> {
        let folders = self.settings().folders;
        let real = self.indexed_note(&self.resolve_note_path(path))?;
        let root = folders
            .iter()
            .filter(|f| real.starts_with(f))
            .max_by_key(|f| f.as_os_str().len())
            .cloned()
            .unwrap_or_default();
        let rel = crate::scan::relative_path(&real, &root);
        let meta = self
            .store
            .read(|conn| match tables::find_root(conn, &root)? {
                Some(root_id) => tables::note_meta(conn, root_id, &rel),
                None => Ok(None),
            })?;
        let meta = meta.ok_or_else(|| {
            Error::new(
                ErrorKind::NotIndexed,
                format!("{} is not a note Sift indexed", path.display()),
            )
        })?;
        let scan = self.settings().scan;
        let read = match crate::extract::read_document(&real, &meta.ext, &scan) {
            Some(doc) => doc.map(|d| d.note.text),
            None => {
                crate::note::read_note_text(&real, scan.max_bytes_for(&meta.ext)).map(|n| n.text)
            }
        };
        let text = read.map_err(|failure| {
            let why = match failure {
                crate::note::ReadFailure::Vanished => {
                    "it was deleted since it was indexed".to_string()
                }
                crate::note::ReadFailure::Skipped(reason) => reason,
            };
            Error::new(
                ErrorKind::BadPath,
                format!("cannot read {}: {why}", real.display()),
            )
        })?;
        Ok(NoteView {
            root: root.to_string_lossy().into_owned(),
            path: rel,
            abs_path: real.to_string_lossy().into_owned(),
            title: meta.title,
            tags: meta.tags,
            aliases: meta.aliases,
            modified: meta.mtime_ns.div_euclid(1_000_000_000),
            note_date: meta.note_date,
            text,
        })
    }

    /// Whether `path` lies inside an indexed folder (for opening files safely).
    pub fn is_inside_indexed_folder(&self, path: &Path) -> bool {
        let Ok(path) = std::fs::canonicalize(path) else {
            return false;
        };
        self.settings().folders.iter().any(|f| path.starts_with(f))
    }

    /// The store (for tools and tests).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Number of vectors in the active index (after catching up with the store).
    pub fn vector_count(&self) -> usize {
        let _ = self.catch_up_vectors();
        self.vectors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |v| v.len())
    }

    pub(super) fn locate_note(&self, path: &Path) -> Result<(i64, String)> {
        let abs = match std::fs::canonicalize(path) {
            Ok(abs) if abs.is_dir() => {
                return Err(Error::new(
                    ErrorKind::BadPath,
                    format!("{} is a folder: give a note file", path.display()),
                ))
            }
            Ok(abs) => abs,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::new(
                    ErrorKind::BadPath,
                    format!(
                        "{} does not exist: check the path (a note file inside an indexed folder)",
                        path.display()
                    ),
                ))
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let roots = self.store.read(tables::roots)?;
        for (root_id, root) in roots {
            if let Ok(rel) = abs.strip_prefix(&root) {
                return Ok((root_id, crate::scan::relative_path(rel, Path::new(""))));
            }
        }
        Err(Error::new(
            ErrorKind::NotIndexed,
            format!(
                "{} is not inside an indexed folder: add its folder with `sift index <folder>`",
                path.display()
            ),
        ))
    }
}
