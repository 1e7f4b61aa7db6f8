//! One async connection per server and Tokio runtime, multiplexed: every task of its
//! runtime sends on it at once, and a request dropped half-way leaves it in step (its late
//! reply is discarded). It belongs to
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

/// One runtime's async connection, and the lock that lets one task at a time make it.
#[derive(Default)]
struct RuntimeConn {
    current: Mutex<Option<Arc<AsyncConn>>>,
    connecting: tokio::sync::Mutex<()>,
}

type RuntimeConns = Mutex<HashMap<tokio::runtime::Id, Arc<RuntimeConn>>>;

pub(crate) struct AsyncPools {
    by_runtime: Arc<RuntimeConns>,
}

impl AsyncPools {
    pub(crate) fn new() -> AsyncPools {
        AsyncPools {
            by_runtime: Arc::new(Mutex::new(HashMap::new())),
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
        let slot = Arc::new(RuntimeConn::default());
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
    /// The connection to use for `endpoint`, made now if there is none that is usable;
    /// says whether it was made for this request.
    async fn get(&self, endpoint: &Endpoint) -> Result<(Arc<AsyncConn>, bool), LockError> {
        if let Some(conn) = self.usable(endpoint) {
            return Ok((conn, false));
        }
        // One task connects; the others wait for its connection rather than make their own.
        let _connecting = self.connecting.lock().await;
        if let Some(conn) = self.usable(endpoint) {
            return Ok((conn, false));
        }
        // Boxed: connecting is rare, and its deep future would otherwise be part of every
        // request's, which annotated async fns hold inline.
        let conn = Arc::new(Box::pin(AsyncConn::connect(endpoint)).await?);
        *lock(&self.current) = Some(conn.clone());
        Ok((conn, true))
    }

    fn usable(&self, endpoint: &Endpoint) -> Option<Arc<AsyncConn>> {
        lock(&self.current)
            .as_ref()
            .filter(|conn| conn.is_usable(endpoint))
            .cloned()
    }
}
