//! A request written on an idle pooled connection now and read later, so that one thread
//! can have requests out to several servers at once (the members of a Redlock quorum)
//! without a thread per server: every request written first, then the replies read in
//! turn, each by its own deadline, so that the servers' round trips overlap and a slow
//! server costs the others nothing beyond its own bound.
//!
//! Only an idle connection is used: opening one (a connect to an unreachable host waits
//! out its timeout), or waiting for one under the cap, would hold up the other servers'
//! requests, so the caller makes such a request the ordinary way
//! ([`SyncPool::request`]), on a thread of its own. The rules of the ordinary way hold:
//! a connection out of step with its replies is closed, never reused; a request that must
//! not run twice is preceded by a check on a connection unused for a while (see
//! `conn.rs`), and only a `resend_safe` one is sent again when its connection turns out
//! closed.

use std::time::{Duration, Instant};

use super::slots::CheckedOut;
use super::{Failure, SyncPool, remaining};
use crate::transport::conn::{SyncConn, check_command};
use crate::transport::endpoint::Endpoint;
use crate::transport::reply::Reply;
use crate::util::error::LockError;

/// How long a reply read after its request's deadline may take to come: long enough to
/// read one already there.
const LATE_READ: Duration = Duration::from_millis(1);

/// A request (or the check of its connection) written, its reply not read yet.
pub(crate) struct Outstanding<'a> {
    pool: &'a SyncPool,
    endpoint: &'a Endpoint,
    /// Dropped while its reply is unread, it is closed (see `slots.rs`).
    conn: CheckedOut<'a, Box<SyncConn>>,
    /// The request (and its bytes, when packed already), while what was written is the
    /// connection's check: it is written once the check answered.
    after_check: Option<(&'a redis::Cmd, Option<&'a [u8]>)>,
    until: Option<Instant>,
    resend_safe: bool,
}

/// Where a pipelined request stands.
#[allow(
    clippy::large_enum_variant,
    reason = "one per server of a round; boxing would allocate for every request"
)]
pub(crate) enum Progress<'a> {
    /// Written (the request, or its connection's check), its reply to be read with
    /// [`Outstanding::advance`].
    Sent(Outstanding<'a>),
    Done(Result<Reply, LockError>),
    /// The idle connection turned out closed before the request could have run (its
    /// check failed), or before the reply of a request that may run twice: the request
    /// is to be made on a fresh connection ([`SyncPool::request_fresh`]).
    Again,
}

impl SyncPool {
    /// Writes `cmd` (or first the check it needs, see `conn.rs`) on an idle connection,
    /// without reading the reply. `None` when no idle connection is at hand.
    pub(crate) fn start<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        cmd: &'a redis::Cmd,
        until: Option<Instant>,
        resend_safe: bool,
    ) -> Option<Progress<'a>> {
        self.start_packed(endpoint, cmd, None, until, resend_safe)
    }

    /// [`start`](SyncPool::start) of `cmd` already packed into `packed` when `Some` (see
    /// [`SyncConn::send_packed`]).
    pub(crate) fn start_packed<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        cmd: &'a redis::Cmd,
        packed: Option<&'a [u8]>,
        until: Option<Instant>,
        resend_safe: bool,
    ) -> Option<Progress<'a>> {
        let mut conn = self.slots.take_idle(|conn| conn.is_usable(endpoint))?;
        let limit = match remaining(until) {
            Ok(limit) => limit,
            Err(e) => {
                // Nothing was sent on it: it goes back as it is.
                conn.give_back();
                return Some(Progress::Done(Err(e)));
            }
        };
        let checking = !resend_safe && conn.needs_check();
        let sent = if checking {
            conn.send(endpoint, &check_command(endpoint), limit)
        } else {
            send(&mut conn, endpoint, (cmd, packed), limit)
        };
        let outstanding = Outstanding {
            pool: self,
            endpoint,
            conn,
            after_check: checking.then_some((cmd, packed)),
            until,
            resend_safe,
        };
        Some(match sent {
            Ok(()) => Progress::Sent(outstanding),
            Err(e) => outstanding.failed(e),
        })
    }

    /// [`request`](SyncPool::request) on a fresh connection: after a reused one turned
    /// out closed.
    pub(crate) fn request_fresh(
        &self,
        endpoint: &Endpoint,
        cmd: &redis::Cmd,
        until: Option<Instant>,
        resend_safe: bool,
    ) -> Result<Reply, LockError> {
        self.request_once(endpoint, cmd, false, until, resend_safe)
            .map_err(Failure::into_error)
    }
}

impl<'a> Outstanding<'a> {
    /// Reads the reply of what was written, by the request's deadline. After the check,
    /// writes the request.
    pub(crate) fn advance(mut self) -> Progress<'a> {
        let received = match remaining(self.until) {
            Ok(limit) => self.conn.recv(self.endpoint, limit),
            // The replies are read in turn: one that came while another server's was
            // awaited is read after the deadline, and counts (one not there is not
            // waited for).
            Err(passed) => self
                .conn
                .recv(self.endpoint, Some(LATE_READ))
                .map_err(|_| passed),
        };
        let reply = match received {
            Ok(reply) => reply,
            Err(e) => return self.failed(e),
        };
        let Some(request) = self.after_check.take() else {
            self.conn.give_back();
            return Progress::Done(Ok(reply));
        };
        // The check answered (any reply shows the connection alive).
        let limit = match remaining(self.until) {
            Ok(limit) => limit,
            Err(e) => {
                self.conn.give_back();
                return Progress::Done(Err(e));
            }
        };
        match send(&mut self.conn, self.endpoint, request, limit) {
            Ok(()) => Progress::Sent(self),
            Err(e) => self.failed(e),
        }
    }

    /// What a failed write or read of it comes to. The connection is closed: it may be out
    /// of step with its replies.
    fn failed(self, error: LockError) -> Progress<'a> {
        let Outstanding {
            pool,
            conn,
            after_check,
            resend_safe,
            ..
        } = self;
        drop(conn);
        if after_check.is_some() {
            // The check failed: lost while unused, and nothing that matters was sent on it;
            // the others, from before the same restart or idle timeout, are suspect too.
            pool.slots.close_idle();
            return Progress::Again;
        }
        match Failure::classify(error, true) {
            Failure::StaleIdle(_) if resend_safe => {
                pool.slots.close_idle();
                Progress::Again
            }
            failure => Progress::Done(Err(failure.into_error())),
        }
    }
}

/// Writes a request on `conn`, from its bytes when they were packed already.
fn send(
    conn: &mut SyncConn,
    endpoint: &Endpoint,
    (cmd, packed): (&redis::Cmd, Option<&[u8]>),
    limit: Option<Duration>,
) -> Result<(), LockError> {
    match packed {
        Some(packed) => conn.send_packed(endpoint, cmd, packed, limit),
        None => conn.send(endpoint, cmd, limit),
    }
}
