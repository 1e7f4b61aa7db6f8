//! [`Lock`]: one named lock on one client, and the algorithm that acquires it.

use std::sync::Arc;
use std::time::Duration;

use crate::algorithm::acquire::Spec;
use crate::algorithm::client::LockClient;
use crate::algorithm::held::{Held, HoldBounds};
use crate::api::guard::{BlockingLockGuard, LockGuard};
use crate::api::reset::reset_key;
use crate::servers::io::{AsyncIo, Io, Route, SyncIo, command_until};
use crate::transport::reply::{Reply, unexpected};
use crate::util::block_on::block_on;
use crate::util::error::LockError;
use crate::util::kind::LockKind;

/// A named distributed lock on a registered Redis client: the programmatic API under
/// `#[redis_lock]`.
///
/// ```no_run
/// # async fn demo() -> Result<(), redis_locked::LockError> {
/// use std::time::Duration;
/// use redis_locked::Lock;
///
/// let lock = Lock::new("invoice:42")?.expire(Duration::from_secs(10));
/// let guard = lock.acquire(Some(Duration::from_secs(2))).await?;
/// // ... exclusive work ...
/// guard.release().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Lock {
    client: Arc<LockClient>,
    name: String,
    key: String,
    lease: Option<Duration>,
    auto_renew: Option<bool>,
    /// The attribute's name template, which labels metrics and tells operators what holds
    /// the lock (see `holder.rs`); `None` for programmatic use.
    template: Option<&'static str>,
    /// Whether acquisitions take a fencing token (see [`fencing`](Lock::fencing)).
    fenced: bool,
    /// [`max_hold`](Lock::max_hold) and [`min_hold`](Lock::min_hold).
    bounds: HoldBounds,
    /// [`permits`](Lock::permits) and [`shared`](Lock::shared).
    kind: LockKind,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("client", &self.client.name)
            .field("key", &self.key)
            .field("lease", &self.lease())
            .field("auto_renew", &self.auto_renews())
            .field("fencing", &self.fenced)
            .field("max_hold", &self.bounds.max)
            .field("min_hold", &self.bounds.min)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Lock {
    /// The lock `name` on the default client (see [`init`](crate::init)), or on the
    /// [`Client`](crate::Client) whose scope this runs in.
    ///
    /// Without [`expire`](Lock::expire) it has the client's default lease (30 s) and renews
    /// itself while held.
    pub fn new(name: impl Into<String>) -> Result<Lock, LockError> {
        Lock::on(crate::api::registry::client(None)?, name.into())
    }

    /// The lock `name` on the client registered as `client` (see [`register`](crate::register)),
    /// or on the [`Client`](crate::Client) a scope puts in its place.
    pub fn with_client(client: &str, name: impl Into<String>) -> Result<Lock, LockError> {
        Lock::on(crate::api::registry::client(Some(client))?, name.into())
    }

    /// The lock `name` on `client`.
    pub(crate) fn on(client: Arc<LockClient>, name: String) -> Result<Lock, LockError> {
        if name.is_empty() {
            return Err(LockError::invalid("a lock name must not be empty"));
        }
        Ok(Lock {
            key: client.key(&name),
            client,
            name,
            lease: None,
            auto_renew: None,
            template: None,
            fenced: true,
            bounds: HoldBounds::default(),
            kind: LockKind::Exclusive,
        })
    }

    /// Sets the lease: how long the lock stays held if its holder stops renewing it
    /// (millisecond precision, at least 1 ms). Unless [`auto_renew`](Lock::auto_renew) is
    /// also set, a lock with an explicit lease is not renewed.
    pub fn expire(mut self, lease: Duration) -> Lock {
        self.lease = Some(lease);
        self
    }

    /// Renews the lease every third of it while the lock is held.
    pub fn auto_renew(mut self, on: bool) -> Lock {
        self.auto_renew = Some(on);
        self
    }

    /// Whether acquisitions take a fencing token (on by default). Off, an uncontended
    /// acquisition is one bare `SET key value NX PX lease` instead of a script that also
    /// advances the lock's fencing counter, and the guard's
    /// [`fencing_token`](LockGuard::fencing_token) is 0, unless the lock was handed over
    /// from a waiter queue (those handovers always carry a fresh token). Tokens still grow
    /// strictly among the acquisitions that take one. A `#[redis_lock]` function takes one
    /// exactly when it binds its guard (`guard = ...`): without the guard its body cannot
    /// read it.
    pub fn fencing(mut self, on: bool) -> Lock {
        self.fenced = on;
        self
    }

    /// The longest an acquisition holds the lock, counted from when it was taken: renewal
    /// and [`extend`](LockGuard::extend) never carry its lease past this, so the lock is
    /// let go then even if the work is still running (the cap on a runaway job). The guard
    /// then counts it as lost: [`lost`](LockGuard::lost) completes, and a
    /// `#[redis_lock(on_lost = "abort")]` body is stopped. A lease longer than this is cut
    /// to it. At least 1 ms; not less than [`min_hold`](Lock::min_hold).
    pub fn max_hold(mut self, hold: Duration) -> Lock {
        self.bounds.max = Some(hold);
        self
    }

    /// The shortest an acquisition holds the lock, counted from when it was taken: released
    /// sooner, the lock is not freed but left to expire this long after it was taken (its
    /// key's expiry set to the rest of it, sooner or later than the lease would have
    /// ended), and nobody is handed it before then. For a job scheduled on several machines
    /// whose clocks differ by less than this: the first to start runs it, the others find
    /// it taken (with a `timeout` of zero) until it is safely past. A holder that crashes
    /// lets go at its lease's end, as always.
    pub fn min_hold(mut self, hold: Duration) -> Lock {
        self.bounds.min = Some(hold);
        self
    }

    /// Makes the lock a semaphore: at most `permits` holders at once, each with its own
    /// owner token, lease, renewal, fencing token and release; a holder that crashes gives
    /// its permit back when its lease ends. 1 is the plain lock. Every caller of one name
    /// must ask for the same number: a caller that asks for another (or for a plain or
    /// shared lock) gets [`LockError::KindMismatch`], and nothing is taken. On one server
    /// (or Sentinel), a Redis Cluster without `min_replicas` and the in-memory store; on a
    /// Redlock quorum or with `min_replicas` an acquisition is
    /// [`LockError::InvalidConfig`].
    pub fn permits(mut self, permits: u32) -> Lock {
        self.kind = LockKind::permits(permits);
        self
    }

    /// Makes this a shared (read) lock: any number of shared holders at once, while no
    /// plain (exclusive) acquisition of the same name holds it; an exclusive one waits for
    /// every shared holder to let go, and while it waits (queued in Redis), new shared
    /// acquisitions wait behind it, so a stream of readers cannot starve it. Each shared
    /// holder draws its own fencing token from the name's one counter: greater than every
    /// acquisition's before it, shared or exclusive, so a resource can tell which writes a
    /// reader may have seen. The same backends as [`permits`](Lock::permits).
    pub fn shared(mut self) -> Lock {
        self.kind = LockKind::Shared;
        self
    }

    /// Labels this lock's metrics and holder description with the attribute's name template.
    pub(crate) fn template(mut self, template: &'static str) -> Lock {
        self.template = Some(template);
        self
    }

    /// The lock's name, as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Redis key that holds the lock: `<prefix>{<name>}` (`<prefix>}{<hash>}<name>}` for
    /// a name that starts with `}`, which would otherwise break the Redis Cluster hash tag).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The client the lock lives on.
    pub(crate) fn client(&self) -> &Arc<LockClient> {
        &self.client
    }

    /// The lease each acquisition takes.
    pub fn lease(&self) -> Duration {
        self.lease.unwrap_or(self.client.default_lease)
    }

    /// Whether holders renew the lease while they hold the lock.
    pub fn auto_renews(&self) -> bool {
        self.auto_renew.unwrap_or(self.lease.is_none())
    }

    /// Waits for the lock, at most `timeout` in all (`None`: until acquired; zero: one attempt).
    ///
    /// Waiting costs no polling: the waiter is woken by the holder's release (announced by
    /// Redis pub/sub to other processes) or, if the holder died, when its lease runs out.
    pub async fn acquire(&self, timeout: Option<Duration>) -> Result<LockGuard, LockError> {
        tokio::runtime::Handle::try_current().map_err(|_| LockError::NoRuntime)?;
        let held = self.named(self.acquire_with(&AsyncIo, timeout).await)?;
        Ok(LockGuard::new(held))
    }

    /// One attempt: the guard if the lock was free, `None` if it is held.
    pub async fn try_acquire(&self) -> Result<Option<LockGuard>, LockError> {
        none_if_timeout(self.acquire(Some(Duration::ZERO)).await)
    }

    /// [`acquire`](Lock::acquire) for sync code: blocks this thread. Works with no Tokio
    /// runtime and inside one of any flavour (it never enters a runtime).
    pub fn acquire_blocking(
        &self,
        timeout: Option<Duration>,
    ) -> Result<BlockingLockGuard, LockError> {
        let held = self.named(block_on(self.acquire_with(&SyncIo, timeout)))?;
        Ok(BlockingLockGuard::new(held))
    }

    /// [`try_acquire`](Lock::try_acquire) for sync code.
    pub fn try_acquire_blocking(&self) -> Result<Option<BlockingLockGuard>, LockError> {
        none_if_timeout(self.acquire_blocking(Some(Duration::ZERO)))
    }

    /// Whether anyone holds the lock right now (for a semaphore or shared lock: any of its
    /// places).
    pub async fn is_locked(&self) -> Result<bool, LockError> {
        match self.kind.is_counted() {
            true => Ok(self.named(self.holders_with(&AsyncIo).await)? > 0),
            false => Ok(self.owner().await?.is_some()),
        }
    }

    /// [`is_locked`](Lock::is_locked) for sync code.
    pub fn is_locked_blocking(&self) -> Result<bool, LockError> {
        match self.kind.is_counted() {
            true => Ok(self.named(block_on(self.holders_with(&SyncIo)))? > 0),
            false => Ok(self.owner_blocking()?.is_some()),
        }
    }

    /// The owner token of the current holder, if any (compare with [`LockGuard::token`]).
    /// [`info`](Lock::info) also says who the holder is. A semaphore or shared lock has no
    /// one owner: asking is [`LockError::InvalidConfig`] (ask [`is_locked`](Lock::is_locked)).
    pub async fn owner(&self) -> Result<Option<String>, LockError> {
        self.named(self.owner_with(&AsyncIo).await)
    }

    /// [`owner`](Lock::owner) for sync code.
    pub fn owner_blocking(&self) -> Result<Option<String>, LockError> {
        self.named(block_on(self.owner_with(&SyncIo)))
    }

    /// Forces the lock free, whoever holds it, and wakes its waiters. Returns whether it was
    /// held. For recovery by an operator, not for normal release.
    pub async fn reset(&self) -> Result<bool, LockError> {
        self.named(self.reset_with(&AsyncIo).await)
    }

    /// [`reset`](Lock::reset) for sync code.
    pub fn reset_blocking(&self) -> Result<bool, LockError> {
        self.named(block_on(self.reset_with(&SyncIo)))
    }

    /// An outcome whose failure of Redis names this lock.
    pub(crate) fn named<T>(&self, outcome: Result<T, LockError>) -> Result<T, LockError> {
        outcome.map_err(|e| e.for_lock(&self.name))
    }

    /// The owner token in the lock's key, if it is held.
    async fn owner_with<I: Io>(&self, io: &I) -> Result<Option<String>, LockError> {
        if self.kind.is_counted() {
            return Err(LockError::invalid(
                "a semaphore or shared lock has several holders and no one owner: ask is_locked",
            ));
        }
        let get = redis::cmd("GET").arg(&self.key).clone();
        let owner =
            async |route: Route<'_>, until| match command_until(io, route, &get, until).await? {
                Reply::Nil => Ok(None),
                Reply::Bulk(value) => {
                    let value = String::from_utf8_lossy(&value);
                    Ok(Some(crate::util::holder::token_of(&value).to_string()))
                }
                other => Err(unexpected(&other)),
            };
        // Held by whoever holds it on a majority of a Redlock quorum; a minority's key is a
        // failed attempt on its way out, or a lease about to end.
        let owners: Vec<Option<String>> = self
            .client
            .backend
            .read_everywhere(io, &self.name, owner)
            .await?
            .into_iter()
            .flatten()
            .map(Some)
            .collect();
        Ok(self
            .client
            .backend
            .majority_of(&owners)
            .and_then(|i| owners[i].clone()))
    }

    async fn reset_with<I: Io>(&self, io: &I) -> Result<bool, LockError> {
        reset_key(io, &self.client, &self.name, &self.key).await
    }

    /// Acquires through the acquisition algorithm (see `acquire.rs`), shared by async and
    /// sync callers.
    pub(crate) async fn acquire_with<I: Io>(
        &self,
        io: &I,
        timeout: Option<Duration>,
    ) -> Result<Held, LockError> {
        let HoldBounds { max, min } = self.bounds;
        if let (Some(max), Some(min)) = (max, min)
            && min > max
        {
            return Err(LockError::invalid(format!(
                "min_hold ({min:?}) is longer than max_hold ({max:?}): no hold can meet both"
            )));
        }
        if self.kind.is_counted() {
            self.check_counted()?;
        }
        if max.is_some_and(|max| max < Duration::from_millis(1)) {
            return Err(LockError::invalid(
                "max_hold must be at least 1 ms: Redis expires keys in whole milliseconds",
            ));
        }
        let spec = Spec {
            client: &self.client,
            name: &self.name,
            key: &self.key,
            // Not past the maximum hold from the start.
            lease: max.map_or(self.lease(), |max| self.lease().min(max)),
            auto_renew: self.auto_renews(),
            template: self.template,
            fenced: self.fenced,
            bounds: self.bounds,
            kind: self.kind,
        };
        crate::algorithm::acquire::acquire(io, &spec, timeout).await
    }
}

impl Lock {
    /// What a semaphore or shared lock needs: permits to share, and a backend that keeps
    /// its holders (see `Backend::counts`).
    fn check_counted(&self) -> Result<(), LockError> {
        if self.kind == LockKind::Permits(0) {
            return Err(LockError::invalid(
                "a semaphore needs at least 1 permit (1 is the plain lock)",
            ));
        }
        if !self.client.backend.counts() {
            return Err(LockError::invalid(
                "semaphores and shared locks need one server (or Sentinel), a Redis Cluster without min_replicas, or the in-memory store: a Redlock quorum cannot count their holders safely, and min_replicas would not be waited for",
            ));
        }
        Ok(())
    }
}

fn none_if_timeout<G>(r: Result<G, LockError>) -> Result<Option<G>, LockError> {
    match r {
        Ok(g) => Ok(Some(g)),
        Err(LockError::Timeout { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

impl crate::api::scope::Client {
    /// The lock `name` on this client, in or out of any scope: [`Lock::new`] on this client.
    pub fn lock(&self, name: impl Into<String>) -> Result<Lock, LockError> {
        Lock::on(self.inner.clone(), name.into())
    }
}
