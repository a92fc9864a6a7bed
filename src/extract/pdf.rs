//! PDF: the text layer, page by page, with `pdf-extract` (on `lopdf`).
//!
//! Chosen by measuring `pdf-extract`, `lopdf`'s own `extract_text` and
//! `pdf_oxide` on real PDFs (figures in `tests/fixtures/docs/README.md`).
//! Encrypted files open only when their user password is empty (as most
//! "protected" PDFs are); a PDF whose pages hold no text is a scan and is
//! skipped (Sift does no OCR).

use pdf_extract::{Document, Object, OutputError, PlainTextOutput};

use super::{Extracted, TextBuilder};

pub(super) fn extract(bytes: &[u8]) -> Result<Extracted, String> {
    let mut doc = Document::load_mem(bytes).map_err(|e| {
        if e.to_string().to_lowercase().contains("encrypt") {
            "encrypted PDF (needs a password)".to_string()
        } else {
            format!("not a readable PDF ({e})")
        }
    })?;
    if doc.is_encrypted() && doc.decrypt("").is_err() {
        return Err("encrypted PDF (needs a password)".into());
    }
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    if pages.is_empty() {
        return Err("not a readable PDF (no pages found)".into());
    }
    let mut out = TextBuilder::default();
    if let Some(title) = info_title(&doc) {
        out.title(&title);
    }
    let mut failed = 0;
    let mut first_error = None;
    for &number in &pages {
        out.page();
        let mut text = String::new();
        let result = {
            let mut sink = PlainTextOutput::new(&mut text);
            pdf_extract::output_doc_page(&doc, &mut sink, number)
        };
        if let Err(e) = result {
            failed += 1;
            first_error.get_or_insert_with(|| describe(&e));
        }
        for paragraph in paragraphs(&text) {
            out.paragraph(&paragraph);
        }
    }
    if failed == pages.len() {
        return Err(format!(
            "not a readable PDF ({})",
            first_error.unwrap_or_default()
        ));
    }
    if out.is_blank() {
        return Err(format!(
            "no text layer in this PDF ({} page(s) of images, a scan?); Sift does not read images",
            pages.len()
        ));
    }
    Ok(out.finish())
}

/// The page's text in paragraphs: blank lines separate them; a line ending in a
/// hyphen after a letter joins the next without a space ("distrib-" "uted").
fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        let joined_hyphen = current.strip_suffix('-').is_some_and(|rest| {
            rest.chars().next_back().is_some_and(char::is_alphabetic)
                && line.chars().next().is_some_and(char::is_lowercase)
        });
        if joined_hyphen {
            current.pop();
        } else if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(line);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The Title of the document information dictionary, if set.
fn info_title(doc: &Document) -> Option<String> {
    let info = doc.trailer.get(b"Info").ok()?;
    let info = match info {
        Object::Reference(id) => doc.get_object(*id).ok()?,
        other => other,
    };
    let title = info.as_dict().ok()?.get(b"Title").ok()?;
    let title = pdf_extract::decode_text_string(title).ok()?;
    let title = title.trim();
    (!title.is_empty() && title != "untitled").then(|| title.to_string())
}

fn describe(e: &OutputError) -> String {
    let text = e.to_string();
    text.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_join_lines_and_hyphenated_words() {
        let text = "Distrib-\nuted tracing\nworks.\n\n  Next one-\nThing\n";
        assert_eq!(
            paragraphs(text),
            vec!["Distributed tracing works.", "Next one- Thing"]
        );
    }

    #[test]
    fn garbage_is_not_a_pdf() {
        assert!(extract(b"hello")
            .unwrap_err()
            .contains("not a readable PDF"));
    }
}
