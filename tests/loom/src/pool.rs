//! Models of the blocking pool's places (runtime/src/pool/slots.rs): threads checking
//! connections out, giving them back, failing to connect, running past their deadline,
//! and finding a reused connection closed, the way `SyncPool` does each.
//!
//! Every model checks, besides what it asserts itself, after each step of each thread:
//! `open == idle + checked out + connecting`, and `open` within the cap; and at the end
//! that nothing is checked out or connecting and nobody waits. A caller left asleep while a
//! place is free would never wake: loom reports a deadlock.

use loom::sync::Arc;
use loom::thread;

use crate::check::check;
use crate::slots::{Place, Slots};

/// A connection: whether the server closed it while it sat idle.
struct Conn {
    closed: bool,
}

/// What one request of a caller meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request {
    /// Answered: the connection goes back.
    Answered,
    /// Opening a new connection fails: its place is freed.
    ConnectFails,
    /// The deadline has passed: at the cap, the caller gives up waiting for a place; with
    /// a place, it opens no connection in it; with an idle connection, it sends nothing
    /// on it and gives it back as it is.
    DeadlinePassed,
    /// The request fails half-way: the connection may be out of step, and is closed.
    Broken,
    /// Answered; then the server closes the connection while it sits idle (a restart, an
    /// idle timeout): the next caller finds it closed, closes it, and opens another.
    ClosedWhileIdle,
    /// A reused connection turns out closed by the server: every idle one is closed, and
    /// the request is sent again on a fresh connection (`SyncPool::request`).
    FoundClosed,
    /// Written on an idle connection without waiting or opening one (`SyncPool::start`,
    /// a Redlock member's request from a sync caller), idle ones found closed being closed;
    /// with none idle, made the ordinary way instead.
    Pipelined,
}

/// The cap of every model: small enough that callers wait for each other.
const MAX: usize = 1;

fn assert_accounted(slots: &Slots<Conn>) {
    let c = slots.counts();
    assert_eq!(
        c.open,
        c.idle + c.checked_out + c.connecting,
        "open is not idle + checked out + connecting: {c:?}"
    );
    assert!(c.open <= MAX, "over the cap: {c:?}");
}

/// One request, through the places as `SyncPool::request` goes.
fn request(slots: &Slots<Conn>, what: Request) {
    let usable = |conn: &Conn| !conn.closed;
    let remaining = || match what {
        Request::DeadlinePassed => Err(()),
        _ => Ok(None),
    };
    if what == Request::Pipelined {
        match slots.take_idle(usable) {
            Some(conn) => {
                assert_accounted(slots);
                conn.give_back();
            }
            None => request(slots, Request::Answered),
        }
        assert_accounted(slots);
        return;
    }
    let Ok(place) = slots.checkout(true, usable, remaining) else {
        assert_accounted(slots);
        return;
    };
    assert_accounted(slots);
    let (mut conn, reused) = match place {
        Place::Reused(conn) => (conn, true),
        Place::New(place) => {
            if let Request::ConnectFails | Request::DeadlinePassed = what {
                drop(place);
                assert_accounted(slots);
                return;
            }
            (place.opened(Conn { closed: false }), false)
        }
    };
    assert_accounted(slots);
    match what {
        Request::Broken => drop(conn),
        Request::FoundClosed if reused => {
            conn.closed = true;
            drop(conn);
            assert_accounted(slots);
            slots.close_idle();
            assert_accounted(slots);
            match slots.checkout(false, usable, remaining) {
                Ok(Place::New(place)) => {
                    let conn = place.opened(Conn { closed: false });
                    assert_accounted(slots);
                    conn.give_back();
                }
                Ok(Place::Reused(_)) => panic!("reused a connection when a fresh one was wanted"),
                Err(()) => unreachable!("no deadline"),
            }
        }
        Request::ClosedWhileIdle => {
            conn.closed = true;
            conn.give_back();
        }
        _ => conn.give_back(),
    }
    assert_accounted(slots);
}

/// Runs each request on a thread of its own, after `before` on the main thread; then
/// checks the end state.
fn run(before: &'static [Request], requests: &'static [Request]) {
    check(move || {
        let slots = Arc::new(Slots::new(MAX));
        for &what in before {
            request(&slots, what);
        }
        let callers: Vec<_> = requests
            .iter()
            .map(|&what| {
                let slots = slots.clone();
                thread::spawn(move || request(&slots, what))
            })
            .collect();
        for caller in callers {
            caller.join().unwrap();
        }
        let c = slots.counts();
        assert_eq!((c.checked_out, c.connecting, c.waiting), (0, 0, 0), "{c:?}");
        assert_eq!(c.open, c.idle, "{c:?}");
    });
}

/// Callers answered, failing to connect, past their deadline, broken, and finding their
/// connection closed, at once: the places add up after every step.
pub fn open_is_idle_plus_checked_out_plus_connecting_at_every_step() {
    use Request::*;
    run(&[], &[Answered, ConnectFails, Broken]);
    run(&[Answered], &[FoundClosed, Answered, DeadlinePassed]);
    run(&[], &[ClosedWhileIdle, Answered, ConnectFails]);
}

/// With one place, callers wait for each other: each way a place frees up (a connection
/// given back, closed as broken, never opened) wakes the next caller.
pub fn no_caller_waits_while_a_place_is_free() {
    use Request::*;
    run(&[], &[Broken, ConnectFails, Answered]);
}

/// The resend after a connection found closed wants a fresh connection: at the cap, with
/// the only other connection idle, it closes that one rather than wait for a place that
/// would never free up.
pub fn a_resend_at_the_cap_does_not_wait_for_ever() {
    use Request::*;
    run(&[Answered], &[FoundClosed, Answered]);
}

/// A pipelined request only takes an idle connection: one found closed is closed and its
/// place freed for the callers waiting for one, and without an idle one the request goes
/// the ordinary way.
pub fn a_pipelined_request_takes_only_idle_connections() {
    use Request::*;
    run(&[ClosedWhileIdle], &[Pipelined, Answered]);
    run(&[Answered], &[Pipelined, Pipelined, Broken]);
}
