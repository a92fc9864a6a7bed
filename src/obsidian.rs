//! Obsidian vaults: a folder holding `.obsidian/` is a vault, and a note in
//! it can be opened in Obsidian with `obsidian://open?vault=NAME&file=PATH`
//! (the vault's folder name and the note's path inside it, URL-encoded).

use std::path::{Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Left as is in URL query values: what RFC 3986 calls unreserved.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The vault holding `note`: the nearest folder above it with `.obsidian/`
/// (an indexed folder may be a vault, or a folder inside one).
pub fn vault_of(note: &Path) -> Option<PathBuf> {
    note.ancestors()
        .skip(1)
        .find(|dir| dir.join(".obsidian").is_dir())
        .map(Path::to_path_buf)
}

/// Whether `folder` is an Obsidian vault or lies inside one.
pub fn is_in_vault(folder: &Path) -> bool {
    folder.ancestors().any(|dir| dir.join(".obsidian").is_dir())
}

/// The `obsidian://open` URL of `note` (absolute) if it is in a vault.
pub fn open_url(note: &Path) -> Option<String> {
    let vault = vault_of(note)?;
    let name = vault.file_name()?.to_str()?;
    let inside = note.strip_prefix(&vault).ok()?;
    let file: Vec<&str> = inside
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<_>>()?;
    Some(format!(
        "obsidian://open?vault={}&file={}",
        utf8_percent_encode(name, QUERY_VALUE),
        utf8_percent_encode(&file.join("/"), QUERY_VALUE)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_names_the_vault_and_the_path_inside_it() {
        let tmp = tempfile::tempdir().unwrap();
        let vault = tmp.path().join("My Vault");
        std::fs::create_dir_all(vault.join(".obsidian")).unwrap();
        std::fs::create_dir_all(vault.join("Daily notes")).unwrap();
        let note = vault.join("Daily notes/Café & co.md");
        std::fs::write(&note, "x").unwrap();
        assert_eq!(
            open_url(&note).unwrap(),
            "obsidian://open?vault=My%20Vault&file=Daily%20notes%2FCaf%C3%A9%20%26%20co.md"
        );
        assert!(is_in_vault(&vault.join("Daily notes")));
        let plain = tmp.path().join("plain.md");
        std::fs::write(&plain, "x").unwrap();
        assert_eq!(open_url(&plain), None);
    }
}
