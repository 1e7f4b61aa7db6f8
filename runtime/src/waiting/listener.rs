//! What the tasks that listen for release announcements (`subscriber.rs`,
//! `cluster_pubsub.rs`) get of their client: the wait table to poke and the backend to
//! connect to, never the client itself.

use std::sync::{Arc, Weak};

use crate::backends::backend::Backend;
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
