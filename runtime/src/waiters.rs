//! The in-process side of waiting: per lock key, a FIFO queue of the tasks and threads of
//! this process that wait for it.
//!
//! Only the queue's head talks to Redis; the others wait their turn in memory. That keeps
//! Redis traffic independent of how many local tasks wait (10,000 waiters cost what one
//! does), and it makes the lock fair inside a process: a task that wants a lock its own
//! process already waits for queues behind those waiters instead of racing them.
//!
//! Every wake-up of a head is a "poke": a release of the key by this process, a release
//! announced by Redis pub/sub, a confirmed subscription (a release may have happened just
//! before it), becoming the head, or a lock handed over directly. Pokes are sticky flags,
//! so a poke that arrives while the head is busy talking to Redis is not lost.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::pool::lock;

pub(crate) struct WaitTable {
    keys: Mutex<HashMap<String, KeyWaiters>>,
    next_id: AtomicU64,
}

/// What this process knows about one contended lock key.
#[derive(Default)]
struct KeyWaiters {
    queue: VecDeque<Waiter>,
    /// Whether this process receives the key's release announcements.
    subscription: Subscription,
    /// Lease end of a holder in this process that took the lock while others queued: the
    /// next head waits for its release (or this instant) instead of trying in vain.
    holder_until: Option<Instant>,
    /// Consecutive direct handovers inside this process; bounded so others get a chance.
    handoffs_in_row: u32,
}

#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Subscription {
    #[default]
    None,
    Requested,
    Active,
}

struct Waiter {
    id: u64,
    poked: bool,
    waker: Option<Waker>,
    /// Set when a releaser handed the lock straight to this waiter: the owner value it
    /// wrote and the fencing token.
    granted: Option<(String, u64)>,
    /// The owner value and lease a releaser needs to hand the lock to this waiter.
    offer: Option<(String, Duration)>,
    handoff_pending: bool,
}

/// What the head needs to decide its next step.
pub(crate) struct HeadView {
    pub(crate) is_head: bool,
    pub(crate) holder_until: Option<Instant>,
    pub(crate) granted: Option<(String, u64)>,
    pub(crate) handoff_pending: bool,
}

/// A handover the releaser may attempt: the next waiter's id, owner value and lease.
pub(crate) struct HandoffOffer {
    pub(crate) waiter: u64,
    pub(crate) value: String,
    pub(crate) lease: Duration,
    /// Subscriptions to the key's channel that are this process's own (0 or 1): any more
    /// mean other processes wait too.
    pub(crate) own_subscriptions: u8,
}

/// At most this many handovers in a row inside one process before a lock is released
/// to everyone, so waiters in other processes are not starved.
const MAX_HANDOFFS_IN_ROW: u32 = 4;

impl WaitTable {
    pub(crate) fn new() -> WaitTable {
        WaitTable {
            keys: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Joins the queue for `key`. The returned ticket leaves the queue when dropped, so a
    /// waiter that times out, errors or is cancelled never blocks those behind it.
    /// `offer` is the owner value and lease under which this waiter accepts a direct
    /// handover.
    pub(crate) fn enqueue<'a>(
        &'a self,
        key: &'a str,
        offer: Option<(String, Duration)>,
    ) -> Ticket<'a> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut keys = lock(&self.keys);
        let entry = keys.entry(key.to_string()).or_default();
        // Not poked: a new waiter looks at its place in the queue before it first waits.
        entry.queue.push_back(Waiter {
            id,
            poked: false,
            waker: None,
            granted: None,
            offer,
            handoff_pending: false,
        });
        Ticket {
            table: self,
            key,
            id,
            finished: false,
        }
    }

    /// A release of `key` happened (here, or announced by Redis): wake the head.
    pub(crate) fn notify(&self, key: &str) {
        let mut keys = lock(&self.keys);
        if let Some(entry) = keys.get_mut(key) {
            entry.holder_until = None;
            poke_head(entry);
        }
    }

    /// Pokes the heads of every key: after a lost pub/sub connection, announcements may
    /// have been missed.
    pub(crate) fn notify_all(&self) {
        for entry in lock(&self.keys).values_mut() {
            poke_head(entry);
        }
    }

    /// Returns true when the caller must ask the subscriber to subscribe to `key`.
    pub(crate) fn needs_subscription(&self, key: &str) -> bool {
        let mut keys = lock(&self.keys);
        match keys.get_mut(key) {
            Some(entry) if entry.subscription == Subscription::None => {
                entry.subscription = Subscription::Requested;
                true
            }
            _ => false,
        }
    }

    /// The subscriber confirmed a subscription (or lost it, with `Subscription::None`).
    pub(crate) fn set_subscription(&self, key: &str, state: Subscription) {
        let mut keys = lock(&self.keys);
        if let Some(entry) = keys.get_mut(key) {
            entry.subscription = state;
            if state == Subscription::Active {
                // A release may have been announced before the subscription took effect.
                poke_head(entry);
            }
        }
    }

    /// Marks every subscription as requested anew (after a reconnect) and returns the keys.
    pub(crate) fn resubscribe_all(&self) -> Vec<String> {
        let mut keys = lock(&self.keys);
        keys.iter_mut()
            .filter(|(_, e)| e.subscription != Subscription::None)
            .map(|(k, e)| {
                e.subscription = Subscription::Requested;
                k.clone()
            })
            .collect()
    }

    /// Whether this process still wants `key`'s release announcements.
    pub(crate) fn wants_announcements(&self, key: &str) -> bool {
        lock(&self.keys)
            .get(key)
            .is_some_and(|entry| entry.subscription != Subscription::None)
    }

    /// Forgets keys nobody waits for; returns those whose subscription should end.
    pub(crate) fn sweep_idle(&self) -> Vec<String> {
        let mut keys = lock(&self.keys);
        let idle: Vec<String> = keys
            .iter()
            .filter(|(_, e)| e.queue.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        let mut unsubscribe = Vec::new();
        for key in idle {
            if let Some(entry) = keys.remove(&key)
                && entry.subscription != Subscription::None
            {
                unsubscribe.push(key);
            }
        }
        unsubscribe
    }

    /// The releaser of `key` asks whether it may hand the lock to the next local waiter.
    pub(crate) fn offer_handoff(&self, key: &str) -> Option<HandoffOffer> {
        let mut keys = lock(&self.keys);
        let entry = keys.get_mut(key)?;
        if entry.handoffs_in_row >= MAX_HANDOFFS_IN_ROW {
            entry.handoffs_in_row = 0;
            return None;
        }
        let head = entry.queue.front_mut()?;
        if head.handoff_pending || head.granted.is_some() {
            return None;
        }
        let (value, lease) = head.offer.clone()?;
        head.handoff_pending = true;
        Some(HandoffOffer {
            waiter: head.id,
            value,
            lease,
            own_subscriptions: u8::from(entry.subscription == Subscription::Active),
        })
    }

    /// Completes a handover attempt: `handed` is the fencing token the waiter got, `None` if
    /// it got nothing. Returns false when the waiter left in the meantime (then the caller
    /// owns the lock under the waiter's value and must release it).
    pub(crate) fn finish_handoff(
        &self,
        key: &str,
        offer: &HandoffOffer,
        handed: Option<u64>,
    ) -> bool {
        let succeeded = handed.is_some();
        let mut keys = lock(&self.keys);
        let Some(entry) = keys.get_mut(key) else {
            return !succeeded;
        };
        let Some(waiter) = entry.queue.iter_mut().find(|w| w.id == offer.waiter) else {
            return !succeeded;
        };
        waiter.handoff_pending = false;
        if let Some(fence) = handed {
            waiter.granted = Some((offer.value.clone(), fence));
            entry.handoffs_in_row += 1;
        } else {
            // Released to everyone, or not ours any more: nobody here holds it.
            entry.holder_until = None;
        }
        waiter.poked = true;
        if let Some(w) = waiter.waker.take() {
            w.wake();
        }
        true
    }
}

fn poke_head(entry: &mut KeyWaiters) {
    if let Some(head) = entry.queue.front_mut() {
        head.poked = true;
        if let Some(w) = head.waker.take() {
            w.wake();
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
    /// Where this waiter stands.
    pub(crate) fn view(&self) -> HeadView {
        let keys = lock(&self.table.keys);
        let entry = keys.get(self.key);
        let me = entry.and_then(|e| e.queue.iter().find(|w| w.id == self.id));
        HeadView {
            is_head: entry
                .and_then(|e| e.queue.front())
                .is_some_and(|w| w.id == self.id),
            holder_until: entry.and_then(|e| e.holder_until),
            granted: me.and_then(|w| w.granted.clone()),
            handoff_pending: me.is_some_and(|w| w.handoff_pending),
        }
    }

    /// Resolves when this waiter is poked.
    pub(crate) fn poked(&self) -> Poked<'_> {
        Poked { ticket: self }
    }

    /// This waiter now holds the lock until `lease_end`: leave the queue and let the next
    /// head wait for this holder's release.
    pub(crate) fn acquired(mut self, lease_end: Instant, handed_over: bool) {
        let mut keys = lock(&self.table.keys);
        if let Some(entry) = keys.get_mut(self.key) {
            entry.queue.retain(|w| w.id != self.id);
            entry.holder_until = Some(lease_end);
            if !handed_over {
                entry.handoffs_in_row = 0;
            }
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

/// Drops a key nobody queues for and this process does not subscribe to, so locking many
/// distinct names (`invoice:{id}`) leaves nothing behind. A key with a subscription stays
/// until the subscriber's sweep, to spare SUBSCRIBE/UNSUBSCRIBE churn on busy locks.
fn forget_if_unused(keys: &mut HashMap<String, KeyWaiters>, key: &str) {
    if keys
        .get(key)
        .is_some_and(|e| e.queue.is_empty() && e.subscription == Subscription::None)
    {
        keys.remove(key);
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
