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

use super::spec::Spec;
use crate::algorithm::cleanup::Orphan;
use crate::algorithm::held::Held;
use crate::backends::attempt::{AttemptRequest, Queueing};
use crate::protocol::scripts::queue_entry;
use crate::servers::io::Io;
use crate::util::error::LockError;
use crate::waiting::ticket::Ticket;
use crate::waiting::waiters::{Grant, HeadView};

/// A request in flight when the caller's deadline passes gets this much longer, so that
/// even a single attempt (`timeout = 0`) has time to complete.
const ATTEMPT_GRACE: Duration = Duration::from_millis(100);

/// Backoff between attempts while Redis is unreachable.
const FIRST_RETRY: Duration = Duration::from_millis(25);
const MAX_RETRY: Duration = Duration::from_millis(500);

pub(super) use crate::backends::attempt::AttemptOutcome as Attempt;

pub(super) struct Attempts<'a> {
    lock: &'a Spec<'a>,
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
    /// Until when a releaser may hand the lock to this acquisition from the queue in
    /// Redis, when an attempt put it there: should the acquisition end without the lock,
    /// its entry is taken out (and a lock handed to it freed) in the background.
    queued_until: Option<Instant>,
    /// Whether an attempt found the lock taken: from then on every attempt is the script,
    /// which tells the holder's lease (see `AttemptRequest::plain`).
    found_taken: bool,
    /// Whether the attempt being made is the last one, which leaves the queue in Redis.
    leaving: bool,
}

impl<'a> Attempts<'a> {
    pub(super) fn new(
        lock: &'a Spec<'a>,
        value: String,
        deadline: Option<Instant>,
        ticket: Ticket<'a>,
    ) -> Attempts<'a> {
        Attempts {
            queued_until: None,
            found_taken: false,
            leaving: false,
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
    /// A handover that queued it in Redis behind another process is taken in here too (see
    /// [`queued_by_handover`](Attempts::queued_by_handover)).
    pub(super) fn view(&mut self) -> HeadView {
        let view = self.ticket().view();
        if let Some(sent) = view.maybe_granted {
            self.may_hold_since(sent);
            self.may_be_queued_by_handover(sent);
        }
        if let Some(holder_until) = view.queued_by_handover {
            self.queued_by_handover(holder_until);
        }
        view
    }

    /// A handover sent at `sent`, whose outcome nobody learned, may have queued this
    /// acquisition in Redis behind another process (see `HandoffOutcome::Queued`). The
    /// queue then lives that holder's lease and two of ours, which this process does not
    /// know: counted as three of ours, until an attempt of its own tells the holder's.
    fn may_be_queued_by_handover(&mut self, sent: Instant) {
        self.note_queued(sent + 3 * self.lock.lease());
    }

    /// A handover queued this acquisition in Redis behind the process it handed the lock
    /// to, whose lease runs until `holder_until` (see `HandoffOutcome::Queued`): it waits
    /// as after an attempt of its own that found the lock taken and queued it.
    fn queued_by_handover(&mut self, holder_until: Instant) {
        self.note_answer();
        self.found_taken = true;
        self.note_queued(holder_until + 2 * self.lock.lease());
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

    /// Another task of this process holds the lock: as good as Redis saying it is held.
    pub(super) fn held_here(&mut self) {
        self.answered = true;
    }

    /// Whether an attempt or a handover may have queued this acquisition in Redis.
    pub(super) fn queued(&self) -> bool {
        self.queued_until.is_some()
    }

    fn note_queued(&mut self, until: Instant) {
        self.queued_until = Some(self.queued_until.map_or(until, |t| t.max(until)));
    }

    fn may_hold_since(&mut self, sent: Instant) {
        self.unconfirmed_since = Some(self.unconfirmed_since.map_or(sent, |t| t.min(sent)));
    }

    /// The bound of one request: the deadline plus grace (none for a deadline so far off
    /// that adding to it would overflow).
    fn request_until(&self) -> Option<Instant> {
        self.deadline.and_then(|d| d.checked_add(ATTEMPT_GRACE))
    }

    /// One try at taking the lock; when someone else holds it, how long they may. With
    /// `join`, an attempt that finds the lock taken queues this acquisition in Redis, for
    /// a releaser to hand it the lock (see `Backend::queues`).
    pub(super) async fn attempt<I: Io>(
        &mut self,
        io: &I,
        join: bool,
    ) -> Result<Attempt, LockError> {
        let lock = self.lock;
        let earlier_unconfirmed = self.unconfirmed_since;
        // Until the backend says the attempt is settled, Redis may hold our value: should
        // this future be dropped half-way, or the attempt end unsettled, the acquisition's
        // end frees it in the background (see `Drop`).
        self.may_hold_since(Instant::now());
        let queued = self.queued_until.is_some();
        if join {
            // Sent now, the request may queue the acquisition whatever becomes of its
            // reply.
            self.ticket().may_queue();
            self.note_queued(Instant::now() + lock.lease());
        }
        let request = AttemptRequest {
            name: lock.name,
            key: lock.key,
            value: &self.value,
            lease: lock.lease(),
            payload: &lock.client.instance_id,
            until: self.request_until(),
            queue: Queueing {
                queued,
                join,
                leave: self.leaving,
            },
            fenced: lock.fenced,
            plain: !lock.fenced && !self.found_taken && !lock.kind.is_counted(),
            kind: lock.kind,
        };
        let (outcome, settled) = lock.client.backend.attempt(io, &request).await;
        if settled {
            self.unconfirmed_since = earlier_unconfirmed;
        }
        let outcome = outcome?;
        self.note_answer();
        if let Attempt::Held { lease_end, queued } = outcome {
            self.found_taken = true;
            if queued && !self.leaving {
                // The queue in Redis lives the holder's lease and two of ours past this.
                self.note_queued(lease_end + 2 * lock.lease());
            }
        }
        Ok(outcome)
    }

    /// For an acquisition queued in Redis that runs out of time: one last attempt that takes
    /// the lock if it is free or was handed to this acquisition, and otherwise takes its
    /// entry out of the queue in the same script (the `l` flag of ACQUIRE). `None` when it
    /// was not queued; on an error the entry is left to the withdrawal in the background.
    pub(super) async fn leave_queue<I: Io>(
        &mut self,
        io: &I,
    ) -> Option<Result<Attempt, LockError>> {
        self.queued_until?;
        if !self.begin_attempt() {
            return None;
        }
        self.leaving = true;
        let outcome = self.attempt(io, false).await;
        self.leaving = false;
        self.end_attempt();
        if let Ok(Attempt::Held { .. }) = outcome {
            // Out of the queue: nothing to withdraw.
            self.queued_until = None;
        }
        Some(outcome)
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
                name: self.lock.name.to_string(),
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
        ticket.acquired(grant.sent + lease);
        // The key holds the token this waiter offered: this acquisition's own.
        Some(self.lock.held(grant.value, grant.fence, grant.sent))
    }

    pub(super) fn into_held(mut self, sent: Instant, fence: u64) -> Held {
        self.acquired = true;
        if let Some(ticket) = self.ticket.take() {
            if self.lock.kind.is_counted() {
                // Others may hold it too: the next waiter here tries for a place at once.
                ticket.leave();
            } else {
                ticket.acquired(sent + self.lock.lease());
            }
        }
        self.lock.held(std::mem::take(&mut self.value), fence, sent)
    }
}

impl Drop for Attempts<'_> {
    /// An acquisition that ends without the lock (an error, its deadline, a cancelled
    /// future) leaves the queue, and frees in the background whatever Redis may hold under
    /// its token: a lock handed to it that it never took, one a handover whose outcome
    /// nobody learned may have given it (also when it never looked at its place again), or
    /// one an unanswered request took.
    fn drop(&mut self) {
        if self.acquired {
            return;
        }
        if let Some(holder_until) = self
            .ticket
            .as_ref()
            .and_then(Ticket::take_queued_by_handover)
        {
            self.note_queued(holder_until + 2 * self.lock.lease());
        }
        let handed_since = self.ticket.take().and_then(Ticket::leave);
        if let Some(sent) = handed_since {
            // A handover to it may have queued it too.
            self.may_be_queued_by_handover(sent);
        }
        let since = match (handed_since, self.unconfirmed_since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let lock = self.lock;
        if let Some(queued_until) = self.queued_until {
            // One request takes the entry out and frees whatever Redis holds under our
            // value, a lock handed from the queue included.
            let until = since.map_or(queued_until, |since| queued_until.max(since + lock.lease()))
                + lock.lease();
            // The entry the scripts made of the attempts' lease, instance id and value.
            let lease_ms = lock.lease().as_millis().to_string();
            let entry = queue_entry(
                &lease_ms,
                lock.fenced,
                &lock.client.instance_id,
                &self.value,
            );
            crate::algorithm::cleanup::withdraw_later(
                lock.client,
                lock.key.to_string(),
                std::mem::take(&mut self.value),
                entry,
                until,
            );
        } else if let Some(since) = since {
            crate::algorithm::cleanup::release_later(
                lock.client,
                lock.key.to_string(),
                std::mem::take(&mut self.value),
                since + lock.lease(),
                Orphan::Maybe,
                lock.kind,
            );
        }
    }
}
