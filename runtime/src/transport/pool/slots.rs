//! The places under a blocking pool's cap, and the connections in them.
//!
//! A place is idle (a connection ready for the next request), checked out (a connection in
//! use by one request) or connecting (a connection being opened). `open` counts them all
//! and is what the cap bounds: `open == idle + checked out + connecting` whenever the lock
//! is free. A checked-out connection and a place being connected are values
//! ([`CheckedOut`], [`Connecting`]) that give their place back when dropped, so no way out
//! of a request (a deadline that passed, a broken connection, a failed connect, a panic)
//! shrinks the pool for good. Callers beyond the cap wait for a place; every change that
//! frees one wakes one of them.
//!
//! Generic over the connection, and built only on `crate::util::sync`: `tests/loom` checks this
//! very file with loom, with threads checking out, giving back, failing and timing out.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use crate::util::sync::{Condvar, Mutex, MutexGuard, lock};

pub(crate) struct Slots<C> {
    state: Mutex<State<C>>,
    /// Signalled when a place frees up: a connection given back, closed, or never opened.
    freed: Condvar,
    max: usize,
}

struct State<C> {
    idle: Vec<C>,
    /// Places taken: idle, checked out, or connecting.
    open: usize,
    checked_out: usize,
    connecting: usize,
    /// Callers waiting for a place: without any, freeing one wakes nobody (a condition
    /// variable's notify is a system call, which the hot path can do without).
    waiting: usize,
}

/// What a caller got: an idle connection, or a place to open a new one in.
pub(crate) enum Place<'a, C> {
    Reused(CheckedOut<'a, C>),
    New(Connecting<'a, C>),
}

/// A snapshot of the places, taken under the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) open: usize,
    pub(crate) idle: usize,
    pub(crate) checked_out: usize,
    pub(crate) connecting: usize,
    pub(crate) waiting: usize,
}

impl<C> Slots<C> {
    pub(crate) fn new(max: usize) -> Slots<C> {
        Slots {
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                checked_out: 0,
                connecting: 0,
                waiting: 0,
            }),
            freed: Condvar::new(),
            max,
        }
    }

    /// An idle connection that is still `usable` (when `reuse`), else a place to open a
    /// new one while under the cap, else the next place freed. Idle connections found
    /// unusable are closed. `remaining` says how long the caller may still wait: `None`
    /// for ever, an error once its deadline has passed.
    pub(crate) fn checkout<E>(
        &self,
        reuse: bool,
        usable: impl Fn(&C) -> bool,
        mut remaining: impl FnMut() -> Result<Option<Duration>, E>,
    ) -> Result<Place<'_, C>, E> {
        let mut state = lock(&self.state);
        loop {
            if reuse && let Some(conn) = state.idle.pop() {
                if usable(&conn) {
                    state.checked_out += 1;
                    return Ok(Place::Reused(CheckedOut {
                        slots: self,
                        conn: Some(conn),
                    }));
                }
                // Made for a master that has since moved, or closed by the server.
                state.open -= 1;
                continue;
            }
            if state.open < self.max {
                state.open += 1;
                state.connecting += 1;
                return Ok(Place::New(Connecting {
                    slots: self,
                    opened: false,
                }));
            }
            if !reuse && state.idle.pop().is_some() {
                // At the cap, a caller that wants a fresh connection closes an idle one for
                // it: no place would ever free up while all the others sit idle.
                state.open -= 1;
                continue;
            }
            let limit = remaining()?;
            state.waiting += 1;
            state = match limit {
                None => self.freed.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(limit) => {
                    self.freed
                        .wait_timeout(state, limit)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            state.waiting -= 1;
        }
    }

    /// An idle connection that is still `usable`, without waiting or opening one: `None`
    /// when there is none. Idle connections found unusable are closed.
    pub(crate) fn take_idle(&self, usable: impl Fn(&C) -> bool) -> Option<CheckedOut<'_, C>> {
        let mut state = lock(&self.state);
        let mut closed = false;
        while let Some(conn) = state.idle.pop() {
            if usable(&conn) {
                state.checked_out += 1;
                return Some(CheckedOut {
                    slots: self,
                    conn: Some(conn),
                });
            }
            state.open -= 1;
            closed = true;
        }
        if closed {
            // Places freed: for callers waiting to open a connection.
            self.wake(state, true);
        }
        None
    }

    /// Closes every idle connection: one was found closed by the server, so the others,
    /// from before the same restart or idle timeout, are suspect too.
    pub(crate) fn close_idle(&self) {
        let mut state = lock(&self.state);
        state.open -= state.idle.len();
        state.idle.clear();
        self.wake(state, true);
    }

    #[allow(dead_code, reason = "read by the models in tests/loom")]
    pub(crate) fn counts(&self) -> Counts {
        let state = lock(&self.state);
        Counts {
            open: state.open,
            idle: state.idle.len(),
            checked_out: state.checked_out,
            connecting: state.connecting,
            waiting: state.waiting,
        }
    }

    /// Applies a change that frees a place, and wakes one waiting caller, if any waits.
    fn free(&self, change: impl FnOnce(&mut State<C>)) {
        let mut state = lock(&self.state);
        change(&mut state);
        self.wake(state, false);
    }

    /// Wakes one caller waiting for a place (all of them when `all`), if any waits.
    fn wake(&self, state: MutexGuard<'_, State<C>>, all: bool) {
        let waiting = state.waiting > 0;
        drop(state);
        match (waiting, all) {
            (false, _) => {}
            (true, false) => self.freed.notify_one(),
            (true, true) => self.freed.notify_all(),
        }
    }
}

/// A connection taken out for one request. Given back, it waits idle for the next one;
/// dropped (it may be out of step with its replies), it is closed and its place freed.
pub(crate) struct CheckedOut<'a, C> {
    slots: &'a Slots<C>,
    /// Until given back or dropped.
    conn: Option<C>,
}

impl<C> CheckedOut<'_, C> {
    /// Puts a connection in step with its replies back for the next request.
    pub(crate) fn give_back(mut self) {
        let conn = self.conn.take();
        self.slots.free(|state| {
            state.checked_out -= 1;
            state.idle.extend(conn);
        });
    }
}

impl<C> Deref for CheckedOut<'_, C> {
    type Target = C;

    fn deref(&self) -> &C {
        self.conn.as_ref().expect("held until given back")
    }
}

impl<C> DerefMut for CheckedOut<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        self.conn.as_mut().expect("held until given back")
    }
}

impl<C> Drop for CheckedOut<'_, C> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Closed before its place is offered to another caller.
            drop(conn);
            self.slots.free(|state| {
                state.checked_out -= 1;
                state.open -= 1;
            });
        }
    }
}

/// A place under the cap for a connection being opened. Dropped without one (the connect
/// failed or the deadline passed), it is freed for the next caller.
pub(crate) struct Connecting<'a, C> {
    slots: &'a Slots<C>,
    opened: bool,
}

impl<'a, C> Connecting<'a, C> {
    /// The connection is open: it is checked out in this place.
    pub(crate) fn opened(mut self, conn: C) -> CheckedOut<'a, C> {
        self.opened = true;
        let mut state = lock(&self.slots.state);
        state.connecting -= 1;
        state.checked_out += 1;
        drop(state);
        CheckedOut {
            slots: self.slots,
            conn: Some(conn),
        }
    }
}

impl<C> Drop for Connecting<'_, C> {
    fn drop(&mut self) {
        if !self.opened {
            self.slots.free(|state| {
                state.connecting -= 1;
                state.open -= 1;
            });
        }
    }
}
