//! A waiter's place in the wait table's queue for a key (see `waiters.rs`): what the
//! acquisition loop asks of it, how it is poked, and how it leaves.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

// Only these, and std: `tests/loom` compiles this file against loom's locks and atomics.
use crate::util::sync::{Ordering, lock};
use crate::waiting::waiters::{
    Grant, HeadView, Offer, Subscription, WaitTable, Waiter, forget_if_unused, poke_head,
};

impl WaitTable {
    /// Joins the queue for `key`. The returned ticket leaves the queue when dropped, so a
    /// waiter that times out, errors or is cancelled never blocks those behind it.
    /// `offer` is what this waiter accepts a direct handover under.
    pub(crate) fn enqueue<'a>(&'a self, key: &'a str, offer: Option<Offer>) -> Ticket<'a> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut keys = lock(&self.keys);
        let entry = keys.entry(key.to_string()).or_default();
        // Not poked: a new waiter looks at its place in the queue before it first waits.
        entry.queue.push_back(Waiter {
            id,
            poked: false,
            waker: None,
            granted: None,
            maybe_granted: None,
            attempting: false,
            offer,
            queued_since: None,
            queued_by_handover: None,
            handoff_pending: false,
        });
        Ticket {
            table: self,
            key,
            id,
            finished: false,
        }
    }
}

/// A place in the queue for one key. Dropping it leaves the queue.
pub(crate) struct Ticket<'a> {
    table: &'a WaitTable,
    key: &'a str,
    id: u64,
    finished: bool,
}

impl Ticket<'_> {
    /// Where this waiter stands. That a handover queued it in Redis is told once, here.
    pub(crate) fn view(&self) -> HeadView {
        let mut keys = lock(&self.table.keys);
        let mut entry = keys.get_mut(self.key);
        let queued_by_handover = entry
            .as_deref_mut()
            .and_then(|e| e.queue.iter_mut().find(|w| w.id == self.id))
            .and_then(|me| me.queued_by_handover.take());
        let entry = entry.as_deref();
        let me = entry.and_then(|e| e.queue.iter().find(|w| w.id == self.id));
        HeadView {
            queued_by_handover,
            is_head: entry
                .and_then(|e| e.queue.front())
                .is_some_and(|w| w.id == self.id),
            holder_until: entry.and_then(|e| e.holder_until),
            granted: me.and_then(|w| w.granted.clone()),
            maybe_granted: me.and_then(|w| w.maybe_granted),
            handoff_pending: me.is_some_and(|w| w.handoff_pending),
            subscribed: entry.is_some_and(|e| e.subscription == Subscription::Active),
        }
    }

    /// Leaves the queue without the lock. Returns when a handover that may have given
    /// this waiter the lock was sent (one that completed and was not taken, or one whose
    /// outcome nobody learned): the key may hold this waiter's token from then until a
    /// lease later, and the caller must free it. In one step: a handover that completes
    /// after this is the releaser's to undo (it finds the waiter gone), one before it is
    /// the caller's.
    pub(crate) fn leave(mut self) -> Option<Instant> {
        self.finished = true;
        let mut keys = lock(&self.table.keys);
        let entry = keys.get_mut(self.key)?;
        let position = entry.queue.iter().position(|w| w.id == self.id)?;
        let me = entry.queue.remove(position)?;
        if position == 0 {
            poke_head(entry);
        }
        forget_if_unused(&mut keys, self.key);
        [me.granted.map(|g| g.sent), me.maybe_granted]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs `f` on this waiter's entry in the table, under the table's lock; `None` when
    /// it is not there.
    fn with_me<R>(&self, f: impl FnOnce(&mut Waiter) -> R) -> Option<R> {
        let mut keys = lock(&self.table.keys);
        let me = keys
            .get_mut(self.key)?
            .queue
            .iter_mut()
            .find(|w| w.id == self.id)?;
        Some(f(me))
    }

    /// Takes the lock handed to this waiter, if one was.
    pub(crate) fn take_grant(&self) -> Option<Grant> {
        self.with_me(|me| me.granted.take()).flatten()
    }

    /// Whether a handover queued this waiter in Redis behind the process it handed the lock
    /// to (see `HandoffOutcome::Queued`): until when that holder's lease runs. Told once.
    pub(crate) fn take_queued_by_handover(&self) -> Option<Instant> {
        self.with_me(|me| me.queued_by_handover.take()).flatten()
    }

    /// Marks the start of this waiter's own attempt; false (and nothing marked) when it is
    /// not the head (only the head talks to Redis), or a handover to it is in flight or
    /// done, which it must await instead.
    pub(crate) fn begin_attempt(&self) -> bool {
        let mut keys = lock(&self.table.keys);
        let Some(me) = keys
            .get_mut(self.key)
            .and_then(|e| e.queue.front_mut())
            .filter(|head| head.id == self.id)
        else {
            return false;
        };
        if me.handoff_pending || me.granted.is_some() {
            return false;
        }
        me.attempting = true;
        true
    }

    /// The attempt about to be sent may queue this waiter in Redis: from now on a releaser
    /// may hand it the lock from there.
    pub(crate) fn may_queue(&self) {
        self.with_me(|me| {
            me.queued_since.get_or_insert_with(Instant::now);
        });
    }

    /// This waiter's attempt is over.
    pub(crate) fn end_attempt(&self) {
        self.with_me(|me| me.attempting = false);
    }

    /// Redis answered an attempt on this key just now.
    pub(crate) fn answered(&self) {
        if let Some(entry) = lock(&self.table.keys).get_mut(self.key) {
            entry.answered_at = Some(Instant::now());
        }
    }

    /// Whether Redis answered an attempt on this key from this process since `since`.
    pub(crate) fn answered_since(&self, since: Instant) -> bool {
        lock(&self.table.keys)
            .get(self.key)
            .and_then(|entry| entry.answered_at)
            .is_some_and(|at| at >= since)
    }

    /// Resolves when this waiter is poked.
    pub(crate) fn poked(&self) -> Poked<'_> {
        Poked { ticket: self }
    }

    /// This waiter now holds the lock until `lease_end`: leave the queue and let the next
    /// head wait for this holder's release.
    pub(crate) fn acquired(mut self, lease_end: Instant) {
        let mut keys = lock(&self.table.keys);
        if let Some(entry) = keys.get_mut(self.key) {
            entry.queue.retain(|w| w.id != self.id);
            entry.holder_until = Some(lease_end);
            poke_head(entry);
            forget_if_unused(&mut keys, self.key);
        }
        self.finished = true;
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut keys = lock(&self.table.keys);
        if let Some(entry) = keys.get_mut(self.key) {
            let was_head = entry.queue.front().is_some_and(|w| w.id == self.id);
            entry.queue.retain(|w| w.id != self.id);
            if was_head {
                poke_head(entry);
            }
            forget_if_unused(&mut keys, self.key);
        }
    }
}

/// Future of [`Ticket::poked`]; clears the poke when it completes.
pub(crate) struct Poked<'a> {
    ticket: &'a Ticket<'a>,
}

impl Future for Poked<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut keys = lock(&self.ticket.table.keys);
        let Some(me) = keys
            .get_mut(self.ticket.key)
            .and_then(|e| e.queue.iter_mut().find(|w| w.id == self.ticket.id))
        else {
            return Poll::Ready(());
        };
        if me.poked {
            me.poked = false;
            return Poll::Ready(());
        }
        match &me.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => me.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
