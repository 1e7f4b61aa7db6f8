//! Locked functions written against the runtime renamed to `locks` in `Cargo.toml`.
//!
//! This crate's extern prelude has no `redis_locked`, so these compile only if the
//! expansion uses the path given by `crate = "..."` everywhere.

use locks::{LockError, redis_lock};

/// The lock key's value, read inside the body (the owner token: the lock is held).
#[redis_lock(name = "renamed:{id}", client = "renamed", crate = "locks")]
pub fn sync_holder(
    id: u64,
    read_key: impl FnOnce() -> Option<String>,
) -> Result<Option<String>, LockError> {
    Ok(read_key())
}

/// The same, async, with an absolute path.
#[redis_lock(name = "renamed:{id}", client = "renamed", crate = "::locks", guard = lock)]
pub async fn async_holder(id: u64) -> Result<u64, LockError> {
    Ok(lock.fencing_token())
}
