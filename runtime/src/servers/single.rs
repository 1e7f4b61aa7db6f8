//! One Redis server and our connections to it: at a fixed address, or the master of a
//! group managed by Redis Sentinel, found by asking the sentinels. A client of one server
//! is one of these; a Redlock quorum is several.

use std::time::Instant;

use crate::transport::multiplexed::AsyncPools;
use crate::transport::pool::SyncPool;
use crate::transport::reply::Reply;
use crate::transport::sentinel::SentinelMaster;
use crate::transport::server::{Current, Server};
use crate::util::error::LockError;

/// Where the server is.
#[allow(
    clippy::large_enum_variant,
    reason = "one per client, made once; boxing would add a hop to every request"
)]
pub(crate) enum Place {
    /// At a fixed address.
    Fixed(Server),
    /// Wherever the sentinels say the master is.
    Sentinel(SentinelMaster),
}

/// One server and the connections to it.
pub(crate) struct Single {
    place: Place,
    pub(crate) sync_pool: SyncPool,
    pub(crate) async_pools: AsyncPools,
}

impl Single {
    pub(crate) fn new(place: Place, max_connections: usize) -> Single {
        Single {
            place,
            sync_pool: SyncPool::new(max_connections),
            async_pools: AsyncPools::new(max_connections),
        }
    }

    /// The server to send a request to, for async callers: for a Sentinel-managed master
    /// never resolved yet, once one resolution has ended (or `until`).
    pub(crate) async fn server(&self, until: Option<Instant>) -> Result<Current<'_>, LockError> {
        match &self.place {
            Place::Fixed(server) => Ok(Current::Fixed(server)),
            Place::Sentinel(sentinel) => sentinel.wait(until).await.map(Current::Resolved),
        }
    }

    /// [`server`](Single::server) for sync callers.
    pub(crate) fn server_blocking(&self, until: Option<Instant>) -> Result<Current<'_>, LockError> {
        match &self.place {
            Place::Fixed(server) => Ok(Current::Fixed(server)),
            Place::Sentinel(sentinel) => sentinel.wait_blocking(until).map(Current::Resolved),
        }
    }

    /// [`server`](Single::server) when it is known without waiting: `None` for a
    /// Sentinel-managed master not resolved yet.
    pub(crate) fn server_now(&self) -> Option<Current<'_>> {
        match &self.place {
            Place::Fixed(server) => Some(Current::Fixed(server)),
            Place::Sentinel(sentinel) => sentinel.current().map(Current::Resolved),
        }
    }

    /// The sentinels' view of the master, for a Sentinel-managed one.
    pub(crate) fn sentinel(&self) -> Option<&SentinelMaster> {
        match &self.place {
            Place::Fixed(_) => None,
            Place::Sentinel(sentinel) => Some(sentinel),
        }
    }

    /// The generation of the server's address now: it changes when a Sentinel-managed
    /// master moves.
    pub(crate) fn generation(&self) -> u64 {
        match &self.place {
            Place::Fixed(server) => server.endpoint.generation,
            Place::Sentinel(sentinel) => sentinel.current().map_or(0, |s| s.endpoint.generation),
        }
    }

    /// Has the sentinels asked where the master is now (nothing for a fixed server).
    pub(crate) fn refresh(&self) {
        if let Some(sentinel) = self.sentinel() {
            let _ = sentinel.refresh();
        }
    }

    /// Looks at a request's outcome: a failure that suggests the master moved (an
    /// unreachable server, a replica refusing writes) has the sentinels asked again.
    pub(crate) fn check(&self, outcome: &Result<Reply, LockError>) {
        let moved = match outcome {
            Ok(Reply::Error(message)) => crate::util::error::classify::is_readonly(message),
            Ok(_) => false,
            Err(e) => e.is_unavailable(),
        };
        if moved {
            self.refresh();
        }
    }
}
