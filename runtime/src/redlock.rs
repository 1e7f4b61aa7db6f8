//! Redlock: a lock held on a majority of N independent Redis servers (N odd, at least 3),
//! as in the published algorithm (<https://redis.io/docs/latest/develop/use/patterns/distributed-locks/>).
//!
//! Every operation goes to every server at once (async callers join the requests; sync
//! callers, whose I/O completes each step at once, ask the servers one after another, each
//! bounded by the same per-server timeout) and counts the answers:
//!
//! - An acquisition holds only when a majority granted it and time is left of the lease
//!   after the round trips and a clock-drift allowance (`lease / 100 + 2 ms`): the lock
//!   is valid until `sent + lease - drift`, by this process's clock. Each server's request
//!   is bounded by a timeout small compared with the lease, so a dead server cannot eat
//!   the lease. An attempt that does not hold is undone (released by token) on every
//!   server, also those that did not answer: their reply may have been lost.
//! - Release, extension and reset go to every server; an extension must reach a majority,
//!   or the lock counts as lost.
//! - Fewer than a majority answering at all is [`LockError::NoQuorum`].
//!
//! Each server keeps its own fencing counter. An acquisition's fencing token is the largest
//! of its majority's counters, and before the lock is handed out that number is written
//! back (raised to, never lowered) on the granting servers; the acquisition holds only if a
//! majority confirmed it. Any later acquisition's majority overlaps that majority in at
//! least one server, whose counter it increments past the number: so fencing tokens still
//! grow from one holder to the next.

use std::collections::BTreeSet;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::client::LockClient;
use crate::error::LockError;
use crate::io::{Io, eval_until};
use crate::resp::{Reply, unexpected};
use crate::scan::LockKeys;
use crate::scripts::{QUORUM_ACQUIRE, RAISE_FENCE, RELEASE, Script, fence_key};

/// N independent servers, each a client of its own (pools, endpoint) that only talks.
pub(crate) struct Quorum {
    /// Each by `Arc`, so that a background release on one server can keep it.
    pub(crate) members: Vec<Arc<LockClient>>,
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

/// One server's reply to an acquisition.
enum Grant {
    Granted(u64),
    /// Refused, with the holder's remaining lease (PTTL).
    Refused(i64),
}

impl Quorum {
    pub(crate) fn new(members: Vec<Arc<LockClient>>, response_timeout: Duration) -> Quorum {
        Quorum {
            members,
            response_timeout,
        }
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

    /// The lock keys of every server that answered (a majority must), each once.
    pub(crate) async fn lock_keys<I: Io>(&self, io: &I) -> Result<Vec<String>, LockError> {
        // One server after another: this is for operators, not for the lock's hot path.
        let mut outcomes = Vec::with_capacity(self.members.len());
        for member in &self.members {
            let mut walk = LockKeys::new(member);
            let keys = async {
                let mut keys = Vec::new();
                while let Some(page) = walk.next_page(io).await? {
                    keys.extend(page);
                }
                Ok::<_, LockError>(keys)
            };
            outcomes.push(keys.await);
        }
        let mut keys = BTreeSet::new();
        for answer in self.answers("", outcomes)?.into_iter().flatten() {
            keys.extend(answer);
        }
        Ok(keys.into_iter().collect())
    }

    fn no_quorum(&self, name: &str, answered: usize) -> LockError {
        LockError::NoQuorum {
            name: name.to_string(),
            answered,
            needed: self.needed(),
            total: self.total(),
        }
    }

    /// Runs `op` on every server at once; the outcomes in server order.
    pub(crate) async fn each<'a, T, F, Fut>(&'a self, op: F) -> Vec<Result<T, LockError>>
    where
        F: FnMut(&'a LockClient) -> Fut,
        Fut: Future<Output = Result<T, LockError>>,
    {
        join_all(
            self.members
                .iter()
                .map(|member| &**member)
                .map(op)
                .collect(),
        )
        .await
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
        let outcomes = self
            .each(|member| async move {
                eval_until(io, member, script, keys, args, until)
                    .await?
                    .as_int()
            })
            .await;
        let answers = self.answers(name, outcomes)?;
        Ok(Votes {
            yes: answers.iter().filter(|a| **a == Some(1)).count(),
            answered: answers.iter().filter(|a| a.is_some()).count(),
            total: self.total(),
            needed: self.needed(),
        })
    }

    /// One acquisition attempt on every server. Also says whether the attempt is settled:
    /// false when a server may still hold `token` (its reply and its undo were both lost),
    /// for the caller to release it later.
    #[allow(clippy::too_many_arguments, reason = "one attempt's whole context")]
    pub(crate) async fn acquire<I: Io>(
        &self,
        io: &I,
        name: &str,
        key: &str,
        token: &str,
        lease: Duration,
        payload: &str,
        until: Option<Instant>,
    ) -> (Result<QuorumAttempt, LockError>, bool) {
        let per_server = self.attempt_timeout(lease);
        let bounded = |from: Instant| {
            let bound = from + per_server;
            Some(until.map_or(bound, |u| u.min(bound)))
        };
        let fence_key = fence_key(key);
        let keys = [key, fence_key.as_str()];
        let ms = lease.as_millis().to_string();
        let args = [token, ms.as_str(), "1"];
        let sent = Instant::now();
        let request_until = bounded(sent);
        let outcomes = self
            .each(|member| async move {
                let reply =
                    eval_until(io, member, &QUORUM_ACQUIRE, &keys, &args, request_until).await?;
                match &reply {
                    Reply::Array(parts) => match parts.as_slice() {
                        [Reply::Int(1), Reply::Int(fence)] => Ok(Grant::Granted(*fence as u64)),
                        [Reply::Int(0), Reply::Int(pttl)] => Ok(Grant::Refused(*pttl)),
                        _ => Err(unexpected(&reply)),
                    },
                    _ => Err(unexpected(&reply)),
                }
            })
            .await;
        let answers = self.answers(name, outcomes);
        let granted: Vec<(usize, u64)> = match &answers {
            Ok(answers) => answers
                .iter()
                .enumerate()
                .filter_map(|(i, a)| match a {
                    Some(Grant::Granted(fence)) => Some((i, *fence)),
                    _ => None,
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        if granted.len() >= self.needed() {
            let fence = granted.iter().map(|(_, f)| *f).max().unwrap_or(0);
            let raised = self
                .raise_fence(io, &fence_key, fence, &granted, bounded)
                .await;
            let valid_from = sent.checked_sub(Quorum::drift(lease)).unwrap_or(sent);
            if raised >= self.needed() && Instant::now() < valid_from + lease {
                return (Ok(QuorumAttempt::Acquired { valid_from, fence }), true);
            }
        }
        // Not held: undo everywhere, then say when to look again.
        let settled = self.undo(io, key, token, payload, per_server).await;
        let answers = match answers {
            Ok(answers) => answers,
            Err(e) => return (Err(e), settled),
        };
        if !granted.is_empty() {
            // A split vote: others are undoing their part too and will wake us. Wait a
            // random moment first, so that contenders do not split again in lockstep.
            io.wait_until(
                std::future::pending::<()>(),
                Some(Instant::now() + jitter()),
            )
            .await;
        }
        let now = Instant::now();
        let lease_end = answers
            .iter()
            .filter_map(|a| match a {
                // A key without expiry was not written by this crate; look again after a lease.
                Some(Grant::Refused(-1)) => Some(now + lease),
                Some(Grant::Refused(ms)) if *ms > 0 => {
                    Some(now + Duration::from_millis(*ms as u64))
                }
                _ => None,
            })
            .max()
            .unwrap_or(now);
        (Ok(QuorumAttempt::Held { lease_end }), settled)
    }

    /// Raises the fencing counter of the `granted` servers to `fence`; how many confirmed.
    async fn raise_fence<I: Io>(
        &self,
        io: &I,
        fence_key: &str,
        fence: u64,
        granted: &[(usize, u64)],
        bounded: impl Fn(Instant) -> Option<Instant>,
    ) -> usize {
        let until = bounded(Instant::now());
        let fence = fence.to_string();
        let (keys, args) = ([fence_key], [fence.as_str()]);
        let servers: Vec<&LockClient> = granted.iter().map(|(i, _)| &*self.members[*i]).collect();
        let outcomes = join_all(
            servers
                .into_iter()
                .map(|member| eval_until(io, member, &RAISE_FENCE, &keys, &args, until))
                .collect(),
        )
        .await;
        outcomes.iter().filter(|o| o.is_ok()).count()
    }

    /// Releases `token` on every server; true when every server answered.
    async fn undo<I: Io>(
        &self,
        io: &I,
        key: &str,
        token: &str,
        payload: &str,
        per_server: Duration,
    ) -> bool {
        let until = Some(Instant::now() + per_server);
        let (keys, args) = ([key], [token, payload]);
        let outcomes = self
            .each(|member| eval_until(io, member, &RELEASE, &keys, &args, until))
            .await;
        outcomes.iter().all(|o| o.is_ok())
    }
}

/// A random pause of up to 20 ms.
fn jitter() -> Duration {
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    Duration::from_micros(u64::from(byte[0]) * 20_000 / 255)
}

/// Polls every future until all are done; their outputs in order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}
