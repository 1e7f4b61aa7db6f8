//! Forcing locks free, whoever holds them: one lock (`Lock::reset`), or every lock of a
//! client (`reset_all`), for recovery by an operator.

use crate::algorithm::client::LockClient;
use crate::backends::scan::LockKeys;
use crate::servers::io::{AsyncIo, Io, SyncIo};
use crate::util::block_on::block_on;
use crate::util::error::LockError;

/// Resets lock `name` (key `key`); on a Redlock client on every server, telling whether
/// any of them held it.
pub(crate) async fn reset_key<I: Io>(
    io: &I,
    client: &LockClient,
    name: &str,
    key: &str,
) -> Result<bool, LockError> {
    let held = client
        .backend
        .reset(io, name, key, &client.instance_id)
        .await?;
    client.waiters.notify(key);
    Ok(held)
}

/// Forces every lock of a client free (`None`: the default client) and wakes their waiters.
/// Returns how many were held. Walks the keys with `SCAN`, never `KEYS`, so the server is
/// never blocked; locks taken during the walk may survive it.
pub async fn reset_all(client: Option<&str>) -> Result<u64, LockError> {
    let client = crate::api::registry::client(client)?;
    reset_all_with(&AsyncIo, &client).await
}

/// [`reset_all`] for sync code.
pub fn reset_all_blocking(client: Option<&str>) -> Result<u64, LockError> {
    let client = crate::api::registry::client(client)?;
    block_on(reset_all_with(&SyncIo, &client))
}

async fn reset_all_with<I: Io>(io: &I, client: &LockClient) -> Result<u64, LockError> {
    let mut reset = 0;
    let mut keys = LockKeys::new(&client.backend, &client.prefix);
    while let Some(page) = keys.next_page(io).await? {
        for key in page {
            if reset_key(io, client, "", &key).await? {
                reset += 1;
            }
        }
    }
    Ok(reset)
}
