//! What must hold in every reachable state (`always`), and what the exploration must reach
//! for the check to mean anything (`sometimes`).

use stateright::Property;

use crate::LockModel;
use crate::state::{AcquireStep, Phase, PubSub, ReleaseStep, State, Token};

pub const EXCLUSION: &str = "no two acquisitions both believe they hold the lock";
pub const VALIDITY: &str = "a holder's local validity never outlasts Redis's expiry of its token";
pub const FENCING: &str = "every grant's fencing token exceeds every earlier grant's";
pub const ORPHANS: &str = "every orphaned token gets a background release or expires";
pub const UNKNOWN: &str = "an acquisition whose token Redis holds knows it may hold the lock";
pub const FREE_LOCK: &str =
    "a free lock with a waiting process gets an attempt without a lease timer";
pub const DEADLINE: &str = "every acquisition returns by its deadline + grace";
pub const ONCE_QUEUED: &str = "no acquisition stands in Redis's queue twice";

pub const HANDED_OVER: &str = "a lock is handed over inside a process";
pub const ANNOUNCED: &str = "a release is announced to another process";
pub const CONFIRMING: &str = "an acquisition confirms after an unanswered attempt";
pub const CLEANING: &str = "a background release runs";
pub const HANDED_FROM_QUEUE: &str = "a lock is handed to a process queued in Redis";
pub const QUEUED_BY_HANDOVER: &str =
    "a handover passed over for a process queued first queues its waiter behind it";
pub const LEAVING: &str =
    "an acquisition that runs out of time leaves Redis's queue in a last attempt";

/// The safety and bounded-liveness properties the tests assert.
pub const ALWAYS: [&str; 8] = [
    EXCLUSION,
    VALIDITY,
    FENCING,
    ORPHANS,
    UNKNOWN,
    FREE_LOCK,
    DEADLINE,
    ONCE_QUEUED,
];

pub fn all() -> Vec<Property<LockModel>> {
    vec![
        Property::always(EXCLUSION, |_, s: &State| believers(s).count() <= 1),
        Property::always(VALIDITY, |_, s: &State| {
            believers(s).all(|(token, valid_until)| {
                s.redis
                    .key
                    .is_some_and(|k| k.token == token && k.expires >= valid_until)
            })
        }),
        Property::always(FENCING, |_, s: &State| !s.ghost.fence_regressed),
        Property::always(ORPHANS, |_, s: &State| match s.redis.key {
            Some(key) => {
                known(s, key.token) || key.late || s.ghost.cleanup_scheduled & key.token.bit() != 0
            }
            None => true,
        }),
        Property::always(UNKNOWN, |_, s: &State| unknown_never_taken_for_no(s)),
        Property::always(FREE_LOCK, |_, s: &State| !s.ghost.slept_on_free_lock),
        Property::always(DEADLINE, |m: &LockModel, s: &State| {
            acquisitions(s).all(|(_, _, a)| {
                a.deadline
                    .is_none_or(|d| s.now <= d + m.config.grace + a.starved)
            })
        }),
        // A second entry outlives the acquisition it names when other entries stand
        // between the two: a release hands the lock to it after that acquisition is done,
        // and nobody frees it until its lease ends.
        Property::always(ONCE_QUEUED, |_, s: &State| {
            let queue = &s.redis.queue;
            queue
                .iter()
                .enumerate()
                .all(|(i, e)| queue[..i].iter().all(|earlier| earlier.token != e.token))
        }),
        Property::sometimes(HANDED_OVER, |_, s: &State| {
            s.procs
                .iter()
                .any(|p| p.queue.iter().any(|w| w.granted.is_some()))
        }),
        Property::sometimes(ANNOUNCED, |_, s: &State| {
            s.procs
                .iter()
                .any(|p| p.pubsub == crate::state::PubSub::Announced)
        }),
        Property::sometimes(CONFIRMING, |_, s: &State| {
            acquisitions(s).any(|(_, _, a)| matches!(a.step, AcquireStep::Confirm { .. }))
        }),
        Property::sometimes(CLEANING, |_, s: &State| !s.cleanups.is_empty()),
        Property::sometimes(HANDED_FROM_QUEUE, |_, s: &State| {
            s.procs.iter().any(|p| !p.inbox.is_empty())
        }),
        Property::sometimes(QUEUED_BY_HANDOVER, |_, s: &State| {
            s.procs
                .iter()
                .any(|p| p.queue.iter().any(|w| w.queued_by_handover.is_some()))
        }),
        Property::sometimes(LEAVING, |_, s: &State| {
            acquisitions(s).any(|(_, _, a)| matches!(a.step, AcquireStep::Leave { .. }))
        }),
    ]
}

/// Holders whose critical section runs within their local validity: token and lease end.
fn believers(s: &State) -> impl Iterator<Item = (Token, u8)> + '_ {
    s.procs
        .iter()
        .flat_map(|p| p.tasks.iter())
        .filter_map(move |t| match t.phase {
            Phase::Holding(h) if h.valid_until > s.now => Some((h.token, h.valid_until)),
            _ => None,
        })
}

fn acquisitions(s: &State) -> impl Iterator<Item = (usize, usize, crate::state::Acquiring)> + '_ {
    s.procs.iter().enumerate().flat_map(|(p, proc)| {
        proc.tasks
            .iter()
            .enumerate()
            .filter_map(move |(t, task)| match task.phase {
                Phase::Acquiring(a) => Some((p, t, a)),
                _ => None,
            })
    })
}

/// Whether some live future knows `token` may hold the lock: its acquisition, its holder,
/// or a releaser that holds it or is handing the lock to it.
fn known(s: &State, token: Token) -> bool {
    s.procs[token.process()]
        .tasks
        .iter()
        .any(|t| match t.phase {
            Phase::Acquiring(a) => a.token == token,
            Phase::Holding(h) => h.token == token,
            Phase::Releasing(r) => {
                r.token == token || matches!(r.step, ReleaseStep::Handoff { to, .. } if to == token)
            }
            Phase::Idle | Phase::Done => false,
        })
}

/// The rule of the issue: while Redis holds an acquisition's token, the acquisition treats
/// it as maybe taken (it confirms, or cleans up when it ends), waits for a reply that will
/// tell, or is being handed the lock: by a releaser of its process, or from Redis's queue
/// with the message on its way. A message lost with the pub/sub connection is made up for
/// by the poke of the head when the connection is back: the head's next attempt finds its
/// own token, so a head poked (or about to be) will know.
fn unknown_never_taken_for_no(s: &State) -> bool {
    let Some(key) = s.redis.key else {
        return true;
    };
    acquisitions(s).all(|(p, t, a)| {
        if a.token != key.token {
            return true;
        }
        let proc = &s.procs[p];
        let waiter = proc.waiter(t);
        let message = proc.inbox.iter().any(|&(token, _)| token == a.token)
            || (proc.is_head(t)
                && (proc.pubsub == PubSub::Reconnecting || waiter.is_some_and(|w| w.poked)));
        a.unconfirmed.is_some()
            || matches!(
                a.step,
                AcquireStep::Attempt { .. }
                    | AcquireStep::Confirm { .. }
                    | AcquireStep::Leave { .. }
            )
            || waiter.is_some_and(|w| w.handoff_pending || w.granted.is_some())
            || message
    })
}
