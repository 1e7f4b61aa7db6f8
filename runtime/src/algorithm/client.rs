//! A configured client: where its locks live (its backend), its waiters and its key naming.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::backends::backend::Backend;
use crate::util::error::LockError;
use crate::waiting::listener::Listener;
use crate::waiting::subscriber::Subscriber;
use crate::waiting::waiters::WaitTable;

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
    pub(crate) backend: Arc<Backend>,
    pub(crate) waiters: Arc<WaitTable>,
    /// Payload of this client's release announcements, so it can skip its own.
    pub(crate) instance_id: String,
    subscriber: OnceLock<Option<Subscriber>>,
}

impl LockClient {
    pub(crate) fn new(
        name: String,
        backend: Backend,
        prefix: String,
        default_lease: Duration,
        outage_timeout: Duration,
    ) -> Result<LockClient, LockError> {
        Ok(LockClient {
            name,
            prefix,
            default_lease,
            outage_timeout,
            backend: Arc::new(backend),
            waiters: Arc::new(WaitTable::new()),
            instance_id: crate::util::token::new_instance_id()?,
            subscriber: OnceLock::new(),
        })
    }

    /// The Redis key of lock `name`: the prefix, then the name as a Redis Cluster hash tag,
    /// so every key of one lock lives in one slot (see `keys.rs`).
    pub(crate) fn key(&self, name: &str) -> String {
        crate::util::keys::lock_key(&self.prefix, name)
    }

    /// What the subscriber's tasks get of this client (see `listener.rs`).
    fn listener(&self) -> Listener {
        Listener {
            name: self.name.clone(),
            instance_id: self.instance_id.clone(),
            waiters: Arc::downgrade(&self.waiters),
            backend: Arc::downgrade(&self.backend),
        }
    }

    /// Makes sure release announcements for `key` reach this process.
    pub(crate) fn subscribe(self: &Arc<Self>, key: &str) {
        if self.waiters.needs_subscription(key)
            && let Some(subscriber) = self
                .subscriber
                .get_or_init(|| Subscriber::start(self.listener(), &self.backend))
        {
            subscriber.subscribe(key);
        }
    }
}
