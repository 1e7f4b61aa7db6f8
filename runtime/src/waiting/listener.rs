//! What the tasks that listen for release announcements (`subscriber.rs`,
//! `cluster_pubsub.rs`) get of their client: the wait table to poke and the backend to
//! connect to, never the client itself.

use std::sync::{Arc, Weak};

use crate::backends::backend::Backend;
use crate::protocol::scripts::inbox_channel;
use crate::waiting::waiters::WaitTable;

/// What the subscriber's tasks need of their client: its wait table and backend, held
/// weakly so that the tasks end with the client, and its name and announcement payload.
#[derive(Clone)]
pub(crate) struct Listener {
    pub(crate) name: String,
    /// This client's announcements carry it: a process ignores its own, having woken its
    /// waiters already.
    pub(crate) instance_id: String,
    pub(crate) waiters: Weak<WaitTable>,
    pub(crate) backend: Weak<Backend>,
}

/// A [`Listener`]'s client, while it is alive.
pub(crate) struct Alive {
    pub(crate) waiters: Arc<WaitTable>,
    pub(crate) backend: Arc<Backend>,
}

impl Listener {
    /// The client's wait table and backend; `None` once the client is gone.
    pub(crate) fn upgrade(&self) -> Option<Alive> {
        Some(Alive {
            waiters: self.waiters.upgrade()?,
            backend: self.backend.upgrade()?,
        })
    }
}

impl Listener {
    /// The channels to subscribe to for lock `key`: its release announcements and, where
    /// waiting processes queue in Redis (`queues`), this client's inbox for it, where a
    /// releaser says that it handed the lock to one of this client's queued acquisitions.
    /// Both live in the key's hash slot.
    pub(crate) fn channels(&self, key: &str, queues: bool) -> Vec<String> {
        let mut channels = vec![key.to_string()];
        if queues {
            channels.push(inbox_channel(key, &self.instance_id));
        }
        channels
    }

    /// Acts on a message on `channel`: a lock handed to an acquisition of this client, on
    /// its inbox (`<fencing token> <owner value>`); else a release announcement, which pokes
    /// the key's head unless this client sent it (it woke its waiters already).
    pub(crate) fn on_message(&self, waiters: &WaitTable, channel: &[u8], payload: &[u8]) {
        let channel = String::from_utf8_lossy(channel);
        let inbox_of = channel
            .strip_suffix(self.instance_id.as_str())
            .and_then(|rest| rest.strip_suffix(':'));
        match inbox_of {
            Some(key) => {
                let payload = String::from_utf8_lossy(payload);
                if let Some((fence, value)) = payload.split_once(' ')
                    && let Ok(fence) = fence.parse()
                {
                    waiters.grant_from_queue(key, value, fence);
                }
            }
            None if payload != self.instance_id.as_bytes() => waiters.notify(&channel),
            None => {}
        }
    }
}
