//! Renewing and releasing a place among the holders of a lock several may hold (a
//! semaphore, a shared lock: see `protocol/counted.rs`), and which backends have them.

use crate::backends::backend::Backend;
use crate::backends::release_reply::release_checked;
use crate::protocol::counted::{COUNTED_EXTEND, COUNTED_HOLDERS, COUNTED_RELEASE};
use crate::protocol::scripts::lock_keys;
use crate::servers::io::{Io, Route, eval_until};
use crate::util::error::LockError;

impl Backend {
    /// Whether locks several may hold live here: on one server (fixed or through
    /// Sentinel), on a Redis Cluster without `min_replicas`, where one script sees every
    /// holder, and in memory. Not on a Redlock quorum, where each server would count its
    /// own holders and N + 1 callers could each win a majority; not with `min_replicas`,
    /// whose acknowledgement they would skip.
    pub(crate) fn counts(&self) -> bool {
        match self {
            Backend::Single(_) | Backend::Memory(_) => true,
            Backend::Cluster(cluster) => cluster.min_replicas == 0,
            Backend::Redlock(_) => false,
        }
    }

    fn counted_route(&self) -> Result<Route<'_>, LockError> {
        match self {
            Backend::Single(single) => Ok(Route::Single(single)),
            Backend::Cluster(cluster) => Ok(Route::Cluster(cluster)),
            // The store answers the scripts as redis-server does (`memory/counted.rs`).
            Backend::Memory(memory) => Ok(Route::Memory(memory)),
            Backend::Redlock(_) => Err(LockError::invalid(
                "internal error: a semaphore or shared lock on a backend without them",
            )),
        }
    }

    /// Restarts the lease of the holder `value` (`lease_ms` from now); false when it is
    /// not listed any more.
    pub(crate) async fn counted_extend<I: Io>(
        &self,
        io: &I,
        key: &str,
        value: &str,
        lease_ms: &str,
    ) -> Result<bool, LockError> {
        let route = self.counted_route()?;
        let reply = eval_until(io, route, &COUNTED_EXTEND, &[key], &[value, lease_ms], None).await;
        Ok(reply?.as_int()? == 1)
    }

    /// Takes the holder `value` out and announces it; true when it was listed with time
    /// left. Also whether Redis may not have run it (no answer), for the caller to finish
    /// it in the background.
    pub(crate) async fn counted_release<I: Io>(
        &self,
        io: &I,
        key: &str,
        value: &str,
        payload: &str,
    ) -> (Result<bool, LockError>, bool) {
        let route = match self.counted_route() {
            Ok(route) => route,
            Err(e) => return (Err(e), false),
        };
        let keys = lock_keys(key);
        let keys = keys.all();
        let (keys, args) = (&keys, &[value, payload]);
        release_checked(move || eval_until(io, route, &COUNTED_RELEASE, keys, args, None)).await
    }

    /// How many hold places of the semaphore or shared lock in `key` now.
    pub(crate) async fn counted_holders<I: Io>(&self, io: &I, key: &str) -> Result<i64, LockError> {
        let route = self.counted_route()?;
        eval_until(io, route, &COUNTED_HOLDERS, &[key], &[], None)
            .await?
            .as_int()
    }
}
