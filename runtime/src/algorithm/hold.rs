//! What an acquisition holds, shared by its guard (see `held.rs`), its renewal task and
//! the record of the locks a task or thread holds (see `call/held_here.rs`): sharing it
//! copies no string.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::algorithm::client::LockClient;
use crate::algorithm::lease_state::LeaseState;
use crate::util::kind::LockKind;

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

/// What an acquisition holds, by reference: its guard's, its renewal task's, and the one a
/// `#[redis_lock]` call records for nested calls in the same task or thread to see.
#[derive(Clone)]
pub(crate) struct SharedHold(Arc<Hold>);

impl std::ops::Deref for SharedHold {
    type Target = Hold;

    fn deref(&self) -> &Hold {
        &self.0
    }
}

impl SharedHold {
    pub(crate) fn new(hold: Hold) -> SharedHold {
        SharedHold(Arc::new(hold))
    }

    /// What it holds, to change: copied first if other references share it.
    pub(crate) fn make_mut(&mut self) -> &mut Hold {
        Arc::make_mut(&mut self.0)
    }

    /// Whether this is lock `name` of `client` (the very client: a scope's client and the
    /// registered one it stands in for are different locks).
    pub(crate) fn is(&self, client: &LockClient, name: &str) -> bool {
        std::ptr::eq(&*self.0.client, client) && self.0.name == name
    }

    /// Whether both are the same acquisition.
    pub(crate) fn same_as(&self, other: &SharedHold) -> bool {
        self.0.value == other.0.value && self.0.key == other.0.key
    }
}
