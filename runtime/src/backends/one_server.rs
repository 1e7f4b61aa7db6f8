//! One acquisition attempt on one server, or on the shard of a Redis Cluster: the ACQUIRE
//! script (with `WAIT` for replicas in the same pipeline when the cluster asks for them),
//! and the one place its reply is decoded.

use std::time::{Duration, Instant};

use crate::backends::attempt::{AttemptOutcome, AttemptRequest};
use crate::protocol::counted::COUNTED_ACQUIRE;
use crate::protocol::scripts::{ACQUIRE, lock_keys};
use crate::servers::cluster::Cluster;
use crate::servers::io::{Io, Route, command_once_until, command_with_room, eval_until};
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
    let ms = request.lease.as_millis().to_string();
    let queue = &request.queue;
    if request.plain
        && !request.kind.is_counted()
        && !queue.queued
        && !queue.join
        && !queue.leave
        && replicated.is_none()
    {
        return plain(io, request, route, &ms).await;
    }
    let sent = Instant::now();
    let keys = lock_keys(request.key);
    let keys = keys.all();
    if request.kind.is_counted() {
        return counted(io, request, route, &keys, &ms).await;
    }
    let flags: String = [
        (request.fenced, 'f'),
        (queue.queued, 'q'),
        (queue.join, 'j'),
        (queue.leave, 'l'),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, flag)| flag)
    .collect();
    // The reply tells the holder's remaining lease: it is read in the same script, and
    // the holder now may not be the one seen before (a short lease after a long one).
    let args = [request.value, ms.as_str(), flags.as_str(), request.payload];
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
    let (taken, number) = match decode(request, &reply) {
        Ok(decoded) => decoded,
        Err(e) => return (Err(e), false),
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
    let queued = (queue.join || queue.queued) && !queue.leave;
    (Ok(AttemptOutcome::Held { lease_end, queued }), true)
}

/// An ACQUIRE or COUNTED_ACQUIRE reply: whether the lock was taken, and the fencing
/// token (taken) or the holder's remaining lease in ms (not taken); the name used as
/// another kind of lock is an error.
fn decode(request: &AttemptRequest<'_>, reply: &Reply) -> Result<(bool, Option<i64>), LockError> {
    match reply {
        Reply::Array(parts) => match parts.as_slice() {
            [Reply::Int(-1), Reply::Bulk(held_as)] => Err(LockError::KindMismatch {
                name: request.name.to_string(),
                held_as: String::from_utf8_lossy(held_as).into_owned(),
                asked: request.kind.word(),
            }),
            [Reply::Int(taken), Reply::Int(number)] => Ok((*taken == 1, Some(*number))),
            [Reply::Int(0)] => Ok((false, None)),
            _ => Err(unexpected(reply)),
        },
        _ => Err(unexpected(reply)),
    }
}

/// An attempt at a lock several may hold (COUNTED_ACQUIRE, see `counted.rs`): never
/// queued in Redis, never with replicas to wait for (see `Backend::counts`).
async fn counted<I: Io>(
    io: &I,
    request: &AttemptRequest<'_>,
    route: Route<'_>,
    keys: &[&str; 3],
    lease_ms: &str,
) -> (Result<AttemptOutcome, LockError>, bool) {
    let sent = Instant::now();
    let kind = request.kind.word();
    let flags = if request.fenced { "f" } else { "" };
    let args = [request.value, lease_ms, kind.as_str(), flags];
    let reply = match eval_until(io, route, &COUNTED_ACQUIRE, keys, &args, request.until).await {
        Ok(reply) => reply,
        Err(e) => return (Err(e), false),
    };
    match decode(request, &reply) {
        Ok((true, Some(fence))) => (
            Ok(AttemptOutcome::Acquired {
                sent,
                fence: fence as u64,
            }),
            true,
        ),
        Ok((_, wait)) => {
            let wait = wait.map_or(request.lease, |ms| Duration::from_millis(ms.max(0) as u64));
            let lease_end = Instant::now() + wait;
            (
                Ok(AttemptOutcome::Held {
                    lease_end,
                    queued: false,
                }),
                true,
            )
        }
        Err(e) => (Err(e), true),
    }
}

/// An attempt that is a bare `SET key value NX PX lease`: what an uncontended acquisition
/// without a fencing token costs, one command. Sent once: run twice, it would find its own
/// first run and answer "taken". When it finds the lock taken, the caller's next attempt
/// is the script, at once, which also tells the holder's lease.
async fn plain<I: Io>(
    io: &I,
    request: &AttemptRequest<'_>,
    route: Route<'_>,
    lease_ms: &str,
) -> (Result<AttemptOutcome, LockError>, bool) {
    let sent = Instant::now();
    let bytes = request.key.len() + request.value.len() + "NXPX".len() + lease_ms.len();
    let mut set = command_with_room("SET", 5, bytes);
    set.arg(request.key)
        .arg(request.value)
        .arg("NX")
        .arg("PX")
        .arg(lease_ms);
    match command_once_until(io, route, set, request.until).await {
        Ok(Reply::Nil) => (
            Ok(AttemptOutcome::Held {
                lease_end: Instant::now(),
                queued: false,
            }),
            true,
        ),
        Ok(Reply::Status(_)) => (Ok(AttemptOutcome::Acquired { sent, fence: 0 }), true),
        Ok(other) => (Err(unexpected(&other)), false),
        Err(e) => (Err(e), false),
    }
}
