//! Telling a forked child from its parent: what a process keeps for itself in memory (its
//! id, random bytes drawn ahead) is copied by `fork()`, and a child must not go on using
//! it. [`generation`] counts the forks this memory went through; state kept with the
//! generation it was made in is stale when that count has moved on.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

static FORKS: AtomicU64 = AtomicU64::new(0);

/// How many times this process's memory was copied into a forked child: 0 in the process
/// that first asked, one more in each generation of children after it.
pub(crate) fn generation() -> u64 {
    static HANDLER: Once = Once::new();
    // Registered before the first count is read, so that no fork goes uncounted between
    // a caller reading the count and keeping state made under it.
    HANDLER.call_once(|| {
        // SAFETY: `forked` only adds to an atomic, which is async-signal-safe, as a
        // handler run in the child of a multithreaded process must be.
        unsafe { libc::pthread_atfork(None, None, Some(forked)) };
    });
    FORKS.load(Ordering::Relaxed)
}

extern "C" fn forked() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_forked_child_is_one_generation_on() {
        let parent = super::generation();
        let (_, in_child) =
            crate::util::forked::output_of_forked_child(|| super::generation().to_string());
        assert_eq!(in_child, (parent + 1).to_string());
        assert_eq!(super::generation(), parent, "the parent's count stays");
    }
}
