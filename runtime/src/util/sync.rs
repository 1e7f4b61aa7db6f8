//! The locks and atomics of the code that the loom models check (`waiters.rs` and
//! `pool/slots.rs`): those files take them from here only, so that `tests/loom` can compile
//! the very same files against loom's versions (its own `sync.rs` names loom's types), while
//! this crate keeps std's and builds without loom.

pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

/// Locks a mutex, recovering from poisoning: every critical section in this crate leaves
/// its data consistent, so a panic elsewhere must not turn into a panic here.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
