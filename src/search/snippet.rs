//! Snippets with highlighted query terms, and the line of the first match.
//!
//! A snippet is cut from the text a reader sees (Markdown rendered to plain
//! text) and its highlights are the tokens the one word rule matches, so a
//! highlight is always a term the keyword index matched. Every offset comes
//! from the tokenizer or the boundary helpers: any UTF-8 is safe.

use serde::Serialize;

use super::terms::{joins_words, TermSet};
use crate::text::bounds::floor_char_boundary;
use crate::text::{each_token_starting, reader_text};

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
    /// Byte offset in the chunk body (the source) of the first match (0 if none).
    pub first_match: usize,
    /// Byte ranges of matches inside the snippet text (joined parts).
    pub highlights: Vec<(usize, usize)>,
}

/// Target snippet length in bytes.
const SNIPPET_BYTES: usize = 240;
/// Context kept before the densest cluster of matches.
const LEAD_BYTES: usize = 60;

/// Builds a snippet of chunk `body` around the densest cluster of query
/// terms. `markdown` renders the body as a reader sees it first.
pub fn make_snippet(body: &str, markdown: bool, terms: &TermSet) -> Snippet {
    let reader = reader_text(body, markdown);
    let text = reader.text.as_str();
    let mut found: Vec<(usize, usize, bool)> = Vec::new();
    each_token_starting(
        text,
        |first, second| terms.may_start_with(first, second),
        &mut |start, end, term, _| {
            if terms.holds(term) {
                found.push((start, end, terms.is_weak(term)));
            }
        },
    );
    let matches = merge(beside_others(text, found));

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
    let first_match = matches
        .first()
        .map_or(0, |m| reader.source_offset(body, m.0));
    let start = match anchor {
        Some(a) => word_start_after(
            text,
            floor_char_boundary(text, a.saturating_sub(LEAD_BYTES)),
            a,
        ),
        None => 0,
    };
    let end = word_end_before(
        text,
        floor_char_boundary(text, start + SNIPPET_BYTES),
        start,
    );
    // A match is shown whole or not highlighted at all.
    let end = matches
        .iter()
        .find(|&&(s, e)| s < end && e > end)
        .map_or(end, |&(_, e)| e);

    let mut out = Parts::default();
    if start > 0 {
        out.push("…", false);
    }
    let mut pos = start;
    for &(s, e) in matches.iter().filter(|&&(s, e)| s >= start && e <= end) {
        out.push(&squash(&text[pos..s]), false);
        out.push(&text[s..e], true);
        pos = e;
    }
    out.push(&squash(&text[pos..end]), false);
    if end < text.len() {
        out.push("…", false);
    }
    Snippet {
        parts: out.parts,
        first_match,
        highlights: out.highlights,
    }
}

#[derive(Default)]
struct Parts {
    parts: Vec<SnippetPart>,
    highlights: Vec<(usize, usize)>,
    len: usize,
}

impl Parts {
    fn push(&mut self, text: &str, highlight: bool) {
        if text.is_empty() {
            return;
        }
        if highlight {
            self.highlights.push((self.len, self.len + text.len()));
        }
        self.len += text.len();
        match self.parts.last_mut() {
            Some(last) if !highlight && !last.highlight => last.text.push_str(text),
            _ => self.parts.push(SnippetPart {
                text: text.to_string(),
                highlight,
            }),
        }
    }
}

/// The matches (start, end, weak) in `text` without the weak ones that
/// stand apart: a weak match is kept only in a run of matches joined into
/// one identifier ([`joins_words`]) that holds a match that is not weak
/// (`get_and_update`, not every `and`).
fn beside_others(text: &str, found: Vec<(usize, usize, bool)>) -> Vec<(usize, usize)> {
    // CJK pairs overlap (no text between): one run.
    let joined = |a: &(usize, usize, bool), b: &(usize, usize, bool)| match text.get(a.1..b.0) {
        None | Some("") => true,
        Some(between) => joins_words(between),
    };
    let mut kept = Vec::with_capacity(found.len());
    let mut run_start = 0;
    for i in 0..=found.len() {
        let run_ends = i == found.len() || (i > 0 && !joined(&found[i - 1], &found[i]));
        if run_ends && i > run_start {
            let run = &found[run_start..i];
            let strong = run.iter().any(|m| !m.2);
            kept.extend(run.iter().filter(|m| strong || !m.2).map(|m| (m.0, m.1)));
            run_start = i;
        }
    }
    kept
}

/// Sorted spans with overlaps joined (CJK character pairs overlap).
fn merge(spans: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        match out.last_mut() {
            Some(last) if s < last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Collapses runs of whitespace: a snippet is one line.
fn squash(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
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

/// The first word start in `text[from..limit]` (just after a whitespace
/// char), or `from` if the window has none: never past `limit`.
fn word_start_after(text: &str, from: usize, limit: usize) -> usize {
    if from == 0 {
        return 0;
    }
    text[from..limit]
        .char_indices()
        .find(|(_, c)| c.is_whitespace())
        .map_or(from, |(j, c)| from + j + c.len_utf8())
}

/// The last whitespace in `text[floor..to]`, or `to` if there is none: never
/// before `floor`.
fn word_end_before(text: &str, to: usize, floor: usize) -> usize {
    if to >= text.len() {
        return text.len();
    }
    text[floor..to]
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(to, |(j, _)| floor + j)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::terms::Terms;

    fn highlighted(s: &Snippet) -> Vec<&str> {
        s.parts
            .iter()
            .filter(|p| p.highlight)
            .map(|p| p.text.as_str())
            .collect()
    }

    fn snippet(body: &str, query: &str) -> Snippet {
        make_snippet(body, true, &Terms::parse(query).matcher())
    }

    #[test]
    fn highlights_every_form_of_a_query_word() {
        let s = snippet("I was running late. Runs are fun.", "run");
        assert_eq!(highlighted(&s), vec!["running", "Runs"]);
        assert_eq!(s.first_match, 6);
        // Regression (issue 10): "note", "code", "time", "pricing" were never
        // highlighted; "not" and "cod" were.
        let s = snippet(
            "A note on notes, not cod: the code, codes, time and pricing.",
            "notes code times price",
        );
        assert_eq!(
            highlighted(&s),
            vec!["note", "notes", "code", "codes", "time", "pricing"]
        );
    }

    #[test]
    fn stop_words_of_an_identifier_light_up_only_inside_it() {
        let s = snippet(
            "Notice that created_at and updated_at get set. Map.get_and_update(scores, :jake)",
            "get_and_update",
        );
        assert_eq!(
            highlighted(&s),
            vec!["updated", "get", "and", "update"],
            "{s:?}"
        );
        // A quoted phrase of stop words alone still lights up.
        let s = snippet("Tickets for the who are sold out.", "\"the who\"");
        assert_eq!(highlighted(&s), vec!["the", "who"]);
    }

    #[test]
    fn long_body_is_windowed_around_matches() {
        let body = format!(
            "{} target word here {}",
            "filler ".repeat(100),
            "tail ".repeat(100)
        );
        let s = snippet(&body, "target");
        let text: String = s.parts.iter().map(|p| p.text.as_str()).collect();
        assert!(text.starts_with('…') && text.ends_with('…'));
        assert!(text.contains("target"));
        assert!(text.len() < 300);
    }

    #[test]
    fn unicode_whitespace_before_a_match_does_not_panic() {
        // Regression (issue 10): `word_start` added one byte after a multi-byte
        // space; every one of these panicked.
        for space in [
            '\u{a0}', '\u{85}', '\u{1680}', '\u{2003}', '\u{2009}', '\u{2028}', '\u{2029}',
            '\u{202f}', '\u{205f}', '\u{3000}',
        ] {
            let body = format!("{}{space}visualize{space}notes", "word ".repeat(20));
            let s = snippet(&body, "visualize notes");
            assert_eq!(highlighted(&s), vec!["visualize", "notes"], "{space:?}");
        }
    }

    #[test]
    fn a_match_before_a_long_unbroken_run_does_not_panic() {
        // Regression (issue 10): `begin > end` with a match after a space then
        // 240+ bytes without whitespace (a URL, a Chinese paragraph).
        let body = format!("intro match {}", "x".repeat(300));
        assert_eq!(highlighted(&snippet(&body, "match")), vec!["match"]);
        let body = format!("intro match {}", "中文段落".repeat(40));
        assert_eq!(highlighted(&snippet(&body, "match")), vec!["match"]);
    }

    #[test]
    fn snippet_shows_reader_text() {
        let s = snippet(
            "**Restore** the [[#Use cloud-based services|external hosting platform]].",
            "restore hosting",
        );
        let text: String = s.parts.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(text, "Restore the external hosting platform.");
        assert_eq!(highlighted(&s), vec!["Restore", "hosting"]);
    }

    #[test]
    fn first_match_points_into_the_source() {
        let body = "# Head\n\nline two\n**bold** target here\n";
        let s = snippet(body, "target");
        assert_eq!(&body[s.first_match..s.first_match + 6], "target");
    }

    #[test]
    fn cjk_terms_highlight_inside_sentences() {
        let s = snippet("我们明天去东京都看看", "东京");
        assert_eq!(highlighted(&s), vec!["东京"]);
        let s = snippet("我们明天去东京都看看", "东京都");
        assert_eq!(highlighted(&s), vec!["东京都"]);
    }
}
