//! A held lock's lease as this process knows it: when it ends, and whether it was lost.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
