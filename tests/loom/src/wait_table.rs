//! Models of the wait table (runtime/src/waiters.rs) with its callers (see `lock.rs`): a
//! releaser handing the lock over, waiters queueing for it, some of them cut short.
//! Each model also checks what `lock.rs` says every model checks.

use loom::future::block_on;
use loom::thread;

use crate::check::check;
use crate::lock::{Cut, Env, KEY, lock_and_release, lock_and_release_queued, release};

/// The key held by `r`, released on the main thread while waiters `a` and `b` (cut short
/// as given) queue for it on two more; each waiter not cut short gets the lock.
fn release_to_two_waiters(others_wait: bool, cut_r: Option<Cut>, cut_a: Option<Cut>) {
    check(move || {
        let env = Env::new(Some("r"), others_wait);
        let waiter = |me: &'static str, cut| {
            let env = env.clone();
            thread::spawn(move || lock_and_release(&env, me, cut))
        };
        let a = waiter("a", cut_a);
        let b = waiter("b", None);
        release(&env, "r".to_string(), cut_r);
        let a_got_it = a.join().unwrap().is_some();
        assert!(a_got_it || cut_a.is_some(), "a waiter never got the lock");
        assert!(b.join().unwrap().is_some(), "a waiter never got the lock");
        env.check_settled();
    });
}

/// As [`release_to_two_waiters`], but in order: `a` queues, then `b`, then `r` releases,
/// each on a thread the one before spawns once it queued. The bound on preemptions is then
/// spent on what follows, which some interleavings need.
fn release_to_two_queued_waiters(others_wait: bool, cut_a: Option<Cut>) {
    check(move || {
        let env = Env::new(Some("r"), others_wait);
        let a = thread::spawn({
            let env = env.clone();
            move || {
                let mut b = None;
                let a_got_it = lock_and_release_queued(&env, "a", cut_a, || {
                    let env = env.clone();
                    b = Some(thread::spawn(move || {
                        let mut r = None;
                        let b_got_it = lock_and_release_queued(&env, "b", None, || {
                            let env = env.clone();
                            r = Some(thread::spawn(move || release(&env, "r".to_string(), None)));
                        });
                        (b_got_it, r.expect("queued"))
                    }));
                });
                (a_got_it, b.expect("queued"))
            }
        });
        let (a_got_it, b) = a.join().unwrap();
        assert!(
            a_got_it.is_some() || cut_a.is_some(),
            "a waiter never got the lock"
        );
        let (b_got_it, r) = b.join().unwrap();
        assert!(b_got_it.is_some(), "a waiter never got the lock");
        r.join().unwrap();
        env.check_settled();
    });
}

/// Only the head of the queue makes an attempt, and never while a handover to it is out,
/// nor is a handover offered while its attempt is out: one request at a time may give
/// the lock to a waiter here.
pub fn only_the_head_attempts_one_request_at_a_time() {
    release_to_two_waiters(false, None, None);
}

/// A handover offer is settled exactly once, whatever the releaser learns, when it is
/// dropped with the request out, and when the offer is dropped unsettled: the waiter,
/// poked, finds the offer settled with exactly the outcome the releaser had (a grant,
/// nothing, or a handover that may have run).
pub fn every_offer_is_settled_exactly_once() {
    for (others_wait, cut) in [
        (false, None),
        (true, None),
        (false, Some(Cut::BeforeHandover)),
        (false, Some(Cut::AfterHandover)),
        (false, Some(Cut::DropsOffer)),
    ] {
        check(move || {
            let env = Env::new(Some("r"), others_wait);
            let offer = crate::waiters::Offer {
                value: "a".to_string(),
                lease: crate::lock::LEASE,
                fenced: true,
            };
            let ticket = env.table.enqueue(KEY, Some(offer));
            let releaser = {
                let env = env.clone();
                thread::spawn(move || release(&env, "r".to_string(), cut))
            };
            // The releaser's background release may poke us before the settlement.
            while ticket.view().handoff_pending {
                block_on(ticket.poked());
            }
            releaser.join().unwrap();
            let view = ticket.view();
            let (granted, maybe_granted) = (view.granted.is_some(), view.maybe_granted.is_some());
            match cut {
                None if others_wait => assert!(!granted && !maybe_granted, "released to all"),
                None => assert!(granted && !maybe_granted, "handed over"),
                Some(_) => assert!(!granted && maybe_granted, "unknown"),
            }
            // The waiter gives up: it frees what it was handed.
            if ticket.leave().is_some() {
                env.key.release("a");
            }
            env.check_settled();
        });
    }
}

/// A releaser dropped with its handover request out leaves no waiter waiting for its
/// answer: both waiters get the lock. The request ran: the key holds the waiter's token
/// while nobody knows it (one that did not run is in `every_offer_is_settled_exactly_once`;
/// here it would double this model's time for nothing new to the table).
pub fn a_releaser_cut_short_leaves_nobody_waiting() {
    release_to_two_waiters(false, Some(Cut::AfterHandover), None);
}

/// A waiter handed the lock either takes it (and holds it: the key holds its value) or,
/// cut short, frees its token: also when the handover completes after it left (the
/// releaser then holds the lock under the waiter's token and passes it on), and when the
/// handover's outcome was never learned and the waiter never looked again.
pub fn a_granted_waiter_holds_the_lock_or_its_token_is_freed() {
    for cut_r in [None, Some(Cut::AfterHandover)] {
        for cut_a in [Cut::Await(0), Cut::Await(1)] {
            release_to_two_waiters(false, cut_r, Some(cut_a));
        }
    }
}

/// After everything that frees the lock or makes a new head, the head is poked: a
/// release, a handover that released to everyone (this process ignores its own
/// announcements), the offered waiter leaving meanwhile, a head leaving, a background
/// release of an abandoned token. Without the poke the head would sleep for good: loom
/// reports a deadlock.
pub fn the_head_is_poked_after_everything_that_frees_the_lock() {
    release_to_two_waiters(false, None, Some(Cut::Await(1)));
    release_to_two_waiters(true, None, None);
    // The head leaves while a handover to it releases the lock to everyone.
    release_to_two_queued_waiters(true, Some(Cut::Await(0)));
    // Nobody holds the lock: the head leaves before or during its first attempt.
    check(|| {
        let env = Env::new(None, false);
        let a = {
            let env = env.clone();
            thread::spawn(move || lock_and_release(&env, "a", Some(Cut::Await(0))))
        };
        assert!(lock_and_release(&env, "b", None).is_some());
        a.join().unwrap();
        env.check_settled();
    });
}
