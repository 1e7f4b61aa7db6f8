//! The guards of a [`LockSet`](crate::LockSet): every lock of the set, held together, and
//! released together on every way out.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::api::guard::{BlockingLockGuard, LockGuard};
use crate::util::error::LockError;

/// What both set guards answer alike, from the guards of their locks.
macro_rules! set_accessors {
    ($set:ident, $guard:ident) => {
        impl $set {
            pub(crate) fn new(guards: Vec<$guard>) -> $set {
                $set { guards }
            }

            /// The guard of each lock, in the order they were taken (that of their keys).
            pub fn guards(&self) -> &[$guard] {
                &self.guards
            }

            /// The names of the locks, in the order they were taken.
            pub fn names(&self) -> impl Iterator<Item = &str> {
                self.guards.iter().map(|guard| guard.name())
            }

            /// The fencing token of lock `name` (see
            /// [`LockGuard::fencing_token`](crate::LockGuard::fencing_token)); `None` when
            /// the set has no lock of that name.
            pub fn fencing_token(&self, name: &str) -> Option<u64> {
                self.guards
                    .iter()
                    .find(|guard| guard.name() == name)
                    .map(|guard| guard.fencing_token())
            }

            /// Each lock's name with its fencing token, in the order they were taken.
            pub fn fencing_tokens(&self) -> impl Iterator<Item = (&str, u64)> {
                self.guards
                    .iter()
                    .map(|guard| (guard.name(), guard.fencing_token()))
            }

            /// The least lease left of any lock of the set (see
            /// [`LockGuard::remaining_lease`](crate::LockGuard::remaining_lease)).
            pub fn remaining_lease(&self) -> Duration {
                self.guards
                    .iter()
                    .map(|guard| guard.remaining_lease())
                    .min()
                    .unwrap_or_default()
            }

            /// True once any lock of the set was found lost: the work is no longer
            /// exclusive as a whole.
            pub fn is_lost(&self) -> bool {
                self.guards.iter().any(|guard| guard.is_lost())
            }
        }

        impl std::fmt::Debug for $set {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($set))
                    .field("names", &self.names().collect::<Vec<_>>())
                    .finish_non_exhaustive()
            }
        }
    };
}

/// The locks of a [`LockSet`](crate::LockSet), acquired by async code. Released with
/// [`release`](LockSetGuard::release), or, dropped, each in the background as a dropped
/// [`LockGuard`] is.
#[must_use = "the locks are released when the guard is dropped"]
pub struct LockSetGuard {
    guards: Vec<LockGuard>,
}

set_accessors!(LockSetGuard, LockGuard);

impl LockSetGuard {
    /// Completes when any lock of the set can no longer be trusted (see
    /// [`LockGuard::lost`]).
    pub async fn lost(&self) {
        let mut lost: Vec<Pin<Box<dyn Future<Output = ()> + Send + '_>>> = self
            .guards
            .iter()
            .map(|guard| Box::pin(guard.lost()) as Pin<Box<dyn Future<Output = ()> + Send>>)
            .collect();
        std::future::poll_fn(|cx| {
            match lost.iter_mut().any(|one| one.as_mut().poll(cx).is_ready()) {
                true => Poll::Ready(()),
                false => Poll::Pending,
            }
        })
        .await
    }

    /// Releases every lock of the set, the last taken first; the first error, if any, once
    /// every one was tried.
    pub async fn release(self) -> Result<(), LockError> {
        let mut outcome = Ok(());
        for guard in self.guards.into_iter().rev() {
            let released = guard.release().await;
            if outcome.is_ok() {
                outcome = released;
            }
        }
        outcome
    }

    /// The guards, to be released one by one (by a `#[redis_lock]` call).
    pub(crate) fn into_guards(self) -> Vec<LockGuard> {
        self.guards
    }
}

/// The locks of a [`LockSet`](crate::LockSet), acquired by sync code. Released with
/// [`release`](BlockingLockSetGuard::release), or, dropped, on this thread before the drop
/// returns, the last taken first.
#[must_use = "the locks are released when the guard is dropped"]
pub struct BlockingLockSetGuard {
    guards: Vec<BlockingLockGuard>,
}

set_accessors!(BlockingLockSetGuard, BlockingLockGuard);

impl BlockingLockSetGuard {
    /// Blocks until any lock of the set can no longer be trusted (see
    /// [`BlockingLockGuard::wait_lost`]) or `timeout` passes; true when one was lost.
    pub fn wait_lost(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if self.is_lost() {
                return true;
            }
            // Each in turn, a short while at a time, until one is lost or time is up.
            let left = deadline.map_or(LOOK_EVERY, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return false;
            }
            let slice = left.min(LOOK_EVERY) / self.guards.len().max(1) as u32;
            if self.guards.iter().any(|guard| guard.wait_lost(slice)) {
                return true;
            }
        }
    }

    /// Releases every lock of the set, the last taken first; the first error, if any, once
    /// every one was tried.
    pub fn release(mut self) -> Result<(), LockError> {
        let mut outcome = Ok(());
        while let Some(guard) = self.guards.pop() {
            let released = guard.release();
            if outcome.is_ok() {
                outcome = released;
            }
        }
        outcome
    }
}

impl Drop for BlockingLockSetGuard {
    fn drop(&mut self) {
        // The last taken first, as `release` does (each guard's drop releases it).
        while let Some(guard) = self.guards.pop() {
            drop(guard);
        }
    }
}

/// How long a sync waiter for the loss of a set looks at one lock before the next.
const LOOK_EVERY: Duration = Duration::from_millis(50);
