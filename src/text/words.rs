//! The one rule for "does this word match": every word the keyword index
//! holds, every query term, every highlight, the coverage of a query by a
//! chunk and the line "open at line" jumps to come from [`tokens`] and
//! [`term_of`]. Nothing else in Sift decides what a word is.
//!
//! A word is a run of letters, digits and combining marks. Its term is the
//! word lower-cased, with compatibility forms and diacritics folded (`Café`,
//! `café`, `ｃａｆｅ` all give `cafe`) and the Porter stem taken
//! (`notes` → `note`, `running` → `run`). Chinese, Japanese and Korean runs
//! have no spaces between words, so they are indexed as overlapping pairs of
//! characters (Lucene's CJK bigrams) plus single characters; a query run is
//! matched as the phrase of its pairs.
//!
//! Every span comes from `char_indices`, so it is on char boundaries by
//! construction, whatever the input.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// One word (or CJK character pair) of a text: its byte span and its term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Start byte (a char boundary).
    pub start: usize,
    /// End byte, exclusive (a char boundary).
    pub end: usize,
    /// The normalised term the keyword index holds for it.
    pub term: String,
    /// Whether the token is one character of a longer CJK run (indexed so a
    /// one-character query finds it; never part of a multi-character query).
    pub cjk_single: bool,
}

/// Longest term kept, in bytes: longer "words" (base64, hashes, minified
/// code) are cut so one cannot bloat the index. Cut on a char boundary.
const MAX_TERM_BYTES: usize = 64;

/// The words of `text`, in order, with CJK runs as character pairs followed by
/// their single characters.
pub fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    each_token_starting(text, |_, _| true, &mut |start, end, term, cjk_single| {
        out.push(Token {
            start,
            end,
            term: term.to_string(),
            cjk_single,
        })
    });
    out
}

/// Calls `visit(start, end, term, cjk_single)` for each token of `text` (the
/// tokens of [`tokens`], in order) whose term may start as `may_start(first,
/// second)` accepts, given an ASCII word's first two characters lower-cased
/// (`second` is 0 for a one-character word); the term sits in a buffer reused
/// from word to word, so matching a chunk's words allocates nothing per word.
/// Words refused are never folded or stemmed. Sound because an ASCII word's
/// term starts with the word's first character lower-cased, and its second
/// character is the word's second, or `i` where the word's was `y` (`dying`
/// -> `di`), or it has none (`ies` -> `i`): folding keeps ASCII letters and
/// digits, and the Porter stemmer only rewrites a word's ending (both
/// checked by property tests). Words with other characters take the full
/// path. A page's snippets match ten chunks' words against a few query
/// terms: most words start with two letters no query term starts with, and
/// the stem look-up they are spared was the largest cost of a snippet.
pub fn each_token_starting(
    text: &str,
    may_start: impl Fn(u8, u8) -> bool,
    visit: &mut impl FnMut(usize, usize, &str, bool),
) {
    let mut term = String::new();
    each_word(text, &mut |start, end, cjk_single| {
        let word = &text[start..end];
        if word.is_ascii() {
            let bytes = word.as_bytes();
            let first = bytes[0].to_ascii_lowercase();
            let second = bytes.get(1).map_or(0, u8::to_ascii_lowercase);
            if !may_start(first, second) {
                return;
            }
        }
        term.clear();
        push_term(word, &mut term);
        if !term.is_empty() {
            visit(start, end, &term, cjk_single);
        }
    });
}

/// Calls `emit(start, end, cjk_single)` for each word of `text` as [`tokens`]
/// gives them (words whose term is empty included).
fn each_word(text: &str, emit: &mut impl FnMut(usize, usize, bool)) {
    let mut run: Vec<(usize, char)> = Vec::new();
    let mut run_cjk = false;
    for (i, c) in text.char_indices() {
        // ASCII (most text) needs no Unicode table look-up.
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() {
                if run_cjk && !run.is_empty() {
                    flush(&run, run_cjk, emit);
                    run.clear();
                }
                run_cjk = false;
                run.push((i, c));
            } else if !run.is_empty() {
                flush(&run, run_cjk, emit);
                run.clear();
            }
            continue;
        }
        if is_word_char(c) {
            let cjk = is_cjk(c);
            // A combining mark belongs to whatever run it follows.
            let cjk = if is_combining_mark(c) && !run.is_empty() {
                run_cjk
            } else {
                cjk
            };
            if !run.is_empty() && cjk != run_cjk {
                flush(&run, run_cjk, emit);
                run.clear();
            }
            run_cjk = cjk;
            run.push((i, c));
        } else if !run.is_empty() {
            flush(&run, run_cjk, emit);
            run.clear();
        }
    }
    if !run.is_empty() {
        flush(&run, run_cjk, emit);
    }
}

fn flush(run: &[(usize, char)], cjk: bool, emit: &mut impl FnMut(usize, usize, bool)) {
    let start = run[0].0;
    let (last_i, last_c) = run[run.len() - 1];
    let end = last_i + last_c.len_utf8();
    if !cjk {
        emit(start, end, false);
        return;
    }
    // Characters of the run, each with its trailing combining marks.
    let chars: Vec<(usize, usize)> = run
        .iter()
        .enumerate()
        .filter(|(_, (_, c))| !is_combining_mark(*c))
        .map(|(k, &(i, _))| {
            let next = run[k + 1..]
                .iter()
                .find(|(_, c)| !is_combining_mark(*c))
                .map_or(end, |&(j, _)| j);
            (i, next)
        })
        .collect();
    if chars.len() == 1 {
        emit(chars[0].0, chars[0].1, false);
        return;
    }
    for pair in chars.windows(2) {
        emit(pair[0].0, pair[1].1, false);
    }
    for &(s, e) in &chars {
        emit(s, e, true);
    }
}

/// The term of one word: lower case, folded, stemmed. Empty if nothing of it
/// is a letter or digit.
pub fn term_of(word: &str) -> String {
    let mut term = String::new();
    push_term(word, &mut term);
    term
}

/// Appends the term of `word` ([`term_of`]) to `out`, without allocating in
/// the common case (an ASCII word whose stem is remembered).
fn push_term(word: &str, out: &mut String) {
    let start = out.len();
    if word.is_ascii() {
        out.extend(
            word.chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase()),
        );
    } else {
        out.push_str(&fold(word));
    }
    // The original Porter algorithm (what FTS5's porter tokenizer ran):
    // measured on SciFact against Snowball English, keyword nDCG@10 0.680
    // vs 0.676 and hybrid 0.716 vs 0.715.
    if out.len() > start && out[start..].chars().all(|c| c.is_ascii_alphanumeric()) {
        stem(out, start);
    }
    // Cut to the longest term kept, on a char boundary.
    let mut end = (start + MAX_TERM_BYTES).min(out.len());
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
}

/// Distinct words whose stems each thread remembers. The same few thousand
/// words come back in every note, snippet and title, and the Porter stemmer
/// (which walks graphemes) was the largest text cost of a search and a
/// visible one of indexing.
const REMEMBERED_STEMS: usize = 1 << 15;

/// Replaces the ASCII word `out[start..]` with its Porter stem, remembered
/// per thread. Words and stems of at most 8 bytes (most words) are
/// remembered as integers ([`packed`]): a look-up is one multiply and one
/// compare, where a string key cost a byte-wise hash and a `memcmp` call
/// (together the largest item of reading notes, BENCHMARKS.md issue 13
/// round 13).
fn stem(out: &mut String, start: usize) {
    use std::cell::RefCell;
    type Short = rustc_hash::FxHashMap<u64, u64>;
    type Long = rustc_hash::FxHashMap<String, String>;
    thread_local! {
        // FxHash: SipHash of these short keys cost more than half the lookup.
        static SHORT: RefCell<Short> = RefCell::new(Short::default());
        static LONG: RefCell<Long> = RefCell::new(Long::default());
    }
    let word = &out.as_bytes()[start..];
    if word.len() <= 8 {
        let key = packed(word);
        let known = SHORT.with(|stems| stems.borrow().get(&key).copied());
        if let Some(stem) = known {
            out.truncate(start);
            push_packed(out, stem);
            return;
        }
        let word = out[start..].to_string();
        let stem = porter_stemmer::stem(&word);
        out.truncate(start);
        out.push_str(&stem);
        if stem.len() <= 8 {
            SHORT.with(|stems| remember(&mut stems.borrow_mut(), key, packed(stem.as_bytes())));
        }
        return;
    }
    LONG.with(|stems| {
        let mut stems = stems.borrow_mut();
        if let Some(stem) = stems.get(&out[start..]) {
            out.truncate(start);
            out.push_str(stem);
            return;
        }
        let word = out[start..].to_string();
        let stem = porter_stemmer::stem(&word);
        out.truncate(start);
        out.push_str(&stem);
        remember(&mut stems, word, stem);
    })
}

/// Adds a word's stem to a per-thread memo of at most [`REMEMBERED_STEMS`].
fn remember<K: std::hash::Hash + Eq, V>(stems: &mut rustc_hash::FxHashMap<K, V>, word: K, stem: V) {
    if stems.len() >= REMEMBERED_STEMS {
        // Forgetting all at once keeps this simple; the common words come
        // back within a note or two.
        stems.clear();
    }
    stems.insert(word, stem);
}

/// Up to 8 bytes with no NUL as one integer (little-endian, zero-padded):
/// two such strings are equal exactly when their integers are.
pub(crate) fn packed(bytes: &[u8]) -> u64 {
    debug_assert!(bytes.len() <= 8 && !bytes.contains(&0));
    let mut b = [0u8; 8];
    b[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(b)
}

/// Appends the ASCII string [`packed`] into `value`.
fn push_packed(out: &mut String, value: u64) {
    let bytes = value.to_le_bytes();
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(8);
    // Only ASCII stems are packed here, so any prefix is valid UTF-8.
    out.push_str(std::str::from_utf8(&bytes[..len]).unwrap_or_default());
}

/// Lower case with compatibility forms and diacritics folded; only letters and
/// digits remain (the keyword index splits terms on anything else).
pub fn fold(word: &str) -> String {
    if word.is_ascii() {
        return word
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
    }
    word.nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// The text the keyword index holds for `text`: its terms joined by spaces
/// (single CJK characters included), so the index's own tokenizer, which
/// splits on ASCII spaces and punctuation only, sees exactly our terms.
pub fn index_terms(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Terms written in place: no allocation per word.
    each_word(text, &mut |start, end, _| {
        let before = out.len();
        if before > 0 {
            out.push(' ');
        }
        let at = out.len();
        push_term(&text[start..end], &mut out);
        if out.len() == at {
            out.truncate(before);
        }
    });
    out
}

/// Whether `c` can be part of a word.
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c)
}

/// Han, kana and Hangul: scripts written without spaces between words.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF      // Hangul Jamo
        | 0x3040..=0x30FF    // Hiragana, Katakana
        | 0x3130..=0x318F    // Hangul compatibility Jamo
        | 0x31F0..=0x31FF    // Katakana phonetic extensions
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xA960..=0xA97F    // Hangul Jamo extended A
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0xFF66..=0xFF9F    // half-width Katakana
        | 0x20000..=0x3FFFF  // CJK extensions B and later
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<String> {
        tokens(text).into_iter().map(|t| t.term).collect()
    }

    #[test]
    fn word_forms_share_a_term() {
        // Regression (issue 10): the old rule cut a final e/i from stems, so
        // "note", "code", "time" never matched their own forms.
        for group in [
            &["note", "notes", "Notes"][..],
            &["code", "codes"],
            &["time", "times"],
            &["pricing", "priced", "price"],
            &["observatory", "observatories"],
            &["running", "runs", "run"],
        ] {
            let first = term_of(group[0]);
            for w in group {
                assert_eq!(term_of(w), first, "{w} vs {}", group[0]);
            }
        }
        assert_ne!(term_of("note"), term_of("not"));
        assert_ne!(term_of("code"), term_of("cod"));
    }

    #[test]
    fn diacritics_width_and_case_fold() {
        assert_eq!(term_of("Café"), "cafe");
        assert_eq!(term_of("cafe\u{301}"), "cafe");
        assert_eq!(term_of("ＣＡＦＥ"), "cafe");
        assert_eq!(terms("naïve résumé"), terms("naive resume"));
    }

    #[test]
    fn unicode_whitespace_and_punctuation_separate_words() {
        let text = "a\u{a0}note\u{2003}about\u{3000}time\u{202f}x\u{2028}y";
        let got: Vec<&str> = tokens(text).iter().map(|t| &text[t.start..t.end]).collect();
        assert_eq!(got, ["a", "note", "about", "time", "x", "y"]);
        assert_eq!(terms("“quoted” words—dash"), ["quot", "word", "dash"]);
    }

    #[test]
    fn ascii_words_take_the_same_terms_as_any_other() {
        // ASCII words skip the Unicode folding: the same terms either way,
        // whatever script or mark follows them without a space.
        for (text, want) in [
            ("Running NOTES 2024", &["run", "note", "2024"][..]),
            ("abc東京Def", &["abc", "東京", "東", "京", "def"]),
            ("cafe\u{301}s caf\u{e9}s", &["cafe", "cafe"]),
            ("x-ray_scans", &["x", "rai", "scan"]),
        ] {
            assert_eq!(terms(text), want, "{text}");
        }
        for word in ["Notes", "RUNNING", "caf\u{e9}", "2024", "observatories"] {
            let folded = fold(word);
            let general = if folded.is_ascii() {
                porter_stemmer::stem(&folded)
            } else {
                folded
            };
            assert_eq!(term_of(word), general, "{word}");
        }
    }

    #[test]
    fn cjk_runs_become_pairs_and_singles() {
        let text = "我喜欢东京abc";
        let toks = tokens(text);
        let spans: Vec<&str> = toks.iter().map(|t| &text[t.start..t.end]).collect();
        assert_eq!(
            spans,
            ["我喜", "喜欢", "欢东", "东京", "我", "喜", "欢", "东", "京", "abc"]
        );
        assert!(toks[4].cjk_single && !toks[3].cjk_single);
        // A lone CJK character is a word of its own.
        assert_eq!(terms("猫"), ["猫"]);
    }

    #[test]
    fn index_terms_are_space_separated_ascii_safe() {
        assert_eq!(index_terms("Running, notes!"), "run note");
        assert_eq!(index_terms("¼ ﬁle"), "14 file");
    }

    #[test]
    fn long_words_are_cut_on_a_char_boundary() {
        let word = "é".repeat(100);
        let t = term_of(&word);
        assert!(t.len() <= MAX_TERM_BYTES);
        let word = "ж".repeat(100);
        assert!(term_of(&word).len() <= MAX_TERM_BYTES);
    }

    /// The term rule written plainly (no memo, no in-place writing).
    fn reference_term(word: &str) -> String {
        let folded = fold(word);
        let mut term = if !folded.is_empty() && folded.chars().all(|c| c.is_ascii_alphanumeric()) {
            porter_stemmer::stem(&folded)
        } else {
            folded
        };
        let mut end = MAX_TERM_BYTES.min(term.len());
        while !term.is_char_boundary(end) {
            end -= 1;
        }
        term.truncate(end);
        term
    }

    proptest::proptest! {
        #[test]
        fn terms_written_in_place_follow_the_rule(
            text in "([A-Za-z]{1,12}|[0-9]{1,4}|\\PC{1,4}|[ .,;'-]{1,2}|é{30,40}){0,30}"
        ) {
            // Twice: the second pass is served by the stem memo.
            for _ in 0..2 {
                let mut expected = Vec::new();
                each_word(&text, &mut |start, end, _| {
                    let term = reference_term(&text[start..end]);
                    if !term.is_empty() {
                        expected.push(term);
                    }
                });
                let got: Vec<String> = tokens(&text).into_iter().map(|t| t.term).collect();
                proptest::prop_assert_eq!(&got, &expected);
                proptest::prop_assert_eq!(index_terms(&text), expected.join(" "));
            }
        }

        /// What `each_token_starting` relies on to skip words unstemmed.
        #[test]
        fn an_ascii_words_term_starts_with_its_first_character(
            word in "[A-Za-z0-9]{1,70}"
        ) {
            let term = term_of(&word);
            let first = word.as_bytes()[0].to_ascii_lowercase();
            proptest::prop_assert_eq!(term.as_bytes().first(), Some(&first));
        }

        /// The rest of what it relies on: the term's second character.
        #[test]
        fn an_ascii_words_term_keeps_its_second_character_or_y_becomes_i(
            word in "[A-Za-z0-9]{1,3}([Yy](s|ed|ing)?)?|[A-Za-z0-9]{1,70}"
        ) {
            let term = term_of(&word);
            let lower = word.to_ascii_lowercase();
            match (lower.as_bytes().get(1), term.as_bytes().get(1)) {
                (Some(w), Some(t)) => proptest::prop_assert!(
                    w == t || (*w == b'y' && *t == b'i'),
                    "{} -> {}", word, term
                ),
                (None, t) => proptest::prop_assert_eq!(t, None, "{} -> {}", word, term),
                (Some(_), None) => {}
            }
        }

        /// Skipping words by their first two characters drops only ASCII
        /// words whose term starts otherwise, and changes no other token.
        #[test]
        fn tokens_starting_are_the_tokens_that_start_so(
            text in "([A-Za-z]{1,12}|[A-Za-z]y(s|ed|ing)|[0-9]{1,4}|\\PC{1,4}|[ .,;'-]{1,2}|é{1,3}){0,30}",
            starts in "[a-z0-9]{0,6}",
            seconds in "[a-z0-9]{0,6}"
        ) {
            // A word passes on its first character with any second one in
            // `seconds` (or none): the same test the term is put to.
            let allowed = |first: u8, second: u8| {
                starts.as_bytes().contains(&first)
                    && (second == 0 || seconds.as_bytes().contains(&second))
            };
            let mut got = Vec::new();
            each_token_starting(&text, allowed, &mut |s, e, term, _| {
                got.push((s, e, term.to_string()))
            });
            let expected: Vec<(usize, usize, String)> = tokens(&text)
                .into_iter()
                .filter(|t| {
                    let word = &text.as_bytes()[t.start..t.end];
                    let term = t.term.as_bytes();
                    // Which second character the word must have for its
                    // term to have this one.
                    let second = match (word.get(1), term.get(1)) {
                        (None, _) => 0,
                        (Some(w), Some(b'i')) if w.eq_ignore_ascii_case(&b'y') => b'y',
                        (Some(w), _) => w.to_ascii_lowercase(),
                    };
                    !word.is_ascii() || allowed(term[0], second)
                })
                .map(|t| (t.start, t.end, t.term))
                .collect();
            proptest::prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn the_porter_stemmer_keeps_first_characters_of_hard_words() {
        // Whole-word suffixes and y/i rewrites: the first letter stays.
        for word in [
            "ies", "sses", "ying", "yed", "y", "is", "ss", "eed", "ational", "Ying",
        ] {
            let term = term_of(word);
            assert_eq!(
                term.as_bytes()[0],
                word.as_bytes()[0].to_ascii_lowercase(),
                "{word} -> {term}"
            );
        }
    }
}
