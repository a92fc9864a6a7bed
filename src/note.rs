//! Reading a note: bytes to text (refusing binary and broken UTF-8), then title,
//! front matter, tags and the heading tree with pulldown-cmark.

use std::path::Path;

use pulldown_cmark::{Event, HeadingLevel, LinkType, Parser, Tag, TagEnd};
use sha2::{Digest, Sha256};

/// Why a file could not be read as a note. Recorded as the file's skip reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadFailure {
    /// The file disappeared between the scan and the read.
    Vanished,
    /// Skipped for a reason a person can act on.
    Skipped(String),
}

/// A note's text and its content hash.
#[derive(Debug, Clone)]
pub struct NoteText {
    /// The whole file as UTF-8.
    pub text: String,
    /// SHA-256 of the file bytes.
    pub content_hash: [u8; 32],
}

/// Reads `path` as a UTF-8 note, refusing binary content and broken UTF-8.
pub fn read_note_text(path: &Path, max_bytes: u64) -> Result<NoteText, ReadFailure> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadFailure::Vanished),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(ReadFailure::Skipped(format!("permission denied: {e}")))
        }
        Err(e) => return Err(ReadFailure::Skipped(format!("cannot read: {e}"))),
    };
    if bytes.len() as u64 > max_bytes {
        return Err(ReadFailure::Skipped(format!(
            "too large: {} bytes (limit {max_bytes} bytes)",
            bytes.len()
        )));
    }
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return Err(ReadFailure::Skipped(
            "binary file (contains NUL bytes)".into(),
        ));
    }
    let content_hash: [u8; 32] = Sha256::digest(&bytes).into();
    match String::from_utf8(bytes) {
        Ok(mut text) => {
            if text.starts_with('\u{feff}') {
                text.replace_range(..3, "");
            }
            Ok(NoteText { text, content_hash })
        }
        Err(e) => Err(ReadFailure::Skipped(format!(
            "not valid UTF-8 (first bad byte at offset {})",
            e.utf8_error().valid_up_to()
        ))),
    }
}

/// A heading in a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heading {
    /// 1 for `#`, 6 for `######`.
    pub level: u8,
    /// Heading text without markup.
    pub text: String,
    /// Byte offset where the heading starts.
    pub offset: usize,
}

/// What Sift knows about a note's content.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NoteInfo {
    /// Title from front matter, else the first H1 (None: use the file name).
    pub content_title: Option<String>,
    /// Tags from front matter and inline `#tags`, lower case, deduplicated, sorted.
    pub tags: Vec<String>,
    /// Aliases from front matter.
    pub aliases: Vec<String>,
    /// The note's own date from front matter (`date`, else `created`) as Unix seconds.
    pub date: Option<i64>,
    /// Headings in document order.
    pub headings: Vec<Heading>,
    /// Byte offset where the body starts (after front matter).
    pub body_start: usize,
    /// Byte range of the front matter's YAML, fences excluded.
    pub front_matter: Option<std::ops::Range<usize>>,
    /// Links to other notes (wikilinks, embeds, Markdown links), in order.
    pub links: Vec<crate::links::Link>,
}

impl NoteInfo {
    /// Heading path (outermost first) in effect at byte `offset`.
    pub fn heading_path_at(&self, offset: usize) -> Vec<String> {
        let mut stack: Vec<&Heading> = Vec::new();
        for h in self.headings.iter().take_while(|h| h.offset <= offset) {
            while stack.last().is_some_and(|top| top.level >= h.level) {
                stack.pop();
            }
            stack.push(h);
        }
        stack.into_iter().map(|h| h.text.clone()).collect()
    }
}

/// Display title: the content title, else the file stem.
pub fn display_title(info: &NoteInfo, rel_path: &str) -> String {
    info.content_title.clone().unwrap_or_else(|| {
        let name = rel_path.rsplit('/').next().unwrap_or(rel_path);
        name.rsplit_once('.')
            .map_or(name, |(stem, _)| stem)
            .to_string()
    })
}

/// Parses front matter, headings and tags. `markdown` false treats the text as plain.
pub fn parse_note(text: &str, markdown: bool) -> NoteInfo {
    let mut info = NoteInfo::default();
    if markdown {
        if let Some((yaml, body_start)) = split_front_matter(text) {
            info.body_start = body_start;
            let yaml_start = yaml.as_ptr() as usize - text.as_ptr() as usize;
            info.front_matter = Some(yaml_start..yaml_start + yaml.len());
            apply_front_matter(&mut info, yaml);
        }
    }
    let body = &text[info.body_start..];
    let mut tags = std::mem::take(&mut info.tags);
    if markdown {
        parse_markdown(body, info.body_start, &mut info, &mut tags);
    } else {
        collect_inline_tags(body, &mut tags);
    }
    let mut tags: Vec<String> = tags.into_iter().map(|t| t.to_lowercase()).collect();
    tags.sort();
    tags.dedup();
    info.tags = tags;
    info
}

/// Whether files with extension `ext` are read as Markdown (else plain text).
pub fn is_markdown_ext(ext: &str) -> bool {
    // Converted documents (PDF, DOCX, ...) are stored as their plain text.
    ext != "txt" && !crate::extract::is_document_ext(ext)
}

fn parse_markdown(body: &str, base: usize, info: &mut NoteInfo, tags: &mut Vec<String>) {
    let mut current: Option<(u8, usize, String)> = None;
    let mut in_code = false;
    // Inside a link or an embed: `[[#Heading|label]]` holds no tags.
    let mut in_link = 0usize;
    for (event, range) in Parser::new_ext(body, crate::text::reader::options()).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                current = Some((heading_level(level), base + range.start, String::new()))
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, offset, text)) = current.take() {
                    let text = text.trim().to_string();
                    if level == 1 && info.content_title.is_none() && !text.is_empty() {
                        info.content_title = Some(text.clone());
                    }
                    info.headings.push(Heading {
                        level,
                        text,
                        offset,
                    });
                }
            }
            Event::Start(Tag::CodeBlock(_)) => in_code = true,
            Event::End(TagEnd::CodeBlock) => in_code = false,
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                ..
            })
            | Event::Start(Tag::Image {
                link_type,
                dest_url,
                ..
            }) => {
                in_link += 1;
                if !matches!(link_type, LinkType::Email | LinkType::Autolink) {
                    info.links.push(crate::links::Link {
                        dest: dest_url.to_string(),
                        wiki: matches!(link_type, LinkType::WikiLink { .. }),
                        offset: base + range.start,
                    });
                }
            }
            Event::End(TagEnd::Link | TagEnd::Image) => in_link = in_link.saturating_sub(1),
            Event::Text(t) => {
                if let Some((_, _, text)) = current.as_mut() {
                    text.push_str(&t);
                } else if !in_code && in_link == 0 {
                    collect_inline_tags(&t, tags);
                }
            }
            Event::Code(t) => {
                if let Some((_, _, text)) = current.as_mut() {
                    text.push_str(&t);
                }
            }
            _ => {}
        }
    }
}

fn heading_level(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// Inline `#tag` (letters, digits, `_`, `-`, `/`; at least one non-digit).
fn collect_inline_tags(text: &str, tags: &mut Vec<String>) {
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices('#') {
        if i > 0 && !bytes[i - 1].is_ascii_whitespace() && bytes[i - 1] != b'(' {
            continue;
        }
        let tag: String = text[i + 1..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '/'))
            .collect();
        let tag = tag.trim_end_matches(['/', '-']);
        if !tag.is_empty() && tag.chars().any(|c| !c.is_ascii_digit()) {
            tags.push(tag.to_string());
        }
    }
}

/// Splits `---\n yaml \n---` at the very start. Returns (yaml, byte offset of body).
fn split_front_matter(text: &str) -> Option<(&str, usize)> {
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))?;
    let start = text.len() - rest.len();
    let mut offset = start;
    for line in rest.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed == "..." {
            return Some((&text[start..offset], offset + line.len()));
        }
        offset += line.len();
    }
    None
}

fn apply_front_matter(info: &mut NoteInfo, yaml: &str) {
    let Ok(value) = serde_norway::from_str::<serde_norway::Value>(yaml) else {
        return; // Broken front matter: the note is still indexed, just without it.
    };
    let get = |key: &str| value.get(key);
    // `title: 2024` is a number to YAML and a title to the person who wrote it.
    let title = get("title").and_then(|v| match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    if let Some(title) = title {
        let title = title.trim();
        if !title.is_empty() {
            info.content_title = Some(title.to_string());
        }
    }
    for key in ["tags", "tag", "keywords"] {
        info.tags.extend(string_list(get(key), &[',', ' ']));
    }
    info.tags = info
        .tags
        .iter()
        .map(|t| t.trim_start_matches('#').to_string())
        .filter(|t| !t.is_empty())
        .collect();
    for key in ["aliases", "alias"] {
        // An alias may hold spaces: only commas separate aliases in a string.
        info.aliases.extend(string_list(get(key), &[',']));
    }
    let mut seen = std::collections::HashSet::new();
    info.aliases.retain(|a| seen.insert(a.clone()));
    // The note's own date (a daily note's day, when a meeting took place),
    // not when it was last edited: that is the file's modification time.
    for key in ["date", "created"] {
        if let Some(date) = get(key).and_then(yaml_date) {
            info.date = Some(date);
            break;
        }
    }
}

fn string_list(value: Option<&serde_norway::Value>, separators: &[char]) -> Vec<String> {
    match value {
        Some(serde_norway::Value::String(s)) => s
            .split(separators)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        Some(serde_norway::Value::Sequence(items)) => items
            .iter()
            .filter_map(|v| match v {
                serde_norway::Value::String(s) => Some(s.trim().to_string()),
                serde_norway::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

fn yaml_date(value: &serde_norway::Value) -> Option<i64> {
    let s = value.as_str()?;
    crate::search::filter::parse_date(s.get(..10).unwrap_or(s)).ok()
}

/// 1-based line number of byte `offset` in `text`.
pub fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_title_tags_and_dates() {
        let text = "---\ntitle: Garden plans\ntags: [gardening, Spring]\ndate: 2024-03-01\n---\n# Ignored H1\nSome #compost text.\n";
        let info = parse_note(text, true);
        assert_eq!(info.content_title.as_deref(), Some("Garden plans"));
        assert_eq!(info.tags, vec!["compost", "gardening", "spring"]);
        assert!(info.date.is_some());
        assert_eq!(&text[info.body_start..info.body_start + 1], "#");
    }

    #[test]
    fn first_h1_is_title_and_heading_path_nests() {
        let text = "# Trip\n## Day 1\ntext\n### Lunch\nsoup\n## Day 2\nmore\n";
        let info = parse_note(text, true);
        assert_eq!(info.content_title.as_deref(), Some("Trip"));
        let at = text.find("soup").unwrap();
        assert_eq!(info.heading_path_at(at), vec!["Trip", "Day 1", "Lunch"]);
        let at = text.find("more").unwrap();
        assert_eq!(info.heading_path_at(at), vec!["Trip", "Day 2"]);
    }

    #[test]
    fn inline_tags_ignore_code_headings_and_numbers() {
        let text = "# Title\nSee #rust and #2024 and a#b.\n```\n#notatag\n```\n";
        let info = parse_note(text, true);
        assert_eq!(info.tags, vec!["rust"]);
    }

    #[test]
    fn links_and_anchors_hold_no_tags() {
        // Regression (issue 10): `[[#Use cloud-based services|...]]` gave tag `#use`.
        let text = "See [[#Use cloud-based services|hosting]], [[Note#Part]], \
                    [x](https://a.b/#frag), ![[img#ref]] and `#code`; real #tag-one here.\n";
        assert_eq!(parse_note(text, true).tags, vec!["tag-one"]);
    }

    #[test]
    fn front_matter_lists_and_strings() {
        let text = "---\naliases: My Alias, Other one\ntags: \"#a b\"\n---\nx\n";
        let info = parse_note(text, true);
        assert_eq!(info.aliases, vec!["My Alias", "Other one"]);
        assert_eq!(info.tags, vec!["a", "b"]);
        let text = "---\r\naliases:\r\n  - First\r\n  - Second alias\r\ntags:\r\n  - x/y\r\n  - 2024\r\n---\r\nbody\r\n";
        let info = parse_note(text, true);
        assert_eq!(info.aliases, vec!["First", "Second alias"]);
        assert_eq!(info.tags, vec!["2024", "x/y"]);
        assert_eq!(
            parse_note("---\ntitle: 2024\n---\nx\n", true)
                .content_title
                .as_deref(),
            Some("2024")
        );
        assert_eq!(
            &text[info.front_matter.clone().unwrap()].trim_end()[..8],
            "aliases:"
        );
    }

    #[test]
    fn title_falls_back_to_file_stem() {
        let info = parse_note("just text", false);
        assert_eq!(display_title(&info, "dir/my note.txt"), "my note");
    }
}
