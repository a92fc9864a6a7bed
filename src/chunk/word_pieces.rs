//! Word-piece counts of any slice of one text, from a single tokenization.
//!
//! The splitter asks for the size of many candidate chunks (binary search at
//! every semantic level); running the tokenizer on each was the largest cost of
//! reading notes. BERT's normaliser and pre-tokenizer work per character and
//! split on whitespace and punctuation, so a slice cut where the splitter cuts
//! (between words, sentences, blocks) holds exactly the word pieces of the whole
//! text that fall inside it: counting those is a binary search over offsets.
//! A slice that cuts through a word may be counted differently from its own
//! tokenization, so the pieces chosen are checked with the tokenizer afterwards
//! (see `chunk_note`).

use text_splitter::ChunkSizer;

/// Word pieces of slices of `text` (slices must borrow from `text`; any other
/// string is tokenized on its own).
pub struct WordPieceCounter<'t> {
    text: &'t str,
    /// Byte ranges of the word pieces of `text`, in order.
    spans: Vec<(usize, usize)>,
}

impl<'t> WordPieceCounter<'t> {
    /// Tokenizes `text` once.
    pub fn new(text: &'t str) -> Self {
        WordPieceCounter {
            text,
            spans: super::piece_spans::piece_spans(text),
        }
    }

    /// Word pieces overlapping `start..end` (byte offsets in `text`).
    fn count(&self, start: usize, end: usize) -> usize {
        let first = self.spans.partition_point(|&(_, e)| e <= start);
        let past = self.spans.partition_point(|&(s, _)| s < end);
        past.saturating_sub(first)
    }
}

impl ChunkSizer for WordPieceCounter<'_> {
    fn size(&self, chunk: &str) -> usize {
        let base = self.text.as_ptr() as usize;
        let at = (chunk.as_ptr() as usize).wrapping_sub(base);
        if at <= self.text.len() && chunk.len() <= self.text.len() - at {
            self.count(at, at + chunk.len())
        } else {
            super::count_word_pieces(chunk)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cut_between_words_count_as_tokenized_alone() {
        let text =
            "Photosynthesis in C4 plants: the Calvin–Benson cycle, café au lait, 日本語 text.\n\n\
                    Second paragraph with unaffable words, e-mail addresses and 3.14159 numbers.";
        let counter = WordPieceCounter::new(text);
        let cuts: Vec<usize> = text
            .char_indices()
            .filter(|(_, c)| c.is_whitespace())
            .map(|(i, _)| i)
            .chain([0, text.len()])
            .collect();
        for &a in &cuts {
            for &b in cuts.iter().filter(|&&b| b > a) {
                let slice = &text[a..b];
                assert_eq!(
                    counter.size(slice),
                    crate::chunk::count_word_pieces(slice),
                    "{slice:?}"
                );
            }
        }
        // A string that is not a slice of the text is tokenized on its own.
        assert_eq!(counter.size("two words"), 2);
    }
}
