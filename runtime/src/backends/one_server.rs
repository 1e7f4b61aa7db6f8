//! One acquisition attempt on one server, or on the shard of a Redis Cluster: the ACQUIRE
//! script (with `WAIT` for replicas in the same pipeline when the cluster asks for them),
//! and the one place its reply is decoded.

use std::time::{Duration, Instant};

use crate::backends::attempt::{AttemptOutcome, AttemptRequest};
use crate::protocol::scripts::{ACQUIRE, lock_keys};
use crate::servers::cluster::Cluster;
use crate::servers::io::{Io, Route, eval_until};
use crate::transport::reply::{Reply, unexpected};
use crate::util::error::LockError;

/// [`Backend::attempt`](crate::backends::backend::Backend::attempt) on one server (or one cluster shard), with `WAIT`
/// for the replicas of `replicated`'s `min_replicas` in the same pipeline.
pub(crate) async fn attempt<I: Io>(
    io: &I,
    request: &AttemptRequest<'_>,
    route: Route<'_>,
    replicated: Option<&Cluster>,
) -> (Result<AttemptOutcome, LockError>, bool) {
    let sent = Instant::now();
    let keys = lock_keys(request.key);
    let keys = keys.each_ref().map(String::as_str);
    let ms = request.lease.as_millis().to_string();
    let queue = &request.queue;
    let standing = match (queue.queued, queue.join) {
        (true, true) => "qj",
        (true, false) => "q",
        (false, true) => "j",
        (false, false) => "",
    };
    // The reply tells the holder's remaining lease: it is read in the same script, and
    // the holder now may not be the one seen before (a short lease after a long one).
    let args = [request.value, ms.as_str(), standing, request.payload];
    let (reply, acknowledged) = match replicated {
        // Boxed: the pipeline's future would otherwise enlarge every acquisition's,
        // which annotated async fns hold inline.
        Some(cluster) => match Box::pin(crate::backends::replicas::acquire(
            io,
            cluster,
            &ACQUIRE,
            &keys,
            &args,
            request.until,
        ))
        .await
        {
            Ok((reply, acknowledged)) => (reply, Some(acknowledged)),
            Err(e) => return (Err(e), false),
        },
        None => match eval_until(io, route, &ACQUIRE, &keys, &args, request.until).await {
            Ok(reply) => (reply, None),
            Err(e) => return (Err(e), false),
        },
    };
    let (taken, number) = match &reply {
        Reply::Array(parts) => match parts.as_slice() {
            [Reply::Int(taken), Reply::Int(number)] => (*taken == 1, Some(*number)),
            [Reply::Int(0)] => (false, None),
            _ => return (Err(unexpected(&reply)), false),
        },
        _ => return (Err(unexpected(&reply)), false),
    };
    if let (true, Some(fence)) = (taken, number) {
        // Taken now, or found taken by an earlier attempt or handover whose reply was
        // lost (the script counts our own value as taken): either way its lease
        // restarted with this request.
        if let (Some(cluster), Some(acknowledged)) = (replicated, acknowledged)
            && acknowledged < cluster.min_replicas
        {
            // Not ours, yet taken in Redis: unsettled, so the acquisition's end frees it.
            let error = LockError::NotReplicated {
                name: request.name.to_string(),
                wanted: cluster.min_replicas,
                acknowledged,
            };
            return (Err(error), false);
        }
        let fence = fence as u64;
        return (Ok(AttemptOutcome::Acquired { sent, fence }), true);
    }
    let now = Instant::now();
    let lease_end = match number {
        // Gone already: try again at once.
        Some(-2) => now,
        // A key without expiry was not written by this crate; look again after a lease.
        Some(-1) | None => now + request.lease,
        Some(ms) => now + Duration::from_millis(ms as u64),
    };
    let queued = queue.join || queue.queued;
    (Ok(AttemptOutcome::Held { lease_end, queued }), true)
}
