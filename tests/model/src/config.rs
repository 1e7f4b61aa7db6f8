//! What one check covers: the processes and their tasks, the bounds, the faults that may
//! happen, and which fixes of the issue "Partial failures" are in.

use crate::state::Time;

/// A fix of the issue "Partial failures: a request whose outcome is unknown is never taken
/// for 'no'", numbered as its items. Each can be reverted on its own, to show that the
/// checker finds the bug it fixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fix {
    /// Item 1: a handed-over lease is counted from the instant taken before the HANDOFF was
    /// sent, and a grant whose lease ran out is not a lock. Reverted: from when the waiter
    /// looks at its grant.
    LeaseFromHandoffSent,
    /// Item 7: a waiter dropped after the lock was handed to it releases its grant.
    /// Reverted: the grant stays under its token until its lease runs out.
    GrantedDropReleases,
    /// Item 8: when the waiter offered a handover has left while a release to everyone is in
    /// flight, the next local waiter is poked. Reverted: it sleeps until the old holder's
    /// lease estimate.
    PokeAfterOfferedLeft,
    /// Item 9: a HANDOFF that errors, times out or is cancelled schedules a background
    /// release, and the waiter, told "not handed" while the outcome is unknown, counts its
    /// token as maybe taken (it confirms, or its cleanup releases it). Reverted: neither.
    HandoffFailureCleansUp,
    /// Item 10: cancelling a release (the `release()` future dropped half-way) releases in
    /// the background. Reverted: the lock stays until its lease runs out.
    CancelledReleaseCleansUp,
    /// Item 12: ACQUIRE that finds the key holding its own token counts as taken (with its
    /// fence), and HANDOFF that finds the key already given to the waiter succeeds, so a
    /// resent request is harmless. Reverted: a resend sees its own first effect as someone
    /// else's.
    IdempotentScripts,
    /// Item 13: a waiter with a handover pending still returns by its deadline. Reverted: it
    /// waits for the releaser's answer, bounded only by the releaser's response timeout.
    DeadlineWithHandoffPending,
    /// Found by this model, needed once item 12 makes ACQUIRE idempotent: a releaser offers
    /// no handover to a head whose own attempt is in flight (one request per key at a time
    /// from a process). Reverted: the head's ACQUIRE may find the key already handed to its
    /// token and take it; the releaser, finding the waiter gone, takes the lock for its own
    /// and releases it under the new holder.
    NoOfferDuringAttempt,
    /// Found by this model: a background release pokes its process's queue head when it
    /// ends, whatever RELEASE answered. Reverted: it pokes only when it deleted the key
    /// itself, but the request it cleans up after (a RELEASE or HANDOFF whose caller timed
    /// out or was cancelled) may have deleted it, late, announcing with the process's own
    /// instance id, which the process ignores: its head sleeps on a free lock until the
    /// lease estimate.
    CleanupPokes,
    /// Found by this model, a detail of item 12: HANDOFF that finds the key already given to
    /// the waiter's token restarts its lease, as a HANDOFF that gives it does. Reverted: the
    /// key keeps the expiry a late ACQUIRE of the waiter's gave it, earlier than the lease
    /// the waiter counts from before the HANDOFF was sent.
    IdempotentHandoffRestartsLease,
    /// The queue in Redis: a lock handed from the queue has its lease counted from the start
    /// of an attempt of the waiter's (`queued_since`), which ran before the release that
    /// handed it. Reverted: from when the inbox message is taken.
    QueueGrantLeaseFromAttempt,
    /// The queue in Redis, a detail of the above (runtime commit "an acquisition is queued
    /// once ..."): that attempt is the first that may have queued the waiter. Reverted: its
    /// latest attempt (`attempt_began`, as before), which may have begun after the lock was
    /// handed, and been lost on its way.
    GrantLeaseFromFirstJoin,
    /// The queue in Redis: ACQUIRE with `j` looks for the acquisition's entry (`LPOS`)
    /// before it pushes, and taking the lock with `q` or `j`, or a withdraw, removes every
    /// copy (`LREM ... 0`). Reverted: `LPOS` only with `q`, `LREM ... 1` only with `q` and
    /// in the withdraw, as before: a resent first joining attempt queues an acquisition
    /// twice.
    JoinLooksFirst,
    /// The queue in Redis: an acquisition that ends without the lock while it may be queued
    /// leaves the queue there. At its deadline (no handover to it pending) in one last
    /// attempt, ACQUIRE with `l`, which takes the lock if it is free or was handed to it
    /// and otherwise takes its entry out (`Attempts::leave_queue`); cancelled, or that
    /// attempt unanswered, in one RELEASE in the background that takes its entry out and
    /// frees a lock handed to it (`withdraw_later`). Reverted: neither; its entry stays in
    /// the queue (it frees only what an unanswered request or a handover may have given
    /// it, as before the queue).
    WithdrawOnGiveUp,
    /// The queue in Redis (runtime commit "A lock handed from the queue in Redis is taken
    /// only once a handover of this process to the same waiter is settled"): a waiter
    /// takes a grant only while no handover to it is pending, in the loop and at the
    /// deadline. Reverted: it takes a lock handed from the queue at once; the releaser's
    /// HANDOFF, finding the key already the waiter's, answers "handed", and the releaser,
    /// finding the waiter gone, takes the lock for its own and frees it under the new
    /// holder.
    GrantWaitsForHandover,
    /// The queue in Redis: `grant_next!` passes over an entry when PUBLISH on its process's
    /// inbox reached nobody (the process is gone, or its pub/sub connection is). Reverted:
    /// the first entry gets the lock whatever PUBLISH answered.
    GrantSkipsDeaf,
}

impl Fix {
    /// Every fix: the issue's, in its order, then those of the queue in Redis.
    pub const ALL: [Fix; 16] = [
        Fix::LeaseFromHandoffSent,
        Fix::GrantedDropReleases,
        Fix::PokeAfterOfferedLeft,
        Fix::HandoffFailureCleansUp,
        Fix::CancelledReleaseCleansUp,
        Fix::IdempotentScripts,
        Fix::DeadlineWithHandoffPending,
        Fix::NoOfferDuringAttempt,
        Fix::CleanupPokes,
        Fix::IdempotentHandoffRestartsLease,
        Fix::QueueGrantLeaseFromAttempt,
        Fix::GrantLeaseFromFirstJoin,
        Fix::JoinLooksFirst,
        Fix::WithdrawOnGiveUp,
        Fix::GrantWaitsForHandover,
        Fix::GrantSkipsDeaf,
    ];

    /// The item of the issue this fix closes; `None` for the others.
    pub fn item(self) -> Option<u8> {
        Some(match self {
            Fix::LeaseFromHandoffSent => 1,
            Fix::GrantedDropReleases => 7,
            Fix::PokeAfterOfferedLeft => 8,
            Fix::HandoffFailureCleansUp => 9,
            Fix::CancelledReleaseCleansUp => 10,
            Fix::IdempotentScripts => 12,
            Fix::DeadlineWithHandoffPending => 13,
            Fix::NoOfferDuringAttempt
            | Fix::CleanupPokes
            | Fix::IdempotentHandoffRestartsLease
            | Fix::QueueGrantLeaseFromAttempt
            | Fix::GrantLeaseFromFirstJoin
            | Fix::JoinLooksFirst
            | Fix::WithdrawOnGiveUp
            | Fix::GrantWaitsForHandover
            | Fix::GrantSkipsDeaf => {
                return None;
            }
        })
    }

    fn bit(self) -> u16 {
        1 << Fix::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }
}

/// The set of fixes a check runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fixes(u16);

impl Fixes {
    /// The protocol as the issue wants it.
    pub fn all() -> Fixes {
        Fixes(Fix::ALL.iter().fold(0, |bits, f| bits | f.bit()))
    }

    /// Every fix but `fix`.
    pub fn without(self, fix: Fix) -> Fixes {
        Fixes(self.0 & !fix.bit())
    }

    pub fn has(self, fix: Fix) -> bool {
        self.0 & fix.bit() != 0
    }
}

/// The faults a check may inject, each counted against [`Config::faults`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// A request's reply never comes (the request applied or not, or still in flight to be
    /// applied later: delayed past the timeout); the caller gets an error.
    LoseReply,
    /// The connection resets after a request was applied and the client resends it.
    Resend,
    /// A request takes longer than a tick: time passes while it is in flight, until the
    /// caller's bound (deadline + grace, or the response timeout) cuts it short.
    Stall,
    /// A future is dropped at the await it is parked at.
    Cancel,
    /// A runnable task is not polled before time passes (a busy runtime, a `select!` loop).
    PollLate,
    /// A process's pub/sub connection drops: announcements and inbox messages in flight
    /// are lost; it reconnects, subscribes again and pokes every head.
    DropPubSub,
    /// A process's subscriber task is not polled before time passes: an announcement or
    /// inbox message on its way arrives after the tick.
    ListenLate,
    /// A process dies: its futures, background releases and pub/sub connection with it;
    /// its requests on their way may still arrive.
    Crash,
    /// The server restarts empty (see [`Config::restarts`]).
    Restart,
}

impl Fault {
    pub const ALL: [Fault; 9] = [
        Fault::LoseReply,
        Fault::Resend,
        Fault::Stall,
        Fault::Cancel,
        Fault::PollLate,
        Fault::DropPubSub,
        Fault::ListenLate,
        Fault::Crash,
        Fault::Restart,
    ];
}

/// One task of a process: it acquires the lock `rounds` times in a row (a task whose
/// acquisition was cancelled or timed out tries again: a retry loop), each time with this
/// timeout (`None`: waits as long as it takes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskSpec {
    pub timeout: Option<Time>,
    pub rounds: u8,
}

/// One model checking run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The client processes, each a list of tasks that lock the same name.
    pub processes: Vec<Vec<TaskSpec>>,
    /// The lease, in ticks of the server's clock (client clocks tick at the same rate).
    pub lease: Time,
    /// How long past its deadline an acquisition's last request may take
    /// (`ATTEMPT_GRACE`), in ticks.
    pub grace: Time,
    /// How long a request without a deadline waits for its reply, in ticks.
    pub response_timeout: Time,
    /// Time stops here: the model's horizon.
    pub horizon: Time,
    /// How many faults one run may inject, of the kinds in `fault_kinds`.
    pub faults: u8,
    pub fault_kinds: Vec<Fault>,
    /// Whether the server may restart empty. A restart is delayed: the server comes back
    /// only once no lease it granted can still run (Redis's documented requirement for
    /// exclusion across restarts without fsync-always persistence).
    pub restarts: bool,
    /// Whether fencing tokens are never below the server's clock (`TIME` in the scripts):
    /// then they keep growing after an empty restart, assuming fewer than
    /// [`FENCE_PER_TICK`](crate::redis::FENCE_PER_TICK) acquisitions per tick.
    pub time_floor: bool,
    /// Whether holders may extend their lease once (`guard.extend()`, or one renewal).
    pub extend: bool,
    pub fixes: Fixes,
}

impl Config {
    /// The configuration the test suite checks. Process 0 has two tasks, so locks are
    /// handed over inside it: one waits as long as it takes, the other has a deadline and
    /// tries a second time (a retry loop). Process 1 tries once (`timeout = 0`), so other
    /// processes wait too and subscriptions outlive their waiters. A lease of 2 ticks, one
    /// fault a run.
    pub fn standard() -> Config {
        Config {
            processes: vec![
                vec![
                    TaskSpec {
                        timeout: None,
                        rounds: 1,
                    },
                    TaskSpec {
                        timeout: Some(2),
                        rounds: 2,
                    },
                ],
                vec![TaskSpec {
                    timeout: Some(0),
                    rounds: 1,
                }],
            ],
            lease: 2,
            grace: 1,
            response_timeout: 2,
            horizon: 6,
            faults: 1,
            fault_kinds: Fault::ALL.to_vec(),
            restarts: true,
            time_floor: true,
            extend: false,
            fixes: Fixes::all(),
        }
    }

    /// [`standard`](Config::standard), but process 1 waits as long as it takes: waiters of
    /// two processes wake each other through announcements.
    pub fn waiting_processes() -> Config {
        let mut config = Config::standard();
        config.processes[1][0].timeout = None;
        config
    }

    /// [`standard`](Config::standard) with a third process that waits as long as it takes:
    /// a release to everyone reaches two other processes.
    pub fn three_processes() -> Config {
        let mut config = Config::standard();
        config.processes.push(vec![TaskSpec {
            timeout: None,
            rounds: 1,
        }]);
        config
    }

    /// Processes that queue in Redis: process 0 takes the lock and holds it, process 1
    /// waits for it with a deadline of one tick, long enough to join Redis's queue once
    /// its subscription is active, and to give up while queued there.
    pub fn queueing() -> Config {
        let mut config = Config::standard();
        config.processes = vec![
            vec![TaskSpec {
                timeout: None,
                rounds: 1,
            }],
            vec![TaskSpec {
                timeout: Some(1),
                rounds: 1,
            }],
        ];
        config
    }

    /// [`queueing`](Config::queueing), but process 1 waits as long as it takes, so it stays
    /// queued in Redis until the lock is handed to it, and wakes at the holder's lease end
    /// meanwhile; two faults a run.
    pub fn queued_waiter() -> Config {
        let mut config = Config::queueing();
        config.processes[1][0].timeout = None;
        config.faults = 2;
        config
    }

    /// A handover inside process 0 meets a grant from Redis's queue: process 0 has a
    /// holder and a waiter, both without a deadline, process 1 one task; no faults, two
    /// ticks (the holder's critical section outlasts its lease).
    pub fn handoff_meets_queue() -> Config {
        let mut config = Config::waiting_processes();
        config.processes[0][1] = TaskSpec {
            timeout: None,
            rounds: 1,
        };
        config.faults = 0;
        config.horizon = 2;
        config
    }

    pub fn with_fixes(mut self, fixes: Fixes) -> Config {
        self.fixes = fixes;
        self
    }

    pub fn has(&self, fix: Fix) -> bool {
        self.fixes.has(fix)
    }

    pub fn may(&self, fault: Fault) -> bool {
        self.fault_kinds.contains(&fault)
    }

    /// Panics on a configuration the state's encoding cannot hold.
    pub fn validate(&self) {
        assert!(
            (1..=4).contains(&self.processes.len()),
            "one to four processes"
        );
        assert!(
            self.processes.iter().all(|p| (1..=4).contains(&p.len())),
            "one to four tasks a process"
        );
        assert!(
            self.processes
                .iter()
                .flatten()
                .all(|t| (1..=4).contains(&t.rounds)),
            "one to four rounds a task"
        );
        assert!(self.lease >= 1, "a lease of at least one tick");
        assert!(
            u16::from(self.horizon) * crate::redis::FENCE_PER_TICK < 1000,
            "fences fit in u16"
        );
    }
}
