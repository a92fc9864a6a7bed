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
///
/// The work runs on a plain thread rather than tokio's blocking pool: remote
/// embedders drive their own HTTP runtime and refuse to block inside a tokio
/// context, which `spawn_blocking` threads are.
pub async fn blocking<T, F>(work: F) -> CmdResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> sift::Result<T> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("sift-command".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|e| IpcError::internal(format!("cannot start a worker thread: {e}")))?;
    rx.await
        .map_err(|_| IpcError::internal("a background task failed"))?
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

    #[tokio::test]
    async fn blocking_work_runs_outside_the_async_runtime() {
        let inside = blocking(|| Ok(tokio::runtime::Handle::try_current().is_ok()))
            .await
            .unwrap();
        assert!(!inside, "remote embedders would refuse to run here");
        let err = blocking(|| -> sift::Result<()> { Err(Error::new(ErrorKind::BadPath, "nope")) })
            .await
            .unwrap_err();
        assert_eq!(err.code, "bad_path");
    }
}
