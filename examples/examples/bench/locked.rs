//! The annotated functions under test. Their bodies are empty apart from a timestamp, so
//! what is measured is the attribute's own cost. `expire = 10` matches the hand-written
//! loop's `PX 10000` and turns auto-renewal off, as in the hand-written loop.

use std::sync::atomic::{AtomicU32, Ordering};

use redis_lock::{LockError, redis_lock};

use super::clock::now_ns;

/// Returns when the body started: the moment the lock was ours.
#[redis_lock(name = "bench:{lock}", expire = 10)]
pub async fn empty_async(lock: &str) -> Result<u64, LockError> {
    Ok(now_ns())
}

/// [`empty_async`] for sync callers.
#[redis_lock(name = "bench:{lock}", expire = 10)]
pub fn empty_sync(lock: &str) -> Result<u64, LockError> {
    Ok(now_ns())
}

/// Counts that `task` got the lock, on the client registered as "scale" so that the
/// connections it opens are all new.
#[redis_lock(name = "bench:{lock}", expire = 10, client = "scale")]
pub async fn count_once(lock: &str, counts: &[AtomicU32], task: usize) -> Result<(), LockError> {
    counts[task].fetch_add(1, Ordering::Relaxed);
    Ok(())
}
