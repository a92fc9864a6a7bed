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

/// The writing system a text is mostly in. Sift's local model knows
/// English: its similarity between texts in different scripts measures the
/// identifiers and numbers they share more than their meaning, so search
/// compares a query's script with a note's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Script {
    Latin,
    /// Chinese characters and Japanese kana.
    Han,
    Hangul,
    Cyrillic,
    Greek,
    Arabic,
    Hebrew,
    Devanagari,
    Thai,
    Other,
}

impl Script {
    /// The script of one letter.
    pub fn of(c: char) -> Script {
        match c as u32 {
            0x41..=0x5a | 0x61..=0x7a | 0xc0..=0x24f | 0x1e00..=0x1eff => Script::Latin,
            0x370..=0x3ff | 0x1f00..=0x1fff => Script::Greek,
            0x400..=0x52f => Script::Cyrillic,
            0x590..=0x5ff => Script::Hebrew,
            0x600..=0x6ff | 0x750..=0x77f => Script::Arabic,
            0x900..=0x97f => Script::Devanagari,
            0xe00..=0xe7f => Script::Thai,
            0x1100..=0x11ff | 0x3130..=0x318f | 0xac00..=0xd7af => Script::Hangul,
            0x3040..=0x30ff
            | 0x3400..=0x4dbf
            | 0x4e00..=0x9fff
            | 0xf900..=0xfaff
            | 0x20000..=0x2ffff => Script::Han,
            _ => Script::Other,
        }
    }

    /// Every script, in the order of their codes.
    const ALL: [Script; 10] = [
        Script::Latin,
        Script::Han,
        Script::Hangul,
        Script::Cyrillic,
        Script::Greek,
        Script::Arabic,
        Script::Hebrew,
        Script::Devanagari,
        Script::Thai,
        Script::Other,
    ];

    /// A stable number for storing.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// The script stored as [`Script::code`].
    pub fn from_code(code: i64) -> Option<Script> {
        usize::try_from(code)
            .ok()
            .and_then(|i| Script::ALL.get(i).copied())
    }
}

/// Letters counted by script (indexed by [`Script::code`]), Chinese, Japanese
/// and Korean characters weighing three (see [`dominant_script`]).
#[derive(Default)]
struct ScriptCounts([usize; Script::ALL.len()]);

impl ScriptCounts {
    fn add(&mut self, text: &str) {
        for c in text.chars().filter(|c| c.is_alphabetic()) {
            let script = Script::of(c);
            self.0[script.code() as usize] += match script {
                Script::Han | Script::Hangul => 3,
                _ => 1,
            };
        }
    }

    fn dominant(&self) -> Option<Script> {
        let (best, &n) = self.0.iter().enumerate().max_by_key(|(_, n)| **n)?;
        (n > 0).then(|| Script::from_code(best as i64)).flatten()
    }
}

/// The script most of `text`'s letters are in, `None` without letters. A
/// Chinese, Japanese or Korean character counts as three letters (about a
/// Latin word's worth, as [`looks_english`] weighs them), so a Chinese page
/// full of English identifiers still reads as Chinese.
pub fn dominant_script(text: &str) -> Option<Script> {
    let mut counts = ScriptCounts::default();
    counts.add(text);
    counts.dominant()
}

/// The script a note's prose is mostly in, from its chunks' text: code (fenced
/// blocks and indented lines) is left out, or a translated page whose command
/// listings and examples stayed in English would read as English.
pub fn prose_script<'a>(bodies: impl IntoIterator<Item = &'a str>) -> Option<Script> {
    let mut counts = ScriptCounts::default();
    for body in bodies {
        let mut fenced = false;
        for line in body.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                fenced = !fenced;
            } else if !fenced && !line.starts_with("    ") && !line.starts_with('\t') {
                counts.add(line);
            }
        }
    }
    counts.dominant()
}

/// The stored form of a note's script: [`Script::code`], or -1 for a note
/// without letters (NULL is left for "not read yet").
pub fn script_column(script: Option<Script>) -> i64 {
    script.map_or(-1, Script::code)
}

/// Whether the embedder knows English only (the local all-MiniLM-L6-v2):
/// its similarity across scripts says little about meaning.
pub fn english_only(embedder_id: &str) -> bool {
    embedder_id.contains("all-MiniLM-L6-v2")
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
    if !embedder_id.is_some_and(english_only) {
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

    #[test]
    fn a_translated_page_reads_as_its_prose_not_its_code() {
        // A Japanese command page: a line of prose, then the English option
        // listing the translators kept (indented, and fenced).
        let page = "release をアップグレードします\n\n    --atomic  if set, upgrade process rolls back changes made in case of failed upgrade\n    --dry-run simulate an upgrade\n\n```\n      --reuse-values   when upgrading, reuse the last release's values and merge in any overrides\n```\n";
        assert_eq!(dominant_script(page), Some(Script::Latin));
        assert_eq!(prose_script([page]), Some(Script::Han));
        assert_eq!(
            prose_script(["With traces, you can observe requests (`--atomic`)."]),
            Some(Script::Latin)
        );
        assert_eq!(prose_script(["Привет, мир"]), Some(Script::Cyrillic));
        assert_eq!(prose_script(["서비스 간 요청"]), Some(Script::Hangul));
        assert_eq!(prose_script(["12 + 30 = 42", "    let x = 1;"]), None);
        for script in Script::ALL {
            assert_eq!(Script::from_code(script.code()), Some(script));
        }
        assert_eq!(Script::from_code(script_column(None)), None);
    }
}
