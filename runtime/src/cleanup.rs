//! Releases that could not be done where they began, finished on the background runtime.
//!
//! Two cases leave a lock behind that nobody will use: a release that failed because
//! Redis was unreachable, and an acquisition that sent `SET NX` but never saw the reply
//! (it timed out, Redis stalled, or the caller gave up) and so does not know that it took
//! the lock. Either way the key would block every other acquirer until its lease ran out;
//! instead it is released here, by owner value, as soon as Redis answers again. Until the
//! lease ends at the latest: after that the key is gone or someone else's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::LockClient;
use crate::io::{AsyncIo, eval_until};
use crate::scripts::RELEASE;

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

/// Releases `key` if it still holds owner value `value`, retrying until `until`. On a Redlock client,
/// on every server; their announcements (with the server's own client's payload) then
/// wake this process's waiters through the subscriber.
pub(crate) fn release_later(
    client: &Arc<LockClient>,
    key: String,
    value: String,
    until: Instant,
    orphan: Orphan,
) {
    if let Some(quorum) = client.quorum() {
        // Each server on its own: one that stays down does not hold up the others.
        for member in &quorum.members {
            release_later(member, key.clone(), value.clone(), until, orphan);
        }
        return;
    }
    let Ok(runtime) = crate::background::handle() else {
        return;
    };
    // Held until the lease ends at the latest: a dropped `Client` outlives its last lock
    // by that much.
    let client = client.clone();
    runtime.spawn(async move {
        let mut backoff = FIRST_RETRY;
        loop {
            let now = Instant::now();
            if now >= until {
                return;
            }
            let args = [value.as_str(), client.instance_id.as_str()];
            match eval_until(&AsyncIo, &client, &RELEASE, &[&key], &args, Some(until)).await {
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
    });
}
