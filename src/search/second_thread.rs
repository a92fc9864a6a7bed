//! The second core a search uses: the long-lived search thread at normal
//! priority (`background::search_thread`; the indexer's pool runs niced, and
//! must not slow a search down).

/// Runs `there` on the search thread while `here` runs on this one, and
/// returns both results. A panic in either is resumed here. Without the
/// thread (it could not be started), both run here, one after the other.
pub(crate) fn beside<A: Send, B>(
    there: impl FnOnce() -> A + Send,
    here: impl FnOnce() -> B,
) -> (A, B) {
    // While indexing fills the cores, handing work to another thread means
    // waiting for that thread to get a core: one thread does both.
    run_beside(!crate::background::busy(), there, here)
}

fn run_beside<A: Send, B>(
    apart: bool,
    there: impl FnOnce() -> A + Send,
    here: impl FnOnce() -> B,
) -> (A, B) {
    let Some(pool) = crate::background::search_thread().filter(|_| apart) else {
        return (there(), here());
    };
    let mut a = None;
    let b = pool.in_place_scope(|s| {
        s.spawn(|_| a = Some(there()));
        here()
    });
    // The scope returns only once `there` has run (or resumes its panic).
    (a.expect("the scope waited for it"), b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_run_and_return_in_order() {
        let here_thread = std::thread::current().id();
        let (a, b) = run_beside(
            true,
            || (std::thread::current().id(), 1 + 1),
            || (std::thread::current().id(), "here"),
        );
        assert_eq!(a.1, 2);
        assert_eq!(b, (here_thread, "here"));
        assert_ne!(a.0, here_thread, "`there` ran on the search thread");
        // While indexing runs: both here, in order.
        let (a, b) = run_beside(false, || std::thread::current().id(), || 3);
        assert_eq!((a, b), (here_thread, 3));
    }

    #[test]
    fn a_panic_on_the_search_thread_reaches_the_caller_and_the_thread_survives() {
        let caught = std::panic::catch_unwind(|| beside(|| panic!("boom"), || 1));
        assert!(caught.is_err());
        assert_eq!(beside(|| 2, || 3), (2, 3));
    }
}
