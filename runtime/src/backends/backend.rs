//! Where a client's locks live, and the one place that tells the kinds apart for the lock
//! algorithm: each operation on a lock (one acquisition attempt, extend, release, reset) is
//! a method here with one arm per kind and no wildcard, so that a new kind is its own file
//! plus one arm in [`Backend`], and the compiler lists every method to fill (as it did for
//! `memory.rs`).

use std::future::Future;
use std::time::{Duration, Instant};

use crate::backends::attempt::{AttemptOutcome, AttemptRequest};
use crate::backends::redlock::{Quorum, QuorumAttempt};
use crate::backends::release_reply::release_checked;
use crate::protocol::scripts::{EXTEND, EXTEND_OR_RESTORE, HANDOFF, RELEASE, RESET, lock_keys};
use crate::servers::cluster::Cluster;
use crate::servers::io::{Io, Route, eval_until};
use crate::servers::memory::{Attempt, Handoff, Memory};
use crate::servers::single::Single;
use crate::transport::reply::Reply;
use crate::util::error::LockError;
use crate::util::lease::lease_millis;

/// Where a client's requests go.
#[allow(
    clippy::large_enum_variant,
    reason = "one per client, made once; boxing would add a hop to every request"
)]
pub(crate) enum Backend {
    /// One server, at a fixed address or found through Redis Sentinel.
    Single(Single),
    /// A Redlock quorum: N independent servers (see `redlock.rs`).
    Redlock(Quorum),
    /// A Redis Cluster: each lock's requests go to the master of its key's slot.
    Cluster(Cluster),
    /// A store in this process (see `memory.rs`).
    Memory(Memory),
}

impl Backend {
    /// One try at taking a lock. Also says whether the attempt is settled: false when
    /// Redis may hold the attempt's value without the caller holding the lock (no answer,
    /// or a Redlock undo that went unanswered, or a lock the replicas did not acknowledge),
    /// for the acquisition to free it should it end without the lock.
    pub(crate) async fn attempt<I: Io>(
        &self,
        io: &I,
        request: &AttemptRequest<'_>,
    ) -> (Result<AttemptOutcome, LockError>, bool) {
        match self {
            Backend::Redlock(quorum) => {
                let (outcome, settled) = quorum.acquire(io, request).await;
                let outcome = outcome.map(|attempt| match attempt {
                    QuorumAttempt::Acquired { valid_from, fence } => AttemptOutcome::Acquired {
                        sent: valid_from,
                        fence,
                    },
                    QuorumAttempt::Held { lease_end } => AttemptOutcome::Held {
                        lease_end,
                        queued: false,
                    },
                });
                (outcome, settled)
            }
            Backend::Cluster(cluster) => {
                let replicated = (cluster.min_replicas > 0).then_some(cluster);
                crate::backends::one_server::attempt(
                    io,
                    request,
                    Route::Cluster(cluster),
                    replicated,
                )
                .await
            }
            Backend::Single(single) => {
                crate::backends::one_server::attempt(io, request, Route::Single(single), None).await
            }
            Backend::Memory(memory) if request.kind.is_counted() => {
                // Its scripts, answered by the store (see `memory/counted.rs`).
                crate::backends::one_server::attempt(io, request, Route::Memory(memory), None).await
            }
            Backend::Memory(memory) => {
                let lease = match whole_millis(request.lease) {
                    Ok(lease) => lease,
                    Err(e) => return (Err(e), true),
                };
                let sent = Instant::now();
                let acquired = memory.acquire(request.key, request.value, lease, request.fenced);
                let outcome = match acquired {
                    Attempt::Taken { fence } => AttemptOutcome::Acquired { sent, fence },
                    Attempt::Held { remaining } => AttemptOutcome::Held {
                        lease_end: Instant::now() + remaining,
                        queued: false,
                    },
                    Attempt::Other { held_as } => {
                        let error = LockError::KindMismatch {
                            name: request.name.to_string(),
                            held_as,
                            asked: request.kind.word(),
                        };
                        return (Err(error), true);
                    }
                };
                // Answered at once: nothing is left unknown.
                (Ok(outcome), true)
            }
        }
    }

    /// Restarts the lease of a lock held under `value` (`lease_ms` from now); false when it
    /// is not ours any more. On a Redlock quorum it needs a majority, and a server that
    /// restarted empty (or where the key expired) gets the key back, so that it does not
    /// leave the holding set for good.
    pub(crate) async fn extend<I: Io>(
        &self,
        io: &I,
        name: &str,
        key: &str,
        value: &str,
        lease_ms: &str,
        until: Option<Instant>,
    ) -> Result<bool, LockError> {
        let (keys, args) = ([key], [value, lease_ms]);
        match self {
            Backend::Redlock(quorum) => Ok(quorum
                .vote(io, name, &EXTEND_OR_RESTORE, &keys, &args, until)
                .await?
                .majority()),
            Backend::Single(single) => {
                extended(eval_until(io, Route::Single(single), &EXTEND, &keys, &args, until).await)
            }
            Backend::Cluster(cluster) => extended(
                eval_until(io, Route::Cluster(cluster), &EXTEND, &keys, &args, until).await,
            ),
            Backend::Memory(memory) => Ok(memory.extend(key, value, millis(lease_ms)?)),
        }
    }

    /// Releases a lock held under `value` and announces it; true when it was ours. Also
    /// says whether a server may still hold it (it did not answer), for the caller to free
    /// it there in the background.
    pub(crate) async fn release<I: Io>(
        &self,
        io: &I,
        name: &str,
        key: &str,
        value: &str,
        payload: &str,
    ) -> (Result<bool, LockError>, bool) {
        let args = [value, payload];
        // With the fence and queue keys, which a quorum's release does not name.
        let keys = || lock_keys(key);
        match self {
            Backend::Redlock(quorum) => {
                let votes = quorum.release(io, name, key, &args).await;
                let unsure = !votes.as_ref().is_ok_and(|votes| votes.all_answered());
                (votes.map(|votes| votes.majority()), unsure)
            }
            Backend::Single(single) => {
                let keys = keys();
                let (route, keys, args) = (Route::Single(single), &keys.all(), &args);
                release_checked(move || eval_until(io, route, &RELEASE, keys, args, None)).await
            }
            Backend::Cluster(cluster) => {
                let keys = keys();
                let (route, keys, args) = (Route::Cluster(cluster), &keys.all(), &args);
                release_checked(move || eval_until(io, route, &RELEASE, keys, args, None)).await
            }
            Backend::Memory(memory) => (Ok(memory.release(key, value, payload)), false),
        }
    }

    /// Frees lock `key` whoever holds it, and wakes its waiters; whether it was held (on a
    /// Redlock quorum: by any server).
    pub(crate) async fn reset<I: Io>(
        &self,
        io: &I,
        name: &str,
        key: &str,
        payload: &str,
    ) -> Result<bool, LockError> {
        let (keys, args) = ([key], [payload]);
        match self {
            Backend::Redlock(quorum) => {
                Ok(quorum.vote(io, name, &RESET, &keys, &args, None).await?.yes > 0)
            }
            Backend::Single(single) => {
                Ok(
                    eval_until(io, Route::Single(single), &RESET, &keys, &args, None)
                        .await?
                        .as_int()?
                        == 1,
                )
            }
            Backend::Cluster(cluster) => {
                Ok(
                    eval_until(io, Route::Cluster(cluster), &RESET, &keys, &args, None)
                        .await?
                        .as_int()?
                        == 1,
                )
            }
            Backend::Memory(memory) => Ok(memory.reset(key, payload)),
        }
    }

    /// Runs the HANDOFF script (see `scripts.rs`) on `keys` with `args`: only where
    /// [`hands_over`](Backend::hands_over) says a handover is made.
    pub(crate) async fn handoff<I: Io>(
        &self,
        io: &I,
        keys: &[&str],
        args: &[&str],
    ) -> Result<Reply, LockError> {
        match self {
            Backend::Single(single) => {
                eval_until(io, Route::Single(single), &HANDOFF, keys, args, None).await
            }
            Backend::Cluster(cluster) => {
                eval_until(io, Route::Cluster(cluster), &HANDOFF, keys, args, None).await
            }
            Backend::Redlock(_) => Err(LockError::invalid(
                "internal error: a handover was sent to a Redlock quorum",
            )),
            Backend::Memory(memory) => {
                // No queue in memory: whether the waiter may stand in one does not matter.
                let ([key, ..], [old, new, own, payload, ..]) = (keys, args) else {
                    return Err(LockError::invalid(
                        "internal error: a handover with the wrong arguments",
                    ));
                };
                // The next owner as its queue entry: `<lease in ms>[f] <instance id> <value>`.
                let Some((lease_ms, new)) = new
                    .split_once(' ')
                    .and_then(|(lease, rest)| Some((lease, rest.split_once(' ')?.1)))
                else {
                    return Err(LockError::invalid(
                        "internal error: a handover's next owner",
                    ));
                };
                let own = own.parse().map_err(|_| {
                    LockError::invalid("internal error: a handover's subscriber count")
                })?;
                // The script's reply: the new fencing token, -1 or 0.
                let (lease_ms, fenced) = match lease_ms.strip_suffix('f') {
                    Some(lease_ms) => (lease_ms, true),
                    None => (lease_ms, false),
                };
                let lease = millis(lease_ms)?;
                let handed = memory.handoff(key, [old, new], lease, fenced, own, payload);
                Ok(Reply::Int(match handed {
                    Handoff::Handed { fence } => fence as i64,
                    Handoff::Released => -1,
                    Handoff::NotOurs => 0,
                }))
            }
        }
    }

    /// Whether a release may hand the lock straight to a waiter of this process. Not on a
    /// Redlock quorum (a handover rewrites the key on one server in one script, which a
    /// quorum cannot do atomically), nor with `min_replicas` (a handover would skip the
    /// replicas' acknowledgement): there the next waiter acquires like anyone else.
    pub(crate) fn hands_over(&self) -> bool {
        match self {
            Backend::Redlock(_) => false,
            Backend::Cluster(cluster) => cluster.min_replicas == 0,
            // One store, changed atomically.
            Backend::Single(_) | Backend::Memory(_) => true,
        }
    }

    /// Whether waiting processes queue in Redis, for a release to hand the lock to the
    /// first of them (see `scripts.rs`): where a release may hand over at all, across
    /// processes. An in-memory store serves one process, whose waiters queue in its wait
    /// table already.
    pub(crate) fn queues(&self) -> bool {
        match self {
            Backend::Single(_) | Backend::Cluster(_) => self.hands_over(),
            Backend::Redlock(_) | Backend::Memory(_) => false,
        }
    }

    /// Runs `read` (given a server's client and when to give up) on the lock's server, or
    /// on every server of a Redlock quorum at once; the answers (a majority must answer).
    pub(crate) async fn read_everywhere<'a, I, T, F, Fut>(
        &'a self,
        io: &I,
        name: &str,
        read: F,
    ) -> Result<Vec<T>, LockError>
    where
        I: Io,
        F: Fn(Route<'a>, Option<Instant>) -> Fut,
        Fut: Future<Output = Result<T, LockError>> + Send,
        T: Send,
    {
        match self {
            Backend::Redlock(quorum) => {
                let until = quorum.until();
                let outcomes = quorum
                    .each(io, |member| read(Route::Single(member), until))
                    .await;
                Ok(quorum
                    .answers(name, outcomes)?
                    .into_iter()
                    .flatten()
                    .collect())
            }
            Backend::Single(single) => Ok(vec![read(Route::Single(single), None).await?]),
            Backend::Cluster(cluster) => Ok(vec![read(Route::Cluster(cluster), None).await?]),
            Backend::Memory(memory) => Ok(vec![read(Route::Memory(memory), None).await?]),
        }
    }

    /// Which of the answers of [`read_everywhere`](Backend::read_everywhere) stands for
    /// the lock: one that a majority of a Redlock quorum gave, or a server's only one.
    pub(crate) fn majority_of<T: PartialEq>(&self, values: &[T]) -> Option<usize> {
        match self {
            Backend::Redlock(quorum) => quorum.majority_of(values),
            Backend::Single(_) | Backend::Cluster(_) | Backend::Memory(_) => {
                (!values.is_empty()).then_some(0)
            }
        }
    }

    /// Whether renewal may write the key where it is missing (a Redlock server that
    /// restarted empty gets it back): then a release must not run while a renewal does,
    /// or the renewal could restore a lock just released.
    pub(crate) fn renewal_restores(&self) -> bool {
        match self {
            Backend::Redlock(_) => true,
            Backend::Single(_) | Backend::Cluster(_) | Backend::Memory(_) => false,
        }
    }

    /// How much sooner than `sent + lease` a lease set at `sent` must count as ended: the
    /// clock-drift allowance of a Redlock client, nothing for one server.
    pub(crate) fn drift(&self, lease: Duration) -> Duration {
        match self {
            Backend::Redlock(_) => Quorum::drift(lease),
            // The store's clock is this process's.
            Backend::Single(_) | Backend::Cluster(_) | Backend::Memory(_) => Duration::ZERO,
        }
    }
}

/// An EXTEND's reply: whether the lease restarted.
fn extended(reply: Result<Reply, LockError>) -> Result<bool, LockError> {
    Ok(reply?.as_int()? == 1)
}

/// A lease as Redis keeps it: whole milliseconds.
fn whole_millis(lease: Duration) -> Result<Duration, LockError> {
    Ok(Duration::from_millis(lease_millis(lease)?))
}

/// A lease in milliseconds as the scripts take it (`lease_ms` of `extend`), for the store.
fn millis(lease_ms: &str) -> Result<Duration, LockError> {
    lease_ms
        .parse()
        .map(Duration::from_millis)
        .map_err(|_| LockError::invalid(format!("internal error: a lease of {lease_ms:?} ms")))
}
