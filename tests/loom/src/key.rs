//! A model of one lock's key in Redis, with the effect of each of the runtime's scripts on
//! it as one atomic step (scripts run atomically in Redis). Leases never run out here:
//! a lock nobody frees stays taken, so a model that leaks one ends with the key held.

use crate::sync::{Mutex, lock};

pub(crate) struct Key {
    owner: Mutex<Option<String>>,
    /// Whether processes other than this one wait for the lock too: then a handover
    /// releases it to everyone instead (the handover script's `-1`).
    others_wait: bool,
}

/// What the handover script answered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HandoverReply {
    /// The key holds the waiter's value now (a positive fencing token).
    Handed,
    /// Released to everyone: another process waits too (`-1`).
    Released,
    /// The key did not hold the releaser's value (`0`).
    NotOurs,
}

impl Key {
    pub(crate) fn new(owner: Option<&str>, others_wait: bool) -> Key {
        Key {
            owner: Mutex::new(owner.map(str::to_string)),
            others_wait,
        }
    }

    /// The acquisition script: takes the lock when it is free, and counts it as taken when
    /// it already holds `value` (a request or handover whose reply was lost).
    pub(crate) fn acquire(&self, value: &str) -> bool {
        let mut owner = lock(&self.owner);
        match owner.as_deref() {
            None => {
                *owner = Some(value.to_string());
                true
            }
            Some(held) => held == value,
        }
    }

    /// The handover script, from the releaser's value `from` to the waiter's `to`.
    pub(crate) fn hand_over(&self, from: &str, to: &str) -> HandoverReply {
        let mut owner = lock(&self.owner);
        if owner.as_deref() == Some(to) {
            return HandoverReply::Handed;
        }
        if owner.as_deref() != Some(from) {
            return HandoverReply::NotOurs;
        }
        if self.others_wait {
            *owner = None;
            return HandoverReply::Released;
        }
        *owner = Some(to.to_string());
        HandoverReply::Handed
    }

    /// The release script: frees the lock if it holds `value`.
    pub(crate) fn release(&self, value: &str) -> bool {
        let mut owner = lock(&self.owner);
        let ours = owner.as_deref() == Some(value);
        if ours {
            *owner = None;
        }
        ours
    }

    pub(crate) fn owner(&self) -> Option<String> {
        lock(&self.owner).clone()
    }
}
