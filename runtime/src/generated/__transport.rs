//! The crate's own transport, reachable from outside only so that the benchmark can set it
//! against the `redis` crate's connections with the very commands a lock sends
//! (examples/examples/bench/transport.rs). Not public API: no stability promise.

use std::sync::Arc;

use crate::algorithm::client::LockClient;
use crate::backends::attempt::{AttemptOutcome, AttemptRequest, Queueing};
use crate::protocol::scripts::{ACQUIRE, RELEASE, lock_keys};
use crate::servers::io::{AsyncIo, Io, Route, SyncIo, eval_until, evalsha};
use crate::util::block_on::block_on;
use crate::util::error::LockError;

/// One registered single-server client's transport, driven with an uncontended lock's two
/// scripts: what [`Lock::acquire`](crate::Lock::acquire) and the guard's release send,
/// without the waiters' queue, the guard or the log around them.
pub struct Transport {
    client: Arc<LockClient>,
}

impl Transport {
    /// The transport of the client registered as `client` (`None`: the default client).
    pub fn of(client: Option<&str>) -> Result<Transport, LockError> {
        Ok(Transport {
            client: crate::api::registry::client(client)?,
        })
    }

    /// A fresh owner value, as an acquisition through [`Lock`](crate::Lock) writes.
    pub fn owner_value(&self) -> Result<String, LockError> {
        Ok(crate::util::holder::owner_value(
            &crate::util::token::new_token()?,
            None,
        ))
    }

    /// The bodies of the acquire and release scripts, to load them elsewhere.
    pub fn script_bodies() -> [&'static str; 2] {
        [ACQUIRE.body, RELEASE.body]
    }

    /// The `EVALSHA` commands of acquiring `key` under `value` for `lease_ms` and of
    /// releasing it, built as the runtime builds them.
    pub fn cycle_commands(&self, key: &str, value: &str, lease_ms: u64) -> [redis::Cmd; 2] {
        let keys = lock_keys(key);
        let keys = keys.all();
        let ms = lease_ms.to_string();
        // Not queued: a cycle that finds the lock taken only learns for how long.
        [
            evalsha(
                &ACQUIRE,
                &keys,
                &[value, &ms, "f", &self.client.instance_id],
            ),
            evalsha(&RELEASE, &keys, &[value, &self.client.instance_id]),
        ]
    }

    /// Runs the acquire script: the fencing token if the lock was taken, `None` if held.
    pub async fn acquire(
        &self,
        key: &str,
        value: &str,
        lease_ms: u64,
    ) -> Result<Option<u64>, LockError> {
        self.acquire_with(&AsyncIo, key, value, lease_ms).await
    }

    /// Runs the release script: whether the lock was ours.
    pub async fn release(&self, key: &str, value: &str) -> Result<bool, LockError> {
        self.release_with(&AsyncIo, key, value).await
    }

    /// [`acquire`](Transport::acquire) on the blocking transport.
    pub fn acquire_blocking(
        &self,
        key: &str,
        value: &str,
        lease_ms: u64,
    ) -> Result<Option<u64>, LockError> {
        block_on(self.acquire_with(&SyncIo, key, value, lease_ms))
    }

    /// [`release`](Transport::release) on the blocking transport.
    pub fn release_blocking(&self, key: &str, value: &str) -> Result<bool, LockError> {
        block_on(self.release_with(&SyncIo, key, value))
    }

    async fn acquire_with<I: Io>(
        &self,
        io: &I,
        key: &str,
        value: &str,
        lease_ms: u64,
    ) -> Result<Option<u64>, LockError> {
        let request = AttemptRequest {
            name: key,
            key,
            value,
            lease: std::time::Duration::from_millis(lease_ms),
            payload: &self.client.instance_id,
            until: None,
            queue: Queueing::outside(),
            fenced: true,
            kind: crate::util::kind::LockKind::Exclusive,
            plain: false,
        };
        // The attempt as an acquisition makes it, its reply decoded in the same one place.
        match crate::backends::one_server::attempt(io, &request, self.route()?, None).await {
            (Ok(AttemptOutcome::Acquired { fence, .. }), _) => Ok(Some(fence)),
            (Ok(AttemptOutcome::Held { .. }), _) => Ok(None),
            (Err(e), _) => Err(e),
        }
    }

    /// The client's one server (the transport is measured on a client of one server).
    fn route(&self) -> Result<Route<'_>, LockError> {
        match self.client.backend.single() {
            Some(single) => Ok(Route::Single(single)),
            None => Err(LockError::invalid(
                "the transport is measured on a client of one server",
            )),
        }
    }

    async fn release_with<I: Io>(&self, io: &I, key: &str, value: &str) -> Result<bool, LockError> {
        let args = [value, self.client.instance_id.as_str()];
        let keys = lock_keys(key);
        let keys = keys.all();
        Ok(eval_until(io, self.route()?, &RELEASE, &keys, &args, None)
            .await?
            .as_int()?
            == 1)
    }
}
