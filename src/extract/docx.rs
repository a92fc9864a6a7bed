//! Word documents (DOCX): paragraphs of `word/document.xml`, headings from the
//! paragraph styles ("heading 1".."heading 9" by name, whatever their
//! localised id, or an outline level), the title from `docProps/core.xml`.

use std::collections::HashMap;

use roxmltree::Node;

use super::xml::{first_text, open_zip, parse, read_part};
use super::{Extracted, TextBuilder};

const W: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";

pub(super) fn extract(bytes: &[u8]) -> Result<Extracted, String> {
    let mut zip = open_zip(bytes, "Word document")?;
    let document = read_part(&mut zip, "word/document.xml")?
        .ok_or("not a Word document (no word/document.xml)")?;
    let styles = read_part(&mut zip, "word/styles.xml")?;
    let core = read_part(&mut zip, "docProps/core.xml")?;
    let levels = styles
        .as_deref()
        .and_then(|s| roxmltree::Document::parse(s).ok())
        .map(|doc| heading_styles(&doc))
        .unwrap_or_default();

    let doc = parse(&document, "Word document")?;
    let mut out = TextBuilder::default();
    if let Some(title) = first_text(core.as_deref(), "title") {
        out.title(&title);
    }
    let body = doc
        .descendants()
        .find(|n| is_w(*n, "body"))
        .ok_or("not a Word document (no body)")?;
    walk(body, &levels, &mut out);
    Ok(out.finish())
}

fn is_w(node: Node<'_, '_>, local: &str) -> bool {
    node.is_element() && node.tag_name().name() == local && node.tag_name().namespace() == Some(W)
}

fn w_val<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    node.attribute((W, "val"))
}

/// Paragraphs in document order.
fn walk(node: Node<'_, '_>, levels: &HashMap<String, u8>, out: &mut TextBuilder) {
    for child in node.children().filter(|n| n.is_element()) {
        if is_w(child, "p") {
            emit(child, levels, out);
        } else {
            walk(child, levels, out);
        }
    }
}

/// One paragraph; paragraphs nested in it (text boxes) come after it.
fn emit(p: Node<'_, '_>, levels: &HashMap<String, u8>, out: &mut TextBuilder) {
    let mut nested = Vec::new();
    let mut text = String::new();
    paragraph_text(p, &mut text, &mut nested);
    match paragraph_level(p, levels) {
        Some(level) => out.heading(level, &text),
        None => out.paragraph(&text),
    }
    for inner in nested {
        emit(inner, levels, out);
    }
}

fn paragraph_text<'a, 'i>(node: Node<'a, 'i>, text: &mut String, nested: &mut Vec<Node<'a, 'i>>) {
    for child in node.children() {
        if is_w(child, "p") {
            nested.push(child);
        } else if is_w(child, "t") {
            text.extend(child.text());
        } else if is_w(child, "tab") || is_w(child, "br") || is_w(child, "cr") {
            text.push(' ');
        } else if is_w(child, "delText") || is_w(child, "instrText") {
            // Deleted text of tracked changes, field codes: not what a reader sees.
        } else {
            paragraph_text(child, text, nested);
        }
    }
}

/// Heading level of a paragraph: its style's, or its own outline level.
fn paragraph_level(p: Node<'_, '_>, levels: &HashMap<String, u8>) -> Option<u8> {
    let ppr = p.children().find(|n| is_w(*n, "pPr"))?;
    if let Some(level) = ppr
        .children()
        .find(|n| is_w(*n, "pStyle"))
        .and_then(w_val)
        .and_then(|id| levels.get(id).copied().or_else(|| level_from_name(id)))
    {
        return Some(level);
    }
    outline_level(ppr)
}

/// `w:outlineLvl` 0..=5 is heading 1..6 (9 is body text).
fn outline_level(ppr: Node<'_, '_>) -> Option<u8> {
    let level: u8 = ppr
        .children()
        .find(|n| is_w(*n, "outlineLvl"))
        .and_then(w_val)?
        .parse()
        .ok()?;
    (level < 6).then_some(level + 1)
}

/// "heading 2" / "Heading2" / "Title" -> level (a title counts as level 1).
fn level_from_name(name: &str) -> Option<u8> {
    let lower = name.to_ascii_lowercase();
    if lower == "title" {
        return Some(1);
    }
    let digits = lower.strip_prefix("heading")?.trim();
    let level: u8 = digits.parse().ok()?;
    (1..=9).contains(&level).then_some(level.min(6))
}

/// Paragraph style id -> heading level, from `word/styles.xml`.
fn heading_styles(styles: &roxmltree::Document<'_>) -> HashMap<String, u8> {
    let mut out = HashMap::new();
    for style in styles.descendants().filter(|n| is_w(*n, "style")) {
        let Some(id) = style.attribute((W, "styleId")) else {
            continue;
        };
        let by_name = style
            .children()
            .find(|n| is_w(*n, "name"))
            .and_then(w_val)
            .and_then(level_from_name);
        let by_outline = style
            .children()
            .find(|n| is_w(*n, "pPr"))
            .and_then(outline_level);
        if let Some(level) = by_name.or(by_outline) {
            out.insert(id.to_string(), level);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heading_names_in_any_spelling() {
        assert_eq!(level_from_name("heading 2"), Some(2));
        assert_eq!(level_from_name("Heading3"), Some(3));
        assert_eq!(level_from_name("Title"), Some(1));
        assert_eq!(level_from_name("Normal"), None);
        assert_eq!(level_from_name("Heading"), None);
    }

    #[test]
    fn not_a_zip_is_a_reason() {
        assert!(extract(b"PK\x03\x04 broken")
            .unwrap_err()
            .contains("not a readable Word document"));
    }
}
