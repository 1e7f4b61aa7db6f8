//! The annotated functions under test. Their bodies are empty apart from a timestamp, so
//! what is measured is the attribute's own cost. `expire = 10` matches the hand-written
//! loop's `PX 10000` and turns auto-renewal off, as in the hand-written loop.
//!
//! `client = "..."` is fixed at compile time, so each client kind has its own pair of
//! functions, and [`Backend`] picks the pair at run time.

use std::sync::atomic::{AtomicU32, Ordering};

use redis_locked::{LockError, redis_lock};

use super::clock::now_ns;

/// Which registered client the annotated functions lock on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The default client: one redis-server.
    Single,
    /// Registered as "bench-cluster": a Redis Cluster.
    Cluster,
    /// Registered as "bench-redlock": independent servers, by quorum.
    Redlock,
}

impl Backend {
    /// Takes lock `lock` and returns when the body started: the moment the lock was ours.
    pub async fn empty_async(self, lock: &str) -> Result<u64, LockError> {
        match self {
            Backend::Single => empty_async(lock).await,
            Backend::Cluster => cluster::empty_async(lock).await,
            Backend::Redlock => redlock::empty_async(lock).await,
        }
    }

    /// [`Backend::empty_async`] for sync callers.
    pub fn empty_sync(self, lock: &str) -> Result<u64, LockError> {
        match self {
            Backend::Single => empty_sync(lock),
            Backend::Cluster => cluster::empty_sync(lock),
            Backend::Redlock => redlock::empty_sync(lock),
        }
    }

    /// [`Backend::empty_async`] through a function that binds its guard, so that each call
    /// takes a fencing token.
    pub async fn fenced_async(self, lock: &str) -> Result<u64, LockError> {
        match self {
            Backend::Single => fenced_async(lock).await,
            Backend::Cluster => cluster::fenced_async(lock).await,
            Backend::Redlock => redlock::fenced_async(lock).await,
        }
    }

    /// [`Backend::fenced_async`] for sync callers.
    pub fn fenced_sync(self, lock: &str) -> Result<u64, LockError> {
        match self {
            Backend::Single => fenced_sync(lock),
            Backend::Cluster => cluster::fenced_sync(lock),
            Backend::Redlock => redlock::fenced_sync(lock),
        }
    }
}

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

/// [`empty_async`] with its guard bound: the call takes a fencing token.
#[redis_lock(name = "bench:{lock}", expire = 10, guard = held)]
pub async fn fenced_async(lock: &str) -> Result<u64, LockError> {
    std::hint::black_box(held.fencing_token());
    Ok(now_ns())
}

/// [`fenced_async`] for sync callers.
#[redis_lock(name = "bench:{lock}", expire = 10, guard = held)]
pub fn fenced_sync(lock: &str) -> Result<u64, LockError> {
    std::hint::black_box(held.fencing_token());
    Ok(now_ns())
}

/// [`empty_async`] with `auto_renew`: what a function without `expire` (renewed by
/// default) or with `auto_renew` pays for its renewal when it ends before the first one.
#[redis_lock(name = "bench:{lock}", expire = 10, auto_renew)]
pub async fn renewed_async(lock: &str) -> Result<u64, LockError> {
    Ok(now_ns())
}

/// [`renewed_async`] for sync callers.
#[redis_lock(name = "bench:{lock}", expire = 10, auto_renew)]
pub fn renewed_sync(lock: &str) -> Result<u64, LockError> {
    Ok(now_ns())
}

/// [`empty_async`] and [`empty_sync`] on the client registered as "bench-cluster".
mod cluster {
    use super::*;

    #[redis_lock(name = "bench:{lock}", expire = 10, client = "bench-cluster")]
    pub async fn empty_async(lock: &str) -> Result<u64, LockError> {
        Ok(now_ns())
    }

    #[redis_lock(name = "bench:{lock}", expire = 10, client = "bench-cluster")]
    pub fn empty_sync(lock: &str) -> Result<u64, LockError> {
        Ok(now_ns())
    }

    #[redis_lock(name = "bench:{lock}", expire = 10, client = "bench-cluster", guard = held)]
    pub async fn fenced_async(lock: &str) -> Result<u64, LockError> {
        std::hint::black_box(held.fencing_token());
        Ok(now_ns())
    }

    #[redis_lock(name = "bench:{lock}", expire = 10, client = "bench-cluster", guard = held)]
    pub fn fenced_sync(lock: &str) -> Result<u64, LockError> {
        std::hint::black_box(held.fencing_token());
        Ok(now_ns())
    }
}

/// [`empty_async`] and [`empty_sync`] on the client registered as "bench-redlock".
mod redlock {
    use super::*;

    #[redis_lock(name = "bench:{lock}", expire = 10, client = "bench-redlock")]
    pub async fn empty_async(lock: &str) -> Result<u64, LockError> {
        Ok(now_ns())
    }

    #[redis_lock(name = "bench:{lock}", expire = 10, client = "bench-redlock")]
    pub fn empty_sync(lock: &str) -> Result<u64, LockError> {
        Ok(now_ns())
    }

    #[redis_lock(name = "bench:{lock}", expire = 10, client = "bench-redlock", guard = held)]
    pub async fn fenced_async(lock: &str) -> Result<u64, LockError> {
        std::hint::black_box(held.fencing_token());
        Ok(now_ns())
    }

    #[redis_lock(name = "bench:{lock}", expire = 10, client = "bench-redlock", guard = held)]
    pub fn fenced_sync(lock: &str) -> Result<u64, LockError> {
        std::hint::black_box(held.fencing_token());
        Ok(now_ns())
    }
}

/// Counts that `task` got the lock, on the client registered as "scale" so that the
/// connections it opens are all new.
#[redis_lock(name = "bench:{lock}", expire = 10, client = "scale")]
pub async fn count_once(lock: &str, counts: &[AtomicU32], task: usize) -> Result<(), LockError> {
    counts[task].fetch_add(1, Ordering::Relaxed);
    Ok(())
}
