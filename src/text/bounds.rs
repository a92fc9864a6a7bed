//! Char-boundary-safe positions. Byte offsets into text are only ever made by
//! a tokenizer walking `char_indices` or by these helpers; never by adding or
//! subtracting bytes and slicing.

/// The largest char boundary of `text` at or before `i` (clamped to its length).
pub fn floor_char_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The smallest char boundary of `text` at or after `i` (clamped to its length).
pub fn ceil_char_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snaps_inside_multibyte_chars() {
        let t = "a\u{a0}b😀";
        assert_eq!(floor_char_boundary(t, 2), 1);
        assert_eq!(ceil_char_boundary(t, 2), 3);
        assert_eq!(floor_char_boundary(t, 6), 4);
        assert_eq!(ceil_char_boundary(t, 6), 8);
        assert_eq!(floor_char_boundary(t, 100), t.len());
    }
}
