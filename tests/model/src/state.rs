//! The state of the whole system at one instant: the server, the network, each process's
//! wait table and tasks, the background releases, and ghost records for the properties.

use std::fmt;

use crate::redis::{Op, Redis, Reply};

/// A tick of the server's clock (the clients' clocks tick at the same rate).
pub type Time = u8;

/// An owner token: one acquisition, that is one round of one task of one process.
#[derive(Clone, Copy, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct Token(u8);

impl Token {
    pub fn new(process: usize, task: usize, round: u8) -> Token {
        Token(((process as u8) << 4) | ((task as u8) << 2) | round)
    }

    pub fn process(self) -> usize {
        usize::from(self.0 >> 4)
    }

    pub fn task(self) -> usize {
        usize::from((self.0 >> 2) & 3)
    }

    pub fn round(self) -> u8 {
        self.0 & 3
    }

    /// This token's bit in a set of tokens.
    pub fn bit(self) -> u64 {
        1 << self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}t{}r{}", self.process(), self.task(), self.round())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct State {
    pub now: Time,
    pub redis: Redis,
    /// Requests on their way to the server or replies on their way back, sorted (their
    /// order means nothing: any of them may arrive first).
    pub net: Vec<Request>,
    pub procs: Vec<Process>,
    /// Background releases (`cleanup::release_later`), sorted.
    pub cleanups: Vec<Cleanup>,
    pub faults_left: u8,
    pub ghost: Ghost,
}

/// Records of the past that the properties need and the system does not keep.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct Ghost {
    /// The greatest fencing token Redis granted.
    pub max_fence: u16,
    /// Redis granted a fencing token not above an earlier one.
    pub fence_regressed: bool,
    /// Tokens a background release was ever scheduled for.
    pub cleanup_scheduled: u64,
    /// A tick passed while the lock was free after a release and a process's queue head
    /// slept without a poke, waiting for a lease timer.
    pub slept_on_free_lock: bool,
    /// Processes that crashed (bits).
    pub dead: u8,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct Request {
    pub owner: Owner,
    /// The sending process: announcements carry its instance id, and it ignores its own.
    pub from: u8,
    pub op: Op,
    /// `None` while on its way to the server; then the server's reply.
    pub reply: Option<Reply>,
    /// Slow: time may pass while it is in flight, until `bound`.
    pub stalled: bool,
    /// When the caller stops waiting for it: its deadline + grace, or the response timeout.
    pub bound: Time,
}

/// Who waits for a request's reply.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    Task(u8, u8),
    Cleanup(Token),
    /// Nobody any more (the caller timed out or was cancelled): the request may still
    /// reach the server, late, and its reply goes nowhere.
    Nobody,
}

/// One client process: its wait table for the lock's key, its pub/sub connection, its tasks.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Process {
    /// The FIFO of waiters (`waiters.rs`); only the head talks to Redis.
    pub queue: Vec<Waiter>,
    /// Lease end of a holder in this process: the next head waits for its release instead.
    pub holder_until: Option<Time>,
    pub subscription: Subscription,
    pub pubsub: PubSub,
    /// Messages on the process's inbox channel on their way (`<fencing token> <owner
    /// value>`: the lock handed from Redis's queue to that acquisition), oldest first.
    pub inbox: Vec<(Token, u16)>,
    /// The subscriber task is not polled before the next tick (a busy runtime): what is on
    /// its way on the pub/sub connection waits (a fault).
    pub listen_late: bool,
    pub tasks: Vec<Task>,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Subscription {
    None,
    Requested,
    Active,
}

/// The pub/sub connection.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum PubSub {
    Idle,
    /// A release announcement on its way to this process.
    Announced,
    /// The connection dropped; it reconnects, subscribes again and pokes every head.
    Reconnecting,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Waiter {
    pub task: u8,
    pub round: u8,
    pub poked: bool,
    /// The lock was handed to this waiter's token.
    pub granted: Option<Grant>,
    pub handoff_pending: bool,
    /// When its first attempt that may queue it in Redis began (`Waiter::queued_since`):
    /// a lock handed from there was handed after it. With
    /// [`Fix::GrantLeaseFromFirstJoin`](crate::Fix::GrantLeaseFromFirstJoin) reverted, when
    /// its latest attempt began.
    pub queued_since: Option<Time>,
    /// A HANDOFF to it queued it in Redis behind the process it handed the lock to
    /// (`Waiter::queued_by_handover`): until when that holder's lease runs.
    pub queued_by_handover: Option<Time>,
}

impl Waiter {
    pub fn token(&self, process: usize) -> Token {
        Token::new(process, usize::from(self.task), self.round)
    }
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Grant {
    pub fence: u16,
    /// When the releaser sent the HANDOFF, or (handed from Redis's queue) when the
    /// waiter's latest attempt began: the new lease began no earlier.
    pub since: Time,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Task {
    pub round: u8,
    /// Runnable but not polled before the next tick (a fault).
    pub late: bool,
    pub phase: Phase,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Phase {
    /// Between acquisitions.
    Idle,
    /// Every round done.
    Done,
    Acquiring(Acquiring),
    Holding(Holding),
    Releasing(Releasing),
}

/// One acquisition in `acquire.rs`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Acquiring {
    pub token: Token,
    pub deadline: Option<Time>,
    /// When a request that may have taken the lock for this token was last sent without
    /// its outcome being known (`Attempts::unconfirmed_since`).
    pub unconfirmed: Option<Time>,
    /// When the holder's lease ends at the latest, as last seen.
    pub holder_lease_end: Option<Time>,
    /// When to try again after a failed attempt.
    pub retry_at: Option<Time>,
    /// Until when a releaser may hand it the lock from Redis's queue, once an attempt may
    /// have put it there (`Attempts::queued_until`).
    pub queued_until: Option<Time>,
    /// Ticks this acquisition was runnable but not polled (faults, not the protocol's doing).
    pub starved: u8,
    pub step: AcquireStep,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum AcquireStep {
    /// About to look at its place in the queue (runnable).
    Look,
    /// Waiting for a poke or until `wake_at`.
    Sleep { wake_at: Option<Time> },
    /// Waiting for the reply to ACQUIRE sent at `sent`; `earlier` is the unconfirmed
    /// instant from before it.
    Attempt { sent: Time, earlier: Option<Time> },
    /// Waiting for the reply to CONFIRM, after ACQUIRE (sent at `sent`) found the lock held
    /// for `pttl` more ticks.
    Confirm { sent: Time, pttl: Time },
    /// Past the deadline, queued in Redis: waiting for the reply to the last attempt, the
    /// ACQUIRE sent at `sent` that leaves the queue if the lock is taken
    /// (`Attempts::leave_queue`); `earlier` as for [`AcquireStep::Attempt`].
    Leave { sent: Time, earlier: Option<Time> },
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Holding {
    pub token: Token,
    pub fence: u16,
    /// When the lease ends by this process's clock, unless extended.
    pub valid_until: Time,
    pub extended: bool,
    /// An EXTEND sent at this instant is in flight.
    pub extending: Option<Time>,
}

/// `Held::release_with`: hands the lock to the next local waiter, or releases it.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Releasing {
    /// The token the releaser holds the lock under (the waiter's, after handing it to a
    /// waiter that left).
    pub token: Token,
    /// Its lease end: how long a background release of it may keep trying.
    pub valid_until: Time,
    pub step: ReleaseStep,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ReleaseStep {
    /// HANDOFF to the waiter with token `to`, sent at `sent`, in flight.
    Handoff { to: Token, sent: Time },
    /// RELEASE in flight.
    Release,
}

/// A background release of `token` (`cleanup::release_later`, or `withdraw_later` when it
/// also takes the token's entry out of Redis's queue), trying until `until`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cleanup {
    pub token: Token,
    pub process: u8,
    pub until: Time,
    pub withdraw: bool,
    /// Backing off after a failure, until then; `None` while its RELEASE is in flight.
    pub retry_at: Option<Time>,
}

impl State {
    pub fn task(&self, p: usize, t: usize) -> &Task {
        &self.procs[p].tasks[t]
    }

    pub fn phase_mut(&mut self, p: usize, t: usize) -> &mut Phase {
        &mut self.procs[p].tasks[t].phase
    }

    /// The acquisition task `t` of process `p` is in (a copy).
    pub fn acquiring(&self, p: usize, t: usize) -> Acquiring {
        match self.procs[p].tasks[t].phase {
            Phase::Acquiring(a) => a,
            other => unreachable!("p{p}t{t} is not acquiring: {other:?}"),
        }
    }

    pub fn set_phase(&mut self, p: usize, t: usize, phase: Phase) {
        self.procs[p].tasks[t].phase = phase;
    }

    /// Whether the task runs a step as soon as it is polled.
    pub fn runnable(&self, p: usize, t: usize) -> bool {
        let Phase::Acquiring(a) = self.task(p, t).phase else {
            return false;
        };
        match a.step {
            AcquireStep::Look => true,
            AcquireStep::Sleep { wake_at } => {
                self.procs[p].waiter(t).is_some_and(|w| w.poked)
                    || wake_at.is_some_and(|w| w <= self.now)
            }
            AcquireStep::Attempt { .. }
            | AcquireStep::Confirm { .. }
            | AcquireStep::Leave { .. } => false,
        }
    }

    /// Puts the unordered collections in a canonical order, so that states that differ
    /// only in their order are one state.
    pub fn normalize(&mut self) {
        self.net.sort();
        self.cleanups.sort();
    }
}
