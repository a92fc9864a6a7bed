//! One error type for the engine, with kinds a UI can branch on.

use std::path::PathBuf;

/// What went wrong, in terms a caller (CLI, desktop UI) can act on.
///
/// The UI branches on [`ErrorKind::code`], never on message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The local model files are missing: run `sift model fetch`.
    ModelMissing,
    /// The model files exist but could not be loaded (corrupt, wrong format).
    ModelInvalid,
    /// An API key is missing or was rejected by the provider.
    InvalidKey,
    /// The provider says the account is out of quota or credit.
    QuotaExhausted,
    /// The provider does not know the requested model.
    ModelNotFound,
    /// An input is longer than the model accepts.
    InputTooLong,
    /// The provider returned vectors of unexpected dimensions.
    WrongDimensions,
    /// The provider is unreachable, timing out or failing (5xx, 429 after retries).
    ProviderDown,
    /// The provider answered with something we could not understand.
    BadResponse,
    /// No OS keychain is available to hold API keys.
    KeychainUnavailable,
    /// The spending cap would be exceeded by this run.
    BudgetExceeded,
    /// The operation was cancelled by the user.
    Cancelled,
    /// Another Sift process is indexing this data folder (and this one was told
    /// not to wait for it).
    Busy,
    /// A path or folder the user gave does not exist or is not usable.
    BadPath,
    /// The user gave an invalid argument (query syntax, date, setting).
    InvalidInput,
    /// A note path is not inside any indexed folder.
    NotIndexed,
    /// The on-disk index is from an incompatible version or damaged: `sift
    /// index --rebuild` sets it aside and rebuilds it from the notes.
    IndexCorrupt,
    /// The data folder or the index cannot be written (read-only file system,
    /// permissions): choose another data folder or make it writable.
    ReadOnly,
    /// The note has no text to search or compare (empty, or front matter only).
    EmptyNote,
    /// An archive cannot be imported: not a Sift archive, from a newer Sift,
    /// cut short, or made by another embedder.
    IncompatibleArchive,
    /// The index is encrypted and its key is not in this keychain (another
    /// user account or machine, or the keychain item was deleted).
    EncryptionKeyMissing,
    /// File-system I/O failed.
    Io,
    /// The metadata database failed.
    Database,
    /// The vector index failed.
    Vectors,
    /// The fast keyword index failed (keyword search falls back to SQLite's
    /// full-text index meanwhile).
    KeywordIndex,
    /// A bug: something that should not happen.
    Internal,
}

impl ErrorKind {
    /// Stable machine-readable code, e.g. `"model_missing"`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::ModelMissing => "model_missing",
            ErrorKind::ModelInvalid => "model_invalid",
            ErrorKind::InvalidKey => "invalid_key",
            ErrorKind::QuotaExhausted => "quota_exhausted",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::InputTooLong => "input_too_long",
            ErrorKind::WrongDimensions => "wrong_dimensions",
            ErrorKind::ProviderDown => "provider_down",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::KeychainUnavailable => "keychain_unavailable",
            ErrorKind::BudgetExceeded => "budget_exceeded",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Busy => "busy",
            ErrorKind::BadPath => "bad_path",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotIndexed => "not_indexed",
            ErrorKind::IndexCorrupt => "index_corrupt",
            ErrorKind::ReadOnly => "read_only",
            ErrorKind::EmptyNote => "empty_note",
            ErrorKind::IncompatibleArchive => "incompatible_archive",
            ErrorKind::Io => "io",
            ErrorKind::Database => "database",
            ErrorKind::Vectors => "vectors",
            ErrorKind::KeywordIndex => "keyword_index",
            ErrorKind::EncryptionKeyMissing => "encryption_key_missing",
            ErrorKind::Internal => "internal",
        }
    }
}

/// The engine's error: a kind to branch on and a message that says what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// A new error of `kind` with a human-readable `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// The kind, for branching.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// This error, naming the index database `path` when it is about that file
    /// (damaged, read-only) and does not name it yet.
    pub fn in_database(self, path: &std::path::Path) -> Self {
        let shown = path.display().to_string();
        match self.kind {
            ErrorKind::IndexCorrupt | ErrorKind::ReadOnly | ErrorKind::Database
                if !self.message.contains(&shown) =>
            {
                Error::new(self.kind, format!("{shown}: {}", self.message))
            }
            _ => self,
        }
    }

    /// An I/O error about `path`.
    pub fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        let path = path.into();
        Error::new(ErrorKind::Io, format!("{}: {err}", path.display()))
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => Error::new(
                ErrorKind::IndexCorrupt,
                format!(
                    "the index database is damaged ({err}): run `sift index --rebuild` to set it aside and rebuild it from your notes"
                ),
            ),
            Some(ErrorCode::ReadOnly) => Error::new(
                ErrorKind::ReadOnly,
                format!(
                    "the index database cannot be written ({err}): make the data folder writable or choose another (--data-dir or SIFT_DATA_DIR)"
                ),
            ),
            Some(ErrorCode::CannotOpen) => Error::new(
                ErrorKind::Database,
                format!(
                    "cannot open the index database ({err}): check that the data folder is writable, or choose another (--data-dir or SIFT_DATA_DIR)"
                ),
            ),
            Some(ErrorCode::DiskFull) => Error::new(
                ErrorKind::Io,
                format!("the disk holding the index is full ({err}): free some space and try again"),
            ),
            _ => Error::new(ErrorKind::Database, format!("database error: {err}")),
        }
    }
}

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
