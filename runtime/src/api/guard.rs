//! The guards a caller holds while it has a lock: [`LockGuard`] and [`BlockingLockGuard`],
//! which release it on every way out.

use std::time::{Duration, Instant};

use crate::util::block_on::{block_on, block_on_until};
use crate::util::error::LockError;

use tracing::Instrument;

use crate::algorithm::held::Held;
use crate::algorithm::hold::SharedHold;
use crate::servers::io::{AsyncIo, SyncIo};

/// What both guards answer alike about the acquisition they hold.
macro_rules! held_accessors {
    ($guard:ident) => {
        impl $guard {
            fn held(&self) -> &Held {
                self.held
                    .as_ref()
                    .expect("a guard holds its lock until consumed")
            }

            pub(crate) fn shared(&self) -> SharedHold {
                self.held().shared()
            }

            /// The lock's name.
            pub fn name(&self) -> &str {
                &self.held().name
            }

            /// This acquisition's owner token (128 random bits, as 32 hex digits), as
            /// [`Lock::owner`](crate::Lock::owner) and [`LockInfo::owner`](crate::LockInfo::owner)
            /// show the holder's.
            pub fn token(&self) -> &str {
                crate::util::holder::token_of(&self.held().value)
            }

            /// This acquisition's fencing token: a number greater than that of every
            /// earlier acquisition of this lock name, kept by Redis across releases and
            /// resets. Hand it to the resource the lock protects, and have the resource
            /// refuse writes that carry a smaller number than one it has already seen: then
            /// a holder that outlived its lease (a long pause) cannot overwrite the work of
            /// the holder after it. 0 for a lock taken with
            /// [`Lock::fencing(false)`](crate::Lock::fencing), unless it was handed over from
            /// the queue of waiting processes, which always draws a token.
            pub fn fencing_token(&self) -> u64 {
                self.held().fence
            }

            /// How long the lease has left by this process's clock (zero once it ran out),
            /// as last renewed or extended.
            pub fn remaining_lease(&self) -> Duration {
                self.held()
                    .state
                    .valid_until()
                    .saturating_duration_since(Instant::now())
            }

            /// True once auto-renewal has found the lock taken away: work done now is not
            /// exclusive.
            pub fn is_lost(&self) -> bool {
                self.held().state.is_lost()
            }
        }

        impl std::fmt::Debug for $guard {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($guard))
                    .field("name", &self.name())
                    .finish_non_exhaustive()
            }
        }
    };
}

held_accessors!(LockGuard);
held_accessors!(BlockingLockGuard);

/// A held lock, acquired by async code. Release it with [`release`](LockGuard::release);
/// if it is dropped instead (a panic, a cancelled future), it is released in the background
/// within milliseconds, without blocking the executor.
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard {
    held: Option<Held>,
}

impl LockGuard {
    /// Renewal runs on the crate's background runtime, not the caller's: a body that keeps
    /// its runtime busy (CPU-bound work, a blocking call on a current-thread runtime) cannot
    /// starve it, and a runtime shut down under a live guard does not stop it.
    pub(crate) fn new(mut held: Held) -> LockGuard {
        held.start_renewal();
        LockGuard { held: Some(held) }
    }

    /// Completes when the lock can no longer be trusted: when auto-renewal finds it gone
    /// (taken, deleted, or its lease ran out before a renewal reached Redis), or, for a
    /// lock that is not renewed, when its lease ends. Meant for `tokio::select!` against
    /// the protected work. Never completes while the lock is held.
    pub async fn lost(&self) {
        let held = self.held();
        if held.auto_renew {
            held.state.wait_lost().await
        } else {
            held.state.wait_expired().await
        }
    }

    /// Resets the lease to `lease` (`None`: the lock's own lease) from now.
    /// Fails with [`LockError::Expired`] if the lock is no longer ours.
    pub async fn extend(&self, lease: Option<Duration>) -> Result<(), LockError> {
        self.held().extend_with(&AsyncIo, lease).await
    }

    /// Releases the lock. Fails with [`LockError::Lost`] if auto-renewal had found it taken
    /// away, and with [`LockError::Expired`] if its lease ran out before this call.
    pub async fn release(mut self) -> Result<(), LockError> {
        let mut held = self
            .held
            .take()
            .expect("a guard holds its lock until consumed");
        held.release_with(&AsyncIo).await
    }

    /// Releases the lock; a failure becomes a warning that names the lock.
    pub(crate) async fn release_and_log(mut self) {
        let mut held = self
            .held
            .take()
            .expect("a guard holds its lock until consumed");
        let result = held.release_with(&AsyncIo).await;
        log_release(&held, result);
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(mut held) = self.held.take().filter(|held| !held.borrowed) {
            // The release stops renewal, once no renewal request is out.
            match crate::util::background::handle() {
                Ok(runtime) => {
                    let release = async move {
                        let result = held.release_with(&AsyncIo).await;
                        log_release(&held, result);
                    };
                    runtime.spawn(release.instrument(tracing::Span::current()));
                }
                Err(e) => {
                    let error = &e as &(dyn std::error::Error + 'static);
                    tracing::warn!(lock = %held.name, error, "redis-locked: could not release the lock; it expires with its lease")
                }
            }
        }
    }
}

/// A held lock, acquired by sync code. Release it with
/// [`release`](BlockingLockGuard::release), or drop it: the drop releases it on this
/// thread before returning (also while unwinding from a panic).
#[must_use = "the lock is released when the guard is dropped"]
pub struct BlockingLockGuard {
    held: Option<Held>,
}

impl BlockingLockGuard {
    pub(crate) fn new(mut held: Held) -> BlockingLockGuard {
        held.start_renewal();
        BlockingLockGuard { held: Some(held) }
    }

    /// Blocks until the lock can no longer be trusted (as for [`LockGuard::lost`]) or
    /// `timeout` passes; true when it was lost.
    pub fn wait_lost(&self, timeout: Duration) -> bool {
        let held = self.held();
        let deadline = Instant::now().checked_add(timeout);
        if held.auto_renew {
            return block_on_until(held.state.wait_lost(), deadline).is_some();
        }
        loop {
            let until = held.state.valid_until();
            let now = Instant::now();
            if now >= until {
                return true;
            }
            match deadline {
                Some(deadline) if deadline <= until => {
                    std::thread::sleep(deadline.saturating_duration_since(now));
                    return Instant::now() >= held.state.valid_until();
                }
                _ => std::thread::sleep(until - now),
            }
        }
    }

    /// Resets the lease to `lease` (`None`: the lock's own lease) from now.
    pub fn extend(&self, lease: Option<Duration>) -> Result<(), LockError> {
        block_on(self.held().extend_with(&SyncIo, lease))
    }

    /// Releases the lock; errors as for [`LockGuard::release`].
    pub fn release(mut self) -> Result<(), LockError> {
        let mut held = self
            .held
            .take()
            .expect("a guard holds its lock until consumed");
        block_on(held.release_with(&SyncIo))
    }
}

impl Drop for BlockingLockGuard {
    fn drop(&mut self) {
        if let Some(mut held) = self.held.take().filter(|held| !held.borrowed) {
            let result = block_on(held.release_with(&SyncIo));
            log_release(&held, result);
        }
    }
}

/// Reports the outcome of a release nobody can be handed. A lock found expired (its lease
/// ran out under the body: the work was not exclusive to the end) is a warning, counted as
/// lost, and marks the lease lost for the call to report; so is a release that failed. A
/// lock that renewal had found lost was warned about and counted then: only a debug event.
fn log_release(held: &Held, result: Result<(), LockError>) {
    match result {
        Ok(()) => {}
        Err(e @ LockError::Lost { .. }) => {
            tracing::debug!(lock = %held.name, error = %e, "redis-locked: released a lock renewal had found lost");
        }
        Err(e @ LockError::Expired { .. }) => {
            held.state.set_lost();
            crate::util::metrics::lost(held.template);
            tracing::warn!(lock = %held.name, error = %e, "redis-locked: lock lost while held: it had expired before its release");
        }
        Err(e) => {
            tracing::warn!(lock = %held.name, error = %e, "redis-locked: could not release the lock")
        }
    }
}
