//! One acquisition's attempts at `SET NX`, and what it does when Redis does not answer.
//!
//! A failed attempt is not always a clean "no": when the reply to a `SET` never comes
//! (a response timeout, a stalled server, a caller that gave up), the lock may have been
//! taken under this acquisition's token; so may a handover to it whose reply was lost. The
//! acquisition script counts a key that already holds our token as taken, so the next
//! attempt settles it, and an acquisition that ends without the lock releases its token in
//! the background (also a lock handed to it that it never took), so a lock nobody knows it
//! holds does not block everyone until its lease runs out.

use std::time::{Duration, Instant};

use super::Lock;
use crate::cleanup::Orphan;
use crate::error::LockError;
use crate::guard::Held;
use crate::io::{Io, eval_until};
use crate::redlock::{Quorum, QuorumAttempt};
use crate::resp::{Reply, unexpected};
use crate::scripts::{ACQUIRE, fence_key};
use crate::waiters::{Grant, HeadView, Ticket};

/// A request in flight when the caller's deadline passes gets this much longer, so that
/// even a single attempt (`timeout = 0`) has time to complete.
const ATTEMPT_GRACE: Duration = Duration::from_millis(100);

/// Backoff between attempts while Redis is unreachable.
const FIRST_RETRY: Duration = Duration::from_millis(25);
const MAX_RETRY: Duration = Duration::from_millis(500);

pub(super) enum Attempt {
    /// The lock is ours, with this fencing token; its lease began no earlier than `sent`.
    Acquired { sent: Instant, fence: u64 },
    /// Someone else holds it, until `lease_end` at the latest.
    Held { lease_end: Instant },
}

pub(super) struct Attempts<'a> {
    lock: &'a Lock,
    /// The owner value each attempt writes: a token fresh for this acquisition and the
    /// holder's description (see `holder.rs`). It never changes during the acquisition: a
    /// request whose reply was lost is settled by finding this very value in the key.
    pub(super) value: String,
    /// This acquisition's place in the process's queue for the key; `None` once it left.
    ticket: Option<Ticket<'a>>,
    deadline: Option<Instant>,
    /// When a request that may have given this acquisition the lock without its knowing
    /// was first sent (an unanswered `SET`, a handover whose reply was lost): the lock may
    /// be ours until that moment plus the lease.
    unconfirmed_since: Option<Instant>,
    /// When the current run of failed attempts began, and its latest failure.
    outage: Option<(Instant, LockError)>,
    /// Whether Redis answered any request of this acquisition.
    answered: bool,
    backoff: Duration,
    acquired: bool,
}

impl<'a> Attempts<'a> {
    pub(super) fn new(
        lock: &'a Lock,
        value: String,
        deadline: Option<Instant>,
        ticket: Ticket<'a>,
    ) -> Attempts<'a> {
        Attempts {
            lock,
            value,
            ticket: Some(ticket),
            deadline,
            unconfirmed_since: None,
            outage: None,
            answered: false,
            backoff: FIRST_RETRY,
            acquired: false,
        }
    }

    fn ticket(&self) -> &Ticket<'a> {
        self.ticket
            .as_ref()
            .expect("the ticket is held until the acquisition ends")
    }

    /// Where this acquisition stands in the queue. A handover that may have taken effect
    /// unseen is remembered here, for the cleanup should the acquisition end without the lock.
    pub(super) fn view(&mut self) -> HeadView {
        let view = self.ticket().view();
        if let Some(sent) = view.maybe_granted {
            self.may_hold_since(sent);
        }
        view
    }

    /// Marks the start of this acquisition's own attempt (see `Ticket::begin_attempt`).
    pub(super) fn begin_attempt(&self) -> bool {
        self.ticket().begin_attempt()
    }

    /// This acquisition's attempt is over.
    pub(super) fn end_attempt(&self) {
        self.ticket().end_attempt();
    }

    /// Resolves when this waiter is poked.
    pub(super) async fn poked(&self) {
        self.ticket().poked().await;
    }

    /// Redis answered: no outage, and the waiters behind this one learn of it too.
    fn note_answer(&mut self) {
        self.outage = None;
        self.answered = true;
        self.ticket().answered();
    }

    fn may_hold_since(&mut self, sent: Instant) {
        self.unconfirmed_since = Some(self.unconfirmed_since.map_or(sent, |t| t.min(sent)));
    }

    /// The bound of one request: the deadline plus grace (none for a deadline so far off
    /// that adding to it would overflow).
    fn request_until(&self) -> Option<Instant> {
        self.deadline.and_then(|d| d.checked_add(ATTEMPT_GRACE))
    }

    /// One try at taking the lock; when someone else holds it, how long they may.
    pub(super) async fn attempt<I: Io>(
        &mut self,
        io: &I,
        lease_ms: u64,
    ) -> Result<Attempt, LockError> {
        if let Some(quorum) = self.lock.client.quorum() {
            return self.attempt_quorum(io, quorum).await;
        }
        let sent = Instant::now();
        let earlier_unconfirmed = self.unconfirmed_since;
        // Until the reply says otherwise, this attempt may take effect; with `min_replicas`,
        // until the replicas acknowledged it too (a cancel while `WAIT` blocks leaves a lock
        // taken, which the acquisition's drop then frees).
        self.may_hold_since(sent);
        let ms = lease_ms.to_string();
        // Always ask for the holder's remaining lease: it is read in the same script, and
        // the holder now may not be the one seen before (a short lease after a long one).
        let (reply, acknowledged) = self.run(io, &ACQUIRE, &[&ms, "1"]).await?;
        self.note_answer();
        let (taken, number) = match &reply {
            Reply::Array(parts) => match parts.as_slice() {
                [Reply::Int(taken), Reply::Int(number)] => (*taken == 1, Some(*number)),
                [Reply::Int(0)] => (false, None),
                _ => return Err(unexpected(&reply)),
            },
            _ => return Err(unexpected(&reply)),
        };
        if let (true, Some(fence)) = (taken, number) {
            // Taken now, or found taken by an earlier attempt or handover whose reply was
            // lost (the script counts our own token as taken): either way its lease
            // restarted with this request.
            if let Some(acknowledged) = acknowledged {
                self.replicated(acknowledged)?;
            }
            self.unconfirmed_since = earlier_unconfirmed;
            return Ok(Attempt::Acquired {
                sent,
                fence: fence as u64,
            });
        }
        self.unconfirmed_since = earlier_unconfirmed;
        let now = Instant::now();
        let lease_end = match number {
            // Gone already: try again at once.
            Some(-2) => now,
            // A key without expiry was not written by this crate; look again after a lease.
            Some(-1) | None => now + self.lock.lease(),
            Some(ms) => now + Duration::from_millis(ms as u64),
        };
        Ok(Attempt::Held { lease_end })
    }

    /// [`attempt`](Attempts::attempt) on a Redlock quorum, which undoes a failed attempt
    /// on every server itself.
    async fn attempt_quorum<I: Io>(
        &mut self,
        io: &I,
        quorum: &Quorum,
    ) -> Result<Attempt, LockError> {
        let lock = self.lock;
        let sent = Instant::now();
        let earlier_unconfirmed = self.unconfirmed_since;
        // Until the round is over, any server may have taken the lock under our token:
        // should this future be dropped half-way, the acquisition's end frees it on every
        // server in the background.
        self.may_hold_since(sent);
        let (outcome, settled) = quorum
            .acquire(
                io,
                &lock.name,
                &lock.key,
                &self.value,
                lock.lease(),
                &lock.client.instance_id,
                self.request_until(),
            )
            .await;
        if settled {
            self.unconfirmed_since = earlier_unconfirmed;
        }
        // Otherwise a server may hold our token (its reply and its undo were lost): should
        // this acquisition end without the lock, it is released there in the background.
        match outcome? {
            QuorumAttempt::Acquired { valid_from, fence } => Ok(Attempt::Acquired {
                sent: valid_from,
                fence,
            }),
            QuorumAttempt::Held { lease_end } => {
                self.note_answer();
                Ok(Attempt::Held { lease_end })
            }
        }
    }

    /// With `min_replicas` on a cluster: whether enough replicas acknowledged the lock just
    /// taken. When not, the lock counts as not ours, and stays marked as maybe held, so the
    /// acquisition's end releases it (see `Drop`).
    fn replicated(&self, acknowledged: usize) -> Result<(), LockError> {
        let lock = self.lock;
        match lock.client.replica_check() {
            Some(cluster) if acknowledged < cluster.min_replicas => Err(LockError::NotReplicated {
                name: lock.name.clone(),
                wanted: cluster.min_replicas,
                acknowledged,
            }),
            _ => Ok(()),
        }
    }

    /// Runs one of the acquisition scripts on the lock and fence keys, with this
    /// acquisition's token and `more` arguments. With `min_replicas`, `WAIT` goes with it
    /// (see `cluster/replicas.rs`): the second value is how many replicas acknowledged.
    async fn run<I: Io>(
        &self,
        io: &I,
        script: &crate::scripts::Script,
        more: &[&str],
    ) -> Result<(Reply, Option<usize>), LockError> {
        let key = self.lock.key.as_str();
        let fence = fence_key(key);
        let keys = [key, fence.as_str()];
        let mut args = Vec::with_capacity(1 + more.len());
        args.push(self.value.as_str());
        args.extend_from_slice(more);
        if let Some(cluster) = self.lock.client.replica_check() {
            // Boxed: the pipeline's future would otherwise enlarge every acquisition's,
            // which annotated async fns hold inline.
            let (reply, acknowledged) = Box::pin(crate::cluster::replicas::acquire(
                io,
                cluster,
                script,
                &keys,
                &args,
                self.request_until(),
            ))
            .await?;
            return Ok((reply, Some(acknowledged)));
        }
        let reply = eval_until(
            io,
            &self.lock.client,
            script,
            &keys,
            &args,
            self.request_until(),
        )
        .await?;
        Ok((reply, None))
    }

    /// An attempt failed. When Redis is merely unreachable or slow, returns when to try
    /// again; otherwise (or once the outage outlasts the client's outage timeout) the error.
    pub(super) fn failed(&mut self, error: LockError) -> Result<Instant, LockError> {
        if !error.is_unavailable() {
            return Err(error);
        }
        let now = Instant::now();
        let began = self.outage.as_ref().map_or(now, |(began, _)| *began);
        if now.duration_since(began) >= self.lock.client.outage_timeout {
            return Err(error);
        }
        tracing::debug!(
            lock = %self.lock.name,
            error = &error as &(dyn std::error::Error + 'static),
            "redis-locked: Redis unavailable; trying again"
        );
        self.outage = Some((began, error));
        let retry_at = now + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_RETRY);
        Ok(retry_at)
    }

    /// The error for an acquisition that ran out of time. `Timeout` means Redis answered
    /// (this acquisition, or the one ahead of it in this process's queue) and the lock
    /// stayed held by another owner until the deadline. When Redis could not be reached at
    /// the end, the caller hears that error; when no attempt was answered at all (a stalled
    /// server), `NoAnswer`: nobody knows whether the lock is free.
    pub(super) fn give_up(&mut self, start: Instant) -> LockError {
        let answered = self.answered || self.ticket().answered_since(start);
        match self.outage.take() {
            Some((_, error)) if !error.is_response_timeout() => error,
            _ if !answered => LockError::NoAnswer {
                name: self.lock.name.clone(),
                waited: start.elapsed(),
            },
            _ => self.lock.timed_out(start),
        }
    }

    /// Takes a lock a releaser of this process handed to this acquisition's token. `None`
    /// when the grant's lease ran out before this waiter looked at it (it was polled
    /// late): a grant like that is not a lock. The key may still hold our token for a
    /// moment, so the next attempt (which counts our own token as taken) settles it.
    pub(super) fn take_grant(&mut self) -> Option<Held> {
        let grant: Grant = self.ticket().take_grant()?;
        let lease = self.lock.lease();
        if Instant::now() >= grant.sent + lease {
            self.may_hold_since(grant.sent);
            return None;
        }
        self.acquired = true;
        let ticket = self.ticket.take().expect("the ticket is held until now");
        ticket.acquired(grant.sent + lease, true);
        // The key holds the token this waiter offered: this acquisition's own.
        Some(self.lock.held(grant.value, grant.fence, grant.sent))
    }

    pub(super) fn into_held(mut self, sent: Instant, fence: u64) -> Held {
        self.acquired = true;
        if let Some(ticket) = self.ticket.take() {
            ticket.acquired(sent + self.lock.lease(), false);
        }
        self.lock.held(std::mem::take(&mut self.value), fence, sent)
    }
}

impl Drop for Attempts<'_> {
    /// An acquisition that ends without the lock (an error, its deadline, a cancelled
    /// future) leaves the queue, and frees in the background whatever Redis may hold under
    /// its token: a lock handed to it that it never took, or one an unanswered request took.
    fn drop(&mut self) {
        if self.acquired {
            return;
        }
        let grant = self.ticket.take().and_then(Ticket::leave);
        let since = match (grant.map(|g| g.sent), self.unconfirmed_since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(since) = since {
            let lock = self.lock;
            crate::cleanup::release_later(
                &lock.client,
                lock.key.clone(),
                std::mem::take(&mut self.value),
                since + lock.lease(),
                Orphan::Maybe,
            );
        }
    }
}
