//! Reusable connections: one pool of blocking connections per client, and one pool of
//! async connections per client and Tokio runtime.
//!
//! A connection is taken out for exactly one request and put back only when that request
//! completed; a request that failed, timed out or was cancelled half-way drops its
//! connection, so a reply can never be read by the wrong caller.
//!
//! Async connections belong to the runtime whose reactor they are registered with. When a
//! runtime shuts down it drops its tasks, and with them a sentinel task this module spawns
//! on first use, whose destructor forgets that runtime's pool. So nothing cached while one
//! runtime was current outlives it, and several runtimes one after another just work.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crate::conn::{AsyncConn, Endpoint, SyncConn};
use crate::error::LockError;
use crate::resp::Reply;

/// Idle connections kept per pool; more may be open while busy.
const MAX_IDLE: usize = 8;

pub(crate) struct SyncPool {
    idle: Mutex<Vec<SyncConn>>,
}

impl SyncPool {
    pub(crate) fn new() -> SyncPool {
        SyncPool {
            idle: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn request(&self, endpoint: &Endpoint, packed: &[u8]) -> Result<Reply, LockError> {
        let reused = lock(&self.idle).pop();
        let mut conn = match reused {
            Some(c) => c,
            None => SyncConn::connect(endpoint)?,
        };
        let reply = conn.request(packed)?;
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        Ok(reply)
    }
}

type RuntimePools = Mutex<HashMap<tokio::runtime::Id, Vec<AsyncConn>>>;

pub(crate) struct AsyncPools {
    by_runtime: Arc<RuntimePools>,
}

impl AsyncPools {
    pub(crate) fn new() -> AsyncPools {
        AsyncPools {
            by_runtime: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub(crate) async fn request(
        &self,
        endpoint: &Endpoint,
        packed: &[u8],
    ) -> Result<Reply, LockError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| LockError::NoRuntime)?;
        let id = runtime.id();
        let reused = {
            let mut pools = lock(&self.by_runtime);
            match pools.get_mut(&id) {
                Some(idle) => idle.pop(),
                None => {
                    pools.insert(id, Vec::new());
                    drop(pools);
                    self.forget_when_runtime_ends(&runtime, id);
                    None
                }
            }
        };
        let mut conn = match reused {
            Some(c) => c,
            None => AsyncConn::connect(endpoint).await?,
        };
        let reply = conn.request(packed).await?;
        let mut pools = lock(&self.by_runtime);
        if let Some(idle) = pools.get_mut(&id)
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
        Ok(reply)
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

/// Locks a mutex, recovering from poisoning: every critical section in this crate leaves
/// its data consistent, so a panic elsewhere must not turn into a panic here.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
