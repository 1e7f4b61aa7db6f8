//! One acquisition: what it holds (see `hold.rs`) and its renewal task; extending it. Its
//! release is in `release.rs`, its renewal in `renewal.rs`, and the guards that own it in
//! `guard.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::algorithm::client::LockClient;
use crate::algorithm::hold::{Hold, SharedHold};
use crate::algorithm::lease_state::LeaseState;
use crate::algorithm::renewal::{first_renewal, renew};
use crate::servers::io::Io;
use crate::util::deferred::Deferred;
use crate::util::error::LockError;
use crate::util::kind::LockKind;
use crate::util::lease::lease_millis;

/// One acquisition: the owner value and what is needed to renew and release it.
pub(crate) struct Held {
    /// What it holds, shared with its renewal task and with the record of the locks the
    /// current task or thread holds.
    hold: SharedHold,
    /// The renewal task, started at the first renewal's time unless the lock is
    /// released before (see `util/deferred.rs`).
    pub(crate) renewal: Option<Deferred>,
    /// A reentrant call's view of a lock its caller holds: it neither renews nor releases.
    pub(crate) borrowed: bool,
}

impl std::ops::Deref for Held {
    type Target = Hold;

    fn deref(&self) -> &Hold {
        &self.hold
    }
}

/// How long an acquisition may and must hold its lock, from when it was taken:
/// [`Lock::max_hold`](crate::Lock::max_hold) and [`Lock::min_hold`](crate::Lock::min_hold).
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct HoldBounds {
    pub(crate) max: Option<Duration>,
    pub(crate) min: Option<Duration>,
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

impl Held {
    pub(crate) fn new(
        client: Arc<LockClient>,
        name: String,
        key: String,
        acquired: Acquired,
        lease: Duration,
        auto_renew: bool,
        bounds: HoldBounds,
    ) -> Held {
        let Acquired {
            value,
            fence,
            since,
        } = acquired;
        // Counted from now, when the reply has come: no earlier than Redis took the lock,
        // so the minimum hold is never cut short, and the maximum one runs over by less
        // than the reply's trip.
        let taken = Instant::now();
        let after = |bound: Option<Duration>| bound.and_then(|bound| taken.checked_add(bound));
        Held {
            hold: SharedHold::new(Hold {
                client,
                name,
                key,
                value,
                fence,
                lease,
                auto_renew,
                state: Arc::new(LeaseState::new(since + lease, after(bounds.max))),
                template: None,
                keep_until: after(bounds.min),
                kind: LockKind::Exclusive,
            }),
            renewal: None,
            borrowed: false,
        }
    }

    /// Counts this lock's losses in the metrics under the attribute's name template.
    pub(crate) fn with_template(mut self, template: Option<&'static str>) -> Held {
        // Not shared yet: nothing is copied.
        self.hold.make_mut().template = template;
        self
    }

    /// A place among the holders of a lock of this kind.
    pub(crate) fn with_kind(mut self, kind: LockKind) -> Held {
        self.hold.make_mut().kind = kind;
        self
    }

    /// The record of this acquisition for the locks the current task or thread holds.
    pub(crate) fn shared(&self) -> SharedHold {
        self.hold.clone()
    }

    /// A view of the lock `hold` held by a caller, for a reentrant call: same token, fence
    /// and lease state; it neither renews nor releases.
    pub(crate) fn pass_through(hold: &SharedHold) -> Held {
        Held {
            hold: hold.clone(),
            renewal: None,
            borrowed: true,
        }
    }

    /// The owner value now in the lock's key, when it changed under this acquisition (a
    /// lock handed to a waiter that left, see `release.rs`).
    pub(crate) fn set_value(&mut self, value: String) {
        // Copies what it holds if it is shared still (the release keeps a reference while
        // it hands over): rare, and the copy is the one this acquisition goes on with.
        self.hold.make_mut().value = value;
    }

    /// Starts renewing every third of the lease, on the background runtime, in the
    /// current span (a `#[redis_lock]` call's), so that a lost lock is reported where it
    /// was held. The task is spawned only when its first renewal is due: a call that ends
    /// before then costs the background thread nothing.
    pub(crate) fn start_renewal(&mut self) {
        if !self.auto_renew || self.borrowed {
            return;
        }
        let first = first_renewal(&self.state, self.lease);
        let task = renew(self.hold.clone());
        let task = task.instrument(tracing::Span::current());
        self.renewal = Deferred::start_at(first, task);
    }

    pub(crate) fn stop_renewal(&mut self) {
        if let Some(task) = self.renewal.take() {
            task.stop();
        }
    }

    pub(crate) async fn extend_with<I: Io>(
        &self,
        io: &I,
        lease: Option<Duration>,
    ) -> Result<(), LockError> {
        let sent = Instant::now();
        // No further than the end of the maximum hold; at its end, there is nothing to extend.
        let Some(lease) = self
            .state
            .lease_within_hold(sent, lease.unwrap_or(self.lease))
        else {
            return Err(LockError::Lost {
                name: self.name.clone(),
            });
        };
        let ms = lease_millis(lease)?.to_string();
        let backend = &self.client.backend;
        let extended = match self.kind.is_counted() {
            true => {
                backend
                    .counted_extend(io, &self.key, &self.value, &ms)
                    .await
            }
            false => {
                backend
                    .extend(io, &self.name, &self.key, &self.value, &ms, None)
                    .await
            }
        }
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
}
