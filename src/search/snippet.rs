//! Snippets with highlighted query terms, and the line of the first match.

use rust_stemmers::{Algorithm, Stemmer};
use serde::Serialize;

/// A piece of a snippet; `highlight` marks a query term. Shown as text, never HTML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnippetPart {
    /// The text.
    pub text: String,
    /// Whether it matched a query term.
    pub highlight: bool,
}

/// A snippet and where its first highlighted term is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// Pieces in order.
    pub parts: Vec<SnippetPart>,
    /// Byte offset in the chunk body of the first match (0 if none).
    pub first_match: usize,
    /// Byte ranges of matches inside the snippet text (joined parts).
    pub highlights: Vec<(usize, usize)>,
}

/// Target snippet length in bytes.
const SNIPPET_BYTES: usize = 240;

/// Builds a snippet of `body` around the densest cluster of words whose stems are
/// in `stems`.
pub fn make_snippet(body: &str, stems: &[String]) -> Snippet {
    let stemmer = Stemmer::create(Algorithm::English);
    let matches: Vec<(usize, usize)> = word_spans(body)
        .filter(|&(s, e)| {
            let word = body[s..e].to_lowercase();
            stems.iter().any(|st| *st == stemmer.stem(&word))
        })
        .collect();

    // Window start: the match with the most other matches within the window.
    let anchor = matches
        .iter()
        .map(|&(s, _)| {
            let count = matches
                .iter()
                .filter(|&&(m, _)| m >= s && m < s + SNIPPET_BYTES)
                .count();
            (count, std::cmp::Reverse(s))
        })
        .max()
        .map(|(_, std::cmp::Reverse(s))| s);
    let first_match = matches.first().map_or(0, |m| m.0);
    let start = match anchor {
        Some(s) => floor_boundary(body, s.saturating_sub(60)),
        None => 0,
    };
    let start = word_start(body, start);
    let end = word_end(
        body,
        floor_boundary(body, (start + SNIPPET_BYTES).min(body.len())),
    );

    let mut parts = Vec::new();
    let mut highlights = Vec::new();
    let mut text_len = 0;
    let mut push = |text: String, highlight: bool, parts: &mut Vec<SnippetPart>| {
        if text.is_empty() {
            return;
        }
        if highlight {
            highlights.push((text_len, text_len + text.len()));
        }
        text_len += text.len();
        match parts.last_mut() {
            Some(last) if !highlight && !last.highlight => last.text.push_str(&text),
            _ => parts.push(SnippetPart { text, highlight }),
        }
    };
    if start > 0 {
        push("…".into(), false, &mut parts);
    }
    let mut pos = start;
    for &(s, e) in matches.iter().filter(|&&(s, e)| s >= start && e <= end) {
        push(squash(&body[pos..s]), false, &mut parts);
        push(body[s..e].to_string(), true, &mut parts);
        pos = e;
    }
    push(squash(&body[pos..end]), false, &mut parts);
    if end < body.len() {
        push("…".into(), false, &mut parts);
    }
    Snippet {
        parts,
        first_match,
        highlights,
    }
}

/// Collapses runs of whitespace (snippets are one line) and drops Markdown
/// heading markers at line starts, which read as noise in a one-line snippet.
fn squash(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    let mut cleaned = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            cleaned.push('\n');
        }
        let trimmed = line.trim_start();
        let hashes = trimmed.len() - trimmed.trim_start_matches('#').len();
        if (1..=6).contains(&hashes) && trimmed[hashes..].starts_with(' ') {
            cleaned.push_str(&trimmed[hashes + 1..]);
        } else {
            cleaned.push_str(line);
        }
    }
    for c in cleaned.chars() {
        if c.is_whitespace() {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    out
}

fn word_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut iter = text.char_indices().peekable();
    std::iter::from_fn(move || loop {
        let (start, c) = iter.next()?;
        if !c.is_alphanumeric() {
            continue;
        }
        let mut end = start + c.len_utf8();
        while let Some(&(i, c)) = iter.peek() {
            if !c.is_alphanumeric() {
                break;
            }
            end = i + c.len_utf8();
            iter.next();
        }
        return Some((start, end));
    })
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn word_start(text: &str, i: usize) -> usize {
    if i == 0 {
        return 0;
    }
    text[i..]
        .char_indices()
        .find(|(_, c)| c.is_whitespace())
        .map_or(i, |(j, _)| i + j + 1)
        .min(text.len())
}

fn word_end(text: &str, i: usize) -> usize {
    if i >= text.len() {
        return text.len();
    }
    text[..i]
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(i, |(j, _)| j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_stemmed_matches_as_parts() {
        let stems = vec!["run".to_string()];
        let s = make_snippet("I was running late. Runs are fun.", &stems);
        let marked: Vec<&str> = s
            .parts
            .iter()
            .filter(|p| p.highlight)
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(marked, vec!["running", "Runs"]);
        assert_eq!(s.first_match, 6);
    }

    #[test]
    fn long_body_is_windowed_around_matches() {
        let body = format!(
            "{} target word here {}",
            "filler ".repeat(100),
            "tail ".repeat(100)
        );
        let s = make_snippet(&body, &["target".to_string()]);
        let text: String = s.parts.iter().map(|p| p.text.as_str()).collect();
        assert!(text.starts_with('…') && text.ends_with('…'));
        assert!(text.contains("target"));
        assert!(text.len() < 300);
    }
}
