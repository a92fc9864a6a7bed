//! Token counting with tiktoken's `cl100k_base`, the encoding of OpenAI's
//! embedding models, and splitting of over-long inputs into pieces that fit.
//!
//! Remote providers that use other tokenizers (Gemini, models behind
//! OpenAI-compatible servers) are counted with `cl100k_base` too, as an
//! approximation: their limits are set with a margin for that (see each provider).

use tiktoken_rs::CoreBPE;

fn bpe() -> &'static CoreBPE {
    tiktoken_rs::cl100k_base_singleton()
}

/// Tokens `text` costs in `cl100k_base`, special-token text counted as plain text
/// (as the embeddings endpoint receives it).
pub fn count_tokens(text: &str) -> usize {
    bpe().encode_ordinary(text).len()
}

/// Cuts `text` into consecutive pieces of at most `max_tokens` tokens each.
///
/// Nothing is dropped: the pieces concatenated give `text` back. Cuts fall on
/// whitespace when there is some near the limit, and always on a character
/// boundary. A text that already fits comes back as one piece.
pub fn split_to_fit(text: &str, max_tokens: usize) -> Vec<&str> {
    let max_tokens = max_tokens.max(8);
    let mut pieces = Vec::new();
    let mut rest = text;
    loop {
        let tokens = bpe().encode_ordinary(rest);
        if tokens.len() <= max_tokens {
            pieces.push(rest);
            return pieces;
        }
        // Bytes covered by the first `max_tokens` tokens: the longest prefix that
        // can fit. Re-tokenising a prefix can differ at the cut, so verify.
        let covered = bpe()
            .decode_bytes(&tokens[..max_tokens])
            .map(|b| b.len())
            .unwrap_or(rest.len() / 2);
        let mut cut = floor_char_boundary(rest, covered);
        if let Some(ws) = rest[..cut].rfind(char::is_whitespace) {
            let after = ws + rest[ws..].chars().next().map_or(1, char::len_utf8);
            if after * 5 > cut * 4 {
                cut = after;
            }
        }
        while cut > 0 && count_tokens(&rest[..cut]) > max_tokens {
            cut = floor_char_boundary(rest, cut * 9 / 10);
        }
        if cut == 0 {
            // A single character is at most 4 bytes, so at most 4 tokens.
            cut = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_known_values() {
        assert_eq!(count_tokens(""), 0);
        assert_eq!(count_tokens("hello world"), 2);
        // Special-token text is ordinary text here, not one special token.
        assert!(count_tokens("<|endoftext|>") > 1);
    }

    #[test]
    fn short_text_is_one_piece() {
        assert_eq!(split_to_fit("a short note", 100), vec!["a short note"]);
    }

    #[test]
    fn long_text_splits_without_loss() {
        let text = "Meaning matters more than keywords. ".repeat(400)
            + "Ünïcödé ✓ 日本語のテキスト "
            + &"x".repeat(3000);
        let pieces = split_to_fit(&text, 100);
        assert!(pieces.len() > 10);
        assert_eq!(pieces.concat(), text);
        for p in &pieces {
            assert!(
                count_tokens(p) <= 100,
                "piece of {} tokens",
                count_tokens(p)
            );
            assert!(!p.is_empty());
        }
    }
}
