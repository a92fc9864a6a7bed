//! Text out of documents that are not plain text: PDF, Word (DOCX), OpenDocument
//! text (ODT) and saved web pages (HTML).
//!
//! Each format has one file here that turns the file's bytes into [`Extracted`]:
//! the plain text a reader sees (paragraphs separated by blank lines, headings
//! on their own lines), the headings with their offsets in that text (so chunks
//! get a heading path), a title, and for PDFs where each page starts. The
//! ordinary chunking and indexing then run on that text, so keyword terms,
//! highlights and vectors follow the one word rule like any note.
//!
//! Converters parse untrusted files with third-party code, so [`extract`] runs
//! one under `catch_unwind` on a worker thread with a time budget: a panic, an
//! encrypted or scanned PDF or a broken file becomes a skip reason, and a
//! runaway conversion is abandoned (its thread is left to finish on its own)
//! and the file is skipped as "took too long". Input size is bounded by the
//! per-type limits in [`crate::config::ScanSettings`].

mod docx;
mod html;
mod odt;
mod pdf;
mod xml;

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::ScanSettings;
use crate::note::{Heading, NoteInfo, NoteText, ReadFailure};

/// Formats that need a converter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// PDF: the text layer, page by page.
    Pdf,
    /// Word 2007+ (`word/document.xml` in a zip).
    Docx,
    /// OpenDocument text (`content.xml` in a zip).
    Odt,
    /// A saved web page.
    Html,
}

impl DocKind {
    /// The converter for files with extension `ext` (lower case, no dot).
    pub fn of_ext(ext: &str) -> Option<DocKind> {
        match ext {
            "pdf" => Some(DocKind::Pdf),
            "docx" => Some(DocKind::Docx),
            "odt" => Some(DocKind::Odt),
            "html" | "htm" | "xhtml" => Some(DocKind::Html),
            _ => None,
        }
    }
}

/// Whether files with extension `ext` go through a converter (their stored text
/// is then plain text, not Markdown).
pub fn is_document_ext(ext: &str) -> bool {
    DocKind::of_ext(ext).is_some()
}

/// A document's readable text and its structure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    /// Plain text: blocks separated by blank lines; PDF pages by a form feed
    /// (`\x0c`) on its own line.
    pub text: String,
    /// The document's own title (HTML `<title>`, DOCX/ODT title property or
    /// first top-level heading, PDF Title), if any.
    pub title: Option<String>,
    /// Headings in document order, offsets into `text`.
    pub headings: Vec<Heading>,
    /// Byte offset in `text` where each page starts (PDF only; page 1 first).
    pub page_starts: Vec<usize>,
}

impl Extracted {
    /// 1-based page holding byte `offset` of `text`, for paged documents.
    pub fn page_at(&self, offset: usize) -> Option<u32> {
        (!self.page_starts.is_empty())
            .then(|| self.page_starts.partition_point(|&s| s <= offset).max(1) as u32)
    }
}

/// Builds an [`Extracted`] block by block: paragraphs, headings and page breaks.
#[derive(Debug, Default)]
pub(crate) struct TextBuilder {
    out: Extracted,
}

impl TextBuilder {
    /// Appends a paragraph (whitespace runs collapsed; nothing if empty).
    pub fn paragraph(&mut self, text: &str) {
        self.block(text);
    }

    /// Appends a heading of `level` (1 = top) on its own line.
    pub fn heading(&mut self, level: u8, text: &str) {
        if let Some(offset) = self.block(text) {
            let text = self.out.text[offset..].to_string();
            self.out.headings.push(Heading {
                level: level.clamp(1, 6),
                text,
                offset,
            });
        }
    }

    /// Starts a new page (PDF).
    pub fn page(&mut self) {
        if !self.out.page_starts.is_empty() {
            self.separate();
            self.out.text.push_str("\x0c\n\n");
        }
        let start = self.out.text.len();
        self.out.page_starts.push(start);
    }

    /// Sets the title if none is set yet.
    pub fn title(&mut self, title: &str) {
        let title = collapse(title);
        if self.out.title.is_none() && !title.is_empty() {
            self.out.title = Some(title);
        }
    }

    /// The text so far is only whitespace.
    pub fn is_blank(&self) -> bool {
        self.out.text.trim().is_empty()
    }

    /// Finishes: a document with no headings and no title takes its first
    /// top-level heading as title.
    pub fn finish(mut self) -> Extracted {
        if self.out.title.is_none() {
            if let Some(top) = self.out.headings.iter().map(|h| h.level).min() {
                let first = self.out.headings.iter().find(|h| h.level == top);
                self.out.title = first.map(|h| h.text.clone());
            }
        }
        while self.out.text.ends_with(['\n', ' ']) {
            self.out.text.pop();
        }
        self.out
    }

    fn separate(&mut self) {
        let text = &mut self.out.text;
        if !text.is_empty() && !text.ends_with("\n\n") {
            text.push_str(if text.ends_with('\n') { "\n" } else { "\n\n" });
        }
    }

    /// Appends `text` collapsed as its own block; its start offset if non-empty.
    fn block(&mut self, text: &str) -> Option<usize> {
        let text = collapse(text);
        if text.is_empty() {
            return None;
        }
        self.separate();
        let start = self.out.text.len();
        self.out.text.push_str(&text);
        Some(start)
    }
}

/// Whitespace runs (including line breaks) become one space; ends trimmed.
/// Control characters other than whitespace are dropped.
pub(crate) fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text
        .split(|c: char| c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().filter(|c| !c.is_control()));
    }
    out
}

/// A document read and converted: its text as a note, what Sift knows of it,
/// and where its pages start.
#[derive(Debug, Clone)]
pub struct Document {
    /// The extracted text (not the file's bytes) and the hash of the file.
    pub note: NoteText,
    /// Title and headings (offsets into the extracted text).
    pub info: NoteInfo,
    /// The conversion, for page numbers.
    pub extracted: Extracted,
}

/// Reads and converts `path` if its extension `ext` needs a converter (`None`
/// otherwise: read it as text). Size limit and time budget from `scan`.
pub fn read_document(
    path: &Path,
    ext: &str,
    scan: &ScanSettings,
) -> Option<Result<Document, ReadFailure>> {
    let kind = DocKind::of_ext(ext)?;
    Some(read_kind(
        path,
        kind,
        scan.max_bytes_for(ext),
        Duration::from_secs(scan.convert_seconds.max(1)),
    ))
}

fn read_kind(
    path: &Path,
    kind: DocKind,
    max_bytes: u64,
    budget: Duration,
) -> Result<Document, ReadFailure> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadFailure::Vanished),
        Err(e) => return Err(ReadFailure::Skipped(format!("cannot read: {e}"))),
    };
    if bytes.len() as u64 > max_bytes {
        return Err(ReadFailure::Skipped(format!(
            "too large: {} bytes (limit {max_bytes} bytes)",
            bytes.len()
        )));
    }
    let content_hash: [u8; 32] = Sha256::digest(&bytes).into();
    let extracted = extract(kind, bytes, budget).map_err(ReadFailure::Skipped)?;
    let info = NoteInfo {
        content_title: extracted.title.clone(),
        headings: extracted.headings.clone(),
        ..NoteInfo::default()
    };
    Ok(Document {
        note: NoteText {
            text: extracted.text.clone(),
            content_hash,
        },
        info,
        extracted,
    })
}

/// Converts `bytes` of kind `kind` with a time budget. `Err` is a skip reason
/// for people ("encrypted PDF (needs a password)", "took too long ...").
pub fn extract(kind: DocKind, bytes: Vec<u8>, budget: Duration) -> Result<Extracted, String> {
    with_budget(budget, move || convert(kind, &bytes))
}

/// Runs `work` on its own thread under `catch_unwind`, waiting at most `budget`;
/// past it the thread is abandoned (it finishes or not on its own) and the
/// caller gets a "took too long" reason.
fn with_budget<T: Send + 'static>(
    budget: Duration,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::sync_channel(1);
    let worker = std::thread::Builder::new()
        .name("sift-extract".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Err(format!("the converter failed on this file ({what})"))
                });
            // The receiver is gone if we were abandoned: nothing to do.
            let _ = tx.send(result);
        });
    if let Err(e) = worker {
        return Err(format!("could not start the converter: {e}"));
    }
    match rx.recv_timeout(budget) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "took too long to convert (over {} s); abandoned",
            budget.as_secs_f32()
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err("the converter stopped without an answer".into())
        }
    }
}

fn convert(kind: DocKind, bytes: &[u8]) -> Result<Extracted, String> {
    let out = match kind {
        DocKind::Pdf => pdf::extract(bytes)?,
        DocKind::Docx => docx::extract(bytes)?,
        DocKind::Odt => odt::extract(bytes)?,
        DocKind::Html => html::extract(bytes)?,
    };
    if out.text.trim().is_empty() && kind != DocKind::Pdf {
        return Err("no text found in this document".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_separates_blocks_and_records_headings_and_pages() {
        let mut b = TextBuilder::default();
        b.page();
        b.heading(1, "  Trip\nplans ");
        b.paragraph("Day one:\tsoup.");
        b.page();
        b.heading(2, "Lunch");
        b.paragraph("   ");
        b.paragraph("bread");
        let out = b.finish();
        assert_eq!(
            out.text,
            "Trip plans\n\nDay one: soup.\n\n\x0c\n\nLunch\n\nbread"
        );
        assert_eq!(out.title.as_deref(), Some("Trip plans"));
        assert_eq!(out.headings[1].text, "Lunch");
        assert_eq!(&out.text[out.headings[1].offset..][..5], "Lunch");
        assert_eq!(out.page_at(0), Some(1));
        assert_eq!(out.page_at(out.text.find("bread").unwrap()), Some(2));
    }

    #[test]
    fn a_runaway_conversion_is_abandoned_and_a_panic_is_a_reason() {
        let started = std::time::Instant::now();
        let slow = with_budget(Duration::from_millis(100), || {
            std::thread::sleep(Duration::from_secs(5));
            Ok(())
        });
        assert!(slow.unwrap_err().contains("took too long"));
        assert!(started.elapsed() < Duration::from_secs(2));
        let panicky: Result<(), String> = with_budget(Duration::from_secs(5), || panic!("boom"));
        assert!(panicky.unwrap_err().contains("boom"));
    }
}
