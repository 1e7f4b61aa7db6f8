//! A RELEASE's reply, and the one second send a release may get: what tells a lock released
//! from one whose outcome stays unknown.

use std::future::Future;

use crate::transport::reply::Reply;
use crate::util::error::LockError;

/// Sends a RELEASE with `send`, and once more when its connection closed before the reply
/// came, so that a connection lost under it (a restart, `CLIENT KILL`) does not leave the
/// lock to the background. Running it twice is harmless: it deletes the key only while it
/// holds our value. So the second run's "ours" proves the first did not take effect, and
/// the lock is released; its "not ours" could mean that the first ran or that the lease
/// had ended, which stays unknown (the first error), though nothing of ours is left to free.
/// A timeout is not resent: a stalled server would only stall the second run as well.
pub(crate) async fn release_checked<F, Fut>(send: F) -> (Result<bool, LockError>, bool)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Reply, LockError>>,
{
    let (first, unsure) = released(send().await);
    match first {
        Err(e) if crate::transport::pool::closed(&e) => match released(send().await) {
            (Ok(true), _) => (Ok(true), false),
            (Ok(false), _) => (Err(e), false),
            (Err(_), unsure) => (Err(e), unsure),
        },
        first => (first, unsure),
    }
}

/// A RELEASE's reply: whether the lock was ours, and whether it may still be (Redis down
/// or stalled).
fn released(reply: Result<Reply, LockError>) -> (Result<bool, LockError>, bool) {
    let released = reply.and_then(|reply| reply.as_int());
    let unsure = matches!(&released, Err(e) if e.is_unavailable());
    // 2: handed to a queued process; released by us either way.
    (released.map(|n| n == 1 || n == 2), unsure)
}
