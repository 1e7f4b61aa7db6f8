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
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

// Only these, and std's collections, futures and time: `tests/loom` compiles this file
// against loom's locks and atomics.
use crate::sync::{AtomicU64, Mutex, Ordering, lock};

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
    /// When Redis last answered an attempt on this key from this process: waiters behind
    /// the head know through it whether the lock is held or Redis is silent.
    answered_at: Option<Instant>,
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
    /// Set when a releaser handed the lock straight to this waiter.
    granted: Option<Grant>,
    /// Set when a handover to this waiter may have taken effect without anyone learning
    /// it (its reply was lost, or the releaser was cancelled): from this instant, the key
    /// may hold this waiter's token.
    maybe_granted: Option<Instant>,
    /// Whether this waiter, as head, has an attempt of its own in flight: no handover is
    /// offered to it meanwhile. Its attempt could take the lock under its own value right
    /// after a handover wrote that value, and leave the queue as a holder; the releaser,
    /// finding it gone, would take the lock for abandoned and release it under the holder.
    attempting: bool,
    /// The token and lease a releaser needs to hand the lock to this waiter.
    offer: Option<(String, Duration)>,
    handoff_pending: bool,
}

/// A lock handed straight to a waiter by a releaser of this process.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    /// The owner value the key now holds: the one the waiter offered.
    pub(crate) value: String,
    /// The fencing token the handover gave it.
    pub(crate) fence: u64,
    /// When the releaser sent the handover: the new lease began no earlier, so it ends no
    /// earlier than this plus the lease, whenever the waiter gets to look at it.
    pub(crate) sent: Instant,
}

/// How a handover attempt ended, as far as the releaser knows.
pub(crate) enum HandoffOutcome {
    /// The waiter holds the lock now.
    Handed(Grant),
    /// The waiter does not: the lock was released to everyone, or was not the releaser's.
    NotHanded,
    /// Nobody knows: the request went out at `sent` and no reply came (a timeout, a
    /// dropped connection, a cancelled releaser). The key may hold the waiter's token.
    Unknown { sent: Instant },
}

/// What the head needs to decide its next step.
pub(crate) struct HeadView {
    pub(crate) is_head: bool,
    pub(crate) holder_until: Option<Instant>,
    pub(crate) granted: Option<Grant>,
    pub(crate) maybe_granted: Option<Instant>,
    pub(crate) handoff_pending: bool,
}

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
    /// Subscriptions to the key's channel that are this process's own (0 or 1): any more
    /// mean other processes wait too.
    pub(crate) own_subscriptions: u8,
    /// When the handover was offered. Its request goes out no earlier, so a lease it gives
    /// begins no earlier either.
    pub(crate) sent: Instant,
    settled: bool,
}

impl Handover<'_> {
    /// Completes the handover with its outcome, and wakes someone: the waiter, or, when it
    /// left, the next head. Returns the waiter's owner value when the waiter left in the
    /// meantime and the lock was, or may have been, handed to it: the lock is then the
    /// caller's under that value, to pass on or release (handed), or to free in the
    /// background (unknown).
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
            maybe_granted: None,
            attempting: false,
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
    /// Returns false when nobody here waits for `key` any more (its entry was swept while
    /// the subscription was on its way): the subscriber must then unsubscribe again, or
    /// the channel would stay subscribed for good, counted as a waiting process by every
    /// releaser.
    pub(crate) fn set_subscription(&self, key: &str, state: Subscription) -> bool {
        let mut keys = lock(&self.keys);
        let Some(entry) = keys.get_mut(key) else {
            return false;
        };
        entry.subscription = state;
        if state == Subscription::Active {
            // A release may have been announced before the subscription took effect.
            poke_head(entry);
        }
        true
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
    pub(crate) fn offer_handoff<'a>(&'a self, key: &'a str) -> Option<Handover<'a>> {
        let mut keys = lock(&self.keys);
        let entry = keys.get_mut(key)?;
        if entry.handoffs_in_row >= MAX_HANDOFFS_IN_ROW {
            entry.handoffs_in_row = 0;
            return None;
        }
        let head = entry.queue.front_mut()?;
        if head.handoff_pending || head.granted.is_some() || head.attempting {
            return None;
        }
        let (value, lease) = head.offer.clone()?;
        head.handoff_pending = true;
        let (waiter, own_subscriptions) = (head.id, entry.subscription == Subscription::Active);
        drop(keys);
        Some(Handover {
            table: self,
            key,
            waiter,
            value,
            lease,
            own_subscriptions: u8::from(own_subscriptions),
            sent: Instant::now(),
            settled: false,
        })
    }

    /// Settles a handover to `waiter` (see [`Handover::settle`]). Returns false when the
    /// waiter left in the meantime while the lock was handed to it.
    fn settle_handover(&self, key: &str, waiter: u64, outcome: HandoffOutcome) -> bool {
        let succeeded = matches!(outcome, HandoffOutcome::Handed(_));
        // A waiter that left never looks at the key again: whatever the handover may have
        // given it is the releaser's to deal with.
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
            HandoffOutcome::Handed(grant) => {
                waiter.granted = Some(grant);
                entry.handoffs_in_row += 1;
            }
            HandoffOutcome::NotHanded => {}
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
            maybe_granted: me.and_then(|w| w.maybe_granted),
            handoff_pending: me.is_some_and(|w| w.handoff_pending),
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

    /// Takes the lock handed to this waiter, if one was.
    pub(crate) fn take_grant(&self) -> Option<Grant> {
        let mut keys = lock(&self.table.keys);
        keys.get_mut(self.key)?
            .queue
            .iter_mut()
            .find(|w| w.id == self.id)?
            .granted
            .take()
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

    /// This waiter's attempt is over.
    pub(crate) fn end_attempt(&self) {
        let mut keys = lock(&self.table.keys);
        if let Some(me) = keys
            .get_mut(self.key)
            .and_then(|e| e.queue.iter_mut().find(|w| w.id == self.id))
        {
            me.attempting = false;
        }
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

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};
    use std::time::{Duration, Instant};

    use super::{Grant, HandoffOutcome, Ticket, WaitTable};

    /// Whether `ticket` has a poke waiting (and consumes it).
    fn poked(ticket: &Ticket<'_>) -> bool {
        let poked = pin!(ticket.poked());
        poked
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    }

    fn waiter<'a>(table: &'a WaitTable, token: &str) -> Ticket<'a> {
        table.enqueue("k", Some((token.to_string(), Duration::from_secs(1))))
    }

    /// Item 8: the waiter offered a handover leaves while the release goes to everyone
    /// instead; this process ignores its own announcement, so the next waiter must be
    /// poked by the releaser's answer.
    #[test]
    fn the_next_waiter_is_poked_when_the_offered_one_left() {
        let table = WaitTable::new();
        let first = waiter(&table, "a");
        let second = waiter(&table, "b");
        let offer = table
            .offer_handoff("k")
            .expect("the head is offered the lock");
        assert_eq!(offer.value, "a");
        assert!(first.leave().is_none(), "nothing was handed yet");
        assert!(poked(&second), "becoming head is a poke");
        assert!(!poked(&second));
        assert!(offer.settle(HandoffOutcome::NotHanded).is_none());
        assert!(poked(&second), "the release reached nobody else here");
    }

    /// Item 7: a grant the waiter never took comes back from `leave`, for the caller to
    /// free; one completed after the waiter left is the releaser's (`settle` says so).
    #[test]
    fn a_grant_is_owned_by_exactly_one_side() {
        let table = WaitTable::new();
        let sent = Instant::now();
        let first = waiter(&table, "a");
        let offer = table.offer_handoff("k").unwrap();
        let grant = Grant {
            value: "a".into(),
            fence: 7,
            sent,
        };
        assert!(offer.settle(HandoffOutcome::Handed(grant)).is_none());
        assert_eq!(first.leave(), Some(sent), "handed, not taken");

        let second = waiter(&table, "b");
        let offer = table.offer_handoff("k").unwrap();
        drop(second);
        let grant = Grant {
            value: "b".into(),
            fence: 8,
            sent,
        };
        assert_eq!(
            offer.settle(HandoffOutcome::Handed(grant)).as_deref(),
            Some("b"),
            "the waiter left: the releaser holds the lock under its token"
        );
    }

    /// Found by the model checker: a head with an attempt in flight is offered no
    /// handover, and one with a handover in flight makes no attempt.
    #[test]
    fn attempts_and_handovers_exclude_each_other() {
        let table = WaitTable::new();
        let head = waiter(&table, "a");
        assert!(head.begin_attempt());
        assert!(table.offer_handoff("k").is_none(), "attempting");
        head.end_attempt();
        let offer = table
            .offer_handoff("k")
            .expect("offered once the attempt is over");
        assert!(!head.begin_attempt(), "a handover is in flight");
        assert!(offer.settle(HandoffOutcome::NotHanded).is_none());
        assert!(head.begin_attempt());
    }

    /// Only the head talks to Redis: a waiter behind it is refused an attempt until it is
    /// the head itself.
    #[test]
    fn only_the_head_begins_an_attempt() {
        let table = WaitTable::new();
        let first = waiter(&table, "a");
        let second = waiter(&table, "b");
        assert!(!second.begin_attempt(), "not the head");
        drop(first);
        assert!(second.begin_attempt(), "the head now");
    }

    /// Item 16: a subscription confirmed after its key was swept is refused, so the
    /// subscriber takes it back.
    #[test]
    fn a_subscription_for_a_swept_key_is_refused() {
        let table = WaitTable::new();
        let first = waiter(&table, "a");
        assert!(table.needs_subscription("k"));
        drop(first);
        assert_eq!(table.sweep_idle(), ["k"], "unsubscribed: nobody waits");
        assert!(!table.set_subscription("k", super::Subscription::Active));
        assert!(!table.wants_announcements("k"));
    }

    /// Item 9: an unknown outcome is passed on, so the waiter's cleanup covers it.
    #[test]
    fn an_unknown_handover_is_remembered_by_the_waiter() {
        let table = WaitTable::new();
        let first = waiter(&table, "a");
        let offer = table.offer_handoff("k").unwrap();
        let sent = Instant::now();
        assert!(offer.settle(HandoffOutcome::Unknown { sent }).is_none());
        assert!(poked(&first));
        let view = first.view();
        assert_eq!(view.maybe_granted, Some(sent));
        assert!(view.granted.is_none() && !view.handoff_pending);
        assert_eq!(first.leave(), Some(sent), "left to the caller to free");
    }

    /// A releaser dropped half-way (its future cancelled) settles its offer as unknown:
    /// the waiter is poked, and may attempt again.
    #[test]
    fn a_dropped_handover_settles_as_unknown() {
        let table = WaitTable::new();
        let first = waiter(&table, "a");
        let offer = table.offer_handoff("k").unwrap();
        let sent = offer.sent;
        drop(offer);
        assert!(poked(&first));
        assert_eq!(first.view().maybe_granted, Some(sent));
        assert!(first.begin_attempt(), "no handover pending any more");
    }
}
