//! Which languages a folder's notes are in, cheaply, so that the app can say
//! when the local model (all-MiniLM-L6-v2, trained on English) will serve a
//! folder poorly and a multilingual provider would serve it better.
//!
//! A chunk counts as English when its letters are mostly Latin and enough of
//! its words are common English function words (1 in 10; English prose runs at
//! 1 in 4 to 1 in 3, Spanish or Portuguese prose near none of these words).

use rusqlite::Connection;

use crate::error::Result;

/// Chunks sampled (spread over the whole store) to judge the languages.
const SAMPLE: i64 = 2000;

const ENGLISH_WORDS: &[&str] = &[
    "the", "and", "of", "to", "is", "in", "that", "it", "for", "with", "as", "on", "are", "this",
    "be", "or", "by", "you", "your", "can", "from", "an", "was", "we", "not", "have", "if",
    "which",
];

/// Whether `text` reads as English: mostly Latin letters, and English
/// function words among its words.
pub fn looks_english(text: &str) -> bool {
    let (mut letters, mut latin) = (0usize, 0usize);
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        if c.is_ascii_alphabetic() || ('\u{c0}'..='\u{24f}').contains(&c) {
            latin += 1;
        }
    }
    if letters == 0 {
        return true;
    }
    // A Chinese or Japanese character carries about as much as a Latin word
    // of three letters: weigh them so, or a sentence of CJK text with a few
    // product names in it would pass for Latin.
    if 3 * (letters - latin) > latin {
        return false;
    }
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    if words.len() < 8 {
        return true;
    }
    let common = words
        .iter()
        .filter(|w| ENGLISH_WORDS.contains(&w.as_str()))
        .count();
    common * 10 >= words.len()
}

/// Share (0..=1) of sampled chunks that do not read as English; `None` when
/// nothing is indexed.
pub fn non_english_share(conn: &Connection) -> Result<Option<f64>> {
    let chunks: i64 = conn.query_row("SELECT count(*) FROM chunks", [], |r| r.get(0))?;
    if chunks == 0 {
        return Ok(None);
    }
    let step = (chunks / SAMPLE).max(1);
    let mut stmt = conn.prepare_cached("SELECT body FROM chunks WHERE id % ?1 = 0 LIMIT ?2")?;
    let mut rows = stmt.query([step, SAMPLE])?;
    let (mut seen, mut other) = (0usize, 0usize);
    while let Some(row) = rows.next()? {
        let body: String = row.get(0)?;
        seen += 1;
        if !looks_english(&body) {
            other += 1;
        }
    }
    Ok((seen > 0).then(|| other as f64 / seen as f64))
}

/// A hint for people when most notes are not English and the embedder is the
/// English-only local model (`embedder_id` from [`crate::embed::Embedder::id`]).
pub fn hint(conn: &Connection, embedder_id: Option<&str>) -> Result<Option<String>> {
    if !embedder_id.is_some_and(|id| id.contains("all-MiniLM-L6-v2")) {
        return Ok(None);
    }
    Ok(non_english_share(conn)?.filter(|share| *share > 0.5).map(|share| {
        format!(
            "{:.0}% of your notes are not in English, and the local model (all-MiniLM-L6-v2) only knows English: \
             search by meaning will miss much of them (keyword search works in every language). \
             A multilingual provider (e.g. OpenAI or Gemini embeddings, see Settings) would serve them better.",
            share * 100.0
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_spanish_chinese_japanese() {
        assert!(looks_english(
            "With traces, you can observe requests as they move from one service to another."
        ));
        assert!(!looks_english(
            "Con las trazas puedes observar las solicitudes mientras se mueven de un servicio a otro."
        ));
        assert!(!looks_english(
            "在 OpenTelemetry 中，Baggage 是在 Span 之间传递的上下文信息。"
        ));
        assert!(!looks_english(
            "ほとんどの言語固有のSDKは、環境からリソース情報を自動的に検出できます。"
        ));
        assert!(looks_english("ok"));
    }
}
