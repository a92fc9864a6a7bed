//! Reading XML parts out of zipped office documents (DOCX, ODT), with limits:
//! a part larger than [`MAX_PART_BYTES`] when unpacked is refused (zip bombs).

use std::io::Read;

/// Largest unpacked XML part read from a document.
pub(super) const MAX_PART_BYTES: u64 = 64 * 1024 * 1024;

/// A zip archive in memory.
pub(super) type Archive<'a> = zip::ZipArchive<std::io::Cursor<&'a [u8]>>;

/// Opens `bytes` as a zip archive; `what` names the format in the reason.
pub(super) fn open_zip<'a>(bytes: &'a [u8], what: &str) -> Result<Archive<'a>, String> {
    zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a readable {what} (broken zip: {e})"))
}

/// The text of part `name`, `None` if the archive has no such part.
pub(super) fn read_part(zip: &mut Archive<'_>, name: &str) -> Result<Option<String>, String> {
    let file = match zip.by_name(name) {
        Ok(file) => file,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(format!("cannot read {name} in the document: {e}")),
    };
    let mut bytes = Vec::new();
    file.take(MAX_PART_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {name} in the document: {e}"))?;
    if bytes.len() as u64 > MAX_PART_BYTES {
        return Err(format!(
            "{name} unpacks to more than {} MiB",
            MAX_PART_BYTES / 1024 / 1024
        ));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| format!("{name} in the document is not UTF-8"))
}

/// Parses `text` as XML (no DTDs: no entity expansion tricks).
pub(super) fn parse<'a>(text: &'a str, what: &str) -> Result<roxmltree::Document<'a>, String> {
    roxmltree::Document::parse_with_options(
        text,
        roxmltree::ParsingOptions {
            allow_dtd: false,
            ..Default::default()
        },
    )
    .map_err(|e| format!("not a readable {what} (broken XML: {e})"))
}

/// The text of the first element named `local` (any namespace) in `xml`.
pub(super) fn first_text(xml: Option<&str>, local: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml?).ok()?;
    let node = doc
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == local)?;
    let text: String = node
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    let text = super::collapse(&text);
    (!text.is_empty()).then_some(text)
}
