//! Connections to one Redis server, on the `redis` crate: a blocking `Connection` for sync
//! callers (one request at a time, pooled by `pool.rs`), and `MultiplexedConnection`s for
//! async callers (shared by the tasks of one Tokio runtime, see `multiplexed.rs`).
//!
//! Our handshake (`AUTH`, `SELECT`, `CLIENT SETNAME`, see `endpoint.rs`) adds no round
//! trip to a blocking connection: it goes in one write with the first request. A
//! multiplexed connection sends it once, as one pipeline, before any task may use it.
//!
//! A connection the server closed while it sat unused (a restart, an idle timeout, `CLIENT
//! KILL`) fails the next request sent on it, and whether the server ran that request is
//! then unknown. A request that may run twice is simply sent again on a fresh connection;
//! one that may not is preceded by a check (see [`check_command`]) when its connection has
//! been unused for [`CHECK_AFTER`], so that it is never the one to find out.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis::ConnectionLike;

use crate::transport::endpoint::{Endpoint, Setup, shorter};
use crate::transport::failure::request_error;
use crate::transport::reply::Reply;
use crate::util::error::LockError;

/// How long a connection may sit unused before a request that must not be sent twice
/// checks it first. Such requests (a release, a handover) follow their
/// acquisition by at least the protected body's run time, so the check costs a round trip
/// only after a pause that is long against it.
pub(crate) const CHECK_AFTER: Duration = Duration::from_millis(100);

/// How far a blocking connection's socket timeouts may be from a request's own before they
/// are set again: a deadline is kept to within this.
pub(crate) const TIMEOUT_SLACK: Duration = Duration::from_millis(1);

/// The command that checks a connection: `CLIENT SETNAME` with the name it has, which
/// changes nothing and is among the commands a lock user's ACL grants (see the README's
/// "Security"); `PING` is not. Any reply, a refusal included, shows the connection alive.
pub(crate) fn check_command(endpoint: &Endpoint) -> redis::Cmd {
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(endpoint.connection_name())
        .take()
}

/// A blocking connection, used by sync functions and by no runtime at all.
pub(crate) struct SyncConn {
    conn: redis::Connection,
    /// The generation of the endpoint it was made for.
    pub(crate) generation: u64,
    /// The handshake's commands and their checks, until they went with the first request.
    setup: Option<(Vec<redis::Cmd>, Vec<Setup>)>,
    /// The checks of the handshake's replies, once it was sent and until they are read.
    unchecked: Vec<Setup>,
    /// What the socket's read timeout is set to now.
    timeout: Duration,
    last_used: Instant,
    /// The bytes of the last request, kept for the next: packing each request into a new
    /// buffer was an allocation per request.
    packed: Vec<u8>,
}

impl SyncConn {
    /// Connects, within `limit` if that is shorter than the connect timeout.
    pub(crate) fn connect(
        endpoint: &Endpoint,
        limit: Option<Duration>,
    ) -> Result<SyncConn, LockError> {
        let conn = endpoint.connect_blocking(limit)?;
        let mut conn = SyncConn {
            conn,
            generation: endpoint.generation,
            setup: Some(endpoint.handshake()),
            unchecked: Vec::new(),
            timeout: Duration::ZERO,
            last_used: Instant::now(),
            packed: Vec::new(),
        };
        // Writes keep this bound for good: a request goes out whole into the socket's send
        // buffer (a connection carries one request at a time, and requests are small), so
        // a write does not wait for the server, paused or unreachable as it may be; the
        // reply is what a request's deadline waits for, and the read timeout keeps it.
        conn.conn
            .set_write_timeout(Some(endpoint.response_timeout))
            .map_err(|e| request_error(e, endpoint.response_timeout))?;
        conn.set_read_timeout(endpoint.response_timeout)?;
        Ok(conn)
    }

    /// Whether it may be used for `endpoint` now: made for its current address, and not
    /// found broken.
    pub(crate) fn is_usable(&self, endpoint: &Endpoint) -> bool {
        self.generation == endpoint.generation && self.conn.is_open()
    }

    /// Whether a request that must not run twice should check it first.
    pub(crate) fn needs_check(&self) -> bool {
        self.setup.is_none() && self.last_used.elapsed() >= CHECK_AFTER
    }

    /// Sends `cmd` and reads its reply (after the handshake's, the first time), within
    /// `limit` when that is shorter than the response timeout.
    pub(crate) fn request(
        &mut self,
        endpoint: &Endpoint,
        cmd: &redis::Cmd,
        limit: Option<Duration>,
    ) -> Result<Reply, LockError> {
        self.send(endpoint, cmd, limit)?;
        self.recv(endpoint, limit)
    }

    /// Writes `cmd` (after the handshake's commands, the first time, in the same write)
    /// without reading its reply: [`recv`](SyncConn::recv) does, so that one thread can
    /// have requests out on several connections at once. `limit` (when shorter than the
    /// response timeout) only names the bound in an error: the write itself never waits
    /// for the server (see [`connect`](SyncConn::connect)).
    pub(crate) fn send(
        &mut self,
        endpoint: &Endpoint,
        cmd: &redis::Cmd,
        limit: Option<Duration>,
    ) -> Result<(), LockError> {
        let timeout = shorter(endpoint.response_timeout, limit);
        self.packed.clear();
        match self.setup.take() {
            None => cmd.write_packed_command(&mut self.packed),
            Some((commands, steps)) => {
                let mut pipeline = redis::pipe();
                for command in commands {
                    pipeline.add_command(command);
                }
                pipeline.add_command(cmd.clone());
                self.unchecked = steps;
                self.packed = pipeline.get_packed_pipeline();
            }
        }
        write(&mut self.conn, &self.packed, timeout)
    }

    /// [`send`](SyncConn::send) of `cmd` already packed into `packed`: the bytes of one
    /// request that goes to several servers (a Redlock round) are packed once, not once
    /// per server. The handshake still goes first on a connection's first request.
    pub(crate) fn send_packed(
        &mut self,
        endpoint: &Endpoint,
        cmd: &redis::Cmd,
        packed: &[u8],
        limit: Option<Duration>,
    ) -> Result<(), LockError> {
        if self.setup.is_some() {
            return self.send(endpoint, cmd, limit);
        }
        write(
            &mut self.conn,
            packed,
            shorter(endpoint.response_timeout, limit),
        )
    }

    /// Reads the reply of the request [`send`](SyncConn::send) wrote (the handshake's
    /// replies first, checked one at a time: the first failure ends it), within `limit`
    /// when that is shorter than the response timeout.
    pub(crate) fn recv(
        &mut self,
        endpoint: &Endpoint,
        limit: Option<Duration>,
    ) -> Result<Reply, LockError> {
        let timeout = shorter(endpoint.response_timeout, limit);
        self.set_read_timeout(timeout)?;
        let request_error = |e| request_error(e, timeout);
        for step in std::mem::take(&mut self.unchecked) {
            step.check(Reply::from(
                self.conn.recv_response().map_err(request_error)?,
            ))?;
        }
        let reply = loop {
            // As `req_packed_command` does: a RESP3 push is not the reply.
            match self.conn.recv_response().map_err(request_error)? {
                redis::Value::Push { .. } => continue,
                value => break Reply::from(value),
            }
        };
        self.last_used = Instant::now();
        Ok(reply)
    }

    /// Sets the socket's read timeout to `timeout`, unless it is within [`TIMEOUT_SLACK`]
    /// of it already: a request bounded by a deadline has a new timeout every time, and a
    /// system call for each read would cost more than the slack is worth. (The write
    /// timeout stays as [`connect`](SyncConn::connect) set it.)
    fn set_read_timeout(&mut self, timeout: Duration) -> Result<(), LockError> {
        if timeout.abs_diff(self.timeout) > TIMEOUT_SLACK {
            self.conn
                .set_read_timeout(Some(timeout))
                .map_err(|e| request_error(e, timeout))?;
            self.timeout = timeout;
        }
        Ok(())
    }
}

/// Writes a packed request; `timeout` only names the bound in an error (see
/// [`SyncConn::send`]).
fn write(conn: &mut redis::Connection, packed: &[u8], timeout: Duration) -> Result<(), LockError> {
    conn.send_packed_command(packed)
        .map_err(|e| request_error(e, timeout))
}

/// Instants as nanoseconds since this one, to keep them in an atomic.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_nanos() -> u64 {
    EPOCH.elapsed().as_nanos() as u64
}

/// One runtime's async connection to a server, shared by its tasks.
pub(crate) struct AsyncConn {
    conn: redis::aio::MultiplexedConnection,
    response_timeout: Duration,
    /// The generation of the endpoint it was made for.
    pub(crate) generation: u64,
    /// Set when a request found it lost: it is replaced, never used again.
    broken: AtomicBool,
    last_used: AtomicU64,
    /// Requests sent on it whose reply has not come (or that were dropped) yet.
    in_flight: AtomicUsize,
}

impl AsyncConn {
    /// Connects on the current runtime and sends the handshake, within the client's
    /// timeouts.
    pub(crate) async fn connect(endpoint: &Endpoint) -> Result<AsyncConn, LockError> {
        let mut conn = endpoint.connect().await?;
        let (commands, steps) = endpoint.handshake();
        let mut pipeline = redis::pipe();
        for command in commands {
            pipeline.add_command(command);
        }
        let count = steps.len();
        let replies = conn
            .send_packed_commands(&pipeline, 0, count)
            .await
            .map_err(|e| request_error(e, endpoint.response_timeout))?;
        for (step, reply) in steps.into_iter().zip(replies) {
            step.check(Reply::from(reply))?;
        }
        Ok(AsyncConn {
            conn,
            response_timeout: endpoint.response_timeout,
            generation: endpoint.generation,
            broken: AtomicBool::new(false),
            last_used: AtomicU64::new(now_nanos()),
            in_flight: AtomicUsize::new(0),
        })
    }

    /// Whether it may be used for `endpoint` now.
    pub(crate) fn is_usable(&self, endpoint: &Endpoint) -> bool {
        self.generation == endpoint.generation && !self.broken.load(Ordering::Acquire)
    }

    /// Whether a request that must not run twice should check it first.
    pub(crate) fn needs_check(&self) -> bool {
        let idle = now_nanos().saturating_sub(self.last_used.load(Ordering::Relaxed));
        Duration::from_nanos(idle) >= CHECK_AFTER
    }

    /// How many requests are on it now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Sends `cmd` and reads its reply, within the response timeout. A connection found
    /// lost is marked so.
    pub(crate) async fn request(&self, cmd: &redis::Cmd) -> Result<Reply, LockError> {
        /// Counts a request until it ends, however it ends (dropped half-way included).
        struct InFlight<'a>(&'a AtomicUsize);
        impl Drop for InFlight<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlight(&self.in_flight);
        let mut conn = self.conn.clone();
        match conn.send_packed_command(cmd).await {
            Ok(value) => {
                self.last_used.store(now_nanos(), Ordering::Relaxed);
                Ok(Reply::from(value))
            }
            Err(e) => {
                if e.is_connection_dropped() || e.is_unrecoverable_error() {
                    self.broken.store(true, Ordering::Release);
                }
                Err(request_error(e, self.response_timeout))
            }
        }
    }
}
