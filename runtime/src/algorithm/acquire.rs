//! The acquisition algorithm: the process-local queue, attempts on the backend, and
//! waiting to be poked or for the holder's lease to end.

use std::time::{Duration, Instant};

mod attempts;
mod spec;

use attempts::{Attempt, Attempts};
pub(crate) use spec::Spec;

use crate::algorithm::held::Held;
use crate::servers::io::Io;
use crate::util::error::LockError;
use crate::util::holder::owner_value;
use crate::util::token::new_token;
use crate::waiting::waiters::Offer;

/// Acquires `spec`'s lock within `timeout`: the algorithm shared by async and sync
/// callers.
///
/// The caller joins the process-local queue for the key (see `waiters.rs`); uncontended,
/// it is the head at once and takes the lock with one `SET NX PX`. The head tries again
/// whenever it is poked (a release, here or announced by Redis) and when the holder's
/// lease must have run out; the others wait their turn without touching Redis. When
/// Redis cannot be reached the head tries again with backoff, riding out the outage
/// until the caller's deadline or the client's outage timeout.
pub(crate) async fn acquire<I: Io>(
    io: &I,
    spec: &Spec<'_>,
    timeout: Option<Duration>,
) -> Result<Held, LockError> {
    let start = Instant::now();
    // A timeout too long to represent (`Duration::MAX`) is no deadline at all.
    let deadline = timeout.and_then(|t| start.checked_add(t));
    let lease = spec.lease;
    // A lease Redis cannot take is an error before anything is sent.
    crate::util::lease::lease_millis(lease)?;
    let client = spec.client;
    // The owner value: a fresh token and who holds the lock (see `holder.rs`).
    let value = owner_value(&new_token()?, spec.template);
    // Every caller queues, even when nobody waits: then 10,000 tasks that want one lock
    // at the same moment send one SET between them, not 10,000.
    // A lock several may hold is never handed over: its waiters take a place themselves.
    let offer = (!spec.kind.is_counted()).then(|| Offer {
        value: value.clone(),
        lease,
        fenced: spec.fenced,
    });
    let ticket = client.waiters.enqueue(spec.key, offer);
    let mut attempts = Attempts::new(spec, value, deadline, ticket);
    let past_deadline = || deadline.is_some_and(|d| Instant::now() >= d);
    // When the current holder's lease ends at the latest: the head wakes then, in case
    // the holder died without releasing.
    let mut holder_lease_end: Option<Instant> = None;
    loop {
        let view = attempts.view();
        // A lock handed from the queue in Redis while a releaser of this process is
        // handing it over too is taken once that handover is settled: that releaser,
        // finding the waiter gone, would take the lock under the waiter's token for an
        // abandoned one and free it under the new holder (found by the model checker).
        if view.granted.is_some()
            && !view.handoff_pending
            && let Some(held) = attempts.take_grant()
        {
            return Ok(held);
        }
        let mut retry_at = None;
        // Past the deadline and queued in Redis, the leaving attempt below is the one try
        // left (it takes the lock if it is free): no ordinary attempt before it.
        let only_leaving = past_deadline() && attempts.queued();
        if let Some(holder_until) = view.queued_by_handover {
            // A handover found another process first in the queue in Redis and queued us
            // behind it: as if our own attempt had. Its release hands the lock to us.
            holder_lease_end = Some(holder_until);
        } else if view.is_head && !view.handoff_pending && !only_leaving {
            let now = Instant::now();
            if let Some(until) = view.holder_until.filter(|&t| t > now) {
                // Another task of this process holds it; its release will poke us. Known
                // held: a deadline that passes now is a `Timeout`, not `NoAnswer`.
                holder_lease_end = Some(until);
                attempts.held_here();
            } else if attempts.begin_attempt() {
                // A handover offered meanwhile waits for this attempt to end (see
                // `Ticket::begin_attempt`); one already in flight is awaited instead.
                // Queued in Redis only while this process hears what is sent to it there.
                // The attempt's state is a step of its own (`Io::step`), so that a waiting
                // acquisition does not carry it.
                let join = view.subscribed && client.backend.queues() && !spec.kind.is_counted();
                let outcome = I::step(attempts.attempt(io, join)).await;
                attempts.end_attempt();
                match outcome {
                    Ok(Attempt::Acquired { sent, fence }) => {
                        return Ok(attempts.into_held(sent, fence));
                    }
                    Ok(Attempt::Held { lease_end, .. }) => {
                        holder_lease_end = Some(lease_end);
                        client.subscribe(spec.key);
                    }
                    Err(error) => retry_at = Some(attempts.failed(error)?),
                }
            }
        }
        if past_deadline() {
            // A handover that completed meanwhile is ours: take it rather than give up
            // (not while another is in flight: see above).
            let view = attempts.view();
            if view.granted.is_some()
                && !view.handoff_pending
                && let Some(held) = attempts.take_grant()
            {
                return Ok(held);
            }
            // Queued in Redis: one last attempt leaves the queue in the same script, or
            // takes the lock should a releaser have handed it over meanwhile. Left to the
            // background instead, a release right now would hand the lock to this
            // acquisition that is gone, and everyone would wait for that to be undone.
            if !view.handoff_pending
                && let Some(Ok(Attempt::Acquired { sent, fence })) =
                    I::step(attempts.leave_queue(io)).await
            {
                return Ok(attempts.into_held(sent, fence));
            }
            // Also with a handover in flight: the releaser finds us gone and passes
            // the lock on or frees it.
            return Err(attempts.give_up(start));
        }
        // A releaser handing the lock to us right now answers within a round trip and
        // pokes us whatever the outcome; until then only the deadline matters.
        let wake_at = [
            deadline,
            holder_lease_end.filter(|_| view.is_head && !view.handoff_pending),
            retry_at,
        ]
        .into_iter()
        .flatten()
        .min();
        io.wait_until(attempts.poked(), wake_at).await;
    }
}
