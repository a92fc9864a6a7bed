//! Links between notes, read at index time so a note can list the notes that
//! link to it ("backlinks"): Obsidian wikilinks and embeds (`[[Note]]`,
//! `[[folder/Note#Part|label]]`, `![[Note]]`) and Markdown links
//! (`[text](Other%20note.md)`).
//!
//! A link is stored under a key: the target path, lower case, without `.md`.
//! A Markdown link is resolved against the linking note's folder, so its key is
//! a whole path from the indexed folder (`exact`). A wikilink names a note the
//! way Obsidian resolves it, by the end of its path (`[[Note]]` is any
//! `…/Note.md`, `[[b/Note]]` any `…/b/Note.md`), so its key matches any note
//! whose path ends with it. Links to the web or other schemes are not kept.

/// A link as written in a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The destination as written (`Note#Part` for `[[Note#Part|label]]`).
    pub dest: String,
    /// A wikilink or embed (else a Markdown link).
    pub wiki: bool,
    /// Byte offset of the link in the note.
    pub offset: usize,
}

/// A link's key for a note at `from` (its path in the indexed folder) and
/// whether it names a whole path (`exact`) or a path ending. `None`: not a
/// link to a note (a URL, a heading of the same note, an empty link).
pub fn link_key(from: &str, link: &Link) -> Option<(String, bool)> {
    let dest = link.dest.trim();
    if has_scheme(dest) {
        return None;
    }
    // `Note#Heading`, `Note#^block`, `note.md?x`: the note is what comes first.
    let dest = dest.split(['#', '?']).next().unwrap_or("").trim();
    if dest.is_empty() {
        return None;
    }
    if link.wiki {
        let key = normalize(dest.trim_start_matches('/'));
        return (!key.is_empty()).then_some((key, false));
    }
    let decoded = percent_encoding::percent_decode_str(dest).decode_utf8_lossy();
    let mut parts: Vec<&str> = if decoded.starts_with('/') {
        Vec::new() // from the indexed folder
    } else {
        let mut folder: Vec<&str> = from.split('/').collect();
        folder.pop();
        folder
    };
    for part in decoded.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                // Above the indexed folder: no note of this folder.
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    let key = normalize(&parts.join("/"));
    (!key.is_empty()).then_some((key, true))
}

/// The keys links to the note at `rel_path` are stored under: its whole path
/// (for exact links) and each of its endings (for wikilinks), longest first.
pub fn keys_of(rel_path: &str) -> Vec<String> {
    let full = normalize(rel_path);
    let mut keys = vec![full.clone()];
    let mut rest = full.as_str();
    while let Some((_, tail)) = rest.split_once('/') {
        keys.push(tail.to_string());
        rest = tail;
    }
    keys
}

/// Lower case (Obsidian resolves names regardless of case), without `.md`.
fn normalize(path: &str) -> String {
    let lower = path.trim().to_lowercase();
    lower
        .strip_suffix(".md")
        .or_else(|| lower.strip_suffix(".markdown"))
        .unwrap_or(&lower)
        .to_string()
}

/// `https:`, `mailto:`, `obsidian:`...: not a path inside the folder. A
/// Windows drive (`C:\`) is not a scheme but is no note of the folder either.
fn has_scheme(dest: &str) -> bool {
    match dest.split_once(':') {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(from: &str, dest: &str, wiki: bool) -> Option<(String, bool)> {
        link_key(
            from,
            &Link {
                dest: dest.into(),
                wiki,
                offset: 0,
            },
        )
    }

    #[test]
    fn wikilinks_match_path_endings() {
        assert_eq!(
            key("a/b.md", "Garden Plan", true),
            Some(("garden plan".into(), false))
        );
        assert_eq!(
            key("a/b.md", "proj/Garden.md#Soil", true),
            Some(("proj/garden".into(), false))
        );
        assert_eq!(key("a/b.md", "#Soil", true), None);
        assert!(keys_of("Projects/Proj/Garden.md").contains(&"proj/garden".to_string()));
        assert!(keys_of("Projects/Proj/Garden.md").contains(&"garden".to_string()));
    }

    #[test]
    fn markdown_links_resolve_against_the_note_folder() {
        assert_eq!(
            key("journal/day.md", "../projects/Garden%20plan.md#soil", false),
            Some(("projects/garden plan".into(), true))
        );
        assert_eq!(
            key("journal/day.md", "./x.md", false),
            Some(("journal/x".into(), true))
        );
        assert_eq!(
            key("journal/day.md", "/top.md", false),
            Some(("top".into(), true))
        );
        assert_eq!(key("day.md", "../../etc/passwd", false), None);
        assert_eq!(key("day.md", "https://example.com/a.md", false), None);
        assert_eq!(key("day.md", "mailto:me@example.com", false), None);
        assert_eq!(key("day.md", "obsidian://open?vault=x", false), None);
    }
}
