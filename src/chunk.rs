//! Cutting a note into chunks the embedder can read whole.
//!
//! Chunks are sized in the local model's word pieces (its tokenizer ships inside
//! the binary, so chunking works before any model is downloaded). Every chunk
//! keeps its byte range, line range and heading path; the text sent to the
//! embedder is the chunk prefixed with the note's content title and heading path.
//! A chunk plus its prefix never exceeds [`MAX_EMBED_TOKENS`]: the embedder never
//! has to truncate.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use text_splitter::{ChunkConfig, MarkdownSplitter, TextSplitter};
use tokenizers::Tokenizer;

use crate::note::NoteInfo;

mod piece_spans;
mod word_pieces;
use word_pieces::WordPieceCounter;

/// Word pieces the local model reads, special tokens excluded (256 - [CLS] - [SEP]).
pub const MAX_EMBED_TOKENS: usize = 254;
/// Largest chunk body in word pieces; the rest of the budget is for the prefix.
pub const MAX_CHUNK_TOKENS: usize = 200;

/// One piece of a note.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Position in the note, from 0.
    pub seq: usize,
    /// Byte range in the note file.
    pub byte_start: usize,
    /// End of the byte range (exclusive).
    pub byte_end: usize,
    /// First line (1-based).
    pub line_start: usize,
    /// Last line (1-based, inclusive).
    pub line_end: usize,
    /// Headings in effect at the chunk start, outermost first.
    pub heading_path: Vec<String>,
    /// Page (1-based) where the chunk starts, for paged documents (PDF).
    pub page: Option<u32>,
    /// The chunk's own text (a slice of the note).
    pub body: String,
    /// The body as embedded when it differs from `body`: without template
    /// boilerplate lines ([`crate::boilerplate`]); `None`: the body as is.
    pub embed_body: Option<String>,
    /// What the embedder sees: prefix + body (or `embed_body`).
    pub embed_text: String,
    /// SHA-256 of `embed_text`: the embedding cache key.
    pub embed_hash: [u8; 32],
    /// The keyword index's terms for the body as a reader sees it (computed
    /// here, where notes are prepared in parallel, not in the write transaction).
    pub body_terms: String,
}

/// The word-piece tokenizer of all-MiniLM-L6-v2 without truncation or padding.
pub fn word_piece_tokenizer() -> &'static Tokenizer {
    static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let json = include_bytes!("../assets/minilm-tokenizer.json");
        let mut tokenizer = Tokenizer::from_bytes(json).expect("bundled tokenizer.json is valid");
        // tokenizer.json hard-codes truncation and padding at 128; we size chunks
        // ourselves and must see true lengths.
        tokenizer
            .with_truncation(None)
            .expect("disabling truncation cannot fail");
        tokenizer.with_padding(None);
        tokenizer
    })
}

/// Word pieces in `text`, special tokens excluded (as the tokenizer counts
/// them, without running it on plain ASCII words).
pub fn count_word_pieces(text: &str) -> usize {
    piece_spans::piece_spans(text).len()
}

/// Chunks `text` (the whole note file). `markdown` selects the Markdown splitter.
pub fn chunk_note(text: &str, info: &NoteInfo, markdown: bool) -> Vec<Chunk> {
    let body_start = info.body_start.min(text.len());
    let body = &text[body_start..];
    // Sized from one tokenization of the body. A piece cut between words is
    // counted exactly; one cut inside a word (rare) is checked with the
    // tokenizer itself, and the note split again with it if that piece is over.
    let counter = WordPieceCounter::new(body);
    let mut pieces = split(&counter, body, body_start, info, markdown);
    let cut_inside_a_word = |offset: usize, piece: &str| {
        let before = body[..offset].chars().next_back();
        let after = body[offset + piece.len()..].chars().next();
        before.is_some_and(|c| !c.is_whitespace()) || after.is_some_and(|c| !c.is_whitespace())
    };
    if pieces.iter().any(|&(offset, piece)| {
        cut_inside_a_word(offset, piece) && count_word_pieces(piece) > MAX_CHUNK_TOKENS
    }) {
        pieces = split(word_piece_tokenizer(), body, body_start, info, markdown);
    }
    let lines = LineIndex::new(text);
    if pieces.iter().all(|(_, p)| p.trim().is_empty()) {
        // A note of front matter only is still found by its title, aliases and
        // tags: its one chunk is the front matter's text.
        return front_matter_chunks(text, info, &lines, markdown);
    }
    // A piece that is only headings says nothing the next chunk's prefix (title
    // and heading path) does not: keep it only if nothing follows.
    let last = pieces.len().saturating_sub(1);
    // A piece with no word a reader sees (a code fence split off its block, a
    // rule, an image embed) would be embedded as its prefix alone and shown as
    // an empty snippet; drop it, unless no piece has words (the note is still
    // found by its title then).
    let terms: Vec<String> = pieces
        .iter()
        .map(|(_, piece)| body_terms(piece, markdown))
        .collect();
    let any_wordy = terms.iter().any(|t| !t.is_empty());
    pieces
        .into_iter()
        .zip(terms)
        .enumerate()
        .filter(|(i, ((_, piece), terms))| {
            !piece.trim().is_empty()
                && (*i == last || !is_only_headings(piece))
                && (!terms.is_empty() || !any_wordy)
        })
        .map(|(_, piece)| piece)
        .enumerate()
        .map(|(seq, ((offset, piece), terms))| {
            let byte_start = body_start + offset;
            let heading_path = info.heading_path_at(byte_start);
            make_chunk(seq, byte_start, piece, heading_path, info, &lines, terms)
        })
        .collect()
}

/// The body cut into pieces of at most [`MAX_CHUNK_TOKENS`] as `sizer` counts.
fn split<'b, S: text_splitter::ChunkSizer>(
    sizer: S,
    body: &'b str,
    body_start: usize,
    info: &NoteInfo,
    markdown: bool,
) -> Vec<(usize, &'b str)> {
    let config = ChunkConfig::new(MAX_CHUNK_TOKENS)
        .with_sizer(sizer)
        .with_trim(true);
    if markdown {
        MarkdownSplitter::new(config).chunk_indices(body).collect()
    } else {
        let splitter = TextSplitter::new(config);
        text_sections(body, body_start, info)
            .into_iter()
            .flat_map(|range| {
                let start = range.start;
                splitter
                    .chunk_indices(&body[range])
                    .map(move |(offset, piece)| (start + offset, piece))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// Plain text cut at its known headings (converted documents know theirs), so
/// that no chunk straddles a heading and each chunk's heading path is its own.
/// A heading with no text before the next one stays with the next section.
fn text_sections(body: &str, body_start: usize, info: &NoteInfo) -> Vec<std::ops::Range<usize>> {
    let solid = |t: &str| t.chars().filter(|c| !c.is_whitespace()).count();
    let mut sections = Vec::new();
    let mut start = 0;
    let mut heading_chars = 0;
    for h in &info.headings {
        let Some(at) = h.offset.checked_sub(body_start) else {
            continue;
        };
        if at > start
            && at <= body.len()
            && body.is_char_boundary(at)
            && solid(&body[start..at]) > heading_chars
        {
            sections.push(start..at);
            start = at;
            heading_chars = 0;
        }
        heading_chars += solid(&h.text);
    }
    sections.push(start..body.len());
    sections
}

fn make_chunk(
    seq: usize,
    byte_start: usize,
    piece: &str,
    heading_path: Vec<String>,
    info: &NoteInfo,
    lines: &LineIndex,
    body_terms: String,
) -> Chunk {
    let byte_end = byte_start + piece.len();
    let prefix = embed_prefix(info.content_title.as_deref(), &heading_path);
    let embed_text = embed_text(&prefix, piece);
    let embed_hash = Sha256::digest(embed_text.as_bytes()).into();
    Chunk {
        seq,
        byte_start,
        byte_end,
        line_start: lines.line_at(byte_start),
        line_end: lines.line_at(byte_end.saturating_sub(1).max(byte_start)),
        heading_path,
        page: None,
        body: piece.to_string(),
        embed_body: None,
        embed_text,
        embed_hash,
        body_terms,
    }
}

fn front_matter_chunks(
    text: &str,
    info: &NoteInfo,
    lines: &LineIndex,
    markdown: bool,
) -> Vec<Chunk> {
    let Some(range) = info.front_matter.clone() else {
        return Vec::new();
    };
    let Some(yaml) = text.get(range.clone()) else {
        return Vec::new();
    };
    let config = ChunkConfig::new(MAX_CHUNK_TOKENS)
        .with_sizer(word_piece_tokenizer())
        .with_trim(true);
    TextSplitter::new(config)
        .chunk_indices(yaml)
        .filter(|(_, piece)| !piece.trim().is_empty())
        .enumerate()
        .map(|(seq, (offset, piece))| {
            let terms = body_terms(piece, markdown);
            make_chunk(
                seq,
                range.start + offset,
                piece,
                Vec::new(),
                info,
                lines,
                terms,
            )
        })
        .collect()
}

/// The keyword terms of a piece as a reader sees it; empty when it has no word.
pub fn body_terms(piece: &str, markdown: bool) -> String {
    crate::text::index_terms(&crate::text::reader_text(piece, markdown).text)
}

fn is_only_headings(piece: &str) -> bool {
    piece
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
}

/// The text the embedder is given for a chunk: its prefix (title and heading
/// path), a blank line, its body. The embedding cache is keyed by a hash of
/// this text, so every place that rebuilds it must use this function.
pub fn embed_text(prefix: &str, body: &str) -> String {
    if prefix.is_empty() {
        body.to_string()
    } else {
        format!("{prefix}\n\n{body}")
    }
}

/// Title and heading path joined, clipped to the word pieces left after the body.
///
/// Only content-derived text goes in: a title taken from the file name would make
/// a rename change every chunk's embedding.
fn embed_prefix(title: Option<&str>, heading_path: &[String]) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if let Some(t) = title {
        parts.push(t);
    }
    for h in heading_path {
        if parts.last() != Some(&h.as_str()) {
            parts.push(h);
        }
    }
    let prefix = parts.join(" > ");
    let budget = MAX_EMBED_TOKENS - MAX_CHUNK_TOKENS;
    if count_word_pieces(&prefix) <= budget {
        return prefix;
    }
    let Ok(encoding) = word_piece_tokenizer().encode_fast(prefix.as_str(), false) else {
        return String::new();
    };
    if encoding.len() <= budget {
        return prefix;
    }
    let cut = encoding.get_offsets()[budget - 1].1;
    prefix[..cut].to_string()
}

/// Byte offset to line number, by binary search over newline positions.
pub struct LineIndex {
    newlines: Vec<usize>,
}

impl LineIndex {
    /// Indexes the newlines of `text`.
    pub fn new(text: &str) -> Self {
        LineIndex {
            newlines: memchr_newlines(text),
        }
    }

    /// 1-based line of byte `offset`.
    pub fn line_at(&self, offset: usize) -> usize {
        self.newlines.partition_point(|&nl| nl < offset) + 1
    }
}

fn memchr_newlines(text: &str) -> Vec<usize> {
    text.bytes()
        .enumerate()
        .filter(|(_, b)| *b == b'\n')
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::parse_note;

    #[test]
    fn chunks_fit_the_model_and_keep_ranges() {
        let mut text = String::from("---\ntitle: Long note\n---\n# Intro\n");
        for i in 0..60 {
            text.push_str(&format!(
                "## Section {i}\nParagraph {i} talks about photosynthesis, chlorophyll and the Calvin cycle in some detail, sentence after sentence.\n\n"
            ));
        }
        let info = parse_note(&text, true);
        let chunks = chunk_note(&text, &info, true);
        assert!(chunks.len() > 3);
        for c in &chunks {
            assert!(count_word_pieces(&c.embed_text) <= MAX_EMBED_TOKENS);
            assert_eq!(&text[c.byte_start..c.byte_end], c.body);
            assert!(c.embed_text.starts_with("Long note > Intro"));
            assert!(c.line_start <= c.line_end);
            assert_eq!(text[..c.byte_start].matches('\n').count() + 1, c.line_start);
        }
    }

    #[test]
    fn huge_prefix_is_clipped_not_the_body() {
        let title = "word ".repeat(400);
        let text = format!("# {title}\nbody text here\n");
        let info = parse_note(&text, true);
        let chunks = chunk_note(&text, &info, true);
        for c in &chunks {
            assert!(count_word_pieces(&c.embed_text) <= MAX_EMBED_TOKENS);
            assert!(c.embed_text.ends_with(&c.body));
        }
    }

    #[test]
    fn heading_only_pieces_fold_into_the_next_chunk() {
        let body = "A sentence about cells and proteins that goes on. ".repeat(30);
        let text = format!("# A long title\n\n{body}\n");
        let info = parse_note(&text, true);
        let chunks = chunk_note(&text, &info, true);
        assert!(chunks.len() >= 2);
        assert!(chunks.iter().all(|c| !c.body.trim_start().starts_with('#')));
        assert!(chunks
            .iter()
            .all(|c| c.embed_text.starts_with("A long title")));
        let only_title = chunk_note(
            "# Just a title\n",
            &parse_note("# Just a title\n", true),
            true,
        );
        assert_eq!(only_title.len(), 1);
    }

    #[test]
    fn a_note_of_front_matter_only_has_a_chunk() {
        // Regression (issue 10): such a note could not be found by title or tag.
        let text = "---\ntitle: Reading list\ntags: [books]\n---\n";
        let chunks = chunk_note(text, &parse_note(text, true), true);
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].body.contains("Reading list") && chunks[0].body.contains("books"));
        assert_eq!(
            &text[chunks[0].byte_start..chunks[0].byte_end],
            chunks[0].body
        );
        assert_eq!(chunks[0].line_start, 2);
    }

    #[test]
    fn no_chunk_is_without_words_a_reader_sees() {
        // Seen on a real note: a long code block split at its fence left a
        // chunk of just "```go": embedded, found by meaning, shown empty.
        let mut text = String::from("# Resources\n\nIntro paragraph about resources.\n\n```go\n");
        for i in 0..80 {
            text.push_str(&format!(
                "\tresource.WithOption{i}(), // detects thing number {i}\n"
            ));
        }
        text.push_str("```\n\nAfter the code.\n");
        let info = parse_note(&text, true);
        let chunks = chunk_note(&text, &info, true);
        assert!(chunks.len() > 2);
        for c in &chunks {
            let seen = crate::text::reader_text(&c.body, true).text;
            assert!(
                !crate::text::tokens(&seen).is_empty(),
                "chunk without words: {:?}",
                c.body
            );
        }
    }

    #[test]
    fn counted_pieces_are_the_tokenizer_pieces_on_every_fixture_note() {
        // Sizing from one tokenization must cut notes exactly where sizing each
        // candidate with the tokenizer did: a different cut changes embedded
        // texts, and every changed text is embedded again.
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("md" | "txt")
                ) {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
            &mut files,
        );
        assert!(files.len() > 300);
        let mut compared = 0;
        for path in files {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let tokenized = word_piece_tokenizer().encode(text.as_str(), false).unwrap();
            assert_eq!(
                piece_spans::piece_spans(&text),
                tokenized.get_offsets(),
                "{}",
                path.display()
            );
            let markdown = path.extension().is_some_and(|e| e == "md");
            let info = parse_note(&text, markdown);
            let start = info.body_start.min(text.len());
            let body = &text[start..];
            let counted = split(WordPieceCounter::new(body), body, start, &info, markdown);
            let exact = split(word_piece_tokenizer(), body, start, &info, markdown);
            assert_eq!(counted, exact, "{}", path.display());
            compared += counted.len();
        }
        assert!(compared > 500, "{compared} pieces");
    }

    #[test]
    fn truncation_is_disabled() {
        let text = "token ".repeat(500);
        assert_eq!(count_word_pieces(&text), 500);
    }
}
