//! Panics (bugs not found yet) below one note or one search become errors that
//! name the note and the operation, so the rest of the run or the other hits
//! carry on and the desktop app keeps working.
//!
//! The panic hook still runs before a panic is caught: [`install_hook`] makes
//! it log one line (what panicked, where) instead of the default hook's
//! backtrace advice; `RUST_BACKTRACE` still adds the backtrace.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{Error, ErrorKind, Result};

/// Runs `f`; a panic inside it becomes an [`ErrorKind::Internal`] error
/// "internal error while `doing`: <panic message>".
///
/// Callers must leave no shared state half-changed behind a panic: state that
/// outlives the call is either owned by `f`, behind a lock that tolerates
/// poisoning, or inside a transaction that rolls back when dropped.
pub(crate) fn catch<T>(doing: impl FnOnce() -> String, f: impl FnOnce() -> T) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        Error::new(
            ErrorKind::Internal,
            format!("internal error while {}: {}", doing(), message(&*payload)),
        )
    })
}

/// The text a panic was raised with (`panic!("...")`, a failed `expect`, an
/// out-of-bounds slice), or a placeholder for other payloads.
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// Replaces the default panic hook with one that writes one line to stderr:
/// `<program>: internal error (a bug) at <file:line>: <message>`, plus the
/// backtrace when `RUST_BACKTRACE` asks for it. For programs (the CLI, the
/// desktop shell), not for the library to call on its own.
pub fn install_hook(program: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::capture();
        let backtrace = match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => format!("\n{backtrace}"),
            _ => String::new(),
        };
        let what = info.payload_as_str().unwrap_or("a panic without a message");
        eprintln!("{program}: internal error (a bug){place}: {what}{backtrace}");
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_error_naming_the_operation() {
        let err = catch(
            || "building the snippet of a.md".to_string(),
            || -> usize { panic!("byte index 3 is not a char boundary") },
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert_eq!(
            err.message(),
            "internal error while building the snippet of a.md: byte index 3 is not a char boundary"
        );
        let formatted = catch(|| "x".into(), || panic!("{} items", 3)).unwrap_err();
        assert!(formatted.message().ends_with(": 3 items"), "{formatted}");
        assert_eq!(catch(|| "x".into(), || 7).unwrap(), 7);
    }
}
