//! The cluster connections of callers' runtimes. The shared connection lives on the crate's
//! background runtime, where the subscriber needs it (its push messages must outlive any
//! caller's runtime); a request sent on it from another runtime goes to its driver task
//! there and its reply comes back, two wake-ups of another thread per request. So each
//! caller's runtime gets a connection of its own, made there (its driver runs on that
//! runtime), without push messages, and forgotten when that runtime shuts down, as the
//! single-server pool's are (see `transport/multiplexed.rs`).

use std::sync::Weak;

use redis::cluster_async::ClusterConnection;

use super::{ByRuntime, Cluster};
use crate::util::error::LockError;
use crate::util::sync::lock;

impl Cluster {
    /// The connection for a request from the current task: this runtime's own, made on
    /// first use; the shared one on the background runtime, or outside any runtime.
    pub(super) async fn connection_here(&self) -> Result<ClusterConnection, LockError> {
        let (Ok(here), Ok(background)) = (
            tokio::runtime::Handle::try_current(),
            crate::util::background::handle(),
        ) else {
            return self.connection().await;
        };
        if here.id() == background.id() {
            return self.connection().await;
        }
        let id = here.id();
        if let Some(connection) = lock(&self.inner.by_runtime).get(&id) {
            return Ok(connection.clone());
        }
        let made = self.inner.request_client.get_async_connection().await;
        let connection = self.inner.connected(made)?;
        // Two first requests at once may each make one: the last one stays, and the
        // other is dropped once its request is done.
        let first = lock(&self.inner.by_runtime)
            .insert(id, connection.clone())
            .is_none();
        if first {
            forget_when_runtime_ends(&here, id, std::sync::Arc::downgrade(&self.inner.by_runtime));
        }
        Ok(connection)
    }
}

/// Spawns on `runtime` a task that never ends, whose drop (when the runtime shuts down and
/// drops its tasks) forgets that runtime's connection.
fn forget_when_runtime_ends(
    runtime: &tokio::runtime::Handle,
    id: tokio::runtime::Id,
    conns: Weak<ByRuntime>,
) {
    struct Forget {
        conns: Weak<ByRuntime>,
        id: tokio::runtime::Id,
    }
    impl Drop for Forget {
        fn drop(&mut self) {
            if let Some(conns) = self.conns.upgrade() {
                lock(&conns).remove(&self.id);
            }
        }
    }
    let forget = Forget { conns, id };
    runtime.spawn(async move {
        let _forget = forget;
        std::future::pending::<()>().await
    });
}
