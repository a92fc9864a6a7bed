//! Saved web pages (HTML): the title, headings and the readable text, with
//! scripts, styles, templates, embedded SVG/MathML and navigation menus
//! dropped. html5ever's tokenizer (the browsers' tokenizing rules: entities,
//! unclosed tags, raw text in `<script>`) feeds a small sink that knows which
//! elements start a block; no tree is built.

use std::cell::RefCell;

use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

use super::{Extracted, TextBuilder};

pub(super) fn extract(bytes: &[u8]) -> Result<Extracted, String> {
    let text = decode(bytes);
    let sink = Sink::default();
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(text.as_str().into());
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let mut state = tokenizer.sink.state.into_inner();
    state.flush();
    if !state.title.trim().is_empty() {
        let title = std::mem::take(&mut state.title);
        state.out.title(&title);
    }
    Ok(state.out.finish())
}

/// The page as text: a byte order mark, else a `<meta charset>` in the first
/// kilobytes, else UTF-8 (Windows-1252 if that is not valid UTF-8).
fn decode(bytes: &[u8]) -> String {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        return encoding
            .decode_without_bom_handling(&bytes[bom..])
            .0
            .into_owned();
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).to_ascii_lowercase();
    let declared = head.find("charset=").and_then(|at| {
        let label: String = head[at + "charset=".len()..]
            .trim_start_matches(['"', '\''])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'))
            .collect();
        encoding_rs::Encoding::for_label(label.as_bytes())
    });
    match declared {
        Some(encoding) if encoding != encoding_rs::UTF_8 => {
            encoding.decode_without_bom_handling(bytes).0.into_owned()
        }
        _ => match std::str::from_utf8(bytes) {
            Ok(text) => text.to_string(),
            Err(_) => encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
        },
    }
}

#[derive(Default)]
struct Sink {
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    out: TextBuilder,
    /// Text of the block being read.
    block: String,
    /// Heading level of the block being read (0: not a heading).
    heading: u8,
    /// Depth inside elements whose content is not page text.
    hidden: usize,
    in_title: bool,
    title: String,
}

impl State {
    fn flush(&mut self) {
        let text = std::mem::take(&mut self.block);
        match self.heading {
            0 => self.out.paragraph(&text),
            level => self.out.heading(level, &text),
        }
        self.heading = 0;
    }
}

/// Elements whose content is never page text.
fn is_hidden(name: &str) -> bool {
    matches!(
        name,
        "script"
            | "style"
            | "noscript"
            | "template"
            | "svg"
            | "math"
            | "nav"
            | "iframe"
            | "object"
            | "select"
            | "button"
            | "noembed"
            | "noframes"
            | "xmp"
    )
}

/// Elements that start and end a block of text.
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "br"
            | "li"
            | "ul"
            | "ol"
            | "dl"
            | "dt"
            | "dd"
            | "tr"
            | "td"
            | "th"
            | "table"
            | "caption"
            | "section"
            | "article"
            | "main"
            | "header"
            | "footer"
            | "aside"
            | "blockquote"
            | "pre"
            | "hr"
            | "figure"
            | "figcaption"
            | "form"
            | "fieldset"
            | "legend"
            | "details"
            | "summary"
            | "address"
            | "body"
            | "html"
            | "head"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "title"
    )
}

fn heading_level(name: &str) -> u8 {
    match name {
        "h1" => 1,
        "h2" => 2,
        "h3" => 3,
        "h4" => 4,
        "h5" => 5,
        "h6" => 6,
        _ => 0,
    }
}

/// Void elements have no end tag, so they never hide anything.
fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "source"
            | "track"
            | "wbr"
    )
}

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut s = self.state.borrow_mut();
        match token {
            Token::TagToken(tag) => {
                let name: &str = &tag.name;
                let start = tag.kind == TagKind::StartTag;
                if is_hidden(name) {
                    if start && !tag.self_closing {
                        s.hidden += 1;
                    } else if !start {
                        s.hidden = s.hidden.saturating_sub(1);
                    }
                    return match (start, name) {
                        (true, "script") => TokenSinkResult::RawData(RawKind::ScriptData),
                        (
                            true,
                            "style" | "noscript" | "iframe" | "noembed" | "noframes" | "xmp",
                        ) => TokenSinkResult::RawData(RawKind::Rawtext),
                        _ => TokenSinkResult::Continue,
                    };
                }
                if s.hidden > 0 {
                    return TokenSinkResult::Continue;
                }
                if name == "title" {
                    s.in_title = start;
                    return if start {
                        TokenSinkResult::RawData(RawKind::Rcdata)
                    } else {
                        TokenSinkResult::Continue
                    };
                }
                if name == "textarea" && start {
                    return TokenSinkResult::RawData(RawKind::Rcdata);
                }
                if is_block(name) && !(is_void(name) && !start && name != "br") {
                    s.flush();
                    if start {
                        s.heading = heading_level(name);
                    }
                } else if matches!(name, "img") && start {
                    // Alt text stands in for an image, as a reader of the page hears it.
                    if let Some(alt) = tag.attrs.iter().find(|a| &*a.name.local == "alt") {
                        let alt = alt.value.to_string();
                        s.block.push(' ');
                        s.block.push_str(&alt);
                        s.block.push(' ');
                    }
                } else if matches!(name, "td" | "th" | "span" | "a") {
                    s.block.push(' ');
                }
            }
            Token::CharacterTokens(text) if s.in_title => s.title.push_str(&text),
            Token::CharacterTokens(text) if s.hidden == 0 => s.block.push_str(&text),
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_headings_text_no_scripts_or_styles() {
        let page = br#"<!doctype html><html><head><title>Garden &amp; plans</title>
            <style>p { color: red }</style><script>var x = "<p>hidden</p>";</script></head>
            <body><nav><a href="/">Home</a></nav><h1>Spring</h1><p>Sow <b>beans</b>&nbsp;early.
            <h2>Tools</h2><ul><li>spade<li>rake</ul><img alt="a rake"></body></html>"#;
        let out = extract(page).unwrap();
        assert_eq!(out.title.as_deref(), Some("Garden & plans"));
        assert_eq!(
            out.text,
            "Spring\n\nSow beans early.\n\nTools\n\nspade\n\nrake\n\na rake"
        );
        let path: Vec<_> = out
            .headings
            .iter()
            .map(|h| (h.level, h.text.as_str()))
            .collect();
        assert_eq!(path, vec![(1, "Spring"), (2, "Tools")]);
    }

    #[test]
    fn declared_legacy_charset_is_decoded() {
        let page = b"<meta charset=\"windows-1252\"><p>caf\xe9</p>";
        assert_eq!(extract(page).unwrap().text, "caf\u{e9}");
    }
}
