//! The file types Sift reads, and how many files of each a set of folders
//! holds (for Settings: a checkbox per type with its count, enabled or not).

use std::path::PathBuf;

use serde::Serialize;

use crate::config::ScanSettings;

/// Every extension Sift can read: notes as text, documents through a converter.
pub const SUPPORTED: &[&str] = &["md", "markdown", "txt", "pdf", "docx", "odt", "html", "htm"];

/// Files of one type found in the indexed folders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeCount {
    /// Lower-case extension without the dot.
    pub ext: String,
    /// Files with it (ignore rules and skipped folders apply; sizes do not).
    pub files: usize,
    /// Whether the type is indexed (in `scan.extensions`).
    pub enabled: bool,
}

/// Counts files of every supported type (and of every enabled one) under
/// `folders`, with the scan's ignore rules, whether or not the type is enabled.
pub fn count_types(folders: &[PathBuf], scan: &ScanSettings) -> Vec<TypeCount> {
    let mut all = scan.clone();
    for ext in SUPPORTED {
        if !all.extensions.iter().any(|e| e == ext) {
            all.extensions.push(ext.to_string());
        }
    }
    all.max_file_bytes = u64::MAX;
    all.max_bytes_by_type.clear();
    let mut counts: Vec<TypeCount> = all
        .extensions
        .iter()
        .map(|ext| TypeCount {
            ext: ext.clone(),
            files: 0,
            enabled: scan.extensions.contains(ext),
        })
        .collect();
    for folder in folders.iter().filter(|f| f.is_dir()) {
        let found = crate::scan::scan_folder(folder, &all);
        for file in found.files {
            if let Some(count) = counts.iter_mut().find(|c| c.ext == file.ext) {
                count.files += 1;
            }
        }
    }
    counts
}
