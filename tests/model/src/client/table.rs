//! A process's wait table for the lock's key (`runtime/src/waiters.rs`): the FIFO of its
//! waiters, pokes, the local holder's lease end, and handover offers.

use crate::state::{Grant, Process, Subscription, Time, Waiter};

impl Process {
    pub fn waiter(&self, task: usize) -> Option<&Waiter> {
        self.queue.iter().find(|w| usize::from(w.task) == task)
    }

    pub fn waiter_mut(&mut self, task: usize) -> Option<&mut Waiter> {
        self.queue.iter_mut().find(|w| usize::from(w.task) == task)
    }

    /// The waiter of this task's round `round`, if it still waits.
    pub fn waiter_of(&mut self, task: usize, round: u8) -> Option<&mut Waiter> {
        self.waiter_mut(task).filter(|w| w.round == round)
    }

    pub fn is_head(&self, task: usize) -> bool {
        self.queue
            .first()
            .is_some_and(|w| usize::from(w.task) == task)
    }

    /// `WaitTable::enqueue`: not poked; a new waiter looks at its place before it waits.
    pub fn enqueue(&mut self, task: usize, round: u8) {
        self.queue.push(Waiter {
            task: task as u8,
            round,
            poked: false,
            granted: None,
            handoff_pending: false,
            queued_since: None,
            queued_by_handover: None,
        });
    }

    pub fn poke_head(&mut self) {
        if let Some(head) = self.queue.first_mut() {
            head.poked = true;
        }
    }

    /// `WaitTable::notify`: a release happened; nobody here holds the lock.
    pub fn notify(&mut self) {
        self.holder_until = None;
        self.poke_head();
    }

    /// Leaves the queue; returns the waiter and whether it was the head.
    pub fn remove(&mut self, task: usize) -> (Waiter, bool) {
        let i = self
            .queue
            .iter()
            .position(|w| usize::from(w.task) == task)
            .expect("the task queues");
        (self.queue.remove(i), i == 0)
    }

    /// `Ticket::acquired`: this waiter holds the lock until `lease_end`; the next head waits
    /// for its release.
    pub fn acquired(&mut self, task: usize, lease_end: Time) {
        self.remove(task);
        self.holder_until = Some(lease_end);
        self.poke_head();
    }

    /// `WaitTable::offer_handoff`: the head's task and round, now marked as offered, and
    /// whether no request that could have queued it in Redis was sent before. A HANDOFF to
    /// it may queue it in Redis (when this process listens): a lock handed to it from there
    /// is its own from now on.
    pub fn offer_handoff(&mut self, now: Time) -> Option<(usize, u8, bool)> {
        let subscribed = self.subscription == Subscription::Active;
        let head = self.queue.first_mut()?;
        if head.handoff_pending || head.granted.is_some() {
            return None;
        }
        head.handoff_pending = true;
        let unqueued = head.queued_since.is_none();
        if subscribed {
            head.queued_since.get_or_insert(now);
        }
        Some((usize::from(head.task), head.round, unqueued))
    }

    /// How many of the channel's subscribers are this process's own.
    pub fn own_subscriptions(&self) -> u8 {
        u8::from(self.subscription == Subscription::Active)
    }

    /// `WaitTable::finish_handoff` for a waiter still there: granted, or not (then nobody
    /// here holds the lock); poked either way.
    pub fn finish_handoff(&mut self, task: usize, round: u8, grant: Option<Grant>) {
        let Some(waiter) = self.waiter_of(task, round) else {
            return;
        };
        waiter.handoff_pending = false;
        waiter.poked = true;
        match grant {
            Some(grant) => waiter.granted = Some(grant),
            // A lock handed to it from Redis's queue meanwhile stays its own.
            None => self.holder_until = None,
        }
    }
}
