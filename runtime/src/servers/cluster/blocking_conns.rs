//! The `redis` crate's blocking cluster connections, lent to sync callers for requests
//! routed by their key: the request is written and its reply read on the caller's thread,
//! with no runtime between (the crate's async cluster connection, even driven on the
//! caller's thread, cost 30 µs per uncontended call where its blocking one costs 18).
//! At most the client's `max_connections` of them, each connected to every master. They
//! are made on a thread of their own, never on a caller's: connecting to every master is
//! bounded only by the client's timeouts, not by the caller's deadline, so a caller that
//! finds none idle goes the ordinary way while one is made for the next.
//!
//! A connection serves only where the ordinary way is plain: a request whose deadline is
//! nearer than a millisecond, or one that must not run twice on a connection unused for
//! [`CHECK_AFTER`] (the server may have closed it meanwhile), is not sent here, and one
//! that failed in a way that proves it did not run, or that may be sent again, is left to
//! the async path with its resend policy (see `blocking.rs`). A connection that failed
//! is dropped, never lent again: a reply that came late would otherwise be read as the
//! next request's.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Arg, ConnectionLike};

use crate::transport::conn::{CHECK_AFTER, TIMEOUT_SLACK};
use crate::util::sync::lock;

/// After a connection could not be made, no other is tried for this long (the ordinary
/// way meanwhile connects, and reports why it cannot).
const AFTER_FAILURE: Duration = Duration::from_secs(1);

pub(super) struct BlockingConns {
    client: ClusterClient,
    response_timeout: Duration,
    shared: Arc<Shared>,
    cap: usize,
}

/// What the pool shares with the threads that make its connections.
struct Shared {
    /// Boxed: a connection moves out of here and back at every request, and a cluster
    /// connection inline made those moves cost more than the rest of the lending.
    #[allow(
        clippy::vec_box,
        reason = "each element is moved out and back at every request"
    )]
    idle: Mutex<Vec<Box<Idle>>>,
    /// How many exist, idle, lent or being made.
    made: Mutex<usize>,
    failed_at: Mutex<Option<Instant>>,
}

struct Idle {
    conn: ClusterConnection,
    last_used: Instant,
    /// The socket timeouts set on every node's connection.
    timeout: Duration,
}

/// A connection lent for one request: given back with [`Lent::give_back`] after a reply,
/// dropped (and its place freed) otherwise.
pub(super) struct Lent<'a> {
    pool: &'a BlockingConns,
    idle: Option<Box<Idle>>,
}

impl BlockingConns {
    pub(super) fn new(
        client: ClusterClient,
        response_timeout: Duration,
        cap: usize,
    ) -> BlockingConns {
        BlockingConns {
            client,
            response_timeout,
            shared: Arc::new(Shared {
                idle: Mutex::new(Vec::new()),
                made: Mutex::new(0),
                failed_at: Mutex::new(None),
            }),
            cap,
        }
    }

    /// A connection for `cmd`, bounded by `until`, or `None` where it should go the
    /// ordinary way (see the module's comment). For a request that must not run twice, a
    /// connection unused for [`CHECK_AFTER`] is first checked with a `PING` to the node
    /// the request goes to (one round trip), so that the request is not what finds it
    /// closed.
    pub(super) fn lend(
        &self,
        cmd: &redis::Cmd,
        resend_safe: bool,
        until: Option<Instant>,
    ) -> Option<Lent<'_>> {
        let timeout = match until {
            None => self.response_timeout,
            Some(until) => until
                .checked_duration_since(Instant::now())
                .filter(|left| *left >= Duration::from_millis(1))?
                .min(self.response_timeout),
        };
        let Some(taken) = lock(&self.shared.idle).pop() else {
            self.connect_in_background();
            return None;
        };
        let mut lent = Lent {
            pool: self,
            idle: Some(taken),
        };
        let idle = lent.idle.as_mut()?;
        if timeout.abs_diff(idle.timeout) > TIMEOUT_SLACK {
            idle.conn.set_read_timeout(Some(timeout)).ok()?;
            idle.conn.set_write_timeout(Some(timeout)).ok()?;
            idle.timeout = timeout;
        }
        if !resend_safe && idle.last_used.elapsed() >= CHECK_AFTER {
            let node = SingleNodeRoutingInfo::SpecificNode(Route::with_key(
                first_key(cmd)?,
                SlotAddr::Master,
            ));
            let ping = redis::cmd("PING");
            idle.conn
                .route_command(&ping, RoutingInfo::SingleNode(node))
                .ok()?;
        }
        Some(lent)
    }

    /// Starts making a connection on a thread of its own, unless the pool is at its cap
    /// or the last try failed less than [`AFTER_FAILURE`] ago.
    fn connect_in_background(&self) {
        if lock(&self.shared.failed_at).is_some_and(|at| at.elapsed() < AFTER_FAILURE) {
            return;
        }
        {
            let mut made = lock(&self.shared.made);
            if *made >= self.cap {
                return;
            }
            *made += 1;
        }
        let (client, shared) = (self.client.clone(), self.shared.clone());
        let spawned = std::thread::Builder::new()
            .name("redis-locked-connect".into())
            .spawn(move || match client.get_connection() {
                Ok(conn) => lock(&shared.idle).push(Box::new(Idle {
                    conn,
                    last_used: Instant::now(),
                    timeout: Duration::ZERO,
                })),
                Err(_) => {
                    *lock(&shared.failed_at) = Some(Instant::now());
                    *lock(&shared.made) -= 1;
                }
            });
        if spawned.is_err() {
            *lock(&self.shared.made) -= 1;
        }
    }
}

/// The first key of `cmd`, which decides where the cluster connection sends it: after
/// the script and the number of keys for a script, else the first argument.
fn first_key(cmd: &redis::Cmd) -> Option<&[u8]> {
    let mut args = cmd.args_iter().map(|arg| match arg {
        Arg::Simple(bytes) => Some(bytes),
        _ => None,
    });
    let name = args.next()??;
    if name.eq_ignore_ascii_case(b"EVALSHA") || name.eq_ignore_ascii_case(b"EVAL") {
        let _script = args.next()??;
        let keys = args.next()??;
        if keys == b"0" {
            return None;
        }
    }
    args.next()?
}

impl Lent<'_> {
    /// Sends `cmd` to the master of its key's slot and reads the reply.
    pub(super) fn request(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        match &mut self.idle {
            Some(idle) => idle.conn.req_command(cmd),
            None => Err(redis::RedisError::from(std::io::Error::other(
                "the connection was given back",
            ))),
        }
    }

    /// Back to the pool, for the next request: the reply was read, the connection is in
    /// step.
    pub(super) fn give_back(mut self) {
        if let Some(mut idle) = self.idle.take() {
            idle.last_used = Instant::now();
            lock(&self.pool.shared.idle).push(idle);
        }
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if self.idle.take().is_some() {
            *lock(&self.pool.shared.made) -= 1;
        }
    }
}
