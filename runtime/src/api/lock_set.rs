//! [`LockSet`]: several named locks taken together, all of them or none, in one canonical
//! order, so that two callers naming the same locks in different orders cannot deadlock.

use std::time::{Duration, Instant};

use crate::algorithm::held::Held;
use crate::api::guard::{BlockingLockGuard, LockGuard};
use crate::api::lock::Lock;
use crate::api::set_guard::{BlockingLockSetGuard, LockSetGuard};
use crate::util::error::LockError;

/// Several locks on one client, taken together: [`acquire`](LockSet::acquire) holds all of
/// them or none. The programmatic API under `#[redis_lock(name = ["...", "..."])]`.
///
/// Locks are taken one at a time in the order of their Redis keys, whatever order they
/// were named in: every caller wanting two of the same locks wants the first of them
/// first, so no two callers can each hold one and wait for the other. A name given twice
/// is one lock. Should one of them not be had (a timeout, an error), those taken already
/// are released before the error returns. Each lock keeps its own lease, renewal and
/// fencing token.
///
/// ```no_run
/// # async fn demo() -> Result<(), redis_locked::LockError> {
/// use std::time::Duration;
/// use redis_locked::LockSet;
///
/// let accounts = LockSet::new(["account:7", "account:3"])?.expire(Duration::from_secs(10));
/// let held = accounts.acquire(Some(Duration::from_secs(2))).await?;
/// let token = held.fencing_token("account:3");
/// // ... move money between the two accounts ...
/// held.release().await?;
/// # let _ = token;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct LockSet {
    /// In canonical order (by key), each key once.
    locks: Vec<Lock>,
}

impl LockSet {
    /// The locks `names` on the default client (see [`Lock::new`]). At least one name.
    pub fn new<I, S>(names: I) -> Result<LockSet, LockError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        LockSet::of(names.into_iter().map(Lock::new).collect::<Result<_, _>>()?)
    }

    /// The locks `names` on the client registered as `client` (see [`Lock::with_client`]).
    pub fn with_client<I, S>(client: &str, names: I) -> Result<LockSet, LockError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let locks = names
            .into_iter()
            .map(|name| Lock::with_client(client, name))
            .collect::<Result<_, _>>()?;
        LockSet::of(locks)
    }

    /// The set of `locks`, put in canonical order, each key once.
    pub(crate) fn of(mut locks: Vec<Lock>) -> Result<LockSet, LockError> {
        if locks.is_empty() {
            return Err(LockError::invalid("a lock set needs at least one name"));
        }
        locks.sort_by(|a, b| a.key().cmp(b.key()));
        locks.dedup_by(|a, b| a.key() == b.key());
        Ok(LockSet { locks })
    }

    /// The locks, in the order they are taken.
    pub fn locks(&self) -> &[Lock] {
        &self.locks
    }

    fn each(mut self, set: impl Fn(Lock) -> Lock) -> LockSet {
        self.locks = self.locks.into_iter().map(set).collect();
        self
    }

    /// [`Lock::expire`] for every lock of the set.
    pub fn expire(self, lease: Duration) -> LockSet {
        self.each(|lock| lock.expire(lease))
    }

    /// [`Lock::auto_renew`] for every lock of the set.
    pub fn auto_renew(self, on: bool) -> LockSet {
        self.each(|lock| lock.auto_renew(on))
    }

    /// [`Lock::fencing`] for every lock of the set.
    pub fn fencing(self, on: bool) -> LockSet {
        self.each(|lock| lock.fencing(on))
    }

    /// [`Lock::max_hold`] for every lock of the set.
    pub fn max_hold(self, hold: Duration) -> LockSet {
        self.each(|lock| lock.max_hold(hold))
    }

    /// [`Lock::min_hold`] for every lock of the set.
    pub fn min_hold(self, hold: Duration) -> LockSet {
        self.each(|lock| lock.min_hold(hold))
    }

    /// [`Lock::permits`] for every lock of the set.
    pub fn permits(self, permits: u32) -> LockSet {
        self.each(|lock| lock.permits(permits))
    }

    /// [`Lock::shared`] for every lock of the set.
    pub fn shared(self) -> LockSet {
        self.each(Lock::shared)
    }

    /// Labels the locks' metrics and holder descriptions with the attribute's template.
    pub(crate) fn template(self, template: &'static str) -> LockSet {
        self.each(|lock| lock.template(template))
    }

    /// Takes every lock of the set, at most `timeout` in all (`None`: until acquired;
    /// zero: one attempt each).
    pub async fn acquire(&self, timeout: Option<Duration>) -> Result<LockSetGuard, LockError> {
        self.acquire_passing(timeout, |_| None).await
    }

    /// [`acquire`](LockSet::acquire) for sync code (see [`Lock::acquire_blocking`]).
    pub fn acquire_blocking(
        &self,
        timeout: Option<Duration>,
    ) -> Result<BlockingLockSetGuard, LockError> {
        self.acquire_blocking_passing(timeout, |_| None)
    }

    /// [`acquire`](LockSet::acquire), where `held_here` may answer for a lock instead: a
    /// view of it that the caller already holds, or the error that asking would be.
    pub(crate) async fn acquire_passing(
        &self,
        timeout: Option<Duration>,
        held_here: impl Fn(&Lock) -> Option<Result<Held, LockError>>,
    ) -> Result<LockSetGuard, LockError> {
        let deadline = deadline(timeout);
        let mut guards = Vec::with_capacity(self.locks.len());
        for lock in &self.locks {
            let guard = match held_here(lock) {
                Some(found) => found.map(LockGuard::new),
                None => lock.acquire(left(deadline)).await,
            };
            match guard {
                Ok(guard) => guards.push(guard),
                Err(error) => {
                    // None of them: those taken already go before the error returns.
                    for guard in guards.into_iter().rev() {
                        let _ = guard.release().await;
                    }
                    return Err(error);
                }
            }
        }
        Ok(LockSetGuard::new(guards))
    }

    /// [`acquire_passing`](LockSet::acquire_passing) for sync code.
    pub(crate) fn acquire_blocking_passing(
        &self,
        timeout: Option<Duration>,
        held_here: impl Fn(&Lock) -> Option<Result<Held, LockError>>,
    ) -> Result<BlockingLockSetGuard, LockError> {
        let deadline = deadline(timeout);
        let mut guards = Vec::with_capacity(self.locks.len());
        for lock in &self.locks {
            let guard = match held_here(lock) {
                Some(found) => found.map(BlockingLockGuard::new),
                None => lock.acquire_blocking(left(deadline)),
            };
            match guard {
                Ok(guard) => guards.push(guard),
                Err(error) => {
                    for guard in guards.into_iter().rev() {
                        let _ = guard.release();
                    }
                    return Err(error);
                }
            }
        }
        Ok(BlockingLockSetGuard::new(guards))
    }
}

/// When a `timeout` from now ends; `None` for none (or one too long to represent).
fn deadline(timeout: Option<Duration>) -> Option<Option<Instant>> {
    timeout.map(|timeout| Instant::now().checked_add(timeout))
}

/// What is left of the set's timeout for its next lock: zero once past the deadline, so
/// that each lock still gets its one attempt.
fn left(deadline: Option<Option<Instant>>) -> Option<Duration> {
    match deadline {
        None | Some(None) => None,
        Some(Some(deadline)) => Some(deadline.saturating_duration_since(Instant::now())),
    }
}
