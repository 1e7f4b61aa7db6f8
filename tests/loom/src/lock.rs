//! The callers of the wait table, taking the same steps as the runtime's: an acquisition
//! (`acquire::acquire` with acquire/attempts.rs), a holder, and a release that hands the
//! lock over (`Held::release_now` with release.rs's `HandoffAttempt`), talking to the model
//! key instead of Redis. Only the table is the runtime's code here. A caller may be cut
//! short where the runtime's future may be dropped: at an await, that is, while a request
//! is out (which then may or may not have run) or while it waits for a poke.
//!
//! Every model checks, besides what it asserts itself:
//! - one attempt at a time, by the head;
//! - never an attempt of a waiter's own while a handover to it is out, nor the reverse;
//! - a caller that believes it holds the lock finds the key holding its value;
//! - a waiter never waits for a poke that does not come (loom reports a deadlock);
//! - at the end, the key is free: every lock handed over was taken, or its token freed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use loom::future::block_on;
use loom::sync::Arc;
use loom::thread::JoinHandle;

use crate::handover::Handover;
use crate::key::{HandoverReply, Key};
use crate::ticket::Ticket;
use crate::waiters::{Grant, HandoffOutcome, Offer, WaitTable};

pub(crate) const KEY: &str = "k";
pub(crate) const LEASE: Duration = Duration::from_secs(10);

pub(crate) struct Env {
    pub(crate) table: WaitTable,
    pub(crate) key: Key,
    /// Requests out that may give the lock to each waiter: its own attempt, or a handover
    /// to it. Counted up right after the table allowed one and down right before it hears
    /// the request ended (std's lock: no step of loom's in between), so a count never
    /// exceeds what the table allowed at once.
    requests_for: std::sync::Mutex<HashMap<String, usize>>,
    /// Attempts out.
    attempts: AtomicUsize,
    /// Callers in the critical section.
    inside: AtomicUsize,
    /// Releases started in the background, as `cleanup::release_later` does (std's lock:
    /// bookkeeping of the model, no step of loom's).
    background: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

/// Where a caller is cut short, as a dropped future would be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cut {
    /// At its `n`-th await (from 0): an acquisition's attempt or wait for a poke.
    Await(usize),
    /// A release, with its first handover request out: before it ran.
    BeforeHandover,
    /// A release, with its first handover request out: after it ran.
    AfterHandover,
    /// A release that drops its first handover offer unsettled before sending it (as an
    /// early return would), and then frees the lock.
    DropsOffer,
}

impl Env {
    /// A key held by `holder` (if any), with or without other processes waiting for it.
    pub(crate) fn new(holder: Option<&str>, others_wait: bool) -> Arc<Env> {
        Arc::new(Env {
            table: WaitTable::new(),
            key: Key::new(holder, others_wait),
            requests_for: std::sync::Mutex::default(),
            attempts: AtomicUsize::new(0),
            inside: AtomicUsize::new(0),
            background: std::sync::Mutex::default(),
        })
    }

    /// A request that may give the lock to `waiter` goes out.
    fn request_for(&self, waiter: &str) {
        let mut requests = self.requests_for.lock().unwrap();
        let out = requests.entry(waiter.to_string()).or_default();
        *out += 1;
        assert_eq!(*out, 1, "an attempt and a handover for {waiter} at once");
    }

    fn request_done(&self, waiter: &str) {
        *self.requests_for.lock().unwrap().get_mut(waiter).unwrap() -= 1;
    }

    fn attempt_out(&self, waiter: &str) {
        let before = self.attempts.fetch_add(1, Ordering::SeqCst);
        assert_eq!(before, 0, "two attempts at once");
        self.request_for(waiter);
    }

    fn attempt_done(&self, waiter: &str) {
        self.attempts.fetch_sub(1, Ordering::SeqCst);
        self.request_done(waiter);
    }

    /// Waits for the background releases, and checks that the lock is free and nobody
    /// is left in the queue.
    pub(crate) fn check_settled(&self) {
        let tasks = std::mem::take(&mut *self.background.lock().unwrap());
        for task in tasks {
            task.join().unwrap();
        }
        assert_eq!(self.key.owner(), None, "a lock was left behind");
        assert!(
            self.table.offer_handoff(KEY).is_none(),
            "a waiter was left behind"
        );
        assert_eq!(self.attempts.load(Ordering::SeqCst), 0);
        let requests = self.requests_for.lock().unwrap();
        assert!(requests.values().all(|&n| n == 0), "{requests:?}");
    }
}

/// Frees the key of `value` in the background, and then pokes the head, as
/// `cleanup::release_later` does.
fn release_later(env: &Arc<Env>, value: &str) {
    let (task_env, value) = (env.clone(), value.to_string());
    let task = loom::thread::spawn(move || {
        task_env.key.release(&value);
        task_env.table.notify(KEY);
    });
    env.background.lock().unwrap().push(task);
}

/// Acquires the lock under `me`, holds it, and releases it; `None` when cut short
/// before it got the lock.
pub(crate) fn lock_and_release(env: &Arc<Env>, me: &str, cut: Option<Cut>) -> Option<()> {
    lock_and_release_queued(env, me, cut, || {})
}

/// As [`lock_and_release`], calling `queued` once in the queue.
pub(crate) fn lock_and_release_queued(
    env: &Arc<Env>,
    me: &str,
    cut: Option<Cut>,
    queued: impl FnOnce(),
) -> Option<()> {
    let value = acquire(env, me, cut, queued)?;
    hold(env, &value);
    release(env, value, None);
    Some(())
}

/// The critical section: the key holds our value, and nobody else here is inside.
pub(crate) fn hold(env: &Env, value: &str) {
    assert_eq!(env.inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
    assert_eq!(env.key.owner().as_deref(), Some(value), "held, not ours");
    env.inside.fetch_sub(1, Ordering::SeqCst);
}

/// An acquisition under owner value `me`, as `acquire::acquire` takes it; `queued` is
/// called once it is in the queue. Returns the value the lock is held under, or `None`
/// when cut short first.
fn acquire(env: &Arc<Env>, me: &str, cut: Option<Cut>, queued: impl FnOnce()) -> Option<String> {
    let offer = Offer {
        value: me.to_string(),
        lease: LEASE,
        fenced: true,
    };
    let ticket = env.table.enqueue(KEY, Some(offer));
    queued();
    // Whether a request may have given us the lock without our learning it.
    let mut unconfirmed = false;
    let mut awaits = 0;
    loop {
        let view = ticket.view();
        unconfirmed |= view.maybe_granted.is_some();
        if view.granted.is_some()
            && let Some(grant) = ticket.take_grant()
        {
            ticket.acquired(grant.sent + LEASE);
            return Some(grant.value);
        }
        if ticket.begin_attempt() {
            env.attempt_out(me);
            assert!(
                ticket.view().is_head,
                "an attempt by a waiter not at the head"
            );
            let taken = env.key.acquire(me);
            env.attempt_done(me);
            if cut == Some(Cut::Await(awaits)) {
                // The request ran, its reply is lost.
                return give_up(env, ticket, me, true);
            }
            awaits += 1;
            ticket.end_attempt();
            if taken {
                ticket.acquired(Instant::now() + LEASE);
                return Some(me.to_string());
            }
        }
        if cut == Some(Cut::Await(awaits)) {
            return give_up(env, ticket, me, unconfirmed);
        }
        awaits += 1;
        block_on(ticket.poked());
    }
}

/// An acquisition that ends without the lock, as `Attempts`' drop does: leaves the queue,
/// and frees in the background whatever the key may hold under its value.
fn give_up(env: &Arc<Env>, ticket: Ticket<'_>, me: &str, unconfirmed: bool) -> Option<String> {
    let handed = ticket.leave();
    if handed.is_some() || unconfirmed {
        release_later(env, me);
    }
    None
}

/// A release of the lock held under `value`, as `Held::release_now` does it: handed to
/// the head of the queue while the table offers a handover, else freed.
pub(crate) fn release(env: &Arc<Env>, mut value: String, cut: Option<Cut>) {
    while let Some(handover) = env.table.offer_handoff(KEY) {
        if cut == Some(Cut::DropsOffer) {
            drop(handover);
            break;
        }
        let offered = handover.value.clone();
        env.request_for(&offered);
        if cut == Some(Cut::BeforeHandover) {
            return cut_short(env, handover, &value);
        }
        let reply = env.key.hand_over(&value, &offered);
        if cut == Some(Cut::AfterHandover) {
            return cut_short(env, handover, &value);
        }
        env.request_done(&offered);
        let outcome = match reply {
            HandoverReply::Handed => HandoffOutcome::Handed(Grant {
                value: offered,
                fence: 1,
                sent: handover.sent,
            }),
            HandoverReply::Released | HandoverReply::NotOurs => HandoffOutcome::NotHanded,
        };
        match handover.settle(outcome) {
            None => return,
            // The waiter left while we handed it the lock: ours under its value now.
            Some(left_behind) => value = left_behind,
        }
    }
    env.key.release(&value);
    env.table.notify(KEY);
}

/// A release dropped with a handover request out, as `HandoffAttempt`'s drop does it:
/// frees the lock under the releaser's own value in the background, settles the handover
/// as unknown, and frees the waiter's token too when the waiter left meanwhile.
fn cut_short(env: &Arc<Env>, handover: Handover<'_>, value: &str) {
    env.request_done(&handover.value);
    release_later(env, value);
    let sent = handover.sent;
    if let Some(left) = handover.settle(HandoffOutcome::Unknown { sent }) {
        release_later(env, &left);
    }
}
