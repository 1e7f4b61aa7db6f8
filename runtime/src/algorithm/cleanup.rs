//! Releases that could not be done where they began, finished on the background runtime.
//!
//! Two cases leave a lock behind that nobody will use: a release that failed because
//! Redis was unreachable, and an acquisition that sent `SET NX` but never saw the reply
//! (it timed out, Redis stalled, or the caller gave up) and so does not know that it took
//! the lock. Either way the key would block every other acquirer until its lease ran out;
//! instead it is released here, by owner value, as soon as Redis answers again. Until the
//! lease ends at the latest: after that the key is gone or someone else's.
//!
//! A third is an acquisition that ended without the lock while its process stood in the
//! lock's queue in Redis: a releaser may hand it the lock from then on. Its entry is taken
//! out of the queue in the same script that frees a lock already handed to it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::algorithm::client::LockClient;
use crate::protocol::counted::COUNTED_RELEASE;
use crate::protocol::scripts::{RELEASE, Script, lock_keys};
use crate::servers::io::{AsyncIo, eval_until};
use crate::util::kind::LockKind;

/// Whether the token to free is known to have held the lock.
#[derive(Clone, Copy)]
pub(crate) enum Orphan {
    /// A lock that was held: its release failed, or was cut short.
    Held,
    /// A token that may never have taken the lock (a request whose reply never came): not
    /// being able to free it is no news worth a warning.
    Maybe,
}

const FIRST_RETRY: Duration = Duration::from_millis(25);
const MAX_RETRY: Duration = Duration::from_millis(500);

/// Releases `key` if it still holds owner value `value`, retrying until `until`; on a
/// Redlock client, on every server. Once a server answers, this process's waiters are
/// poked (they ignore this process's own announcements).
pub(crate) fn release_later(
    client: &Arc<LockClient>,
    key: String,
    value: String,
    until: Instant,
    orphan: Orphan,
    kind: LockKind,
) {
    // A place among several holders is taken out of their hash, not freed as a key.
    let script = match kind.is_counted() {
        true => &*COUNTED_RELEASE,
        false => &*RELEASE,
    };
    spawn_release(client, script, key, value, String::new(), until, orphan);
}

/// Takes the queue entry `entry` of an acquisition that ended without the lock out of
/// lock `key`'s queue, and releases the lock if a releaser handed it to that acquisition
/// (owner value `value`) meanwhile; retrying until `until`.
pub(crate) fn withdraw_later(
    client: &Arc<LockClient>,
    key: String,
    value: String,
    entry: String,
    until: Instant,
) {
    spawn_release(client, &RELEASE, key, value, entry, until, Orphan::Maybe);
}

fn spawn_release(
    client: &Arc<LockClient>,
    script: &'static Script,
    key: String,
    value: String,
    entry: String,
    until: Instant,
    orphan: Orphan,
) {
    let Ok(runtime) = crate::util::background::handle() else {
        return;
    };
    // Each server of a Redlock quorum on its own: one that stays down does not hold up
    // the others.
    for server in 0..client.backend.servers().len() {
        // Held until the lease ends at the latest: a dropped `Client` outlives its last
        // lock by that much.
        let client = client.clone();
        let (key, value, entry) = (key.clone(), value.clone(), entry.clone());
        let (at, request) = ((client, server), (script, key, value, entry));
        runtime.spawn(release_on(at, request, until, orphan));
    }
}

/// [`release_later`] on server `server` (an index into the client's `servers()`).
async fn release_on(
    (client, server): (Arc<LockClient>, usize),
    (script, key, value, entry): (&'static Script, String, String, String),
    until: Instant,
    orphan: Orphan,
) {
    let mut backoff = FIRST_RETRY;
    let keys = lock_keys(&key);
    let keys = keys.all();
    loop {
        let now = Instant::now();
        if now >= until {
            return;
        }
        let args = [value.as_str(), client.instance_id.as_str(), entry.as_str()];
        let Some(&route) = client.backend.servers().get(server) else {
            return;
        };
        match eval_until(&AsyncIo, route, script, &keys, &args, Some(until)).await {
            Ok(_) => {
                // Released or not, Redis answers again: a waiter of this process may
                // now hold the key under its own token (a handover whose reply was
                // lost) or find it free, and this process ignores its own
                // announcements, so its head is poked to look.
                client.waiters.notify(&key);
                return;
            }
            Err(e) if e.is_unavailable() => {
                tokio::time::sleep(backoff.min(until - now)).await;
                backoff = (backoff * 2).min(MAX_RETRY);
            }
            Err(e) => {
                let error = &e as &(dyn std::error::Error + 'static);
                match orphan {
                    Orphan::Held => {
                        tracing::warn!(key = %key, error, "redis-locked: could not release the lock; it expires with its lease");
                    }
                    Orphan::Maybe => {
                        tracing::debug!(key = %key, error, "redis-locked: could not free a lock an unanswered request may have taken; it expires with its lease");
                    }
                }
                return;
            }
        }
    }
}
