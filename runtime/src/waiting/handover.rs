//! A lock handed straight from its releaser to the next waiter of this process: the offer
//! to the queue's head, and its settlement, exactly once (see `waiters.rs`); and a lock
//! handed to a waiter of this process from the queue in Redis, by a releaser anywhere.

use std::time::{Duration, Instant};

// Only these, and std: `tests/loom` compiles this file against loom's locks and atomics.
use crate::util::sync::lock;
use crate::waiting::waiters::{Grant, HandoffOutcome, Offer, Subscription, WaitTable, poke_head};

/// A handover offered to the queue's head: the releaser may write the head's owner value
/// into the key in place of its own.
///
/// Settled exactly once: by [`Handover::settle`] with what the releaser learned, or, when
/// the releaser is dropped before it knew (its future was cancelled, or it returned early),
/// on drop, as unknown. The head makes no attempt of its own while a handover to it is
/// pending, so an offer left unsettled would leave it waiting for an answer that never
/// comes.
pub(crate) struct Handover<'a> {
    table: &'a WaitTable,
    key: &'a str,
    waiter: u64,
    /// The owner value the key is to hold: the head's.
    pub(crate) value: String,
    pub(crate) lease: Duration,
    /// Whether the head asks for a fencing token.
    pub(crate) fenced: bool,
    /// Subscriptions to the key's channel that are this process's own (0 or 1): any more
    /// mean other processes wait too.
    pub(crate) own_subscriptions: u8,
    /// Whether no request that could have queued the head in Redis was sent before this
    /// handover (none of its attempts joined the queue, no earlier handover offered it
    /// while this process listened): the handover may then queue it without looking for
    /// its entry there first.
    pub(crate) never_queued: bool,
    /// When the handover was offered. Its request goes out no earlier, so a lease it gives
    /// begins no earlier either.
    pub(crate) sent: Instant,
    settled: bool,
}

impl Handover<'_> {
    /// Completes the handover with its outcome, and wakes someone: the waiter, or, when it
    /// left, the next head. Returns the waiter's owner value when the waiter left in the
    /// meantime and the lock was, or may have been, handed to it, or it was queued in
    /// Redis: the lock is then the caller's under that value, to pass on or release
    /// (handed), or to free in the background (unknown); an entry is the caller's to
    /// withdraw (queued, unknown).
    pub(crate) fn settle(mut self, outcome: HandoffOutcome) -> Option<String> {
        self.settled = true;
        match self.table.settle_handover(self.key, self.waiter, outcome) {
            true => None,
            false => Some(std::mem::take(&mut self.value)),
        }
    }
}

impl Drop for Handover<'_> {
    fn drop(&mut self) {
        if !self.settled {
            // As unknown: the waiter settles it with its next attempt, or frees its token
            // when it leaves. A releaser that sent the request settles it itself instead,
            // to free the token of a waiter that left (see `settle`).
            let outcome = HandoffOutcome::Unknown { sent: self.sent };
            self.table.settle_handover(self.key, self.waiter, outcome);
        }
    }
}

impl WaitTable {
    /// A releaser handed `key` to the acquisition of this process whose owner value is
    /// `value`, with fencing token `fence`, having found it first in the key's queue in
    /// Redis (see `scripts.rs`): the waiter takes it as it takes a handover from this
    /// process. A waiter that left already finds no lock here: its cleanup frees one handed
    /// to it in the same script that takes it out of the queue (see `cleanup.rs`), and one
    /// that took the lock with an attempt of its own holds it already.
    pub(crate) fn grant_from_queue(&self, key: &str, value: &str, fence: u64) {
        let mut keys = lock(&self.keys);
        let Some(waiter) = keys.get_mut(key).and_then(|entry| {
            entry.queue.iter_mut().find(|w| {
                w.offer
                    .as_ref()
                    .is_some_and(|offered| offered.value == value)
            })
        }) else {
            return;
        };
        // Queued by one of its attempts, so it made one.
        let Some(sent) = waiter.queued_since else {
            return;
        };
        if waiter.granted.is_none() {
            waiter.granted = Some(Grant {
                value: value.to_string(),
                fence,
                sent,
            });
        }
        waiter.poked = true;
        if let Some(w) = waiter.waker.take() {
            w.wake();
        }
    }

    /// The releaser of `key` asks whether it may hand the lock to the next local waiter.
    /// However many handovers came before: other processes get their turn from the
    /// handover script itself, which gives the lock to the first process queued in Redis,
    /// or frees it for everyone when processes wait without queuing (more subscribers to
    /// the key's announcements than this process's own). A count of handovers in a row
    /// that freed the lock every fifth time as well made one local handover in five a
    /// release, a wake-up and an attempt: that was the contended p99 inside a process
    /// (bench (a): 180 µs against 21 µs without it).
    pub(crate) fn offer_handoff<'a>(&'a self, key: &'a str) -> Option<Handover<'a>> {
        let mut keys = lock(&self.keys);
        let entry = keys.get_mut(key)?;
        let subscribed = entry.subscription == Subscription::Active;
        let head = entry.queue.front_mut()?;
        if head.handoff_pending || head.granted.is_some() || head.attempting {
            return None;
        }
        let Offer {
            value,
            lease,
            fenced,
        } = head.offer.clone()?;
        head.handoff_pending = true;
        let never_queued = head.queued_since.is_none();
        let sent = Instant::now();
        if subscribed {
            // The handover may queue the waiter in Redis (see `HandoffOutcome::Queued`): a
            // lock handed to it from there is its own from now on, even before the
            // handover's reply arrives.
            head.queued_since.get_or_insert(sent);
        }
        let waiter = head.id;
        drop(keys);
        Some(Handover {
            table: self,
            key,
            waiter,
            value,
            lease,
            fenced,
            own_subscriptions: u8::from(subscribed),
            never_queued,
            sent,
            settled: false,
        })
    }

    /// Settles a handover to `waiter` (see [`Handover::settle`]). Returns false when the
    /// waiter left in the meantime while the lock was handed to it.
    fn settle_handover(&self, key: &str, waiter: u64, outcome: HandoffOutcome) -> bool {
        let succeeded = matches!(outcome, HandoffOutcome::Handed(_));
        // A waiter that left never looks at the key again: whatever the handover may have
        // given it is the releaser's to deal with (a lock, or an entry in the queue in
        // Redis).
        let nobody_holds = matches!(outcome, HandoffOutcome::NotHanded);
        let mut keys = lock(&self.keys);
        let Some(entry) = keys.get_mut(key) else {
            return nobody_holds;
        };
        if !succeeded {
            // Released to everyone, not ours any more, or unknown: nobody here is known to
            // hold it.
            entry.holder_until = None;
        }
        let Some(waiter) = entry.queue.iter_mut().find(|w| w.id == waiter) else {
            if !succeeded {
                // The offered waiter left while the lock was being freed: the next one
                // must hear of it, since this process ignores its own announcements.
                poke_head(entry);
            }
            return nobody_holds;
        };
        waiter.handoff_pending = false;
        match outcome {
            HandoffOutcome::Handed(grant) => waiter.granted = Some(grant),
            HandoffOutcome::NotHanded => {}
            HandoffOutcome::Queued { holder_until } => {
                waiter.queued_by_handover = Some(holder_until);
            }
            HandoffOutcome::Unknown { sent } => {
                waiter.maybe_granted = Some(waiter.maybe_granted.map_or(sent, |t| t.min(sent)));
            }
        }
        waiter.poked = true;
        if let Some(w) = waiter.waker.take() {
            w.wake();
        }
        true
    }
}
