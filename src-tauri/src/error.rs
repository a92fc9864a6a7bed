//! The one error shape commands reject with: `{ code, message }` (docs/ipc.md).
//! The UI branches on `code` (an `ErrorKind::code` of the engine), never on text.

use serde::Serialize;
use sift::{Error, ErrorKind};

/// A failed command or index run, as the UI receives it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IpcError {
    /// Machine-readable, e.g. `not_indexed`.
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl IpcError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        IpcError {
            code: kind.code(),
            message: message.into(),
        }
    }

    /// A bug or a broken runtime (a panicked blocking task).
    pub fn internal(message: impl std::fmt::Display) -> Self {
        IpcError::new(ErrorKind::Internal, message.to_string())
    }
}

impl From<Error> for IpcError {
    fn from(err: Error) -> Self {
        IpcError {
            code: err.kind().code(),
            message: err.message().to_string(),
        }
    }
}

/// What every command returns.
pub type CmdResult<T> = Result<T, IpcError>;

/// Runs blocking engine work off the async runtime and maps its error.
pub async fn blocking<T, F>(work: F) -> CmdResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> sift::Result<T> + Send + 'static,
{
    tauri::async_runtime::spawn_blocking(work)
        .await
        .map_err(|e| IpcError::internal(format!("a background task failed: {e}")))?
        .map_err(IpcError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_code_and_message() {
        let err: IpcError = Error::new(ErrorKind::NotIndexed, "outside").into();
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            serde_json::json!({"code": "not_indexed", "message": "outside"})
        );
    }
}
