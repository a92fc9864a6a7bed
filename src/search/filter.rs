//! Search filters (folder, tags, date, file type) as SQL over `notes n`.

use chrono::NaiveDate;
use rusqlite::types::Value;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// Parses `YYYY-MM-DD` into Unix seconds at 00:00 UTC.
pub fn parse_date(s: &str) -> Result<i64> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map(|d| {
            d.and_hms_opt(0, 0, 0)
                .expect("midnight exists")
                .and_utc()
                .timestamp()
        })
        .map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("'{s}' is not a date; use YYYY-MM-DD"),
            )
        })
}

/// Restrictions on which notes may appear in results. All given filters must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    /// Path prefix relative to the indexed folder (`projects` or `projects/2024`).
    pub folder: Option<String>,
    /// Notes must carry every one of these tags.
    pub tags: Vec<String>,
    /// File extensions (any of).
    pub exts: Vec<String>,
    /// Modified on or after this Unix time.
    pub after: Option<i64>,
    /// Modified before this Unix time.
    pub before: Option<i64>,
    /// Which date `after` and `before` look at.
    pub date: DateSource,
}

/// Which date of a note the date filter looks at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateSource {
    /// The file's modification time.
    #[default]
    Modified,
    /// The note's own date from its front matter (`date`, else `created`);
    /// the modification time for notes without one.
    FrontMatter,
}

impl std::str::FromStr for DateSource {
    type Err = Error;
    fn from_str(s: &str) -> Result<DateSource> {
        match s {
            "modified" => Ok(DateSource::Modified),
            "front_matter" | "front-matter" | "note" => Ok(DateSource::FrontMatter),
            other => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("unknown date '{other}': use modified or front-matter"),
            )),
        }
    }
}

impl Filters {
    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.folder.is_none()
            && self.tags.is_empty()
            && self.exts.is_empty()
            && self.after.is_none()
            && self.before.is_none()
    }

    /// SQL conditions on `notes n` (joined with `AND`, starting with `AND`) and
    /// their parameters.
    pub fn sql(&self) -> (String, Vec<Value>) {
        let mut sql = String::new();
        let mut params: Vec<Value> = Vec::new();
        if let Some(folder) = &self.folder {
            let folder = folder.trim_matches('/').to_string();
            if !folder.is_empty() {
                params.push(Value::Text(folder));
                let p = params.len();
                sql.push_str(&format!(
                    " AND (n.rel_path = ?{p} OR substr(n.rel_path, 1, length(?{p}) + 1) = ?{p} || '/')"
                ));
            }
        }
        for tag in &self.tags {
            params.push(Value::Text(tag.trim_start_matches('#').to_lowercase()));
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM note_tags t WHERE t.note_id = n.id AND t.tag = ?{})",
                params.len()
            ));
        }
        if !self.exts.is_empty() {
            let mut marks = Vec::new();
            for ext in &self.exts {
                params.push(Value::Text(ext.trim_start_matches('.').to_lowercase()));
                marks.push(format!("?{}", params.len()));
            }
            sql.push_str(&format!(" AND n.ext IN ({})", marks.join(", ")));
        }
        let date = match self.date {
            DateSource::Modified => "n.mtime_ns",
            DateSource::FrontMatter => "coalesce(n.note_date * 1000000000, n.mtime_ns)",
        };
        if let Some(after) = self.after {
            params.push(Value::Integer(after.saturating_mul(1_000_000_000)));
            sql.push_str(&format!(" AND {date} >= ?{}", params.len()));
        }
        if let Some(before) = self.before {
            params.push(Value::Integer(before.saturating_mul(1_000_000_000)));
            sql.push_str(&format!(" AND {date} < ?{}", params.len()));
        }
        (sql, params)
    }
}
