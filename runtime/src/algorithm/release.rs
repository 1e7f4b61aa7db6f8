//! Releasing a held lock on every way out: handed straight to the next waiter of this
//! process when there is one, else released and announced; finished in the background when
//! the releasing future is dropped half-way or Redis does not answer. Before its minimum
//! hold is over, a lock is not freed but left to expire when the hold ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::algorithm::cleanup::{Orphan, withdraw_later};
use crate::algorithm::client::LockClient;
use crate::algorithm::held::Held;
use crate::protocol::scripts::{lock_keys, queue_entry};
use crate::servers::io::Io;
use crate::transport::reply::Reply;
use crate::util::error::LockError;
use crate::util::kind::LockKind;
use crate::util::lease::lease_millis;
use crate::waiting::handover::Handover;
use crate::waiting::waiters::{Grant, HandoffOutcome};

impl Held {
    /// Releases the lock; hands it straight to the next waiter of this process when there
    /// is one (one round trip instead of release, notify and re-acquire). Should this
    /// future be dropped before it is done, the lock is released in the background.
    pub(crate) async fn release_with<I: Io>(&mut self, io: &I) -> Result<(), LockError> {
        if self.borrowed {
            // The outermost call releases it.
            return Ok(());
        }
        let state = self.state.clone();
        let may_restore = self.renewal.is_some() && self.client.backend.renewal_restores();
        let mut unfinished = UnfinishedRelease {
            held: self,
            done: false,
        };
        let _no_renewal_out = match may_restore {
            true => Some(state.renewing.lock().await),
            false => None,
        };
        unfinished.held.stop_renewal();
        // A failure of Redis names the lock it failed for (by reference: a copy of the
        // name was an allocation on every release).
        let hold = unfinished.held.shared();
        // A step of its own (`Io::step`), as an acquisition's attempt is: the heap block it
        // takes is about the one the attempt gave back.
        let result = I::step(unfinished.held.release_now(io))
            .await
            .map_err(|e| e.for_lock(&hold.name));
        unfinished.done = true;
        result
    }

    pub(crate) async fn release_now<I: Io>(&mut self, io: &I) -> Result<(), LockError> {
        if self.state.is_lost() {
            // Lost by this process's reckoning; should the key still be ours after all (a
            // slow reply, not an expiry), freeing it by value lets the next holder in.
            self.release_later(Instant::now() + self.lease);
            self.client.waiters.notify(&self.key);
            return Err(LockError::Lost {
                name: self.name.clone(),
            });
        }
        if let Some(hold) = self.hold_left() {
            return self.keep_for(io, hold).await;
        }
        if self.kind.is_counted() {
            return self.release_place(io).await;
        }
        // Its own reference: a handover borrows the key, and the owner value may change
        // under it (below).
        let hold = self.shared();
        let waiters = &hold.client.waiters;
        let hand_over = self.client.backend.hands_over();
        while hand_over && let Some(handover) = waiters.offer_handoff(&hold.key) {
            let ms = lease_millis(handover.lease)?.to_string();
            let own = handover.own_subscriptions.to_string();
            // Sent as "1" only when the waiter cannot stand in the queue yet (see HANDOFF).
            let never_queued = if handover.never_queued { "1" } else { "0" };
            let sent = handover.sent;
            let (offered, fenced) = (handover.value.clone(), handover.fenced);
            let waiter_lease = handover.lease;
            // The waiter as its entry in the queue in Redis, which the script recognises.
            let entry = queue_entry(&ms, fenced, &self.client.instance_id, &offered);
            // Built only for a handover: the last release below builds its own.
            let keys = lock_keys(&self.key);
            let attempt = HandoffAttempt {
                client: &self.client,
                key: &self.key,
                handover: Some(handover),
                value: &self.value,
                entry: &entry,
                lease: self.lease,
                sent,
            };
            let args = [
                self.value.as_str(),
                &entry,
                &own,
                &self.client.instance_id,
                never_queued,
            ];
            let replied = self.client.backend.handoff(io, &keys.all(), &args).await;
            let (reply, holder_lease) = match replied.and_then(handoff_reply) {
                Ok(reply) => reply,
                Err(e) => {
                    // No answer: settled as unknown, as when this future is dropped.
                    drop(attempt);
                    return Err(e);
                }
            };
            let outcome = match (reply, holder_lease) {
                // A positive reply is the fencing token the waiter got, if it asked for one.
                (1.., _) => HandoffOutcome::Handed(Grant {
                    value: offered,
                    fence: if fenced { reply as u64 } else { 0 },
                    sent,
                }),
                (_, Some(lease)) => HandoffOutcome::Queued {
                    holder_until: Instant::now() + lease,
                },
                _ => HandoffOutcome::NotHanded,
            };
            // When not handed over, `finish` pokes the waiter: it waits its turn in the
            // queue in Redis (queued), or tries for itself.
            let Some(left_behind) = attempt.finish(outcome) else {
                // Handed over, or released to everyone (-1); 0: the lock was not ours.
                return if reply != 0 {
                    Ok(())
                } else {
                    Err(LockError::Expired {
                        name: self.name.clone(),
                    })
                };
            };
            if let Some(holder_lease) = holder_lease {
                // Queued behind another process (HANDOFF answers a lease only then), the
                // waiter left meanwhile: its entry would be handed the lock by the next
                // release, and nobody would take it. The queue lives the new holder's
                // lease and two of the waiter's; withdrawn until a lease past that.
                let until = Instant::now() + holder_lease + 3 * waiter_lease;
                let client = &self.client;
                withdraw_later(client, self.key.clone(), left_behind, entry, until);
                return Ok(());
            }
            // The waiter left while we handed it the lock: it is ours under its value now.
            self.set_value(left_behind);
        }
        let (released, unsure) = self
            .client
            .backend
            .release(
                io,
                &self.name,
                &self.key,
                &self.value,
                &self.client.instance_id,
            )
            .await;
        waiters.notify(&self.key);
        if unsure {
            // A server is down or stalled: free the lock there as soon as it answers again,
            // rather than leave every waiter to its lease.
            self.release_later(self.state.valid_until());
        }
        if released? {
            Ok(())
        } else {
            Err(LockError::Expired {
                name: self.name.clone(),
            })
        }
    }

    /// What is left of the minimum hold, if any.
    fn hold_left(&self) -> Option<Duration> {
        let left = self.keep_until?.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// Releases a lock before its minimum hold is over: leaves its key to expire `hold`
    /// from now, without handing it to anyone. Waiters here and elsewhere are told, so that
    /// they look again and sleep until then rather than to the old lease's end.
    async fn keep_for<I: Io>(&mut self, io: &I, hold: Duration) -> Result<(), LockError> {
        let kept = self
            .client
            .backend
            .keep(
                io,
                (&self.name, &self.key, &self.value),
                hold,
                &self.client.instance_id,
                self.kind,
            )
            .await;
        self.client.waiters.notify(&self.key);
        if kept? {
            Ok(())
        } else {
            Err(LockError::Expired {
                name: self.name.clone(),
            })
        }
    }

    /// Releases a place among the holders of a lock several may hold: taken out of their
    /// hash and announced, so waiters here and elsewhere look again.
    async fn release_place<I: Io>(&mut self, io: &I) -> Result<(), LockError> {
        let (released, unsure) = self
            .client
            .backend
            .counted_release(io, &self.key, &self.value, &self.client.instance_id)
            .await;
        self.client.waiters.notify(&self.key);
        if unsure {
            self.release_later(self.state.valid_until());
        }
        match released? {
            true => Ok(()),
            false => Err(LockError::Expired {
                name: self.name.clone(),
            }),
        }
    }

    pub(crate) fn release_later(&self, until: Instant) {
        crate::algorithm::cleanup::release_later(
            &self.client,
            self.key.clone(),
            self.value.clone(),
            until,
            Orphan::Held,
            self.kind,
        );
    }
}

/// A release in progress. Dropped before it is done (the releasing future was cancelled),
/// it frees the lock in the background by owner token, which is harmless if the release
/// had already gone through.
struct UnfinishedRelease<'a> {
    held: &'a mut Held,
    done: bool,
}

impl Drop for UnfinishedRelease<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.held.stop_renewal();
            let held = &*self.held;
            if held.hold_left().is_some() {
                // Freeing it would cut its minimum hold short: it ends with its lease, or
                // when the hold ends if the cut-short request got through.
                return;
            }
            held.release_later(held.state.valid_until());
            held.client.waiters.notify(&held.key);
        }
    }
}

/// A handover in progress. Dropped before its outcome is known (no answer came, or the
/// releasing future was cancelled), the handover may or may not have run. If it did not,
/// the lock is still ours: it is freed under the releaser's token in the background. If
/// it did, the waiter's next attempt finds its own token and takes the lock; a waiter that
/// left meanwhile will not, so its token is freed in the background too.
struct HandoffAttempt<'a> {
    client: &'a Arc<LockClient>,
    key: &'a str,
    /// Until the outcome is known.
    handover: Option<Handover<'a>>,
    /// The releaser's owner value, which the key holds unless the handover ran.
    value: &'a str,
    /// The waiter's entry in the queue in Redis, where the handover may have put it.
    entry: &'a str,
    lease: Duration,
    sent: Instant,
}

impl HandoffAttempt<'_> {
    /// Settles the handover (see `Handover::settle`).
    fn finish(mut self, outcome: HandoffOutcome) -> Option<String> {
        self.handover.take()?.settle(outcome)
    }
}

impl Drop for HandoffAttempt<'_> {
    fn drop(&mut self) {
        let Some(handover) = self.handover.take() else {
            return;
        };
        let until = self.sent + self.lease;
        let release_later = |value: String, orphan| {
            crate::algorithm::cleanup::release_later(
                self.client,
                self.key.to_string(),
                value,
                until,
                orphan,
                LockKind::Exclusive,
            );
        };
        release_later(self.value.to_string(), Orphan::Held);
        // Queued behind another process, the waiter's entry lives that holder's lease and
        // two of the waiter's: bounded by three of the longer of the two leases known here.
        let queued_until = self.sent + 3 * self.lease.max(handover.lease);
        if let Some(left) = handover.settle(HandoffOutcome::Unknown { sent: self.sent }) {
            // The lock may be the waiter's, or its entry in the queue: one request takes
            // the entry out and frees the lock under its value.
            let (key, entry) = (self.key.to_string(), self.entry.to_string());
            withdraw_later(self.client, key, left, entry, queued_until.max(until));
        }
    }
}

/// HANDOFF's reply (see `scripts.rs`): the fencing token (> 0), -1 or 0, and the new
/// holder's lease when the waiter was queued behind it.
fn handoff_reply(reply: Reply) -> Result<(i64, Option<Duration>), LockError> {
    match reply {
        Reply::Array(parts) => match parts.as_slice() {
            [Reply::Int(reply), Reply::Int(lease)] => {
                Ok((*reply, Some(Duration::from_millis((*lease).max(0) as u64))))
            }
            _ => Err(LockError::invalid(
                "internal error: an unexpected reply to a handover",
            )),
        },
        reply => Ok((reply.as_int()?, None)),
    }
}
