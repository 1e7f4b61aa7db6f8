//! What an acquisition holds, its auto-renewal, and its release on every way out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::block_on::{block_on, block_on_until};
use crate::cleanup::Orphan;
use crate::client::LockClient;
use crate::error::LockError;
use crate::io::{AsyncIo, Io, SyncIo};
use crate::lease::lease_millis;
use crate::scripts::fence_key;
use crate::sync::lock;
use crate::waiters::{Grant, HandoffOutcome, Handover};

/// One acquisition: the owner value and what is needed to renew and release it.
pub(crate) struct Held {
    client: Arc<LockClient>,
    name: String,
    key: String,
    /// What the lock's key holds while this acquisition has it: the owner token and the
    /// holder's description (see `holder.rs`).
    value: String,
    /// This acquisition's fencing token: greater than that of every earlier acquisition
    /// of the same lock name.
    fence: u64,
    lease: Duration,
    auto_renew: bool,
    /// Shared with the renewal task.
    state: Arc<LeaseState>,
    renewal: Option<tokio::task::AbortHandle>,
    /// A reentrant call's view of a lock its caller holds: it neither renews nor releases.
    borrowed: bool,
    /// The attribute's name template, for metrics; `None` for programmatic locks.
    template: Option<&'static str>,
}

/// A lock held by a `#[redis_lock]` call, as nested calls in the same task or thread see
/// it (see `call/held_here.rs`).
#[derive(Clone)]
pub(crate) struct SharedHold(Arc<Held>);

impl SharedHold {
    /// Whether this is lock `name` of `client` (the very client: a scope's client and the
    /// registered one it stands in for are different locks).
    pub(crate) fn is(&self, client: &LockClient, name: &str) -> bool {
        std::ptr::eq(&*self.0.client, client) && self.0.name == name
    }

    /// Whether both are the same acquisition.
    pub(crate) fn same_as(&self, other: &SharedHold) -> bool {
        self.0.value == other.0.value && self.0.key == other.0.key
    }

    /// A view of the held lock for a reentrant call: same token, fence and lease state.
    pub(crate) fn pass_through(&self) -> Held {
        self.0.borrow()
    }
}

/// What an acquisition got from Redis.
pub(crate) struct Acquired {
    /// The owner value now in the lock's key.
    pub(crate) value: String,
    /// The acquisition's fencing token.
    pub(crate) fence: u64,
    /// The lease began no earlier than this.
    pub(crate) since: Instant,
}

/// What the holder knows about its lease, kept up to date by renewals and extensions,
/// read by the guards and awaited by bodies that stop when their lock is lost.
pub(crate) struct LeaseState {
    /// When the lease ends unless renewed, by this process's clock. Counted from before
    /// the request that set it was sent, so never later than Redis's own expiry.
    valid_until: Mutex<Instant>,
    /// Set once, when renewal finds the lock gone.
    lost: AtomicBool,
    lost_notify: tokio::sync::Notify,
    /// Held by the renewal task while its request is out, and by the release before it
    /// stops renewal. On a Redlock quorum a renewal writes the key again where it is
    /// absent: one that reached a server after the release would take the lock back there
    /// for a whole lease, so the release waits for it instead of cutting it short.
    renewing: tokio::sync::Mutex<()>,
}

impl LeaseState {
    fn new(valid_until: Instant) -> LeaseState {
        LeaseState {
            valid_until: Mutex::new(valid_until),
            lost: AtomicBool::new(false),
            lost_notify: tokio::sync::Notify::new(),
            renewing: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn valid_until(&self) -> Instant {
        *lock(&self.valid_until)
    }

    fn renewed(&self, until: Instant) {
        *lock(&self.valid_until) = until;
    }

    fn set_lost(&self) {
        self.lost.store(true, Ordering::Release);
        self.lost_notify.notify_waiters();
    }

    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Completes once renewal finds the lock lost; never, if it does not.
    async fn wait_lost(&self) {
        loop {
            // Created before the check, so a `set_lost` between the two still wakes it.
            let notified = self.lost_notify.notified();
            if self.is_lost() {
                return;
            }
            notified.await;
        }
    }

    /// Completes once the lease has run out without being extended.
    async fn wait_expired(&self) {
        loop {
            let until = self.valid_until();
            if Instant::now() >= until {
                return;
            }
            tokio::time::sleep_until(until.into()).await;
        }
    }
}

impl Held {
    pub(crate) fn new(
        client: Arc<LockClient>,
        name: String,
        key: String,
        acquired: Acquired,
        lease: Duration,
        auto_renew: bool,
    ) -> Held {
        let Acquired {
            value,
            fence,
            since,
        } = acquired;
        Held {
            client,
            name,
            key,
            value,
            fence,
            lease,
            auto_renew,
            state: Arc::new(LeaseState::new(since + lease)),
            renewal: None,
            borrowed: false,
            template: None,
        }
    }

    /// Counts this lock's losses in the metrics under the attribute's name template.
    pub(crate) fn with_template(mut self, template: Option<&'static str>) -> Held {
        self.template = template;
        self
    }

    fn borrow(&self) -> Held {
        Held {
            client: self.client.clone(),
            name: self.name.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
            fence: self.fence,
            lease: self.lease,
            auto_renew: self.auto_renew,
            state: self.state.clone(),
            renewal: None,
            borrowed: true,
            template: self.template,
        }
    }

    /// Starts renewing every third of the lease, on `runtime`, in the current span (a
    /// `#[redis_lock]` call's), so that a lost lock is reported where it was held.
    fn start_renewal(&mut self, runtime: &tokio::runtime::Handle) {
        if !self.auto_renew || self.borrowed {
            return;
        }
        let task = renew(
            self.client.clone(),
            self.name.clone(),
            self.key.clone(),
            self.value.clone(),
            self.lease,
            self.state.clone(),
            self.template,
        );
        let task = task.instrument(tracing::Span::current());
        self.renewal = Some(runtime.spawn(task).abort_handle());
    }

    fn stop_renewal(&mut self) {
        if let Some(task) = self.renewal.take() {
            task.abort();
        }
    }

    async fn extend_with<I: Io>(&self, io: &I, lease: Option<Duration>) -> Result<(), LockError> {
        let lease = lease.unwrap_or(self.lease);
        let ms = lease_millis(lease)?.to_string();
        let sent = Instant::now();
        let extended = self
            .client
            .backend
            .extend(io, &self.name, &self.key, &self.value, &ms, None)
            .await
            .map_err(|e| e.for_lock(&self.name))?;
        if extended {
            self.state
                .renewed(sent + lease - self.client.backend.drift(lease));
            Ok(())
        } else {
            Err(LockError::Expired {
                name: self.name.clone(),
            })
        }
    }

    /// Releases the lock; hands it straight to the next waiter of this process when there
    /// is one (one round trip instead of release, notify and re-acquire). Should this
    /// future be dropped before it is done, the lock is released in the background.
    async fn release_with<I: Io>(&mut self, io: &I) -> Result<(), LockError> {
        if self.borrowed {
            // The outermost call releases it.
            return Ok(());
        }
        let state = self.state.clone();
        let may_restore = self.renewal.is_some() && self.client.backend.renewal_restores();
        let mut unfinished = UnfinishedRelease {
            held: self,
            done: false,
        };
        let _no_renewal_out = match may_restore {
            true => Some(state.renewing.lock().await),
            false => None,
        };
        unfinished.held.stop_renewal();
        // A failure of Redis names the lock it failed for.
        let name = unfinished.held.name.clone();
        let result = unfinished
            .held
            .release_now(io)
            .await
            .map_err(|e| e.for_lock(&name));
        unfinished.done = true;
        result
    }

    async fn release_now<I: Io>(&mut self, io: &I) -> Result<(), LockError> {
        if self.state.is_lost() {
            // Lost by this process's reckoning; should the key still be ours after all (a
            // slow reply, not an expiry), freeing it by value lets the next holder in.
            self.release_later(Instant::now() + self.lease);
            self.client.waiters.notify(&self.key);
            return Err(LockError::Lost {
                name: self.name.clone(),
            });
        }
        let waiters = &self.client.waiters;
        let fence_key = fence_key(&self.key);
        let mut value = self.value.clone();
        let hand_over = self.client.backend.hands_over();
        while hand_over && let Some(handover) = waiters.offer_handoff(&self.key) {
            let ms = lease_millis(handover.lease)?.to_string();
            let own = handover.own_subscriptions.to_string();
            let sent = handover.sent;
            let offered = handover.value.clone();
            let attempt = HandoffAttempt {
                client: &self.client,
                key: &self.key,
                handover: Some(handover),
                value: &value,
                lease: self.lease,
                sent,
            };
            let args = [
                value.as_str(),
                &offered,
                &ms,
                &own,
                &self.client.instance_id,
            ];
            let keys = [self.key.as_str(), fence_key.as_str()];
            let reply = match self
                .client
                .backend
                .handoff(io, &keys, &args)
                .await
                .and_then(|r| r.as_int())
            {
                Ok(reply) => reply,
                Err(e) => {
                    // No answer: settled as unknown, as when this future is dropped.
                    drop(attempt);
                    return Err(e);
                }
            };
            let outcome = if reply > 0 {
                // A positive reply is the fencing token the waiter got.
                HandoffOutcome::Handed(Grant {
                    value: offered,
                    fence: reply as u64,
                    sent,
                })
            } else {
                HandoffOutcome::NotHanded
            };
            // When not handed over, `finish` pokes the waiter: it tries for itself.
            let Some(left_behind) = attempt.finish(outcome) else {
                // Handed over, or released to everyone (-1); 0: the lock was not ours.
                return if reply != 0 {
                    Ok(())
                } else {
                    Err(LockError::Expired {
                        name: self.name.clone(),
                    })
                };
            };
            // The waiter left while we handed it the lock: it is ours under its value now.
            value = left_behind;
            self.value.clone_from(&value);
        }
        let (released, unsure) = self
            .client
            .backend
            .release(io, &self.name, &self.key, &value, &self.client.instance_id)
            .await;
        waiters.notify(&self.key);
        if unsure {
            // A server is down or stalled: free the lock there as soon as it answers again,
            // rather than leave every waiter to its lease.
            self.value = value;
            self.release_later(self.state.valid_until());
        }
        if released? {
            Ok(())
        } else {
            Err(LockError::Expired {
                name: self.name.clone(),
            })
        }
    }

    fn release_later(&self, until: Instant) {
        crate::cleanup::release_later(
            &self.client,
            self.key.clone(),
            self.value.clone(),
            until,
            Orphan::Held,
        );
    }
}

/// A release in progress. Dropped before it is done (the releasing future was cancelled),
/// it frees the lock in the background by owner token, which is harmless if the release
/// had already gone through.
struct UnfinishedRelease<'a> {
    held: &'a mut Held,
    done: bool,
}

impl Drop for UnfinishedRelease<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.held.stop_renewal();
            let held = &*self.held;
            held.release_later(held.state.valid_until());
            held.client.waiters.notify(&held.key);
        }
    }
}

/// A handover in progress. Dropped before its outcome is known (no answer came, or the
/// releasing future was cancelled), the handover may or may not have run. If it did not,
/// the lock is still ours: it is freed under the releaser's token in the background. If
/// it did, the waiter's next attempt finds its own token and takes the lock; a waiter that
/// left meanwhile will not, so its token is freed in the background too.
struct HandoffAttempt<'a> {
    client: &'a Arc<LockClient>,
    key: &'a str,
    /// Until the outcome is known.
    handover: Option<Handover<'a>>,
    /// The releaser's owner value, which the key holds unless the handover ran.
    value: &'a str,
    lease: Duration,
    sent: Instant,
}

impl HandoffAttempt<'_> {
    /// Settles the handover (see `Handover::settle`).
    fn finish(mut self, outcome: HandoffOutcome) -> Option<String> {
        self.handover.take()?.settle(outcome)
    }
}

impl Drop for HandoffAttempt<'_> {
    fn drop(&mut self) {
        let Some(handover) = self.handover.take() else {
            return;
        };
        let until = self.sent + self.lease;
        let release_later = |value: String, orphan| {
            crate::cleanup::release_later(self.client, self.key.to_string(), value, until, orphan);
        };
        release_later(self.value.to_string(), Orphan::Held);
        if let Some(left) = handover.settle(HandoffOutcome::Unknown { sent: self.sent }) {
            release_later(left, Orphan::Maybe);
        }
    }
}

/// Renews the lease every third of it. The lock counts as lost when Redis says it is not
/// ours any more, and also when the lease runs out before a renewal got through (Redis
/// unreachable or stalled): from then on another owner may hold it.
async fn renew(
    client: Arc<LockClient>,
    name: String,
    key: String,
    value: String,
    lease: Duration,
    state: Arc<LeaseState>,
    template: Option<&'static str>,
) {
    let every = lease / 3;
    let Ok(ms) = lease_millis(lease) else { return };
    let ms = ms.to_string();
    let lose = |why: &str| {
        state.set_lost();
        crate::metrics::lost(template);
        tracing::warn!(lock = %name, "redis-locked: lock lost while held: {why}");
    };
    let mut next = state.valid_until() - lease + every;
    // Renewals failed in a row: the first of a run is a warning, the retries are not.
    let mut failures = 0u32;
    loop {
        tokio::time::sleep_until(next.min(state.valid_until()).into()).await;
        // Read again: `extend` may have moved it while this task slept.
        let valid_until = state.valid_until();
        let sent = Instant::now();
        if sent >= valid_until {
            return lose("its lease ran out before a renewal reached Redis");
        }
        // A renewal that may restore the key never runs while the guard releases it.
        let _out = match client.backend.renewal_restores() {
            true => Some(state.renewing.lock().await),
            false => None,
        };
        let renewed = client
            .backend
            .extend(&AsyncIo, &name, &key, &value, &ms, Some(valid_until))
            .await;
        match renewed {
            Ok(true) => {
                state.renewed(sent + lease - client.backend.drift(lease));
                next = sent + every;
                if failures > 0 {
                    tracing::info!(lock = %name, failures, "redis-locked: renewing the lock works again");
                    failures = 0;
                }
            }
            Ok(false) => return lose("auto-renewal found it expired or taken by another owner"),
            Err(e) => {
                failures += 1;
                let error = &e as &(dyn std::error::Error + 'static);
                if failures == 1 {
                    tracing::warn!(lock = %name, error, "redis-locked: renewing the lock failed; retrying");
                } else {
                    tracing::debug!(lock = %name, error, failures, "redis-locked: renewing the lock failed again; retrying");
                }
                // Sooner than usual: the lease is running out.
                next = Instant::now() + (every / 3).min(RENEWAL_RETRY);
            }
        }
    }
}

/// The longest pause between renewal attempts after one failed.
const RENEWAL_RETRY: Duration = Duration::from_millis(500);

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
                SharedHold(Arc::new(self.held().borrow()))
            }

            /// What the holder knows about the lease, also after the guard is gone.
            pub(crate) fn lease_state(&self) -> Arc<LeaseState> {
                self.held().state.clone()
            }

            /// The lock's name.
            pub fn name(&self) -> &str {
                &self.held().name
            }

            /// This acquisition's owner token (128 random bits, as 32 hex digits), as
            /// [`Lock::owner`](crate::Lock::owner) and [`LockInfo::owner`](crate::LockInfo::owner)
            /// show the holder's.
            pub fn token(&self) -> &str {
                crate::holder::token_of(&self.held().value)
            }

            /// This acquisition's fencing token: a number greater than that of every
            /// earlier acquisition of this lock name, kept by Redis across releases and
            /// resets. Hand it to the resource the lock protects, and have the resource
            /// refuse writes that carry a smaller number than one it has already seen: then
            /// a holder that outlived its lease (a long pause) cannot overwrite the work of
            /// the holder after it.
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
        if let Ok(runtime) = crate::background::handle() {
            held.start_renewal(runtime);
        }
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
            match crate::background::handle() {
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
        if let Ok(runtime) = crate::background::handle() {
            held.start_renewal(runtime);
        }
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
            crate::metrics::lost(held.template);
            tracing::warn!(lock = %held.name, error = %e, "redis-locked: lock lost while held: it had expired before its release");
        }
        Err(e) => {
            tracing::warn!(lock = %held.name, error = %e, "redis-locked: could not release the lock")
        }
    }
}
