//! A held lock's lease as this process knows it, and its auto-renewal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::algorithm::client::LockClient;
use crate::servers::io::AsyncIo;
use crate::util::kind::LockKind;
use crate::util::lease::lease_millis;
use crate::util::sync::lock;

/// What the holder knows about its lease, kept up to date by renewals and extensions,
/// read by the guards and awaited by bodies that stop when their lock is lost.
pub(crate) struct LeaseState {
    /// When the lease ends unless renewed, by this process's clock. Counted from before
    /// the request that set it was sent, so never later than Redis's own expiry.
    pub(crate) valid_until: Mutex<Instant>,
    /// Set once, when renewal finds the lock gone.
    pub(crate) lost: AtomicBool,
    pub(crate) lost_notify: tokio::sync::Notify,
    /// Held by the renewal task while its request is out, and by the release before it
    /// stops renewal. On a Redlock quorum a renewal writes the key again where it is
    /// absent: one that reached a server after the release would take the lock back there
    /// for a whole lease, so the release waits for it instead of cutting it short.
    pub(crate) renewing: tokio::sync::Mutex<()>,
    /// The end of the maximum hold (`Lock::max_hold`): no renewal or extension carries the
    /// lease past it.
    pub(crate) hold_until: Option<Instant>,
}

impl LeaseState {
    pub(crate) fn new(valid_until: Instant, hold_until: Option<Instant>) -> LeaseState {
        LeaseState {
            valid_until: Mutex::new(valid_until),
            lost: AtomicBool::new(false),
            lost_notify: tokio::sync::Notify::new(),
            renewing: tokio::sync::Mutex::new(()),
            hold_until,
        }
    }

    /// How long a lease of `lease` starting at `from` may be without passing the end of
    /// the maximum hold: `lease` itself without one, `None` once less than a millisecond
    /// (what Redis counts in) is left of it.
    pub(crate) fn lease_within_hold(&self, from: Instant, lease: Duration) -> Option<Duration> {
        let Some(hold_until) = self.hold_until else {
            return Some(lease);
        };
        let left = hold_until.saturating_duration_since(from);
        (left >= Duration::from_millis(1)).then(|| lease.min(left))
    }

    pub(crate) fn valid_until(&self) -> Instant {
        *lock(&self.valid_until)
    }

    pub(crate) fn renewed(&self, until: Instant) {
        *lock(&self.valid_until) = until;
    }

    pub(crate) fn set_lost(&self) {
        self.lost.store(true, Ordering::Release);
        self.lost_notify.notify_waiters();
    }

    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Completes once renewal finds the lock lost; never, if it does not.
    pub(crate) async fn wait_lost(&self) {
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
    pub(crate) async fn wait_expired(&self) {
        loop {
            let until = self.valid_until();
            if Instant::now() >= until {
                return;
            }
            tokio::time::sleep_until(until.into()).await;
        }
    }
}

/// What renewal needs of a held lock.
pub(crate) struct Renewal {
    pub(crate) client: Arc<LockClient>,
    pub(crate) name: String,
    pub(crate) key: String,
    pub(crate) value: String,
    pub(crate) lease: Duration,
    pub(crate) state: Arc<LeaseState>,
    pub(crate) template: Option<&'static str>,
    pub(crate) kind: LockKind,
}

/// When the first renewal of a lease of `lease` is due: a third of it after it started.
pub(crate) fn first_renewal(state: &LeaseState, lease: Duration) -> Instant {
    state.valid_until() - lease + lease / 3
}

/// Renews the lease every third of it. The lock counts as lost when Redis says it is not
/// ours any more, and also when the lease runs out before a renewal got through (Redis
/// unreachable or stalled): from then on another owner may hold it. With a maximum hold,
/// the last renewal takes the lease only to the hold's end, and the lock counts as lost
/// when that lease runs out: Redis lets it go then on its own.
pub(crate) async fn renew(renewal: Renewal) {
    let Renewal {
        client,
        name,
        key,
        value,
        lease,
        state,
        template,
        kind,
    } = renewal;
    let every = lease / 3;
    let lose = |why: &str| {
        state.set_lost();
        crate::util::metrics::lost(template);
        tracing::warn!(lock = %name, "redis-locked: lock lost while held: {why}");
    };
    const HELD_TOO_LONG: &str = "it was held for its maximum hold (max_hold), and renewal stopped";
    let mut next = first_renewal(&state, lease);
    // Renewals failed in a row: the first of a run is a warning, the retries are not.
    let mut failures = 0u32;
    // Set by the renewal that took the lease to the end of the maximum hold: the last one.
    let mut last_renewed = false;
    loop {
        tokio::time::sleep_until(next.min(state.valid_until()).into()).await;
        // Read again: `extend` may have moved it while this task slept.
        let valid_until = state.valid_until();
        let sent = Instant::now();
        let within_hold = state.lease_within_hold(sent, lease);
        if sent >= valid_until {
            return lose(match last_renewed || within_hold.is_none() {
                true => HELD_TOO_LONG,
                false => "its lease ran out before a renewal reached Redis",
            });
        }
        let Some(renewal) = within_hold else {
            // Less than a millisecond of the hold is left: nothing to renew; it ends with
            // the lease.
            last_renewed = true;
            next = valid_until;
            continue;
        };
        let Ok(ms) = lease_millis(renewal) else {
            return;
        };
        // A renewal that may restore the key never runs while the guard releases it.
        let _out = match client.backend.renewal_restores() {
            true => Some(state.renewing.lock().await),
            false => None,
        };
        let ms = ms.to_string();
        let renewed = match kind.is_counted() {
            true => {
                client
                    .backend
                    .counted_extend(&AsyncIo, &key, &value, &ms)
                    .await
            }
            false => {
                client
                    .backend
                    .extend(&AsyncIo, &name, &key, &value, &ms, Some(valid_until))
                    .await
            }
        };
        match renewed {
            Ok(true) => {
                state.renewed(sent + renewal - client.backend.drift(renewal));
                next = sent + every;
                if renewal < lease {
                    // The lease now ends with the hold: sleep until then, then let go.
                    last_renewed = true;
                    next = state.valid_until();
                }
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
