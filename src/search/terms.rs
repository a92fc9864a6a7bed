//! Query terms: what the user typed, cut into terms by the one word rule
//! ([`crate::text::words`]), used to build the keyword query, the coverage of
//! a chunk and its highlights.

use std::collections::HashSet;

use crate::text::words::{fold, term_of, tokens, Token};

/// Words that carry no meaning for ranking; dropped from keyword queries unless
/// the query has nothing else. Short on purpose: BM25 already discounts common words.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "did", "do", "does", "for",
    "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my",
    "of", "on", "or", "our", "so", "than", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "we", "were", "what", "when", "where", "which", "who", "why",
    "will", "with", "you", "your", "up", "out", "about", "not", "no", "all", "any", "some", "just",
    "more", "very", "would", "could", "should", "been", "get", "got", "im", "ive",
];

/// A parsed query: single terms and quoted phrases (a CJK run is a phrase of
/// its character pairs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Terms {
    /// Terms outside quotes, stop words removed (unless nothing else remains).
    pub words: Vec<String>,
    /// Phrases, each as its terms in order.
    pub phrases: Vec<Vec<String>>,
    /// Every distinct term typed, stop words included (for matching titles,
    /// where "No Collector" and "Collector" differ).
    pub all: Vec<String>,
    /// Whether the query reads as a question: it ends with a question mark
    /// or opens with a question word ("how do I…", "what fixed…").
    pub question: bool,
    /// The script the query is written in (`None` without letters).
    pub script: Option<crate::language::Script>,
    /// Whether the query is one identifier typed as such: a command-line
    /// flag (`--atomic`), a dotted, slashed or snake_case name
    /// (`Release.Namespace`, `HELM_DRIVER`), or camelCase (`toYaml`).
    pub literal: bool,
}

/// The terms of [`STOP_WORDS`] (`was` is `wa` once stemmed).
fn stop_terms() -> &'static HashSet<String> {
    static TERMS: std::sync::OnceLock<HashSet<String>> = std::sync::OnceLock::new();
    TERMS.get_or_init(|| STOP_WORDS.iter().map(|w| term_of(w)).collect())
}

/// Words that open a question.
const QUESTION_WORDS: &[&str] = &[
    "how", "what", "why", "when", "where", "which", "who", "whom", "whose", "can", "could",
    "should", "would", "is", "are", "do", "does", "did", "was", "were", "will", "has", "have",
];

impl Terms {
    /// Splits `text` into terms and `"quoted phrases"`.
    pub fn parse(text: &str) -> Terms {
        let first_word = tokens(text).first().map(|t| fold(&text[t.start..t.end]));
        let mut terms = Terms {
            all: distinct_terms(text),
            question: text.trim_end().ends_with('?')
                || first_word.is_some_and(|w| QUESTION_WORDS.contains(&w.as_str())),
            script: crate::language::dominant_script(text),
            literal: looks_literal(text),
            ..Terms::default()
        };
        let mut all_words: Vec<(String, String)> = Vec::new();
        for (i, part) in text.split('"').enumerate() {
            let quoted = i % 2 == 1;
            let groups = word_groups(part);
            if quoted {
                let phrase: Vec<String> = groups
                    .iter()
                    .flat_map(|g| g.terms.iter().cloned())
                    .collect();
                if phrase.len() > 1 {
                    terms.phrases.push(phrase);
                    continue;
                }
            }
            for mut group in groups {
                if group.terms.len() > 1 {
                    terms.phrases.push(group.terms);
                } else if let Some(term) = group.terms.pop() {
                    all_words.push((group.surface, term));
                }
            }
        }
        // Single letters ("s" of "night's") carry nothing; digits and CJK may.
        let content: Vec<String> = all_words
            .iter()
            .filter(|(surface, _)| !STOP_WORDS.contains(&surface.as_str()))
            .filter(|(surface, term)| {
                surface.chars().count() > 1
                    || term.chars().all(|c| c.is_ascii_digit())
                    || !term.is_ascii()
            })
            .map(|(_, term)| term.clone())
            .collect();
        terms.words = if content.is_empty() && terms.phrases.is_empty() {
            all_words.into_iter().map(|(_, t)| t).collect()
        } else {
            content
        };
        let mut seen = HashSet::new();
        terms.words.retain(|w| seen.insert(w.clone()));
        terms
    }

    /// Whether there is nothing to search for.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.phrases.is_empty()
    }

    /// An FTS5 MATCH expression: any term or phrase (OR); every term is quoted,
    /// so user input can never be FTS5 syntax.
    pub fn fts_query(&self) -> String {
        let mut parts: Vec<String> = self.words.iter().map(|w| quote(w)).collect();
        for phrase in &self.phrases {
            let inner: Vec<String> = phrase.iter().map(|w| quote(w)).collect();
            parts.push(inner.join(" + "));
        }
        parts.join(" OR ")
    }

    /// Every term of the query (words and phrase terms), for coverage and
    /// highlights. A stop word that is only in a phrase beside other words
    /// (`and` of `get_and_update`) is highlighted only beside another match.
    pub fn matcher(&self) -> TermSet {
        let stop = stop_terms();
        let mut weak = rustc_hash::FxHashSet::default();
        for phrase in &self.phrases {
            if phrase.iter().any(|t| !stop.contains(t)) {
                weak.extend(
                    phrase
                        .iter()
                        .filter(|t| stop.contains(*t) && !self.words.contains(t))
                        .cloned(),
                );
            }
        }
        let mut set = TermSet::new(
            self.words
                .iter()
                .chain(self.phrases.iter().flatten())
                .cloned()
                .collect(),
        );
        set.weak = weak;
        set
    }
}

impl Terms {
    /// How well `title` matches the query as a whole: the Jaccard overlap of
    /// their terms (1 when the query is the title, stop words included).
    pub fn title_match(&self, title: &str) -> f64 {
        if self.all.is_empty() {
            return 0.0;
        }
        let title = distinct_terms(title);
        let shared = title.iter().filter(|t| self.all.contains(t)).count();
        let union = self.all.len() + title.len() - shared;
        shared as f64 / union as f64
    }

    /// The highest [`Terms::title_match`] a title can reach when the text
    /// holding it (a chunk, whose indexed context holds its note's title and
    /// aliases) holds `held` of the searched terms (words and phrase words),
    /// as a function of `held`. The title may also hold every typed term
    /// that is not searched for (stop words, single letters); sharing s of
    /// the query's a terms, it matches at most s / a. Most candidates of a
    /// long query cannot reach a boost, so their titles need no reading.
    pub fn title_match_ceiling(&self) -> impl Fn(usize) -> f64 {
        let searched: HashSet<&String> = self
            .words
            .iter()
            .chain(self.phrases.iter().flatten())
            .collect();
        let unsearched = self.all.iter().filter(|t| !searched.contains(t)).count();
        let all = self.all.len().max(1) as f64;
        move |held| ((held + unsearched) as f64 / all).min(1.0)
    }
}

/// Distinct terms of `text` in order (CJK as character pairs).
pub(crate) fn distinct_terms(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    tokens(text)
        .into_iter()
        .filter(|t| !t.cjk_single)
        .map(|t| t.term)
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

/// The terms a text must hold to match a query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TermSet {
    // FxHash: a page's snippets look up every word of ten chunks.
    terms: rustc_hash::FxHashSet<String>,
    /// Bit c set when some one-character term is the ASCII byte c.
    ascii_singles: u128,
    /// The first two bytes (`first << 8 | second`) of every term that starts
    /// with two ASCII bytes, and with `y` for `i` (`dying` -> `di`).
    ascii_pairs: Vec<u16>,
    /// Terms highlighted only beside another match (see [`Terms::matcher`]).
    weak: rustc_hash::FxHashSet<String>,
}

impl TermSet {
    /// Number of distinct terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether `token` matches one of the terms.
    pub fn matches(&self, token: &Token) -> bool {
        self.holds(&token.term)
    }

    /// Whether `term` (a token's term) is one of the terms.
    pub fn holds(&self, term: &str) -> bool {
        self.terms.contains(term)
    }

    /// Whether `term` is highlighted only beside another match.
    pub fn is_weak(&self, term: &str) -> bool {
        self.weak.contains(term)
    }

    /// Whether an ASCII word whose first two characters, lower-cased, are
    /// `first` and `second` (0 for a one-character word) may have one of the
    /// terms as its term: see [`crate::text::words::each_token_starting`].
    pub fn may_start_with(&self, first: u8, second: u8) -> bool {
        first < 128
            && (self.ascii_singles & (1u128 << first) != 0
                || self
                    .ascii_pairs
                    .contains(&(u16::from(first) << 8 | u16::from(second))))
    }

    fn new(terms: rustc_hash::FxHashSet<String>) -> TermSet {
        let mut ascii_singles = 0u128;
        let mut ascii_pairs = Vec::new();
        for term in &terms {
            match *term.as_bytes() {
                [c] if c < 128 => ascii_singles |= 1u128 << c,
                [a, b, ..] if a < 128 && b < 128 => {
                    ascii_pairs.push(u16::from(a) << 8 | u16::from(b));
                    if b == b'i' {
                        ascii_pairs.push(u16::from(a) << 8 | u16::from(b'y'));
                    }
                }
                _ => {}
            }
        }
        ascii_pairs.sort_unstable();
        ascii_pairs.dedup();
        TermSet {
            terms,
            ascii_singles,
            ascii_pairs,
            weak: Default::default(),
        }
    }

    /// Share of the terms that occur in `text` (0 with no terms).
    pub fn coverage(&self, text: &str) -> f64 {
        if self.terms.is_empty() {
            return 0.0;
        }
        let found: HashSet<&str> = tokens(text)
            .iter()
            .filter_map(|t| self.terms.get(&t.term).map(String::as_str))
            .collect();
        found.len() as f64 / self.terms.len() as f64
    }
}

/// A word's term, or a CJK run's character pairs, with the folded surface form
/// of its first word (for the stop-word check: "does" and "doe" stem alike,
/// only one is a stop word).
struct WordGroup {
    surface: String,
    terms: Vec<String>,
}

/// Characters that join words into one identifier when typed between them
/// with no space (`get_and_update`, `Children.only`, `os.path`): the one word
/// rule splits them, but the user means the whole, so it is searched as the
/// phrase of its words, stop words included (`and` of `get_and_update`).
const JOINERS: &[char] = &['_', '.'];

/// Whether `between`, the text between two words, joins them into one
/// identifier: exactly one of [`JOINERS`].
pub(crate) fn joins_words(between: &str) -> bool {
    let mut chars = between.chars();
    chars.next().is_some_and(|c| JOINERS.contains(&c)) && chars.next().is_none()
}

/// The terms of `text`, grouped: each non-CJK word alone, or with the words
/// a joiner ties it to ([`JOINERS`]); each CJK run as the group of its
/// character pairs (a lone CJK character alone).
fn word_groups(text: &str) -> Vec<WordGroup> {
    let mut groups: Vec<WordGroup> = Vec::new();
    let mut last_end: Option<usize> = None;
    let mut in_cjk_run = false;
    let mut group_start = 0;
    // Inside a command-line flag (`--show-only`) hyphens join words too; in
    // prose they part them ("IL-10", "high-dose" read better as words).
    let mut in_flag = false;
    for t in tokens(text).into_iter().filter(|t| !t.cjk_single) {
        let cjk = text[t.start..t.end]
            .chars()
            .next()
            .is_some_and(crate::text::words::is_cjk);
        // Pairs of one run overlap: the next pair starts before the last ends.
        let same_run = cjk && in_cjk_run && last_end.is_some_and(|e| t.start < e);
        let joined = !cjk
            && !in_cjk_run
            && last_end.is_some_and(|e| {
                let between = &text[e..t.start];
                joins_words(between) || (in_flag && between == "-")
            });
        match groups.last_mut() {
            Some(group) if same_run => group.terms.push(t.term),
            Some(group) if joined => {
                group.terms.push(t.term);
                group.surface = fold(&text[group_start..t.end]);
            }
            _ => {
                group_start = t.start;
                in_flag = opens_flag(&text[..t.start]);
                groups.push(WordGroup {
                    surface: fold(&text[t.start..t.end]),
                    terms: vec![t.term],
                })
            }
        }
        in_cjk_run = cjk;
        last_end = Some(t.end);
    }
    groups
}

/// Whether the text before a word ends in the dashes of a command-line flag:
/// one or two, at the start or after a space.
fn opens_flag(before: &str) -> bool {
    let dashes = before.len() - before.trim_end_matches('-').len();
    (1..=2).contains(&dashes)
        && before[..before.len() - dashes]
            .chars()
            .next_back()
            .is_none_or(char::is_whitespace)
}

/// See [`Terms::literal`].
fn looks_literal(text: &str) -> bool {
    let token = text.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return false;
    }
    let flag = token.starts_with('-')
        && token
            .trim_start_matches('-')
            .starts_with(char::is_alphabetic);
    let joined = token
        .trim_matches(|c: char| !c.is_alphanumeric())
        .contains(['_', '.', '/', ':', '=']);
    let camel = token
        .chars()
        .zip(token.chars().skip(1))
        .any(|(a, b)| a.is_lowercase() && b.is_uppercase());
    flag || joined || camel
}

fn quote(word: &str) -> String {
    format!("\"{}\"", word.replace('"', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_drop_unless_alone() {
        assert_eq!(
            Terms::parse("what is the CRISPR method").words,
            vec!["crispr", "method"]
        );
        assert_eq!(Terms::parse("the who").words, vec!["the", "who"]);
    }

    #[test]
    fn questions_are_told_from_keywords() {
        assert!(Terms::parse("What fixed my insomnia").question);
        assert!(Terms::parse("sourdough starter ratio?").question);
        assert!(!Terms::parse("SQLSTATE 40P01").question);
        assert!(!Terms::parse("whatever works").question);
    }

    #[test]
    fn words_become_terms() {
        assert_eq!(
            Terms::parse("Running notes, café").words,
            vec!["run", "note", "cafe"]
        );
    }

    #[test]
    fn cjk_runs_are_phrases_of_pairs() {
        let t = Terms::parse("东京都 tower");
        assert_eq!(t.words, vec!["tower"]);
        assert_eq!(
            t.phrases,
            vec![vec!["东京".to_string(), "京都".to_string()]]
        );
        assert_eq!(Terms::parse("猫").words, vec!["猫"]);
    }

    #[test]
    fn identifiers_are_phrases_of_their_words() {
        let t = Terms::parse("get_and_update in Children.only");
        assert_eq!(t.words, Vec::<String>::new());
        assert_eq!(
            t.phrases,
            vec![
                vec!["get".to_string(), "and".to_string(), "updat".to_string()],
                vec!["children".to_string(), "onli".to_string()],
            ]
        );
        // A command-line flag is the phrase of its words; a hyphen in prose
        // parts them.
        assert_eq!(
            Terms::parse("--show-only").phrases,
            vec![vec!["show".to_string(), "onli".to_string()]]
        );
        assert_eq!(
            Terms::parse("use -o-v").phrases,
            vec![vec!["o".to_string(), "v".to_string()]]
        );
        assert_eq!(Terms::parse("high-dose").words, vec!["high", "dose"]);
        assert_eq!(Terms::parse("x --y-z").phrases.len(), 1);
        assert!(Terms::parse("a---b-c").phrases.is_empty());
        // A space or two joiners in a row part words as before.
        assert_eq!(Terms::parse("end. Start").words, vec!["end", "start"]);
        assert_eq!(Terms::parse("dots..between").words, vec!["dot", "between"]);
    }

    #[test]
    fn fts_syntax_is_neutralised() {
        let t = Terms::parse("NEAR(a b) OR col:x* \"exact phrase\"");
        let q = t.fts_query();
        assert!(q.contains("\"near\""));
        assert!(q.contains("\"exact\" + \"phrase\""));
        assert!(!q.contains('*'));
    }

    #[test]
    fn title_match_counts_stop_words() {
        let q = Terms::parse("No Collector");
        assert_eq!(q.title_match("No collector"), 1.0);
        assert_eq!(q.title_match("Collector"), 0.5);
        assert_eq!(Terms::parse("插桩").title_match("插桩"), 1.0);
        assert_eq!(Terms::parse("logging").title_match("Other"), 0.0);
    }

    #[test]
    fn no_title_matches_above_its_ceiling() {
        let titles = [
            "No collector",
            "The collector and the exporter",
            "How do I sample traces",
            "a",
            "Collector",
            "东京都 tower guide",
        ];
        for query in [
            "No Collector",
            "what is the collector exporter",
            "how do I sample traces in a collector",
            "东京都 tower",
        ] {
            let q = Terms::parse(query);
            let searched = q.matcher();
            let ceiling = q.title_match_ceiling();
            for title in titles {
                let held = distinct_terms(title)
                    .iter()
                    .filter(|t| searched.terms.contains(*t))
                    .count();
                assert!(
                    q.title_match(title) <= ceiling(held),
                    "{query} / {title}: {} > {}",
                    q.title_match(title),
                    ceiling(held)
                );
            }
        }
    }

    #[test]
    fn coverage_counts_distinct_terms() {
        let m = Terms::parse("gardening tomatoes").matcher();
        assert_eq!(m.coverage("Tomato garden notes"), 1.0);
        assert_eq!(m.coverage("the garden"), 0.5);
        assert_eq!(m.coverage("nothing"), 0.0);
    }

    proptest::proptest! {
        /// The snippet matches words it lets through the two-character
        /// filter: no word whose term is a query term may be filtered out.
        #[test]
        fn the_start_filter_keeps_every_matching_word(
            text in "([A-Za-z]{1,12}|[A-Za-z]y(s|ed|ing)|ies|[0-9]{1,4}|\\PC{1,4}|[ .,;'-]{1,2}){0,30}",
            query in "([A-Za-z]{1,12}|[A-Za-z]y(s|ed|ing)|[a-z]|\\PC{1,3}| ){0,8}",
        ) {
            // Query terms drawn from the text too, so that some match.
            let query = format!("{query} {}", text.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
            let set = Terms::parse(&query).matcher();
            let mut kept = Vec::new();
            crate::text::each_token_starting(
                &text,
                |first, second| set.may_start_with(first, second),
                &mut |start, end, term, _| {
                    if set.holds(term) {
                        kept.push((start, end));
                    }
                },
            );
            let all: Vec<(usize, usize)> = tokens(&text)
                .into_iter()
                .filter(|t| set.matches(t))
                .map(|t| (t.start, t.end))
                .collect();
            proptest::prop_assert_eq!(kept, all);
        }
    }
}
