//! loom's versions of what the runtime's `crate::sync` names (runtime/src/sync.rs): the
//! runtime's files included by this crate take their locks and atomics from here.

pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

/// As the runtime's: locks a mutex, recovering from poisoning.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
