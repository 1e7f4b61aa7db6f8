//! Reusable connections: one pool of blocking connections per client, and one pool of
//! async connections per client and Tokio runtime, each with at most `max_connections`
//! open at once.
//!
//! A connection is taken out for exactly one request and put back only when that request
//! completed; a request that failed, timed out or was cancelled half-way drops its
//! connection, so a reply can never be read by the wrong caller. Callers beyond the cap
//! wait for a connection to come back: locking thousands of distinct names at once then
//! costs a handful of connections, not thousands (Redis caps clients at 10,000).
//!
//! Async connections belong to the runtime whose reactor they are registered with. When a
//! runtime shuts down it drops its tasks, and with them a sentinel task this module spawns
//! on first use, whose destructor forgets that runtime's pool. So nothing cached while one
//! runtime was current outlives it, and several runtimes one after another just work.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::conn::{AsyncConn, Endpoint, SyncConn};
use crate::error::LockError;
use crate::resp::Reply;

pub(crate) struct SyncPool {
    state: Mutex<SyncPoolState>,
    returned: Condvar,
    max: usize,
}

struct SyncPoolState {
    idle: Vec<SyncConn>,
    /// Connections in existence: idle, in use, or being opened.
    open: usize,
    /// Callers waiting for a connection: without any, returning one wakes nobody (a
    /// condition variable's notify is a system call, which the hot path can do without).
    waiting: usize,
}

impl SyncPool {
    pub(crate) fn new(max: usize) -> SyncPool {
        SyncPool {
            state: Mutex::new(SyncPoolState {
                idle: Vec::new(),
                open: 0,
                waiting: 0,
            }),
            returned: Condvar::new(),
            max,
        }
    }

    /// Runs one request, giving up at `until` (waiting for a connection included).
    pub(crate) fn request(
        &self,
        endpoint: &Endpoint,
        packed: &[u8],
        until: Option<Instant>,
    ) -> Result<Reply, LockError> {
        match self.request_once(endpoint, packed, true, until) {
            Err(Failure::StaleIdle(_)) => {
                self.close_idle();
                self.request_once(endpoint, packed, false, until)
                    .map_err(Failure::into_error)
            }
            other => other.map_err(Failure::into_error),
        }
    }

    fn request_once(
        &self,
        endpoint: &Endpoint,
        packed: &[u8],
        reuse: bool,
        until: Option<Instant>,
    ) -> Result<Reply, Failure> {
        let (mut conn, reused) = self
            .checkout(endpoint, reuse, until)
            .map_err(Failure::Other)?;
        let limit = remaining(until).map_err(Failure::Other)?;
        match conn.request_within(packed, endpoint.response_timeout, limit) {
            Ok(reply) => {
                let mut state = lock(&self.state);
                state.idle.push(conn);
                self.wake(state, false);
                Ok(reply)
            }
            Err(e) => {
                // It may be out of step with its replies: drop it, never reuse it.
                drop(conn);
                self.close_one();
                Err(Failure::classify(e, reused))
            }
        }
    }

    /// An idle connection (when `reuse`), a new one while under the cap, or else the next
    /// one returned. Says whether it was reused.
    fn checkout(
        &self,
        endpoint: &Endpoint,
        reuse: bool,
        until: Option<Instant>,
    ) -> Result<(SyncConn, bool), LockError> {
        let mut state = lock(&self.state);
        loop {
            if reuse && let Some(conn) = state.idle.pop() {
                if conn.generation == endpoint.generation {
                    return Ok((conn, true));
                }
                // Made for a master that has since moved: close it.
                state.open -= 1;
                continue;
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return remaining(until)
                    .and_then(|limit| SyncConn::connect(endpoint, limit))
                    .map(|conn| (conn, false))
                    .inspect_err(|_| self.close_one());
            }
            let limit = remaining(until)?;
            state.waiting += 1;
            state = match limit {
                None => self.returned.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(limit) => {
                    self.returned
                        .wait_timeout(state, limit)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            state.waiting -= 1;
        }
    }

    /// Wakes one caller waiting for a connection (all of them when `all`), if any waits.
    fn wake(&self, state: std::sync::MutexGuard<'_, SyncPoolState>, all: bool) {
        let waiting = state.waiting > 0;
        drop(state);
        match (waiting, all) {
            (false, _) => {}
            (true, false) => self.returned.notify_one(),
            (true, true) => self.returned.notify_all(),
        }
    }

    /// Closes every idle connection: one was found closed by the server, so the others,
    /// from before the same restart or idle timeout, are suspect too.
    fn close_idle(&self) {
        let mut state = lock(&self.state);
        state.open -= state.idle.len();
        state.idle.clear();
        self.wake(state, true);
    }

    /// A connection is gone: its place under the cap is free for a waiting caller.
    fn close_one(&self) {
        let mut state = lock(&self.state);
        state.open -= 1;
        self.wake(state, false);
    }
}

/// One runtime's async connections: the idle ones, and permits for at most the cap.
struct RuntimePool {
    idle: Vec<AsyncConn>,
    permits: Arc<Semaphore>,
}

type RuntimePools = Mutex<HashMap<tokio::runtime::Id, RuntimePool>>;

pub(crate) struct AsyncPools {
    by_runtime: Arc<RuntimePools>,
    max: usize,
}

impl AsyncPools {
    pub(crate) fn new(max: usize) -> AsyncPools {
        AsyncPools {
            by_runtime: Arc::new(Mutex::new(HashMap::new())),
            max,
        }
    }

    pub(crate) async fn request(
        &self,
        endpoint: &Endpoint,
        packed: &[u8],
    ) -> Result<Reply, LockError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| LockError::NoRuntime)?;
        let id = runtime.id();
        let permits = self.permits(&runtime, id);
        // Held until the connection is back in the pool or dropped, also on cancellation.
        let _permit = permits
            .acquire_owned()
            .await
            .map_err(|_| std::io::Error::other("connection pool closed"))?;
        match self.request_once(endpoint, packed, id, true).await {
            Err(Failure::StaleIdle(_)) => {
                if let Some(pool) = lock(&self.by_runtime).get_mut(&id) {
                    pool.idle.clear();
                }
                self.request_once(endpoint, packed, id, false)
                    .await
                    .map_err(Failure::into_error)
            }
            other => other.map_err(Failure::into_error),
        }
    }

    async fn request_once(
        &self,
        endpoint: &Endpoint,
        packed: &[u8],
        id: tokio::runtime::Id,
        reuse: bool,
    ) -> Result<Reply, Failure> {
        let reused = if reuse {
            let mut pools = lock(&self.by_runtime);
            let idle = pools.get_mut(&id).map(|pool| &mut pool.idle);
            // Connections made for a master that has since moved are closed.
            idle.and_then(|idle| {
                idle.retain(|conn| conn.generation == endpoint.generation);
                idle.pop()
            })
        } else {
            None
        };
        let was_reused = reused.is_some();
        let mut conn = match reused {
            Some(c) => c,
            None => AsyncConn::connect(endpoint).await.map_err(Failure::Other)?,
        };
        let reply = conn
            .request(packed)
            .await
            .map_err(|e| Failure::classify(e, was_reused))?;
        if let Some(pool) = lock(&self.by_runtime).get_mut(&id) {
            pool.idle.push(conn);
        }
        Ok(reply)
    }

    /// The permits of this runtime's pool, creating the pool on first use.
    fn permits(&self, runtime: &tokio::runtime::Handle, id: tokio::runtime::Id) -> Arc<Semaphore> {
        let mut pools = lock(&self.by_runtime);
        if let Some(pool) = pools.get(&id) {
            return pool.permits.clone();
        }
        let permits = Arc::new(Semaphore::new(self.max));
        pools.insert(
            id,
            RuntimePool {
                idle: Vec::new(),
                permits: permits.clone(),
            },
        );
        drop(pools);
        self.forget_when_runtime_ends(runtime, id);
        permits
    }

    fn forget_when_runtime_ends(&self, runtime: &tokio::runtime::Handle, id: tokio::runtime::Id) {
        struct Forget {
            pools: Weak<RuntimePools>,
            id: tokio::runtime::Id,
        }
        impl Drop for Forget {
            fn drop(&mut self) {
                if let Some(pools) = self.pools.upgrade() {
                    lock(&pools).remove(&self.id);
                }
            }
        }
        let forget = Forget {
            pools: Arc::downgrade(&self.by_runtime),
            id,
        };
        runtime.spawn(async move {
            let _forget = forget;
            std::future::pending::<()>().await
        });
    }
}

/// How long until `until`; an error once it has passed.
fn remaining(until: Option<Instant>) -> Result<Option<Duration>, LockError> {
    match until {
        None => Ok(None),
        Some(until) => match until.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(crate::io::deadline_passed()),
        },
    }
}

/// Why a request on a pooled connection failed.
enum Failure {
    /// A reused connection turned out closed by the server (it restarted, or dropped the
    /// idle connection). Such a request never reached a live server, so it is sent once
    /// more on a fresh connection. A timeout is not this: a slow server may still run it.
    StaleIdle(LockError),
    Other(LockError),
}

impl Failure {
    fn classify(error: LockError, reused: bool) -> Failure {
        match &error {
            LockError::Io { source, .. } if reused && closed_by_peer(source.kind()) => {
                Failure::StaleIdle(error)
            }
            _ => Failure::Other(error),
        }
    }

    fn into_error(self) -> LockError {
        match self {
            Failure::StaleIdle(e) | Failure::Other(e) => e,
        }
    }
}

/// Whether an I/O error says the other end closed or reset the connection (not a timeout:
/// a slow server may still run the request).
fn closed_by_peer(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof | NotConnected
    )
}

/// Locks a mutex, recovering from poisoning: every critical section in this crate leaves
/// its data consistent, so a panic elsewhere must not turn into a panic here.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
