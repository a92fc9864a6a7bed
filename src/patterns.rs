//! The user's exclusion rules (Settings > Exclusions): patterns in .gitignore
//! syntax, relative to each indexed folder (`Templates/`, `*.excalidraw.md`,
//! `Daily/2023-*`). A note is left out when an exclude pattern matches it or a
//! folder above it, unless an include pattern does too (`Daily/` excluded,
//! `Daily/Highlights.md` kept). Matching is the `ignore` crate's, the one the
//! walk uses for .gitignore files.

use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};

/// Exclude and include patterns compiled for one indexed folder.
pub struct Patterns {
    root: std::path::PathBuf,
    exclude: Gitignore,
    include: Gitignore,
}

impl Patterns {
    /// Compiles the patterns for folder `root`; a pattern that is not a valid
    /// glob is refused with what is wrong with it.
    pub fn new(root: &Path, exclude: &[String], include: &[String]) -> Result<Patterns> {
        Ok(Patterns {
            root: root.to_path_buf(),
            exclude: compile(root, exclude)?,
            include: compile(root, include)?,
        })
    }

    /// Whether no exclude pattern is set (nothing is ever left out).
    pub fn is_empty(&self) -> bool {
        self.exclude.is_empty()
    }

    /// Whether the note at `rel_path` (`/`-separated) is left out.
    pub fn excludes(&self, rel_path: &str) -> bool {
        !self.exclude.is_empty()
            && matches(&self.exclude, &self.root, rel_path)
            && !matches(&self.include, &self.root, rel_path)
    }
}

/// How many notes one pattern matches (Settings' live count).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PatternCount {
    /// The pattern as given.
    pub pattern: String,
    /// Notes it matches in the indexed folders (before any other pattern).
    pub files: usize,
    /// Why the pattern cannot be used, when it cannot.
    pub error: Option<String>,
}

/// What a set of exclusion rules would do, before it is saved.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PatternPreview {
    /// Each exclude pattern and the notes it matches.
    pub exclude: Vec<PatternCount>,
    /// Each include pattern and the notes it matches.
    pub include: Vec<PatternCount>,
    /// Notes in the folders without any rule.
    pub notes_total: usize,
    /// Notes left out by the rules together.
    pub notes_excluded: usize,
}

/// Refuses patterns that are not valid globs, naming the first bad one.
pub fn check(patterns: &[String]) -> Result<()> {
    compile(Path::new("/"), patterns).map(|_| ())
}

/// Counts what `exclude` and `include` match among `notes` (per folder:
/// the folder and its notes' paths relative to it).
pub fn preview(
    notes: &[(std::path::PathBuf, Vec<String>)],
    exclude: &[String],
    include: &[String],
) -> PatternPreview {
    let count = |pattern: &String| -> PatternCount {
        let mut files = 0;
        for (root, paths) in notes {
            match compile(root, std::slice::from_ref(pattern)) {
                Ok(one) => files += paths.iter().filter(|p| matches(&one, root, p)).count(),
                Err(e) => {
                    return PatternCount {
                        pattern: pattern.clone(),
                        files: 0,
                        error: Some(e.message().to_string()),
                    }
                }
            }
        }
        PatternCount {
            pattern: pattern.clone(),
            files,
            error: None,
        }
    };
    let mut notes_excluded = 0;
    for (root, paths) in notes {
        if let Ok(rules) = Patterns::new(root, exclude, include) {
            notes_excluded += paths.iter().filter(|p| rules.excludes(p)).count();
        }
    }
    PatternPreview {
        exclude: exclude
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(count)
            .collect(),
        include: include
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(count)
            .collect(),
        notes_total: notes.iter().map(|(_, p)| p.len()).sum(),
        notes_excluded,
    }
}

fn compile(root: &Path, patterns: &[String]) -> Result<Gitignore> {
    let mut builder = GitignoreBuilder::new(root);
    // `Daily/[2023` is a typo far more often than a file named with a `[`:
    // say so instead of matching it literally as git would.
    builder.allow_unclosed_class(false);
    for pattern in patterns.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        if pattern.starts_with('!') || pattern.starts_with('#') {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("'{pattern}': write patterns without '!' or '#'; put the notes to keep in the include list"),
            ));
        }
        builder.add_line(None, pattern).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("'{pattern}' is not a valid pattern: {e}"),
            )
        })?;
    }
    builder.build().map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("the patterns cannot be used: {e}"),
        )
    })
}

fn matches(rules: &Gitignore, root: &Path, rel_path: &str) -> bool {
    rules
        .matched_path_or_any_parents(root.join(rel_path), false)
        .is_ignore()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn folders_globs_and_includes() {
        let root = Path::new("/notes");
        let rules = Patterns::new(
            root,
            &p(&["Templates/", "*.excalidraw.md", "Daily/2023-*"]),
            &p(&["Templates/Keep.md"]),
        )
        .unwrap();
        assert!(rules.excludes("Templates/Daily.md"));
        assert!(rules.excludes("Templates/deep/x.md"));
        assert!(!rules.excludes("Templates/Keep.md"));
        assert!(rules.excludes("Drawings/plan.excalidraw.md"));
        assert!(rules.excludes("Daily/2023-05-01.md"));
        assert!(!rules.excludes("Daily/2024-05-01.md"));
        assert!(!rules.excludes("Projects/Templates.md"));
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        let err = check(&p(&["Daily/[2023"])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("Daily/[2023"), "{}", err.message());
        assert!(check(&p(&["!keep.md"])).is_err());
        assert!(check(&p(&["", "  "])).is_ok());
    }

    #[test]
    fn preview_counts_each_pattern_and_the_whole() {
        let notes = vec![(
            std::path::PathBuf::from("/n"),
            p(&[
                "Templates/a.md",
                "Templates/b.md",
                "x.excalidraw.md",
                "y.md",
            ]),
        )];
        let got = preview(
            &notes,
            &p(&["Templates/", "*.excalidraw.md", "[bad"]),
            &p(&["Templates/b.md"]),
        );
        let files: Vec<usize> = got.exclude.iter().map(|c| c.files).collect();
        assert_eq!(files, [2, 1, 0]);
        assert!(got.exclude[2].error.is_some());
        assert_eq!(got.include[0].files, 1);
        assert_eq!(got.notes_total, 4);
        // A bad pattern makes the set unusable: nothing would be left out
        // (saving refuses it).
        assert_eq!(got.notes_excluded, 0);
        let ok = preview(
            &notes,
            &p(&["Templates/", "*.excalidraw.md"]),
            &p(&["Templates/b.md"]),
        );
        assert_eq!(ok.notes_excluded, 2);
    }
}
