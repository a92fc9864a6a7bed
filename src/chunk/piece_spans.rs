//! Byte spans of a text's word pieces, exactly as the bundled tokenizer finds
//! them, without running the tokenizer on plain ASCII words.
//!
//! The tokenizer (BERT normaliser, pre-tokenizer, WordPiece) was the largest
//! cost of reading notes: per character Unicode table look-ups and an
//! allocation-heavy normalised string with alignments. For ASCII text the same
//! steps are simple: lower-case, split at whitespace, every punctuation mark a
//! word of its own, then WordPiece's greedy longest match against the
//! vocabulary. Nothing in those steps looks across whitespace (normalisation is
//! per character, the pre-tokenizer splits there, special tokens such as
//! `[SEP]` contain none), so the text is taken one whitespace-separated segment
//! at a time: a segment of printable ASCII without a special token is done here,
//! any other segment (accents, CJK, control characters, `[MASK]`...) is given
//! to the tokenizer itself and its spans shifted. Tests compare the result with
//! the tokenizer's on every fixture note and on arbitrary strings.

use std::sync::OnceLock;

use rustc_hash::FxHashSet;

use crate::text::words::packed;

/// The WordPiece vocabulary, split the way greedy matching asks for it.
struct Vocab {
    /// Pieces that may start a word.
    starts: FxHashSet<Box<str>>,
    /// Pieces that continue a word (stored without their `##`).
    continuations: FxHashSet<Box<str>>,
    /// `starts` and `continuations` of at most 8 bytes, packed
    /// ([`packed`]): most look-ups are of short pieces, and an integer key
    /// spares the byte-wise hash and the `memcmp` call of a string key.
    short_starts: FxHashSet<u64>,
    short_continuations: FxHashSet<u64>,
    /// Longest piece in bytes (no match can be longer).
    longest: usize,
}

/// Words longer than this (in characters) are one unknown piece
/// (`max_input_chars_per_word` of the bundled tokenizer.json).
const MAX_WORD_CHARS: usize = 100;
/// Tokens the tokenizer matches in the raw text before normalising.
const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

fn vocab() -> &'static Vocab {
    static VOCAB: OnceLock<Vocab> = OnceLock::new();
    VOCAB.get_or_init(|| {
        let mut vocab = Vocab {
            starts: FxHashSet::default(),
            continuations: FxHashSet::default(),
            short_starts: FxHashSet::default(),
            short_continuations: FxHashSet::default(),
            longest: 0,
        };
        for piece in super::word_piece_tokenizer().get_vocab(false).into_keys() {
            vocab.longest = vocab.longest.max(piece.len());
            let (set, short, piece) = match piece.strip_prefix("##") {
                Some(rest) => (
                    &mut vocab.continuations,
                    &mut vocab.short_continuations,
                    rest,
                ),
                None => (&mut vocab.starts, &mut vocab.short_starts, piece.as_str()),
            };
            if piece.len() <= 8 && !piece.contains('\0') {
                short.insert(packed(piece.as_bytes()));
            }
            set.insert(piece.into());
        }
        vocab
    })
}

/// Byte ranges of the word pieces of `text` (special tokens excluded), in order.
pub fn piece_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::with_capacity(text.len() / 4);
    let bytes = text.as_bytes();
    let mut word = Vec::with_capacity(MAX_WORD_CHARS);
    let mut at = 0;
    while at < bytes.len() {
        if is_split_space(bytes[at]) {
            at += 1;
            continue;
        }
        let end = bytes[at..]
            .iter()
            .position(|&b| is_split_space(b))
            .map_or(bytes.len(), |n| at + n);
        let segment = &text[at..end];
        if is_plain(segment) {
            plain_segment(segment.as_bytes(), at, &mut word, &mut spans);
        } else {
            tokenizer_segment(segment, at, &mut spans);
        }
        at = end;
    }
    spans
}

/// The ASCII whitespace the normaliser keeps as whitespace (other ASCII
/// control characters are deleted, so they never separate words).
fn is_split_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Printable ASCII with no special token: what [`plain_segment`] handles.
fn is_plain(segment: &str) -> bool {
    segment.bytes().all(|b| b.is_ascii_graphic())
        && (!segment.contains('[') || !SPECIAL_TOKENS.iter().any(|t| segment.contains(t)))
}

/// Pre-tokenizes and word-pieces one segment of printable ASCII at `offset`.
fn plain_segment(
    segment: &[u8],
    offset: usize,
    word: &mut Vec<u8>,
    spans: &mut Vec<(usize, usize)>,
) {
    let mut at = 0;
    while at < segment.len() {
        if segment[at].is_ascii_punctuation() {
            spans.push((offset + at, offset + at + 1));
            at += 1;
            continue;
        }
        let len = segment[at..]
            .iter()
            .position(|b| b.is_ascii_punctuation())
            .unwrap_or(segment.len() - at);
        word.clear();
        word.extend(segment[at..at + len].iter().map(u8::to_ascii_lowercase));
        word_pieces(word, offset + at, spans);
        at += len;
    }
}

/// WordPiece on one lower-cased ASCII word at `offset`: greedy longest match,
/// the whole word one unknown piece when too long or when no piece matches.
fn word_pieces(word: &[u8], offset: usize, spans: &mut Vec<(usize, usize)>) {
    let whole = (offset, offset + word.len());
    if word.len() > MAX_WORD_CHARS {
        spans.push(whole);
        return;
    }
    let vocab = vocab();
    let first = spans.len();
    let mut start = 0;
    while start < word.len() {
        let (set, short) = if start == 0 {
            (&vocab.starts, &vocab.short_starts)
        } else {
            (&vocab.continuations, &vocab.short_continuations)
        };
        let longest = (word.len() - start).min(vocab.longest);
        // Printable ASCII (no NUL), so every byte offset is a character
        // boundary and short pieces pack.
        let found = (1..=longest).rev().find(|&n| {
            let piece = &word[start..start + n];
            if n <= 8 {
                short.contains(&packed(piece))
            } else {
                set.contains(std::str::from_utf8(piece).unwrap_or_default())
            }
        });
        let Some(n) = found else {
            spans.truncate(first);
            spans.push(whole);
            return;
        };
        spans.push((offset + start, offset + start + n));
        start += n;
    }
}

/// A segment the fast path does not handle, through the tokenizer itself.
fn tokenizer_segment(segment: &str, offset: usize, spans: &mut Vec<(usize, usize)>) {
    // `encode`, not `encode_fast`: only it tracks offsets (in bytes).
    if let Ok(encoding) = super::word_piece_tokenizer().encode(segment, false) {
        spans.extend(
            encoding
                .get_offsets()
                .iter()
                .map(|&(s, e)| (offset + s, offset + e)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tokenizer_spans(text: &str) -> Vec<(usize, usize)> {
        super::super::word_piece_tokenizer()
            .encode(text, false)
            .map(|e| e.get_offsets().to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn agrees_with_the_tokenizer_on_hard_cases() {
        for text in [
            "",
            "   \n\t ",
            "Hello, World! unaffable e-mail 3.14159 C4 don't",
            "x[MASK]y [SEP] [sep] [UN K] a[CLS]",
            "ab\x0ccd ef\x0bgh \x7f del\x01ete",
            "café naïve Ωmega 日本語 text–dash \u{a0}nbsp \u{200b}zw",
            &"a".repeat(100),
            &"a".repeat(101),
            &format!("{}!{}", "b".repeat(120), "c".repeat(3)),
            "qqqqzzzzxxxx ##ing ## #",
            "UPPER lower MiXeD ALLCAPSWORDTHATISLONG",
            "\r\n\r\nline\rbreaks\n",
        ] {
            assert_eq!(piece_spans(text), tokenizer_spans(text), "{text:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn agrees_with_the_tokenizer_on_ascii(text in "[ -~\t\n\r\x0b\x0c\x01]{0,200}") {
            prop_assert_eq!(piece_spans(&text), tokenizer_spans(&text));
        }

        #[test]
        fn agrees_with_the_tokenizer_on_words_and_specials(
            parts in proptest::collection::vec(
                prop_oneof![
                    "[a-zA-Z]{1,12}",
                    "[0-9]{1,6}",
                    "[!-/:-@\\[-`{-~]",
                    Just("[MASK]".to_string()),
                    Just("[SEP]".to_string()),
                    "[ \n\t]{1,2}",
                    "\\PC{1,3}",
                ],
                0..40,
            )
        ) {
            let text: String = parts.concat();
            prop_assert_eq!(piece_spans(&text), tokenizer_spans(&text));
        }

        #[test]
        fn agrees_with_the_tokenizer_on_any_unicode(text in "\\PC{0,120}|.{0,120}") {
            prop_assert_eq!(piece_spans(&text), tokenizer_spans(&text));
        }
    }
}
