//! One acquisition's attempts at `SET NX`, and what it does when Redis does not answer.
//!
//! A failed attempt is not always a clean "no": when the reply to a `SET` never comes
//! (a response timeout, a stalled server, a caller that gave up), the lock may have been
//! taken under this acquisition's token. The next attempt checks for that, and an
//! acquisition that ends without the lock releases its token in the background, so a
//! lock nobody knows it holds does not block everyone until its lease runs out.

use std::time::{Duration, Instant};

use super::Lock;
use crate::error::LockError;
use crate::guard::Held;
use crate::io::{Io, eval_until};
use crate::redlock::{Quorum, QuorumAttempt};
use crate::resp::{Reply, unexpected};
use crate::scripts::{ACQUIRE, CONFIRM, fence_key};

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
    /// holder's description (see `holder.rs`).
    pub(super) value: String,
    /// Whether an attempt was made yet: a later one says anew since when it holds the lock.
    attempted: bool,
    deadline: Option<Instant>,
    /// When a `SET` whose outcome is unknown was last sent: the lock may be ours until
    /// that moment plus the lease.
    unconfirmed_since: Option<Instant>,
    /// When the current run of failed attempts began, and its latest failure.
    outage: Option<(Instant, LockError)>,
    /// The longest remaining lease seen on a holder: how long a new holder may keep the
    /// lock, a bound on the next wait without asking Redis after every lost race.
    longest_ttl: Option<Duration>,
    backoff: Duration,
    acquired: bool,
}

impl<'a> Attempts<'a> {
    pub(super) fn new(lock: &'a Lock, value: String, deadline: Option<Instant>) -> Attempts<'a> {
        Attempts {
            lock,
            value,
            attempted: false,
            deadline,
            unconfirmed_since: None,
            outage: None,
            longest_ttl: None,
            backoff: FIRST_RETRY,
            acquired: false,
        }
    }

    fn request_until(&self) -> Option<Instant> {
        self.deadline.map(|d| d + ATTEMPT_GRACE)
    }

    /// One try at taking the lock; when someone else holds it, how long they may. The
    /// holder's remaining lease is asked for when `fresh_ttl` or none was seen yet.
    pub(super) async fn attempt<I: Io>(
        &mut self,
        io: &I,
        lease_ms: u64,
        fresh_ttl: bool,
    ) -> Result<Attempt, LockError> {
        self.restamp();
        if let Some(quorum) = self.lock.client.quorum() {
            return self.attempt_quorum(io, quorum).await;
        }
        let ask_ttl = fresh_ttl || self.longest_ttl.is_none();
        let sent = Instant::now();
        let earlier_unconfirmed = self.unconfirmed_since;
        // Until the reply says otherwise, this attempt may take effect.
        self.unconfirmed_since = Some(sent);
        let ms = lease_ms.to_string();
        let ask = if ask_ttl { "1" } else { "0" };
        let reply = self.run(io, &ACQUIRE, &[&ms, ask]).await?;
        self.unconfirmed_since = earlier_unconfirmed;
        self.outage = None;
        let (taken, number) = match &reply {
            Reply::Array(parts) => match parts.as_slice() {
                [Reply::Int(taken), Reply::Int(number)] => (*taken == 1, Some(*number)),
                [Reply::Int(0)] => (false, None),
                _ => return Err(unexpected(&reply)),
            },
            _ => return Err(unexpected(&reply)),
        };
        let number = match (taken, number) {
            (true, Some(fence)) => {
                self.replicated(io, sent).await?;
                return Ok(Attempt::Acquired {
                    sent,
                    fence: fence as u64,
                });
            }
            (_, number) => number,
        };
        if earlier_unconfirmed.is_some() {
            // An earlier attempt whose reply was lost may have taken the lock for us.
            let fence = self.run(io, &CONFIRM, &[&ms]).await?.as_int()?;
            if fence > 0 {
                self.replicated(io, sent).await?;
                return Ok(Attempt::Acquired {
                    sent,
                    fence: fence as u64,
                });
            }
        }
        let now = Instant::now();
        let lease_end = match number {
            // Gone already: try again at once.
            Some(-2) => now,
            // A key without expiry was not written by this crate; look again after a lease.
            Some(-1) => now + self.lock.lease(),
            Some(ms) => {
                let ttl = Duration::from_millis(ms as u64);
                self.longest_ttl = Some(self.longest_ttl.map_or(ttl, |t| t.max(ttl)));
                now + ttl
            }
            // Not asked: no holder keeps it longer than the longest lease seen.
            None => now + self.longest_ttl.unwrap_or_else(|| self.lock.lease()),
        };
        Ok(Attempt::Held { lease_end })
    }

    /// Before an attempt after the first, has the value say that the lock is held from
    /// now. Not while an earlier attempt's outcome is unknown: that one may have taken the
    /// lock under the earlier value, which the confirmation and the clean-up look for.
    fn restamp(&mut self) {
        if self.attempted && self.unconfirmed_since.is_none() {
            self.value = crate::holder::restamp(&self.value);
        }
        self.attempted = true;
    }

    /// [`attempt`](Attempts::attempt) on a Redlock quorum, which undoes a failed attempt
    /// itself and needs no `CONFIRM`: its acquisition script counts a key that already
    /// holds our token as taken.
    async fn attempt_quorum<I: Io>(
        &mut self,
        io: &I,
        quorum: &Quorum,
    ) -> Result<Attempt, LockError> {
        let lock = self.lock;
        let sent = Instant::now();
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
        if !settled {
            // A server may hold our token (its reply and its undo were lost): should this
            // acquisition end without the lock, it is released there in the background.
            self.unconfirmed_since = Some(sent);
        }
        match outcome? {
            QuorumAttempt::Acquired { valid_from, fence } => Ok(Attempt::Acquired {
                sent: valid_from,
                fence,
            }),
            QuorumAttempt::Held { lease_end } => {
                self.outage = None;
                Ok(Attempt::Held { lease_end })
            }
        }
    }

    /// With `min_replicas` on a cluster: waits for the replicas to hold the lock just
    /// taken (sent at `sent`). When they do not, the lock counts as not ours, so the
    /// acquisition's end releases it (see `Drop`).
    async fn replicated<I: Io>(&mut self, io: &I, sent: Instant) -> Result<(), LockError> {
        let lock = self.lock;
        let outcome =
            crate::cluster::replicas::confirm(io, &lock.client, &lock.name, &lock.key).await;
        if outcome.is_err() {
            self.unconfirmed_since = Some(sent);
        }
        outcome
    }

    /// Runs one of the acquisition scripts on the lock and fence keys, with this
    /// acquisition's owner value and `more` arguments.
    async fn run<I: Io>(
        &self,
        io: &I,
        script: &crate::scripts::Script,
        more: &[&str],
    ) -> Result<Reply, LockError> {
        let key = self.lock.key.as_str();
        let fence = fence_key(key);
        let keys = [key, fence.as_str()];
        let mut args = Vec::with_capacity(1 + more.len());
        args.push(self.value.as_str());
        args.extend_from_slice(more);
        eval_until(
            io,
            &self.lock.client,
            script,
            &keys,
            &args,
            self.request_until(),
        )
        .await
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

    /// The error for an acquisition that ran out of time: `Timeout`, unless Redis could not
    /// be reached at all at the end, which the caller should hear about as such.
    pub(super) fn give_up(&mut self, start: Instant) -> LockError {
        match self.outage.take() {
            Some((_, error)) if !error.is_response_timeout() => error,
            _ => self.lock.timed_out(start),
        }
    }

    /// The lock was handed over to this acquisition's token by a releaser in this process.
    pub(super) fn handed_over(mut self) {
        self.acquired = true;
    }

    pub(super) fn into_held(mut self, sent: Instant, fence: u64) -> Held {
        self.acquired = true;
        self.lock.held(std::mem::take(&mut self.value), fence, sent)
    }
}

impl Drop for Attempts<'_> {
    fn drop(&mut self) {
        if let (false, Some(sent)) = (self.acquired, self.unconfirmed_since) {
            let lock = self.lock;
            crate::cleanup::release_later(
                &lock.client,
                lock.key.clone(),
                std::mem::take(&mut self.value),
                sent + lock.lease(),
            );
        }
    }
}
