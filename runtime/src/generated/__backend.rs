//! One backend operation at a time, with owner values of the caller's choosing, reachable
//! from outside only so that `tests/tests/memory_differential.rs` can run the same
//! operations on redis-server and on the in-memory backend and compare every answer. Not
//! public API: no stability promise.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::algorithm::client::LockClient;
use crate::api::scope::Client;
use crate::backends::attempt::{AttemptOutcome, AttemptRequest, Queueing};
use crate::protocol::scripts::{lock_keys, queue_entry};
use crate::servers::io::AsyncIo;
use crate::util::error::LockError;
use crate::util::lease::lease_millis;

/// A client's backend, driven one operation at a time.
pub struct Operations {
    client: Arc<LockClient>,
}

/// What one acquisition attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempted {
    /// Taken (or already held under the same value), with this fencing token.
    Taken {
        /// The fencing token.
        fence: u64,
    },
    /// Held under another value, for this much longer at most.
    Held {
        /// The holder's remaining lease.
        remaining: Duration,
    },
}

impl Operations {
    /// The backend of `client`.
    pub fn of(client: &Client) -> Operations {
        Operations {
            client: client.inner.clone(),
        }
    }

    /// One acquisition attempt (ACQUIRE) on lock `name` under `value`.
    pub async fn acquire(
        &self,
        name: &str,
        value: &str,
        lease: Duration,
    ) -> Result<Attempted, LockError> {
        let key = self.client.key(name);
        let request = AttemptRequest {
            name,
            key: &key,
            value,
            lease,
            payload: &self.client.instance_id,
            until: None,
            // Not queued: the store serves one process, and one operation at a time
            // is compared.
            queue: Queueing::outside(),
            fenced: true,
            kind: crate::util::kind::LockKind::Exclusive,
            plain: false,
        };
        let (outcome, _) = self.client.backend.attempt(&AsyncIo, &request).await;
        Ok(match outcome? {
            AttemptOutcome::Acquired { fence, .. } => Attempted::Taken { fence },
            AttemptOutcome::Held { lease_end, .. } => Attempted::Held {
                remaining: lease_end.saturating_duration_since(Instant::now()),
            },
        })
    }

    /// Restarts the lease of lock `name` if `value` holds it (EXTEND).
    pub async fn extend(
        &self,
        name: &str,
        value: &str,
        lease: Duration,
    ) -> Result<bool, LockError> {
        let (key, ms) = (self.client.key(name), lease_millis(lease)?.to_string());
        let backend = &self.client.backend;
        backend.extend(&AsyncIo, name, &key, value, &ms, None).await
    }

    /// Releases lock `name` if `value` holds it (RELEASE).
    pub async fn release(&self, name: &str, value: &str) -> Result<bool, LockError> {
        let key = self.client.key(name);
        let payload = &self.client.instance_id;
        let backend = &self.client.backend;
        backend
            .release(&AsyncIo, name, &key, value, payload)
            .await
            .0
    }

    /// Frees lock `name` whoever holds it (RESET).
    pub async fn reset(&self, name: &str) -> Result<bool, LockError> {
        let key = self.client.key(name);
        let payload = &self.client.instance_id;
        self.client
            .backend
            .reset(&AsyncIo, name, &key, payload)
            .await
    }

    /// Hands lock `name` from `old` to `new` (HANDOFF), counting `own` of its channel's
    /// subscribers as the caller's: the new fencing token, -1 (released to everyone) or 0
    /// (not `old`'s).
    pub async fn handoff(
        &self,
        name: &str,
        [old, new]: [&str; 2],
        lease: Duration,
        own: u8,
    ) -> Result<i64, LockError> {
        let key = self.client.key(name);
        let keys = lock_keys(&key);
        let keys = keys.all();
        let (ms, own) = (lease_millis(lease)?.to_string(), own.to_string());
        // As a waiter that asks for a fencing token: the reply is its token.
        let entry = queue_entry(&ms, true, &self.client.instance_id, new);
        let args = [old, &entry, &own, &self.client.instance_id];
        let backend = &self.client.backend;
        backend.handoff(&AsyncIo, &keys, &args).await?.as_int()
    }
}
