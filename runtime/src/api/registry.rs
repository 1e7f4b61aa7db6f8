//! The process's registered clients: written once at start-up by
//! [`ClientBuilder`](crate::ClientBuilder), read by every lock that names a client.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use crate::algorithm::client::{DEFAULT_CLIENT, LockClient};
use crate::util::error::LockError;

/// Registered clients stay for the life of the process: registration is once, at start-up.
/// Looked up on every call: hashed with foldhash, as the wait table is (see `waiters.rs`).
static CLIENTS: LazyLock<RwLock<HashMap<String, Arc<LockClient>, foldhash::fast::RandomState>>> =
    LazyLock::new(RwLock::default);

/// Registers `client` under `name`, which must be free.
pub(crate) fn insert(name: &str, client: Arc<LockClient>) -> Result<(), LockError> {
    let mut clients = CLIENTS.write().unwrap_or_else(|e| e.into_inner());
    if clients.contains_key(name) {
        return Err(LockError::AlreadyRegistered {
            client: name.to_string(),
        });
    }
    clients.insert(name.to_string(), client);
    Ok(())
}

/// The client a lock naming `name` (`None`: the default client) uses here and now: one a
/// [`Client`](crate::Client) scope stands in with (see `scope.rs`), else the one registered.
pub(crate) fn client(name: Option<&str>) -> Result<Arc<LockClient>, LockError> {
    if let Some(scoped) = crate::api::scope::scoped(name.unwrap_or(DEFAULT_CLIENT)) {
        return Ok(scoped);
    }
    let clients = CLIENTS.read().unwrap_or_else(|e| e.into_inner());
    match name {
        None => clients
            .get(DEFAULT_CLIENT)
            .cloned()
            .ok_or(LockError::NotConfigured),
        Some(name) => clients
            .get(name)
            .cloned()
            .ok_or_else(|| LockError::UnknownClient {
                client: name.to_string(),
            }),
    }
}
