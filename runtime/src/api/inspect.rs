//! Looking at locks from outside, for operators: which locks of a client are held, by
//! whom (the owner token, and the host, process and function that described themselves in
//! the key, see `holder.rs`), for how long still, and how many processes wait for them.

use std::time::Duration;

use crate::algorithm::client::LockClient;
use crate::api::lock::Lock;
use crate::backends::scan::LockKeys;
use crate::protocol::scripts::{INSPECT, fence_key};
use crate::servers::io::{AsyncIo, Io, Route, SyncIo, eval_until};
use crate::transport::reply::{Reply, unexpected};
use crate::util::block_on::block_on;
use crate::util::error::LockError;
use crate::util::holder::Holder;
use crate::util::keys::name_of;

/// A held lock as Redis sees it at one moment, from [`list_locks`] or [`Lock::info`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockInfo {
    /// The lock's name, as given to [`Lock::new`] or the attribute.
    pub name: String,
    /// The Redis key that holds it: `<prefix>{<name>}` (`<prefix>}{<hash>}<name>}` for a
    /// name that starts with `}`).
    pub key: String,
    /// How long its lease has left by the server's clock; `None` if the key has no expiry
    /// (never written so by this crate).
    pub remaining_lease: Option<Duration>,
    /// The fencing token of the current holder (see
    /// [`LockGuard::fencing_token`](crate::LockGuard::fencing_token)); 0 if the lock's
    /// fencing counter is missing (the key was not written by this crate).
    pub fencing_token: u64,
    /// The current holder's owner token (see [`LockGuard::token`](crate::LockGuard::token));
    /// the key's whole value when it was not written by this crate.
    pub owner: String,
    /// Who holds it: host, process id, the `#[redis_lock]` function's name template (or
    /// the programmatic API), and since when. `None` when the key does not say (written by
    /// someone else, or by a version of this crate before 0.1).
    pub holder: Option<Holder>,
    /// How many processes wait for the lock: the subscribers of its pub/sub channel
    /// (`PUBSUB NUMSUB`), one per process however many of its tasks wait.
    pub waiting_processes: u64,
}

/// Every lock held on a client (`None`: the default client) right now, sorted by name.
///
/// Walks the client's keys with `SCAN`, never `KEYS`, so the server is never blocked, then
/// reads each lock in one round trip. Locks taken during the walk may be missing, and locks
/// released during it are left out.
///
/// ```no_run
/// # async fn demo() -> Result<(), redis_locked::LockError> {
/// for lock in redis_locked::list_locks(None).await? {
///     println!(
///         "{}: fencing token {}, {:?} left, {} processes waiting, held by {:?}",
///         lock.name, lock.fencing_token, lock.remaining_lease, lock.waiting_processes, lock.holder
///     );
/// }
/// # Ok(()) }
/// ```
pub async fn list_locks(client: Option<&str>) -> Result<Vec<LockInfo>, LockError> {
    let client = crate::api::registry::client(client)?;
    list_locks_with(&AsyncIo, &client).await
}

/// [`list_locks`] for sync code.
///
/// ```no_run
/// let held = redis_locked::list_locks_blocking(Some("billing"))?;
/// println!("{} locks held", held.len());
/// # Ok::<(), redis_locked::LockError>(())
/// ```
pub fn list_locks_blocking(client: Option<&str>) -> Result<Vec<LockInfo>, LockError> {
    let client = crate::api::registry::client(client)?;
    block_on(list_locks_with(&SyncIo, &client))
}

async fn list_locks_with<I: Io>(io: &I, client: &LockClient) -> Result<Vec<LockInfo>, LockError> {
    let mut locks = Vec::new();
    let mut keys = LockKeys::new(&client.backend, &client.prefix);
    while let Some(page) = keys.next_page(io).await? {
        for key in page {
            let name = name_of(&client.prefix, &key).to_string();
            if let Some(info) = read_named(io, client, name, key).await? {
                locks.push(info);
            }
        }
    }
    locks.sort_by(|a, b| a.name.cmp(&b.name));
    // SCAN may return a key more than once.
    locks.dedup_by(|a, b| a.key == b.key);
    Ok(locks)
}

impl Lock {
    /// The lock as Redis sees it now: `None` when nobody holds it.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), redis_locked::LockError> {
    /// use redis_locked::Lock;
    ///
    /// match Lock::new("invoice:42")?.info().await? {
    ///     Some(info) => println!("held, fencing token {}", info.fencing_token),
    ///     None => println!("free"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn info(&self) -> Result<Option<LockInfo>, LockError> {
        self.info_with(&AsyncIo).await
    }

    /// [`info`](Lock::info) for sync code.
    pub fn info_blocking(&self) -> Result<Option<LockInfo>, LockError> {
        block_on(self.info_with(&SyncIo))
    }

    async fn info_with<I: Io>(&self, io: &I) -> Result<Option<LockInfo>, LockError> {
        read_named(io, self.client(), self.name().into(), self.key().into()).await
    }
}

/// [`read`], whose failure of Redis names the lock.
async fn read_named<I: Io>(
    io: &I,
    client: &LockClient,
    name: String,
    key: String,
) -> Result<Option<LockInfo>, LockError> {
    let outcome = read(io, client, name.clone(), key).await;
    outcome.map_err(|e| e.for_lock(&name))
}

/// Reads one lock in one round trip; `None` when it is not held. On a Redlock client it
/// is held when a majority has the same owner: the lease left is the least of theirs, the
/// fencing token and the waiting processes the most.
async fn read<I: Io>(
    io: &I,
    client: &LockClient,
    name: String,
    key: String,
) -> Result<Option<LockInfo>, LockError> {
    let fence = fence_key(&key);
    let keys = [key.as_str(), fence.as_str()];
    let read_one = async |route: Route<'_>, until| {
        let reply = eval_until(io, route, &INSPECT, &keys, &[], until).await?;
        parse(reply, name.clone(), key.clone())
    };
    let held: Vec<LockInfo> = client
        .backend
        .read_everywhere(io, &name, read_one)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let owners: Vec<&str> = held.iter().map(|info| info.owner.as_str()).collect();
    let Some(i) = client.backend.majority_of(&owners) else {
        return Ok(None);
    };
    let majority: Vec<&LockInfo> = held.iter().filter(|h| h.owner == held[i].owner).collect();
    Ok(Some(LockInfo {
        remaining_lease: majority.iter().map(|h| h.remaining_lease).min().flatten(),
        fencing_token: majority.iter().map(|h| h.fencing_token).max().unwrap_or(0),
        waiting_processes: majority
            .iter()
            .map(|h| h.waiting_processes)
            .max()
            .unwrap_or(0),
        ..held[i].clone()
    }))
}

/// One server's INSPECT reply.
fn parse(reply: Reply, name: String, key: String) -> Result<Option<LockInfo>, LockError> {
    let fields = match reply {
        Reply::Nil => return Ok(None),
        Reply::Array(fields) => fields,
        other => return Err(unexpected(&other)),
    };
    let [
        Reply::Bulk(value),
        Reply::Int(pttl),
        Reply::Bulk(fence),
        Reply::Int(waiting),
    ] = fields.as_slice()
    else {
        return Err(unexpected(&Reply::Array(fields)));
    };
    let fencing_token = std::str::from_utf8(fence)
        .ok()
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| unexpected(&Reply::Bulk(fence.clone())))?;
    let value = String::from_utf8_lossy(value);
    let (owner, holder) = crate::util::holder::parse(&value);
    Ok(Some(LockInfo {
        name,
        key,
        // PTTL is -1 for a key without expiry.
        remaining_lease: u64::try_from(*pttl).ok().map(Duration::from_millis),
        fencing_token,
        owner: owner.to_string(),
        holder,
        waiting_processes: u64::try_from(*waiting).unwrap_or(0),
    }))
}

impl crate::Lock {
    /// How many hold places of this semaphore or shared lock now.
    pub(crate) async fn holders_with<I: crate::servers::io::Io>(
        &self,
        io: &I,
    ) -> Result<i64, LockError> {
        self.client().backend.counted_holders(io, self.key()).await
    }
}
