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
use std::task::Waker;
use std::time::{Duration, Instant};

// Only these, and std's collections, futures and time: `tests/loom` compiles this file
// against loom's locks and atomics.
use crate::util::sync::{AtomicU64, Mutex, lock};

/// The table's keys, hashed with foldhash: an uncontended acquisition looks its key up
/// about eight times (joining, each look at its place, each attempt's start and end,
/// leaving), and with std's SipHash that was about 2,000 of the 35,000 instructions of a
/// whole sync call (measured with callgrind). foldhash is seeded at random per process,
/// so lock names chosen by outsiders (`invoice:{id}`) cannot be made to collide in advance.
pub(crate) type Keys = HashMap<String, KeyWaiters, foldhash::fast::RandomState>;

pub(crate) struct WaitTable {
    pub(crate) keys: Mutex<Keys>,
    pub(crate) next_id: AtomicU64,
}

/// What this process knows about one contended lock key.
#[derive(Default)]
pub(crate) struct KeyWaiters {
    pub(crate) queue: VecDeque<Waiter>,
    /// Whether this process receives the key's release announcements.
    pub(crate) subscription: Subscription,
    /// Lease end of a holder in this process that took the lock while others queued: the
    /// next head waits for its release (or this instant) instead of trying in vain.
    pub(crate) holder_until: Option<Instant>,
    /// When Redis last answered an attempt on this key from this process: waiters behind
    /// the head know through it whether the lock is held or Redis is silent.
    pub(crate) answered_at: Option<Instant>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Subscription {
    #[default]
    None,
    Requested,
    Active,
}

pub(crate) struct Waiter {
    pub(crate) id: u64,
    pub(crate) poked: bool,
    pub(crate) waker: Option<Waker>,
    /// Set when a releaser handed the lock straight to this waiter.
    pub(crate) granted: Option<Grant>,
    /// Set when a handover to this waiter may have taken effect without anyone learning
    /// it (its reply was lost, or the releaser was cancelled): from this instant, the key
    /// may hold this waiter's token.
    pub(crate) maybe_granted: Option<Instant>,
    /// Whether this waiter, as head, has an attempt of its own in flight: no handover is
    /// offered to it meanwhile. Its attempt could take the lock under its own value right
    /// after a handover wrote that value, and leave the queue as a holder; the releaser,
    /// finding it gone, would take the lock for abandoned and release it under the holder.
    pub(crate) attempting: bool,
    /// What a releaser needs to hand the lock to this waiter.
    pub(crate) offer: Option<Offer>,
    /// When this waiter's first attempt that may queue it in Redis began. A releaser hands
    /// it the lock from that queue only after such an attempt ran, so the lease of a lock
    /// handed that way began no earlier. (Not the latest attempt: one that began after the
    /// lock was handed, and was lost on its way, would date the lease too late.)
    pub(crate) queued_since: Option<Instant>,
    /// Set when a handover to this waiter found another process first in the lock's
    /// queue in Redis, handed the lock to it and queued this waiter behind, in the same
    /// script: until when that holder's lease runs. The waiter then waits as if its own
    /// attempt had queued it, without making one.
    pub(crate) queued_by_handover: Option<Instant>,
    pub(crate) handoff_pending: bool,
}

/// The owner value and lease under which a waiter accepts a lock handed straight to it,
/// and whether it asks for a fencing token (a handover to it advances the counter only
/// then).
#[derive(Clone, Debug)]
pub(crate) struct Offer {
    pub(crate) value: String,
    pub(crate) lease: Duration,
    pub(crate) fenced: bool,
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
    /// The waiter does not, but stands in the lock's queue in Redis now: the lock went to
    /// a process queued there first, whose lease runs until `holder_until`, and the same
    /// script queued the waiter behind it.
    Queued { holder_until: Instant },
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
    /// Set once, when a handover queued this waiter in Redis (see `HandoffOutcome::Queued`):
    /// until when the holder it was queued behind has the lock.
    pub(crate) queued_by_handover: Option<Instant>,
    /// Whether this process listens for the key's announcements and its inbox messages,
    /// so that an attempt may queue it in Redis (see `Backend::queues`).
    pub(crate) subscribed: bool,
}

impl WaitTable {
    pub(crate) fn new() -> WaitTable {
        WaitTable {
            keys: Mutex::new(Keys::default()),
            next_id: AtomicU64::new(1),
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

    /// Pokes the heads of every key: after the pub/sub connection subscribed again,
    /// announcements may have been missed meanwhile.
    pub(crate) fn notify_all(&self) {
        for entry in lock(&self.keys).values_mut() {
            poke_head(entry);
        }
    }

    /// The pub/sub connection is lost: until it is back and has subscribed again, this
    /// process hears neither announcements nor what is sent to its inbox. Its subscriptions
    /// count as requested meanwhile, so that an attempt does not queue it in Redis (a lock
    /// handed to it from there would wait for the reconnection, unheard) and a releaser here
    /// counts no subscriber of its own (a process that waits elsewhere without queuing is
    /// then seen by the handover script, and gets its turn). Every head is poked: releases
    /// may have gone unannounced.
    pub(crate) fn subscriptions_lost(&self) {
        for entry in lock(&self.keys).values_mut() {
            if entry.subscription == Subscription::Active {
                entry.subscription = Subscription::Requested;
            }
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
}

pub(crate) fn poke_head(entry: &mut KeyWaiters) {
    if let Some(head) = entry.queue.front_mut() {
        head.poked = true;
        if let Some(w) = head.waker.take() {
            w.wake();
        }
    }
}

/// Drops a key nobody queues for and this process does not subscribe to, so locking many
/// distinct names (`invoice:{id}`) leaves nothing behind. A key with a subscription stays
/// until the subscriber's sweep, to spare SUBSCRIBE/UNSUBSCRIBE churn on busy locks.
pub(crate) fn forget_if_unused(keys: &mut Keys, key: &str) {
    if keys
        .get(key)
        .is_some_and(|e| e.queue.is_empty() && e.subscription == Subscription::None)
    {
        keys.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};
    use std::time::{Duration, Instant};

    use super::{Grant, HandoffOutcome, Offer, WaitTable};
    use crate::waiting::ticket::Ticket;

    /// Whether `ticket` has a poke waiting (and consumes it).
    fn poked(ticket: &Ticket<'_>) -> bool {
        let poked = pin!(ticket.poked());
        poked
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    }

    fn waiter<'a>(table: &'a WaitTable, token: &str) -> Ticket<'a> {
        let offer = Offer {
            value: token.to_string(),
            lease: Duration::from_secs(1),
            fenced: true,
        };
        table.enqueue("k", Some(offer))
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

    /// A lost pub/sub connection: the head is poked, its attempts do not queue it in
    /// Redis, and a handover counts no subscription of this process, until the subscriber
    /// has subscribed again.
    #[test]
    fn a_lost_pubsub_connection_leaves_the_process_subscribed_to_nothing() {
        use super::Subscription::Active;
        let table = WaitTable::new();
        let head = waiter(&table, "a");
        assert!(table.needs_subscription("k"));
        assert!(table.set_subscription("k", Active));
        assert!(poked(&head));
        assert!(head.view().subscribed);

        table.subscriptions_lost();
        assert!(poked(&head), "announcements may have been missed");
        assert!(
            !head.view().subscribed,
            "an attempt now does not queue in Redis"
        );
        let offer = table.offer_handoff("k").unwrap();
        assert_eq!(offer.own_subscriptions, 0);
        assert!(offer.settle(HandoffOutcome::NotHanded).is_none());
        assert!(table.wants_announcements("k"), "still to subscribe again");
        assert!(!table.needs_subscription("k"), "requested already");
        assert_eq!(table.resubscribe_all(), ["k"]);
        assert!(table.set_subscription("k", Active));
        assert!(head.view().subscribed);
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
