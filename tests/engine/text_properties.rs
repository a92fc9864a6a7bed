//! Property tests over arbitrary Unicode (issue 10): the word rule, reader
//! text, chunking, note parsing, query terms and snippets never panic and
//! only ever produce offsets on char boundaries; a highlight is a query term
//! under the one word rule; the line of a match is the line that holds it.
//!
//! Inputs mix any char with the ones real notes are full of: Unicode spaces,
//! BOM, zero-width joiners, lone combining marks, 4-byte chars, CJK, RTL
//! text, CRLF and Markdown/Obsidian syntax. PROPTEST_CASES raises the number
//! of cases (CI runs the default 256 per property).

use proptest::prelude::*;
use sift::chunk::chunk_note;
use sift::note::parse_note;
use sift::search::snippet::make_snippet;
use sift::search::terms::Terms;
use sift::text::{reader_text, tokens};

fn messy_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => any::<char>(),
        4 => prop::sample::select(vec![
            '\u{a0}', '\u{85}', '\u{1680}', '\u{2003}', '\u{2009}', '\u{2028}', '\u{2029}',
            '\u{202f}', '\u{205f}', '\u{3000}', '\u{feff}', '\u{200d}', '\u{200b}', '\u{301}',
            '\u{308}', '\u{fe0f}', '😀', '👩', '𝔘', '中', '文', '東', '京', 'の', 'ア', '한',
            'ש', 'ל', 'ם', 'ع', 'ر', 'é', 'ß', 'İ', 'ﬁ', 'Ａ', '½', '“', '”', '’', '—',
        ]),
        6 => prop::sample::select(vec![
            '#', '*', '_', '[', ']', '|', '!', '`', '-', '>', '<', '/', ':', '(', ')', '&',
            ';', '"', '%', '=', '~', '$', '\\', '\n', '\n', '\r', ' ', ' ', ' ', '\t',
        ]),
        10 => prop::sample::select(vec![
            'a', 'e', 'n', 'o', 't', 's', 'r', 'i', 'c', 'd', 'm', 'N', 'T', '1', '2',
        ]),
    ]
}

fn messy_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(messy_char(), 0..max).prop_map(|cs| cs.into_iter().collect())
}

/// Text assembled from Markdown/Obsidian pieces and messy words.
fn messy_markdown() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        messy_text(30),
        Just("---\ntitle: T\ntags: [a, b]\naliases: x, y\n---\n".to_string()),
        Just("\r\n".to_string()),
        Just("\n\n".to_string()),
        Just("# ".to_string()),
        Just("## Heading ".to_string()),
        Just("[[note#head|label]]".to_string()),
        Just("![[embed.png]]".to_string()),
        Just("[[#Anchor]]".to_string()),
        Just("[text](http://x.y/#frag)".to_string()),
        Just("> [!note]- Title\n> ".to_string()),
        Just("```\ncode #notag\n```\n".to_string()),
        Just("`inline`".to_string()),
        Just("**bold** _it_ ~~s~~".to_string()),
        Just("<div><script>x</script>y</div>\n".to_string()),
        Just("| a | b |\n|---|---|\n| c | d |\n".to_string()),
        Just(" #tag/sub ".to_string()),
        Just("- [ ] task\n".to_string()),
        Just("note notes noting".to_string()),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|ps| ps.concat())
}

proptest! {
    #[test]
    fn tokens_are_on_boundaries_and_terms_are_index_safe(text in messy_text(200)) {
        for t in tokens(&text) {
            prop_assert!(text.is_char_boundary(t.start) && text.is_char_boundary(t.end));
            prop_assert!(t.start < t.end);
            prop_assert!(!t.term.is_empty());
            // The keyword index splits on ASCII punctuation and spaces only:
            // a term must be exactly one of its tokens.
            prop_assert!(t.term.chars().all(|c| !c.is_ascii() || c.is_ascii_alphanumeric()), "{:?}", t.term);
            prop_assert!(t.term.chars().all(|c| !c.is_whitespace()));
        }
    }

    #[test]
    fn query_terms_never_escape_their_quotes(text in messy_text(80)) {
        let terms = Terms::parse(&text);
        let q = terms.fts_query();
        prop_assert_eq!(q.matches('"').count() % 2, 0);
        for w in terms.words.iter().chain(terms.phrases.iter().flatten()) {
            prop_assert!(!w.is_empty() && !w.contains('"'));
        }
    }

    #[test]
    fn reader_text_maps_back_on_boundaries(md in messy_markdown()) {
        let r = reader_text(&md, true);
        for offset in 0..=r.text.len() {
            let src = r.source_offset(&md, offset);
            prop_assert!(md.is_char_boundary(src));
        }
    }

    #[test]
    fn notes_parse_and_chunk_with_valid_ranges(md in messy_markdown(), markdown in any::<bool>()) {
        let info = parse_note(&md, markdown);
        prop_assert!(md.is_char_boundary(info.body_start));
        for h in &info.headings {
            prop_assert!(md.is_char_boundary(h.offset));
        }
        if let Some(title) = &info.content_title {
            prop_assert!(!title.is_empty() && title.trim() == title);
        }
        for tag in &info.tags {
            prop_assert!(!tag.is_empty());
            prop_assert!(!tag.contains(char::is_whitespace), "{:?}", tag);
            prop_assert!(tag.chars().any(|c| !c.is_ascii_digit()) || info.front_matter.is_some());
        }
        for c in chunk_note(&md, &info, markdown) {
            prop_assert!(md.is_char_boundary(c.byte_start) && md.is_char_boundary(c.byte_end));
            prop_assert_eq!(&md[c.byte_start..c.byte_end], c.body.as_str());
            prop_assert_eq!(md[..c.byte_start].matches('\n').count() + 1, c.line_start);
            prop_assert!(c.line_start <= c.line_end);
        }
    }

    #[test]
    fn snippets_highlight_query_terms_and_name_their_line(
        body in messy_markdown(),
        query in messy_text(20),
        extra in prop::sample::select(vec!["note", "tag", "a", "中文", "é", "title"]),
        markdown in any::<bool>(),
    ) {
        let query = format!("{query} {extra}");
        let matcher = Terms::parse(&query).matcher();
        let s = make_snippet(&body, markdown, &matcher);
        let text: String = s.parts.iter().map(|p| p.text.as_str()).collect();
        prop_assert!(body.is_char_boundary(s.first_match));
        for &(a, b) in &s.highlights {
            prop_assert!(text.is_char_boundary(a) && text.is_char_boundary(b) && a < b);
            // Every highlight is made of words that match the query.
            let words = tokens(&text[a..b]);
            prop_assert!(!words.is_empty());
            prop_assert!(words.iter().any(|t| matcher.matches(t)), "{:?}", &text[a..b]);
        }
        // Plain text maps one to one: the first match starts where it says,
        // so its line is the line that holds it. A weak word standing alone
        // ("a" in `| a | b |`) is not a match, so the first match is a
        // matching token with no strong match before it.
        if !markdown && !s.highlights.is_empty() {
            let words = tokens(&body);
            // A CJK run starts a pair and a single at the same byte: one of
            // the tokens starting there matches.
            let named = words.iter().any(|t| t.start == s.first_match && matcher.matches(t));
            prop_assert!(named, "{}", s.first_match);
            let strong = words.iter().find(|t| matcher.matches(t) && !matcher.is_weak(&t.term));
            if let Some(strong) = strong {
                prop_assert!(s.first_match <= strong.start);
            }
        }
    }
}
