//! A configured client: where its locks live (its backend), its waiters and its key naming.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::error::LockError;
use crate::pool::{AsyncPools, SyncPool};
use crate::resp::Reply;
use crate::server::Current;
use crate::subscriber::Subscriber;
use crate::waiters::WaitTable;

/// The name under which [`init`](crate::init) registers the default client.
pub const DEFAULT_CLIENT: &str = "default";

/// Everything the lock needs to know about one client. Locks, guards and the tasks that
/// renew or release their locks hold it by `Arc`; a registered client lives for the whole
/// process (the registry holds it), a built [`Client`](crate::Client) until its last user
/// lets go. The subscriber's tasks hold it weakly, so that they end with it.
pub(crate) struct LockClient {
    pub(crate) name: String,
    pub(crate) prefix: String,
    pub(crate) default_lease: Duration,
    /// How long an acquisition rides out an unreachable Redis before it gives up.
    pub(crate) outage_timeout: Duration,
    /// Where requests go.
    pub(crate) backend: Backend,
    pub(crate) sync_pool: SyncPool,
    pub(crate) async_pools: AsyncPools,
    pub(crate) waiters: WaitTable,
    /// Payload of this client's release announcements, so it can skip its own.
    pub(crate) instance_id: String,
    subscriber: OnceLock<Option<Subscriber>>,
}

/// A request meant for one server reached a Redlock or Cluster client, whose requests are
/// routed elsewhere (`redlock.rs`, and by key in `io.rs`): a bug, reported as such.
fn not_one_server() -> LockError {
    LockError::invalid("internal error: a Redlock or Cluster client was asked for a single server")
}

impl LockClient {
    #[allow(clippy::too_many_arguments, reason = "one per ClientBuilder option")]
    pub(crate) fn new(
        name: String,
        backend: Backend,
        prefix: String,
        default_lease: Duration,
        outage_timeout: Duration,
        max_connections: usize,
    ) -> Result<LockClient, LockError> {
        Ok(LockClient {
            name,
            prefix,
            default_lease,
            outage_timeout,
            backend,
            sync_pool: SyncPool::new(max_connections),
            async_pools: AsyncPools::new(max_connections),
            waiters: WaitTable::new(),
            instance_id: crate::token::new_instance_id()?,
            subscriber: OnceLock::new(),
        })
    }

    /// The Redis key of lock `name`: the prefix, then the name as a Redis Cluster hash tag,
    /// so every key of one lock lives in one slot (see `keys.rs`).
    pub(crate) fn key(&self, name: &str) -> String {
        crate::keys::lock_key(&self.prefix, name)
    }

    /// The server to send a request to, for async callers: for a Sentinel-managed master
    /// never resolved yet, once one resolution has ended (or `until`).
    pub(crate) async fn server(&self, until: Option<Instant>) -> Result<Current<'_>, LockError> {
        match &self.backend {
            Backend::Server(server) => Ok(Current::Fixed(server)),
            Backend::Sentinel(sentinel) => sentinel.wait(until).await.map(Current::Resolved),
            Backend::Redlock(_) => Err(not_one_server()),
            Backend::Cluster(_) => Err(not_one_server()),
        }
    }

    /// [`server`](LockClient::server) for sync callers.
    pub(crate) fn server_blocking(&self, until: Option<Instant>) -> Result<Current<'_>, LockError> {
        match &self.backend {
            Backend::Server(server) => Ok(Current::Fixed(server)),
            Backend::Sentinel(sentinel) => sentinel.wait_blocking(until).map(Current::Resolved),
            Backend::Redlock(_) => Err(not_one_server()),
            Backend::Cluster(_) => Err(not_one_server()),
        }
    }

    /// Looks at a request's outcome: a failure that suggests the master moved (an
    /// unreachable server, a replica refusing writes) has the sentinels asked again.
    pub(crate) fn check(&self, outcome: &Result<Reply, LockError>) {
        if let Backend::Sentinel(sentinel) = &self.backend {
            let moved = match outcome {
                Ok(Reply::Error(message)) => crate::error::is_readonly(message),
                Ok(_) => false,
                Err(e) => e.is_unavailable(),
            };
            if moved {
                let _ = sentinel.refresh();
            }
        }
    }

    /// Makes sure release announcements for `key` reach this process.
    pub(crate) fn subscribe(self: &Arc<Self>, key: &str) {
        if self.waiters.needs_subscription(key)
            && let Some(subscriber) = self.subscriber.get_or_init(|| Subscriber::start(self))
        {
            subscriber.subscribe(key);
        }
    }
}
