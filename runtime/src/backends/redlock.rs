//! Redlock: a lock held on a majority of N independent Redis servers (N odd, at least 3),
//! as in the published algorithm (<https://redis.io/docs/latest/develop/use/patterns/distributed-locks/>).
//!
//! Every operation goes to every server at once (async callers join the requests; sync
//! callers, whose requests block, write every server's request before reading any reply:
//! see `Io::each_request`), each request bounded on its own, and counts the answers:
//!
//! - An acquisition holds only when a majority granted it and time is left of the lease
//!   after the round trips and a clock-drift allowance (`lease / 100 + 2 ms`): the lock
//!   is valid until `sent + lease - drift`, by this process's clock. Each server's request
//!   is bounded by a timeout small compared with the lease, so a dead server cannot eat
//!   the lease. An attempt that does not hold is undone (released by token) on every
//!   server, also those that did not answer: their reply may have been lost.
//! - Release, extension and reset go to every server; an extension must reach a majority,
//!   or the lock counts as lost. An extension also writes the key again where it is absent
//!   (a server that restarted empty), so such a server rejoins the holding set.
//! - Fewer than a majority answering at all is [`LockError::NoQuorum`].
//!
//! Each server keeps its own fencing counter, which the acquisition script only reads. An
//! acquisition's fencing token is one more than the largest counter among the servers that
//! answered (never below their clocks in microseconds), and before the lock is handed out
//! that number is written (raised to, never lowered) on every server that answered; the
//! acquisition holds only if a majority confirmed it. Any later majority overlaps that
//! majority in at least one server. A server that restarted empty has no counter, so the
//! counters that answer must come from a majority (or every server must have answered)
//! before their maximum is trusted: then fencing tokens grow from one holder to the next
//! also across restarts of a minority (see `Quorum::next_fence`).

mod answer;
mod each;

use std::future::Future;
use std::time::{Duration, Instant};

use crate::backends::attempt::AttemptRequest;
use crate::protocol::scripts::{QUORUM_ACQUIRE, QUORUM_RELEASE, RAISE_FENCE, Script, fence_key};
use crate::servers::io::Io;
use crate::servers::single::Single;

use crate::util::error::LockError;
use answer::Answer;
use each::{eval_each, set_each};

/// N independent servers, each a client of its own (pools, endpoint) that only talks.
pub(crate) struct Quorum {
    /// Each by `Arc`, so that a background release on one server can keep it.
    pub(crate) members: Vec<Single>,
    /// The bound of one server's answer to anything but an acquisition.
    response_timeout: Duration,
}

/// How many servers granted (or said yes to) an operation, and how many answered at all.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Votes {
    pub(crate) yes: usize,
    pub(crate) answered: usize,
    total: usize,
    needed: usize,
}

impl Votes {
    pub(crate) fn majority(&self) -> bool {
        self.yes >= self.needed
    }

    pub(crate) fn all_answered(&self) -> bool {
        self.answered == self.total
    }
}

/// What one acquisition attempt on the quorum came to.
pub(crate) enum QuorumAttempt {
    /// Held by a majority, with this fencing token, valid until `valid_from + lease`.
    Acquired { valid_from: Instant, fence: u64 },
    /// Not held; try again at `lease_end` at the latest (a release anywhere wakes us).
    Held { lease_end: Instant },
}

impl Quorum {
    pub(crate) fn new(members: Vec<Single>, response_timeout: Duration) -> Quorum {
        Quorum {
            members,
            response_timeout,
        }
    }

    /// Every server, for [`eval_each`].
    fn all(&self) -> Vec<&Single> {
        self.members.iter().collect()
    }

    pub(crate) fn total(&self) -> usize {
        self.members.len()
    }

    /// A majority.
    pub(crate) fn needed(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// The published algorithm's allowance for clocks running at different rates.
    pub(crate) fn drift(lease: Duration) -> Duration {
        lease / 100 + Duration::from_millis(2)
    }

    /// How long one server may take to answer an acquisition: small compared with the
    /// lease, so that an unreachable server leaves most of it to the holder.
    fn attempt_timeout(&self, lease: Duration) -> Duration {
        (lease / 10)
            .max(Duration::from_millis(5))
            .min(self.response_timeout)
    }

    /// The bound of one server's answer to an operation begun now.
    pub(crate) fn until(&self) -> Option<Instant> {
        Some(Instant::now() + self.response_timeout)
    }

    /// The value that at least a majority of the servers gave, if any.
    pub(crate) fn majority_of<T: PartialEq>(&self, values: &[T]) -> Option<usize> {
        (0..values.len())
            .find(|&i| values.iter().filter(|v| **v == values[i]).count() >= self.needed())
    }

    fn no_quorum(&self, name: &str, answered: usize) -> LockError {
        LockError::NoQuorum {
            name: name.to_string(),
            answered,
            needed: self.needed(),
            total: self.total(),
        }
    }

    /// Runs `op` on every server at once (also for sync callers: see [`Io::join_all`]);
    /// the outcomes in server order.
    pub(crate) async fn each<'a, I, T, F, Fut>(&'a self, io: &I, op: F) -> Vec<Result<T, LockError>>
    where
        I: Io,
        F: FnMut(&'a Single) -> Fut,
        Fut: Future<Output = Result<T, LockError>> + Send,
        T: Send,
    {
        io.join_all(self.members.iter().map(op).collect()).await
    }

    /// The outcomes, when a majority answered; otherwise the error to report: a lasting
    /// one (refused credentials, missing permissions) if a server gave one, else
    /// [`LockError::NoQuorum`].
    pub(crate) fn answers<T>(
        &self,
        name: &str,
        outcomes: Vec<Result<T, LockError>>,
    ) -> Result<Vec<Option<T>>, LockError> {
        let mut lasting = None;
        let answers: Vec<Option<T>> = outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Ok(answer) => Some(answer),
                Err(e) => {
                    if !e.is_unavailable() {
                        lasting.get_or_insert(e);
                    }
                    None
                }
            })
            .collect();
        let answered = answers.iter().filter(|a| a.is_some()).count();
        if answered >= self.needed() {
            return Ok(answers);
        }
        Err(lasting.unwrap_or_else(|| self.no_quorum(name, answered)))
    }

    /// Runs a script that answers 1 (yes) or 0 on every server, each bounded by the
    /// response timeout (and `until`), and counts the answers.
    pub(crate) async fn vote<I: Io>(
        &self,
        io: &I,
        name: &str,
        script: &Script,
        keys: &[&str],
        args: &[&str],
        until: Option<Instant>,
    ) -> Result<Votes, LockError> {
        let bound = Instant::now() + self.response_timeout;
        let until = Some(until.map_or(bound, |u| u.min(bound)));
        let outcomes = eval_each(io, &self.all(), script, keys, args, until).await;
        let outcomes = outcomes.into_iter().map(|o| o?.as_int()).collect();
        let answers = self.answers(name, outcomes)?;
        Ok(Votes {
            yes: answers.iter().filter(|a| **a == Some(1)).count(),
            answered: answers.iter().filter(|a| a.is_some()).count(),
            total: self.total(),
            needed: self.needed(),
        })
    }

    /// One acquisition attempt on every server. Also says whether the attempt is settled:
    /// false when a server may still hold the token (its reply and its undo were both
    /// lost), for the caller to release it later. Every request, the undo included, ends by
    /// the request's `until` (plus [`UNDO_GRACE`] for the undo) when it has one.
    ///
    /// A `plain` attempt is a bare `SET NX PX` on each server, as on one server (see
    /// `one_server::plain`): the servers that refuse it do not tell the holder's lease, so
    /// the caller's next attempt is the script, at once, and from then on our own token
    /// counts as taken.
    pub(crate) async fn acquire<I: Io>(
        &self,
        io: &I,
        request: &AttemptRequest<'_>,
    ) -> (Result<QuorumAttempt, LockError>, bool) {
        let (name, key, token, lease) = (request.name, request.key, request.value, request.lease);
        let (until, fenced) = (request.until, request.fenced);
        let per_server = self.attempt_timeout(lease);
        let bounded = |from: Instant| {
            let bound = from + per_server;
            Some(until.map_or(bound, |u| u.min(bound)))
        };
        let plain = request.plain && !fenced;
        // Only the script (and a fenced acquisition's raise) names the fence key: a bare
        // `SET` has no use for it, and an empty string costs no allocation.
        let fence_key = if plain { String::new() } else { fence_key(key) };
        let keys = [key, fence_key.as_str()];
        let ms = lease.as_millis().to_string();
        let args = [token, ms.as_str()];
        let sent = Instant::now();
        let request_until = bounded(sent);
        let all = self.all();
        let outcomes: Vec<Result<Answer, LockError>> = if plain {
            let set = set_each(io, &all, key, token, &ms, request_until).await;
            set.into_iter().map(|o| o.map(Answer::of_set)).collect()
        } else {
            let replies = eval_each(io, &all, &QUORUM_ACQUIRE, &keys, &args, request_until).await;
            replies.into_iter().map(|o| Answer::parse(&o?)).collect()
        };
        let answers = self.answers(name, outcomes);
        let granted = answers.as_ref().map_or(0, |answers| {
            answers.iter().flatten().filter(|a| a.granted).count()
        });
        let mut unvouched = None;
        if let Ok(answers) = &answers
            && granted >= self.needed()
        {
            let valid_from = sent.checked_sub(Quorum::drift(lease)).unwrap_or(sent);
            if !fenced {
                // No token asked for: the majority's grant is the lock, without the second
                // round trip that writes the token to a majority.
                if Instant::now() < valid_from + lease {
                    return (
                        Ok(QuorumAttempt::Acquired {
                            valid_from,
                            fence: 0,
                        }),
                        true,
                    );
                }
            } else {
                match self.next_fence(answers) {
                    Ok(fence) => {
                        let raised = self
                            .raise_fence(io, &fence_key, fence, answers, bounded)
                            .await;
                        if raised >= self.needed() && Instant::now() < valid_from + lease {
                            return (Ok(QuorumAttempt::Acquired { valid_from, fence }), true);
                        }
                    }
                    Err(vouching) => unvouched = Some(self.no_quorum(name, vouching)),
                }
            }
        }
        // Not held: undo everywhere, then say when to look again. Within the caller's
        // deadline: a server that does not answer by then is freed in the background.
        let now = Instant::now();
        let undo_until = {
            let bound = now + per_server;
            Some(until.map_or(bound, |u| bound.min(u.max(now) + UNDO_GRACE)))
        };
        let settled = self.undo(io, key, token, request.payload, undo_until).await;
        let answers = match (answers, unvouched) {
            (Err(e), _) | (Ok(_), Some(e)) => return (Err(e), settled),
            (Ok(answers), None) => answers,
        };
        if granted > 0 {
            // A split vote: others are undoing their part too and will wake us. Wait a
            // random moment first (never past the deadline), so that contenders do not
            // split again in lockstep.
            let pause = Instant::now() + jitter();
            io.wait_until(
                std::future::pending::<()>(),
                Some(until.map_or(pause, |u| u.min(pause))),
            )
            .await;
        }
        let now = Instant::now();
        let lease_end = answers
            .iter()
            .flatten()
            .filter(|a| !a.granted)
            .filter_map(|a| match a.pttl {
                // A key without expiry was not written by this crate; look again after a lease.
                -1 => Some(now + lease),
                ms if ms > 0 => Some(now + Duration::from_millis(ms as u64)),
                _ => None,
            })
            .max()
            .unwrap_or(now);
        (Ok(QuorumAttempt::Held { lease_end }), settled)
    }

    /// The fencing token of an acquisition a majority granted: above every counter that
    /// answered and never below the servers' clocks in microseconds (the floor of a
    /// counter that expired everywhere, as on one server).
    ///
    /// The last token was written to a majority, which shares a server with the majority
    /// that answered now; but a server that restarted empty since has no counter and
    /// cannot say so itself. So the counters that answered must come from a majority
    /// before their maximum is trusted (`Err`: how many did), unless every server answered:
    /// then no other server knows more, and the counters of a majority are lost for good
    /// (the guarantee the README states ends there).
    fn next_fence(&self, answers: &[Option<Answer>]) -> Result<u64, usize> {
        let answered: Vec<&Answer> = answers.iter().flatten().collect();
        let counters: Vec<u64> = answered.iter().filter_map(|a| a.counter).collect();
        let vouching = counters.len();
        if vouching > 0 && vouching < self.needed() && answered.len() < self.total() {
            return Err(vouching);
        }
        let clock = answered.iter().map(|a| a.clock).max().unwrap_or(0);
        let above = counters.iter().max().map_or(1, |c| c.saturating_add(1));
        Ok(above.max(clock))
    }

    /// Raises the fencing counter of every server that answered the acquisition (granted
    /// or not) to `fence`; how many confirmed.
    async fn raise_fence<I: Io>(
        &self,
        io: &I,
        fence_key: &str,
        fence: u64,
        answers: &[Option<Answer>],
        bounded: impl Fn(Instant) -> Option<Instant>,
    ) -> usize {
        let until = bounded(Instant::now());
        let fence = fence.to_string();
        let (keys, args) = ([fence_key], [fence.as_str()]);
        let servers: Vec<&Single> = answers
            .iter()
            .zip(&self.members)
            .filter(|(answer, _)| answer.is_some())
            .map(|(_, member)| member)
            .collect();
        let outcomes = eval_each(io, &servers, &RAISE_FENCE, &keys, &args, until).await;
        outcomes.iter().filter(|o| o.is_ok()).count()
    }

    /// Releases `token` on every server, each bounded by `until`; true when every server
    /// answered.
    async fn undo<I: Io>(
        &self,
        io: &I,
        key: &str,
        token: &str,
        payload: &str,
        until: Option<Instant>,
    ) -> bool {
        let args = [token, payload];
        let outcomes = eval_each(io, &self.all(), &QUORUM_RELEASE, &[key], &args, until).await;
        outcomes.iter().all(|o| o.is_ok())
    }

    /// Releases lock `key` on every server where it holds owner value `args[0]`, announced
    /// with payload `args[1]`: the servers' votes.
    pub(crate) async fn release<I: Io>(
        &self,
        io: &I,
        name: &str,
        key: &str,
        args: &[&str],
    ) -> Result<Votes, LockError> {
        self.vote(io, name, &QUORUM_RELEASE, &[key], args, None)
            .await
    }
}

/// How long past the caller's deadline (plus the attempt's own grace) an acquisition
/// waits for the undo of an attempt that did not win: enough for servers that answer;
/// the rest are freed in the background.
const UNDO_GRACE: Duration = Duration::from_millis(50);

/// A random pause of up to 20 ms.
fn jitter() -> Duration {
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    Duration::from_micros(u64::from(byte[0]) * 20_000 / 255)
}
