//! What an acquisition holds: its owner value, fencing token and lease, shared with the
//! renewal task; extending it. Its release is in `release.rs`, its renewal in `renewal.rs`,
//! and the guards that own it in `guard.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::algorithm::client::LockClient;
use crate::algorithm::renewal::{LeaseState, Renewal, first_renewal, renew};
use crate::servers::io::Io;
use crate::util::deferred::Deferred;
use crate::util::error::LockError;
use crate::util::kind::LockKind;
use crate::util::lease::lease_millis;

/// One acquisition: the owner value and what is needed to renew and release it.
pub(crate) struct Held {
    /// What it holds, shared as it is with the record of the locks the current task or
    /// thread holds (see [`SharedHold`]): sharing it copies no string.
    hold: Arc<Hold>,
    /// The renewal task, started at the first renewal's time unless the lock is
    /// released before (see `util/deferred.rs`).
    pub(crate) renewal: Option<Deferred>,
    /// A reentrant call's view of a lock its caller holds: it neither renews nor releases.
    pub(crate) borrowed: bool,
}

/// What an acquisition holds: fixed when it is taken, but for the owner value a release
/// may find changed (see `release.rs`).
#[derive(Clone)]
pub(crate) struct Hold {
    pub(crate) client: Arc<LockClient>,
    pub(crate) name: String,
    pub(crate) key: String,
    /// What the lock's key holds while this acquisition has it: the owner token and the
    /// holder's description (see `holder.rs`).
    pub(crate) value: String,
    /// This acquisition's fencing token: greater than that of every earlier acquisition
    /// of the same lock name.
    pub(crate) fence: u64,
    pub(crate) lease: Duration,
    pub(crate) auto_renew: bool,
    /// Shared with the renewal task.
    pub(crate) state: Arc<LeaseState>,
    /// The attribute's name template, for metrics; `None` for programmatic locks.
    pub(crate) template: Option<&'static str>,
    /// The end of the minimum hold (`Lock::min_hold`): a release before it leaves the key
    /// to expire then instead of deleting it.
    pub(crate) keep_until: Option<Instant>,
    /// How many may hold the lock at once: renewal and release go to the holders' hash
    /// when it is more than one (see `protocol/counted.rs`).
    pub(crate) kind: LockKind,
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

/// A lock held by a `#[redis_lock]` call, as nested calls in the same task or thread see
/// it (see `call/held_here.rs`).
#[derive(Clone)]
pub(crate) struct SharedHold(Arc<Hold>);

impl std::ops::Deref for SharedHold {
    type Target = Hold;

    fn deref(&self) -> &Hold {
        &self.0
    }
}

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
        Held {
            hold: self.0.clone(),
            renewal: None,
            borrowed: true,
        }
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
            hold: Arc::new(Hold {
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
        Arc::make_mut(&mut self.hold).template = template;
        self
    }

    /// A place among the holders of a lock of this kind.
    pub(crate) fn with_kind(mut self, kind: LockKind) -> Held {
        Arc::make_mut(&mut self.hold).kind = kind;
        self
    }

    /// The record of this acquisition for the locks the current task or thread holds.
    pub(crate) fn shared(&self) -> SharedHold {
        SharedHold(self.hold.clone())
    }

    /// The owner value now in the lock's key, when it changed under this acquisition (a
    /// lock handed to a waiter that left, see `release.rs`).
    pub(crate) fn set_value(&mut self, value: String) {
        // Copies what it holds if it is shared still (the release keeps a reference while
        // it hands over): rare, and the copy is the one this acquisition goes on with.
        Arc::make_mut(&mut self.hold).value = value;
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
        let task = renew(Renewal {
            client: self.client.clone(),
            name: self.name.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
            lease: self.lease,
            state: self.state.clone(),
            template: self.template,
            kind: self.kind,
        });
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
