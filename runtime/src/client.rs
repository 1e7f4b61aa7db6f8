//! A configured Redis server: its connections, its waiters and its key naming.

use std::sync::OnceLock;
use std::time::Duration;

use crate::conn::Endpoint;
use crate::error::LockError;
use crate::pool::{AsyncPools, SyncPool};
use crate::subscriber::Subscriber;
use crate::waiters::WaitTable;

/// Everything the lock needs to know about one registered client. Clients are registered
/// once and live for the whole process, so locks and background tasks hold `&'static`.
pub(crate) struct LockClient {
    pub(crate) name: String,
    pub(crate) prefix: String,
    pub(crate) default_lease: Duration,
    /// How long an acquisition rides out an unreachable Redis before it gives up.
    pub(crate) outage_timeout: Duration,
    pub(crate) endpoint: Endpoint,
    /// The `redis` crate's client, for pub/sub and administrative scans.
    pub(crate) redis: redis::Client,
    pub(crate) sync_pool: SyncPool,
    pub(crate) async_pools: AsyncPools,
    pub(crate) waiters: WaitTable,
    /// Payload of this client's release announcements, so it can skip its own.
    pub(crate) instance_id: String,
    subscriber: OnceLock<Option<Subscriber>>,
}

impl LockClient {
    pub(crate) fn new(
        name: String,
        url: &str,
        prefix: String,
        default_lease: Duration,
        outage_timeout: Duration,
        connect_timeout: Duration,
        response_timeout: Duration,
        max_connections: usize,
    ) -> Result<LockClient, LockError> {
        let redis = redis::Client::open(url)
            .map_err(|e| LockError::invalid(format!("`{url}` is not a usable Redis URL: {e}")))?;
        let endpoint = Endpoint::new(
            redis.get_connection_info(),
            connect_timeout,
            response_timeout,
        )?;
        Ok(LockClient {
            name,
            prefix,
            default_lease,
            outage_timeout,
            endpoint,
            redis,
            sync_pool: SyncPool::new(max_connections),
            async_pools: AsyncPools::new(max_connections),
            waiters: WaitTable::new(),
            instance_id: crate::token::new_instance_id()?,
            subscriber: OnceLock::new(),
        })
    }

    /// The Redis key of lock `name`: the prefix, then the name as a Redis Cluster hash tag,
    /// so every key of one lock lives in one slot.
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}{{{}}}", self.prefix, name)
    }

    /// Makes sure release announcements for `key` reach this process.
    pub(crate) fn subscribe(&'static self, key: &str) {
        if self.waiters.needs_subscription(key)
            && let Some(subscriber) = self.subscriber.get_or_init(|| Subscriber::start(self))
        {
            subscriber.subscribe(key);
        }
    }
}
