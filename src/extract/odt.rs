//! OpenDocument text (ODT): `text:h` headings with their outline level and
//! `text:p` paragraphs of `content.xml`, the title from `meta.xml`.

use roxmltree::Node;

use super::xml::{first_text, open_zip, parse, read_part};
use super::{Extracted, TextBuilder};

const TEXT: &str = "urn:oasis:names:tc:opendocument:xmlns:text:1.0";

pub(super) fn extract(bytes: &[u8]) -> Result<Extracted, String> {
    let mut zip = open_zip(bytes, "OpenDocument text")?;
    let content =
        read_part(&mut zip, "content.xml")?.ok_or("not an OpenDocument text (no content.xml)")?;
    let meta = read_part(&mut zip, "meta.xml")?;
    let doc = parse(&content, "OpenDocument text")?;
    let mut out = TextBuilder::default();
    if let Some(title) = first_text(meta.as_deref(), "title") {
        out.title(&title);
    }
    walk(doc.root(), &mut out);
    Ok(out.finish())
}

fn is_text(node: Node<'_, '_>, local: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == local
        && node.tag_name().namespace() == Some(TEXT)
}

fn walk(node: Node<'_, '_>, out: &mut TextBuilder) {
    for child in node.children().filter(|n| n.is_element()) {
        if is_text(child, "p") || is_text(child, "h") {
            emit(child, out);
        } else {
            walk(child, out);
        }
    }
}

/// One paragraph or heading; paragraphs nested in it (notes, frames) follow it.
fn emit(block: Node<'_, '_>, out: &mut TextBuilder) {
    let mut text = String::new();
    let mut nested = Vec::new();
    inline_text(block, &mut text, &mut nested);
    if is_text(block, "h") {
        let level = block
            .attribute((TEXT, "outline-level"))
            .and_then(|l| l.parse::<u8>().ok())
            .unwrap_or(1);
        out.heading(level, &text);
    } else {
        out.paragraph(&text);
    }
    for inner in nested {
        emit(inner, out);
    }
}

fn inline_text<'a, 'i>(node: Node<'a, 'i>, text: &mut String, nested: &mut Vec<Node<'a, 'i>>) {
    for child in node.children() {
        if child.is_text() {
            text.extend(child.text());
        } else if is_text(child, "p") || is_text(child, "h") {
            nested.push(child);
        } else if is_text(child, "s") || is_text(child, "tab") || is_text(child, "line-break") {
            text.push(' ');
        } else if is_text(child, "note-citation") {
            // The footnote's number: not part of the sentence.
        } else {
            inline_text(child, text, nested);
        }
    }
}
