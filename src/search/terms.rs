//! Query terms: words pulled from what the user typed, used to build the FTS5
//! query and to highlight matches.

use rust_stemmers::{Algorithm, Stemmer};

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

/// A parsed query: single words and quoted phrases, lower case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Terms {
    /// Words outside quotes, stop words removed (unless nothing else remains).
    pub words: Vec<String>,
    /// Quoted phrases, each as its words.
    pub phrases: Vec<Vec<String>>,
}

impl Terms {
    /// Splits `text` into words and `"quoted phrases"`.
    pub fn parse(text: &str) -> Terms {
        let mut terms = Terms::default();
        let mut all_words = Vec::new();
        for (i, part) in text.split('"').enumerate() {
            let words = words_of(part);
            if i % 2 == 1 && words.len() > 1 {
                terms.phrases.push(words);
            } else {
                all_words.extend(words);
            }
        }
        // Single letters ("s" of "night's") carry nothing; digits may ("vitamin d" aside).
        let content: Vec<String> = all_words
            .iter()
            .filter(|w| !STOP_WORDS.contains(&w.as_str()))
            .filter(|w| w.chars().count() > 1 || w.chars().all(|c| c.is_ascii_digit()))
            .cloned()
            .collect();
        terms.words = if content.is_empty() && terms.phrases.is_empty() {
            all_words
        } else {
            content
        };
        let mut seen = std::collections::HashSet::new();
        terms.words.retain(|w| seen.insert(w.clone()));
        terms
    }

    /// Whether there is nothing to search for.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.phrases.is_empty()
    }

    /// An FTS5 MATCH expression: any word or phrase (OR); every token is quoted,
    /// so user input can never be FTS5 syntax.
    pub fn fts_query(&self) -> String {
        let mut parts: Vec<String> = self.words.iter().map(|w| quote(w)).collect();
        for phrase in &self.phrases {
            let inner: Vec<String> = phrase.iter().map(|w| quote(w)).collect();
            parts.push(inner.join(" + "));
        }
        parts.join(" OR ")
    }

    /// Word starts to look for in text, for highlighting and query coverage:
    /// the stem of every word and phrase word, less a final `i` or `e` that
    /// Porter may have written ("observatory" → "observatori", "rating" →
    /// "rate"), so that the prefix occurs in every form of the word.
    pub fn stems(&self) -> Vec<String> {
        let stemmer = Stemmer::create(Algorithm::English);
        let mut stems: Vec<String> = self
            .words
            .iter()
            .chain(self.phrases.iter().flatten())
            .map(|w| {
                let mut stem = stemmer.stem(w).into_owned();
                if stem.chars().count() > 3 && (stem.ends_with('i') || stem.ends_with('e')) {
                    stem.pop();
                }
                stem
            })
            .collect();
        stems.sort();
        stems.dedup();
        stems
    }
}

fn quote(word: &str) -> String {
    format!("\"{}\"", word.replace('"', ""))
}

/// Lower-case words (letters and digits) of `text`.
pub fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
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
    fn stems_are_prefixes_of_every_form() {
        let stems = Terms::parse("observatory ratings running").stems();
        for (stem, forms) in stems.iter().zip([
            &["observatory", "observatories"][..],
            &["rating", "rated", "rates"],
            &["running", "runs"],
        ]) {
            for form in forms {
                assert!(form.starts_with(stem.as_str()), "{stem} / {form}");
            }
        }
    }

    #[test]
    fn fts_syntax_is_neutralised() {
        let t = Terms::parse("NEAR(a b) OR col:x* \"exact phrase\"");
        let q = t.fts_query();
        assert!(q.contains("\"near\""));
        assert!(q.contains("\"exact\" + \"phrase\""));
        assert!(!q.contains('*'));
    }
}
