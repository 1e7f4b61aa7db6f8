//! Async connections to one server, per Tokio runtime, multiplexed: any number of tasks
//! send on one at once, and a request dropped half-way leaves it in step (its late reply
//! is discarded). A request takes a connection with nothing in flight; when every open one
//! is busy, another is opened, up to `max_connections`, beyond which requests share the
//! least busy. One connection's driver task carries every request on it, so spreading
//! concurrent requests over several keeps them from queueing behind one driver, while
//! 10,000 waiters on one lock (only the queue's head sends) still cost one connection. A
//! connection belongs to
//! the runtime whose reactor runs its driver. When a runtime shuts down it drops its tasks,
//! and with them a sentinel task this module spawns on first use, whose destructor forgets
//! that runtime's connection. So nothing cached while one runtime was current outlives it,
//! and several runtimes one after another just work.
//!
//! A request that found its connection lost is sent again on a fresh one only if it is
//! `resend_safe` (see `conn.rs` for the check that keeps the others from finding out).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crate::transport::conn::AsyncConn;
use crate::transport::endpoint::Endpoint;
use crate::transport::pool::closed;
use crate::transport::reply::Reply;
use crate::util::error::LockError;
use crate::util::sync::lock;

/// One runtime's async connections, and the lock that lets one task at a time open one.
struct RuntimeConn {
    open: Mutex<Vec<Arc<AsyncConn>>>,
    connecting: tokio::sync::Mutex<()>,
    max: usize,
}

type RuntimeConns = Mutex<HashMap<tokio::runtime::Id, Arc<RuntimeConn>>>;

pub(crate) struct AsyncPools {
    by_runtime: Arc<RuntimeConns>,
    max: usize,
}

impl AsyncPools {
    pub(crate) fn new(max: usize) -> AsyncPools {
        AsyncPools {
            by_runtime: Arc::new(Mutex::new(HashMap::new())),
            max,
        }
    }

    /// Runs one request; sent again as for [`SyncPool::request`](crate::transport::pool::SyncPool::request).
    pub(crate) async fn request(
        &self,
        endpoint: &Endpoint,
        cmd: &redis::Cmd,
        resend_safe: bool,
    ) -> Result<Reply, LockError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| LockError::NoRuntime)?;
        let slot = self.slot(&runtime);
        let (mut conn, mut fresh) = slot.get(endpoint).await?;
        if !fresh
            && !resend_safe
            && conn.needs_check()
            && let Err(e) = conn
                .request(&crate::transport::conn::check_command(endpoint))
                .await
        {
            if !closed(&e) {
                return Err(e);
            }
            // Lost while unused: nothing that matters was sent on it.
            (conn, fresh) = slot.get(endpoint).await?;
        }
        match conn.request(cmd).await {
            Err(e) if resend_safe && !fresh && closed(&e) => {
                let (conn, _) = slot.get(endpoint).await?;
                conn.request(cmd).await
            }
            other => other,
        }
    }

    /// This runtime's connection slot, made on first use.
    fn slot(&self, runtime: &tokio::runtime::Handle) -> Arc<RuntimeConn> {
        let id = runtime.id();
        let mut conns = lock(&self.by_runtime);
        if let Some(slot) = conns.get(&id) {
            return slot.clone();
        }
        let slot = Arc::new(RuntimeConn {
            open: Mutex::new(Vec::new()),
            connecting: tokio::sync::Mutex::new(()),
            max: self.max,
        });
        conns.insert(id, slot.clone());
        drop(conns);
        self.forget_when_runtime_ends(runtime, id);
        slot
    }

    fn forget_when_runtime_ends(&self, runtime: &tokio::runtime::Handle, id: tokio::runtime::Id) {
        struct Forget {
            conns: Weak<RuntimeConns>,
            id: tokio::runtime::Id,
        }
        impl Drop for Forget {
            fn drop(&mut self) {
                if let Some(conns) = self.conns.upgrade() {
                    lock(&conns).remove(&self.id);
                }
            }
        }
        let forget = Forget {
            conns: Arc::downgrade(&self.by_runtime),
            id,
        };
        runtime.spawn(async move {
            let _forget = forget;
            std::future::pending::<()>().await
        });
    }
}

impl RuntimeConn {
    /// The connection to use for `endpoint`: one with nothing in flight, else a new one
    /// while under the cap and nobody else is opening one, else the least busy. Says
    /// whether it was made for this request.
    async fn get(&self, endpoint: &Endpoint) -> Result<(Arc<AsyncConn>, bool), LockError> {
        let busy = match self.pick(endpoint) {
            Pick::Idle(conn) | Pick::Busy(conn, false) => return Ok((conn, false)),
            Pick::Busy(conn, true) => Some(conn),
            Pick::None => None,
        };
        let _connecting = match (&busy, self.connecting.try_lock()) {
            (_, Ok(connecting)) => connecting,
            // Someone is opening one: share a busy connection meanwhile.
            (Some(conn), Err(_)) => return Ok((conn.clone(), false)),
            // None is open: wait for the one being opened.
            (None, Err(_)) => {
                let connecting = self.connecting.lock().await;
                if let Pick::Idle(conn) | Pick::Busy(conn, _) = self.pick(endpoint) {
                    return Ok((conn, false));
                }
                connecting
            }
        };
        // Boxed: connecting is rare, and its deep future would otherwise be part of every
        // request's, which annotated async fns hold inline.
        match Box::pin(AsyncConn::connect(endpoint)).await {
            Ok(conn) => {
                let conn = Arc::new(conn);
                lock(&self.open).push(conn.clone());
                Ok((conn, true))
            }
            // A busy connection still works.
            Err(_) if busy.is_some() => Ok((busy.expect("checked"), false)),
            Err(e) => Err(e),
        }
    }

    /// The open connections' best for a request now; those made for an older address of
    /// the server, or found lost, are closed first.
    fn pick(&self, endpoint: &Endpoint) -> Pick {
        let mut open = lock(&self.open);
        open.retain(|conn| conn.is_usable(endpoint));
        let Some(least) = open.iter().min_by_key(|conn| conn.in_flight()) else {
            return Pick::None;
        };
        if least.in_flight() == 0 {
            Pick::Idle(least.clone())
        } else {
            Pick::Busy(least.clone(), open.len() < self.max)
        }
    }
}

/// What [`RuntimeConn::pick`] found.
enum Pick {
    /// A connection with nothing in flight.
    Idle(Arc<AsyncConn>),
    /// The least busy connection, and whether another may be opened.
    Busy(Arc<AsyncConn>, bool),
    /// No connection is open.
    None,
}
