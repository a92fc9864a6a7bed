//! The text a reader sees in a note: Markdown rendered to plain text (link
//! labels, no emphasis markers, no HTML tags, no callout markers, no front
//! matter), with a map back to the source so a highlight can name its line.
//!
//! The keyword index holds the terms of this text, and snippets are cut from
//! it, so what is highlighted is what was matched.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use super::bounds::floor_char_boundary;

/// Plain text and where each piece of it came from in the source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaderText {
    /// What a reader sees; blocks are separated by newlines.
    pub text: String,
    /// Pieces of `text` in order.
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    /// Start in `text`.
    out: usize,
    /// Start in the source.
    src: usize,
    /// Length in `text`.
    len: usize,
    /// Whether the piece is a verbatim copy of the source at `src`, so that
    /// offsets inside it map one to one.
    verbatim: bool,
}

impl ReaderText {
    /// Plain text is its own reader text.
    pub fn plain(source: &str) -> ReaderText {
        ReaderText {
            text: source.to_string(),
            segments: vec![Segment {
                out: 0,
                src: 0,
                len: source.len(),
                verbatim: true,
            }],
        }
    }

    /// The source byte offset of byte `offset` of the reader text: exact
    /// inside verbatim pieces, the start of the source construct otherwise.
    /// Always a char boundary of `source`.
    pub fn source_offset(&self, source: &str, offset: usize) -> usize {
        let i = self.segments.partition_point(|s| s.out <= offset);
        let Some(seg) = i.checked_sub(1).map(|i| self.segments[i]) else {
            return 0;
        };
        let delta = if seg.verbatim {
            (offset - seg.out).min(seg.len)
        } else {
            0
        };
        floor_char_boundary(source, (seg.src + delta).min(source.len()))
    }

    fn push(&mut self, piece: &str, src: usize, verbatim: bool) {
        if piece.is_empty() {
            return;
        }
        self.segments.push(Segment {
            out: self.text.len(),
            src,
            len: piece.len(),
            verbatim,
        });
        self.text.push_str(piece);
    }

    /// Separates blocks: one newline, never at the start, never doubled.
    fn break_line(&mut self, src: usize) {
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            self.push("\n", src, false);
        }
    }

    fn space(&mut self, src: usize) {
        if !self.text.is_empty() && !self.text.ends_with([' ', '\n']) {
            self.push(" ", src, false);
        }
    }
}

/// Renders `source` (a whole note or a chunk of one) as a reader sees it.
/// `markdown` false: the text is shown as it is.
pub fn reader_text(source: &str, markdown: bool) -> ReaderText {
    if !markdown {
        return ReaderText::plain(source);
    }
    let mut out = ReaderText::default();
    // Depth of constructs whose text a reader does not see as text.
    let mut hidden = 0usize;
    // Callout markers (`> [!note]-`) to drop, as source ranges.
    let mut skip_ranges: Vec<std::ops::Range<usize>> = Vec::new();
    for (event, range) in Parser::new_ext(source, options()).into_offset_iter() {
        match event {
            Event::Start(Tag::MetadataBlock(_)) | Event::Start(Tag::Image { .. }) => hidden += 1,
            Event::End(TagEnd::MetadataBlock(_)) | Event::End(TagEnd::Image) => {
                hidden = hidden.saturating_sub(1)
            }
            Event::Start(Tag::BlockQuote(_)) => {
                out.break_line(range.start);
                if let Some(marker) = callout_marker(source, range.start) {
                    skip_ranges.push(marker);
                }
            }
            Event::Start(
                Tag::Paragraph
                | Tag::Heading { .. }
                | Tag::CodeBlock(_)
                | Tag::Item
                | Tag::TableRow
                | Tag::TableHead
                | Tag::FootnoteDefinition(_)
                | Tag::DefinitionListTitle
                | Tag::DefinitionListDefinition,
            )
            | Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::CodeBlock
                | TagEnd::Item
                | TagEnd::TableRow
                | TagEnd::TableHead
                | TagEnd::BlockQuote(_)
                | TagEnd::FootnoteDefinition
                | TagEnd::DefinitionListTitle
                | TagEnd::DefinitionListDefinition,
            )
            | Event::Rule
            | Event::HardBreak => out.break_line(range.start),
            Event::End(TagEnd::TableCell) | Event::SoftBreak => out.space(range.start),
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t)
                if hidden == 0 =>
            {
                // Text that starts inside a callout marker keeps only what
                // follows the marker (the callout's title).
                let mut start = range.start;
                let mut text: &str = &t;
                if let Some(marker) = skip_ranges.iter().find(|r| r.contains(&range.start)) {
                    let cut = marker.end.min(range.end) - range.start;
                    match source.get(range.start..range.end) {
                        Some(span) if span == text && text.is_char_boundary(cut) => {
                            text = text[cut..].trim_start();
                            start = range.end - text.len();
                        }
                        _ => continue,
                    }
                }
                push_source_text(&mut out, source, text, start, range.end);
            }
            Event::Html(html) if hidden == 0 => {
                let text = strip_tags(&html);
                if !text.trim().is_empty() {
                    out.break_line(range.start);
                    out.push(text.trim(), range.start, false);
                    out.break_line(range.start);
                }
            }
            _ => {}
        }
    }
    if out.text.ends_with('\n') {
        out.text.pop();
        if let Some(last) = out.segments.last_mut() {
            last.len = last.len.saturating_sub(1);
        }
    }
    out
}

/// Parser options for notes: CommonMark plus what note apps write (tables,
/// task lists, footnotes, strikethrough, Obsidian wikilinks, front matter).
pub fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_WIKILINKS
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS
        | Options::ENABLE_MATH
}

/// Appends `text`, mapped to the source: verbatim when the source holds it as
/// is (most text), else as one piece at the construct's start (entities,
/// escapes, wikilink labels).
fn push_source_text(out: &mut ReaderText, source: &str, text: &str, start: usize, end: usize) {
    let end = end.min(source.len());
    let span = source.get(start..end).unwrap_or("");
    // Most text events are their source span verbatim: no substring search.
    let at = if span.starts_with(text) {
        Some(0)
    } else {
        span.find(text)
    };
    if let Some(at) = at {
        out.push(text, start + at, true);
    } else {
        out.push(text, start, false);
    }
}

/// The `[!type]` marker (with its `+`/`-` fold sign and one space) that opens
/// an Obsidian callout whose quote starts at `start`, as a source range.
fn callout_marker(source: &str, start: usize) -> Option<std::ops::Range<usize>> {
    let rest = source.get(start..)?;
    let trimmed = rest.trim_start_matches(['>', ' ', '\t']);
    let at = start + (rest.len() - trimmed.len());
    let inner = trimmed.strip_prefix("[!")?;
    let close = inner.find(']')?;
    let kind = &inner[..close];
    if kind.is_empty()
        || !kind
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    let mut end = at + 2 + close + 1;
    if source[end..].starts_with(['+', '-']) {
        end += 1;
    }
    Some(at..end)
}

/// Text of an HTML fragment without its tags, comments, scripts and styles.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        let lower = rest[..super::bounds::floor_char_boundary(rest, 7)].to_ascii_lowercase();
        let close = if rest.starts_with("<!--") {
            rest.find("-->").map(|i| i + 3)
        } else if lower.starts_with("<script") || lower.starts_with("<style") {
            let tag = if lower.starts_with("<script") {
                "</script"
            } else {
                "</style"
            };
            rest.to_ascii_lowercase()
                .find(tag)
                .and_then(|i| rest[i..].find('>').map(|j| i + j + 1))
        } else {
            rest.find('>').map(|i| i + 1)
        };
        match close {
            Some(c) => {
                out.push(' ');
                rest = &rest[c..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(md: &str) -> String {
        reader_text(md, true).text
    }

    #[test]
    fn markup_is_dropped_and_labels_kept() {
        // Regression (issue 10): snippets showed `**Restore**` and raw wikilinks.
        assert_eq!(
            seen("**Restore** from [[#Use cloud-based services|external hosting platform]]."),
            "Restore from external hosting platform."
        );
        assert_eq!(
            seen("See [the docs](https://example.com/x) and `code`."),
            "See the docs and code."
        );
        assert_eq!(
            seen("a <b>bold</b> <span class=\"x\">word</span>"),
            "a bold word"
        );
        assert_eq!(
            seen("[[Some note]] and ![[image.png]] end"),
            "Some note and  end"
        );
    }

    #[test]
    fn blocks_become_lines_and_callouts_lose_their_marker() {
        let md = "---\ntitle: x\n---\n# Head\n\n> [!note]- Careful\n> body text\n\n- one\n- two\n";
        assert_eq!(seen(md), "Head\nCareful body text\none\ntwo");
    }

    #[test]
    fn html_blocks_lose_scripts_and_tags() {
        let md = "<div>\n<script>alert(1)</script>\n<p>Shown text</p>\n</div>\n";
        let text = seen(md);
        assert!(text.contains("Shown text"), "{text}");
        assert!(!text.contains("alert") && !text.contains('<'), "{text}");
    }

    #[test]
    fn offsets_map_back_to_the_source() {
        let md = "# Title\n\nSome **bold** words\nand a [link](http://x) here.\n";
        let r = reader_text(md, true);
        for word in ["bold", "words", "link", "here"] {
            let at = r.text.find(word).unwrap();
            let src = r.source_offset(md, at);
            assert_eq!(&md[src..src + word.len()], word);
        }
    }
}
