//! Template boilerplate: lines repeated across many notes of one folder (a
//! daily note template's "## Tasks", "Mood:", "What went well today?") are
//! left out of the text a chunk is *embedded* with, so they stop pulling every
//! templated note towards the same meaning. They stay in the chunk's body: the
//! keyword index, snippets and the note's text are unchanged, and the embedding
//! prefix (title and heading path) is built as before.
//!
//! How it works:
//! - After a full run over a folder changed anything, [`refresh`] counts, per
//!   subfolder, in how many notes each normalized line appears. A line found in
//!   at least [`SHARE`] of a subfolder's notes, and in at least [`MIN_NOTES`],
//!   is boilerplate, and is left out in every folder of that indexed folder
//!   (a note moved to another folder keeps its embedded text and vector). The
//!   hashes are kept in `boilerplate_lines`.
//! - A chunk's embedded text is its prefix and its body without those lines
//!   ([`Boilerplate::strip`]): a bare-template day is embedded as its own
//!   heading (its date); a chunk with no word left keeps its whole text.
//! - Notes written later (the watcher) are stripped with the stored lines at
//!   once; chunks whose embedded text changes when the lines change are
//!   rewritten with new ids (the vector index and the keyword index follow the
//!   removal log), and embedded once: the cache is keyed by the embedded text,
//!   so a line that stops and starts being boilerplate again costs nothing.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};

use crate::chunk::{embed_text, Chunk};
use crate::error::Result;

/// Smallest share of a folder's notes a line must appear in to be boilerplate.
pub const SHARE: f64 = 0.2;
/// Fewest notes a line must appear in to be boilerplate (and fewest notes a
/// folder must hold to have any).
pub const MIN_NOTES: usize = 5;

/// The key of a line: a hash of its text in lower case with runs of white
/// space made one space; `None` for a line with no letter or digit (blank
/// lines, rules, fences carry no meaning to strip).
pub fn line_key(line: &str) -> Option<i64> {
    if !line.chars().any(char::is_alphanumeric) {
        return None;
    }
    let normal = line
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let digest = Sha256::digest(normal.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    Some(i64::from_le_bytes(bytes))
}

/// The folder part of a note's relative path (`""` at the top).
pub fn folder_of(rel_path: &str) -> &str {
    rel_path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The boilerplate lines of one indexed folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Boilerplate {
    lines: HashSet<i64>,
}

impl Boilerplate {
    /// The stored boilerplate lines of root `root_id` (found in any of its
    /// folders).
    pub fn load(conn: &Connection, root_id: i64) -> Result<Boilerplate> {
        let mut stmt =
            conn.prepare_cached("SELECT hash FROM boilerplate_lines WHERE root_id = ?1")?;
        let lines = stmt
            .query_map([root_id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Boilerplate { lines })
    }

    /// Whether there are no boilerplate lines.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// `body` without its boilerplate lines, when it has some and something
    /// worth embedding remains; `None`: embed the body as it is.
    pub fn strip(&self, body: &str) -> Option<String> {
        if self.lines.is_empty() {
            return None;
        }
        let mut kept: Vec<&str> = Vec::new();
        let mut dropped = false;
        for line in body.lines() {
            if line_key(line).is_some_and(|k| self.lines.contains(&k)) {
                dropped = true;
                continue;
            }
            // One blank line between kept blocks is enough.
            if line.trim().is_empty() && kept.last().is_none_or(|l| l.trim().is_empty()) {
                continue;
            }
            kept.push(line);
        }
        while kept.last().is_some_and(|l| l.trim().is_empty()) {
            kept.pop();
        }
        let text = kept.join("\n");
        (dropped && text.chars().any(char::is_alphanumeric)).then_some(text)
    }

    /// Sets what `chunks` are embedded with: prefix and stripped body.
    pub fn apply(&self, chunks: &mut [Chunk]) {
        for chunk in chunks {
            let prefix = chunk_prefix(chunk).to_string();
            let embed_body = self.strip(&chunk.body);
            let text = embed_text(&prefix, embed_body.as_deref().unwrap_or(&chunk.body));
            chunk.embed_hash = Sha256::digest(text.as_bytes()).into();
            chunk.embed_text = text;
            chunk.embed_body = embed_body;
        }
    }
}

/// The prefix part of a chunk's embedded text.
pub fn chunk_prefix(chunk: &Chunk) -> &str {
    let body = chunk.embed_body.as_deref().unwrap_or(&chunk.body);
    chunk
        .embed_text
        .strip_suffix(body)
        .unwrap_or("")
        .trim_end_matches('\n')
}

/// What [`refresh`] found and changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// Boilerplate lines now known, over every folder of the root.
    pub lines: usize,
    /// Chunks rewritten because their embedded text changed.
    pub chunks_rewritten: usize,
}

/// Whether the boilerplate of root `root_id` was counted, and with
/// stripping on or off; `None`: never.
pub fn counted(conn: &Connection, root_id: i64) -> Result<Option<bool>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached("SELECT enabled FROM boilerplate_roots WHERE root_id = ?1")?
        .query_row([root_id], |r| r.get(0))
        .optional()?)
}

/// Counts the lines of root `root_id`'s indexed notes per folder, stores the
/// boilerplate lines found and rewrites the chunks whose embedded text changes
/// with them (new chunk ids, returned, for the vector index to pick up cached
/// vectors). With `enabled` false (`scan.strip_boilerplate` off), no line is
/// boilerplate: every chunk is embedded whole again. One transaction: readers
/// see the old or the new state.
///
/// Lines are found per folder but left out in every folder of the root: a
/// daily note moved to an archive folder keeps its embedded text (and its
/// cached vector).
pub fn refresh(
    conn: &mut Connection,
    root_id: i64,
    enabled: bool,
    now: i64,
) -> Result<(RefreshReport, Vec<i64>)> {
    let tx = conn.transaction()?;
    let mut by_dir: HashMap<String, Vec<i64>> = HashMap::new();
    {
        let mut stmt =
            tx.prepare("SELECT id, rel_path FROM notes WHERE root_id = ?1 AND state = 'indexed'")?;
        let rows = stmt.query_map([root_id], |r| Ok((r.get(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (id, rel) = row?;
            by_dir
                .entry(folder_of(&rel).to_string())
                .or_default()
                .push(id);
        }
    }
    let mut found: Vec<(&str, i64, usize)> = Vec::new();
    if enabled {
        for (dir, notes) in &by_dir {
            if notes.len() >= MIN_NOTES {
                for line in count_lines(&tx, notes)?.lines {
                    found.push((dir, line, notes.len()));
                }
            }
        }
    }
    let all = Boilerplate {
        lines: found.iter().map(|(_, line, _)| *line).collect(),
    };
    let stored = Boilerplate::load(&tx, root_id)?;
    let mut new_ids = Vec::new();
    if all != stored {
        tx.execute(
            "DELETE FROM boilerplate_lines WHERE root_id = ?1",
            [root_id],
        )?;
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO boilerplate_lines(root_id, dir, hash, notes)
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (dir, hash, notes) in &found {
            insert.execute(params![root_id, dir, hash, *notes as i64])?;
        }
        for notes in by_dir.values() {
            for &note in notes {
                new_ids.extend(rewrite_note(&tx, note, &all)?);
            }
        }
    }
    tx.execute(
        "INSERT INTO boilerplate_roots(root_id, counted_at, enabled) VALUES (?1, ?2, ?3)
         ON CONFLICT(root_id) DO UPDATE SET counted_at = excluded.counted_at,
                                            enabled = excluded.enabled",
        params![root_id, now, enabled],
    )?;
    tx.commit()?;
    let report = RefreshReport {
        lines: all.lines.len(),
        chunks_rewritten: new_ids.len(),
    };
    Ok((report, new_ids))
}

/// The lines found in at least [`SHARE`] (and [`MIN_NOTES`]) of `notes`.
fn count_lines(conn: &Connection, notes: &[i64]) -> Result<Boilerplate> {
    let mut counts: HashMap<i64, usize> = HashMap::new();
    let mut stmt = conn.prepare_cached("SELECT body FROM chunks WHERE note_id = ?1")?;
    for &note in notes {
        let mut seen = HashSet::new();
        let mut rows = stmt.query([note])?;
        while let Some(row) = rows.next()? {
            let body = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
            seen.extend(body.lines().filter_map(line_key));
        }
        for key in seen {
            *counts.entry(key).or_default() += 1;
        }
    }
    let need = MIN_NOTES.max((SHARE * notes.len() as f64).ceil() as usize);
    Ok(Boilerplate {
        lines: counts
            .into_iter()
            .filter(|&(_, n)| n >= need)
            .map(|(k, _)| k)
            .collect(),
    })
}

/// Rewrites the chunks of `note` whose embedded body differs from what
/// `boilerplate` gives; returns their new ids.
fn rewrite_note(conn: &Connection, note: i64, boilerplate: &Boilerplate) -> Result<Vec<i64>> {
    let rows: Vec<(i64, String, String, Option<String>)> = {
        let mut stmt = conn.prepare_cached(
            "SELECT id, embed_prefix, body, embed_body FROM chunks WHERE note_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([note], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut new_ids = Vec::new();
    for (id, prefix, body, old) in rows {
        let embed_body = boilerplate.strip(&body);
        if embed_body == old {
            continue;
        }
        let text = embed_text(&prefix, embed_body.as_deref().unwrap_or(&body));
        let hash: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        new_ids.push(crate::store::tables::rewrite_chunk(
            conn,
            id,
            embed_body.as_deref(),
            &hash,
        )?);
    }
    Ok(new_ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_case_and_spacing_but_not_words() {
        assert_eq!(line_key("## Tasks"), line_key("  ## tasks  "));
        assert_eq!(line_key("Mood:\t good"), line_key("mood: good"));
        assert_ne!(line_key("Mood: good"), line_key("Mood: tired"));
        assert_eq!(line_key("---"), None);
        assert_eq!(line_key(""), None);
    }

    #[test]
    fn strips_only_known_lines_and_keeps_all_boilerplate_chunks_whole() {
        let bp = Boilerplate {
            lines: ["## Tasks", "Mood:", "## Notes"]
                .iter()
                .filter_map(|l| line_key(l))
                .collect(),
        };
        let body = "## Tasks\n- [ ] call Anna\n\n## Notes\n\nThe bees swarmed.\n\nMood:";
        assert_eq!(
            bp.strip(body).as_deref(),
            Some("- [ ] call Anna\n\nThe bees swarmed.")
        );
        assert_eq!(
            bp.strip("## Tasks\n\nMood:"),
            None,
            "nothing left: kept whole"
        );
        assert_eq!(bp.strip("Just a line."), None, "nothing dropped");
        assert_eq!(Boilerplate::default().strip(body), None);
    }

    #[test]
    fn folders() {
        assert_eq!(folder_of("a.md"), "");
        assert_eq!(folder_of("Daily/2024/a.md"), "Daily/2024");
    }
}
