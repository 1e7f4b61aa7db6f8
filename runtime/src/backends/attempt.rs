//! One acquisition attempt, whatever the backend: what it asks, and what it found.

use std::time::{Duration, Instant};

use crate::util::kind::LockKind;

/// One acquisition attempt's request.
pub(crate) struct AttemptRequest<'a> {
    pub(crate) name: &'a str,
    pub(crate) key: &'a str,
    /// The owner value to write.
    pub(crate) value: &'a str,
    pub(crate) lease: Duration,
    /// The client's announcement payload, for a Redlock attempt's undo.
    pub(crate) payload: &'a str,
    /// When every request of the attempt gives up.
    pub(crate) until: Option<Instant>,
    /// The acquisition's place in the lock's queue of waiting processes.
    pub(crate) queue: Queueing,
    /// Whether the caller may read its fencing token: without, the lock is taken without
    /// advancing the counter, and its token is 0.
    pub(crate) fenced: bool,
    /// Whether the attempt may be a bare `SET NX PX` (no script): an acquisition that
    /// needs no fencing token, outside the queue, that has not found the lock taken yet.
    /// A bare `SET` that finds it taken tells nothing of the holder's lease, so the next
    /// attempt is the script, at once.
    pub(crate) plain: bool,
    /// How many may hold the lock at once (see `counted.rs` for the kinds but the plain one).
    pub(crate) kind: LockKind,
}

/// Where an acquisition stands in its lock's queue of waiting processes (see `ACQUIRE`;
/// its entry there is its lease, the client's instance id and its owner value), on the
/// backends that queue them (see `Backend::queues`).
pub(crate) struct Queueing {
    /// Whether an earlier attempt put it in the queue: a successful attempt takes it out.
    pub(crate) queued: bool,
    /// Whether this attempt puts it there if the lock is taken: only while this process
    /// listens on its inbox channel, where the releaser that picks it tells it so.
    pub(crate) join: bool,
    /// Whether this attempt takes the entry out of the queue if the lock is taken: the
    /// last attempt of an acquisition that runs out of time.
    pub(crate) leave: bool,
}

impl Queueing {
    /// Outside the queue, and staying out: an attempt made on its own (the bench's and the
    /// differential test's hooks).
    pub(crate) fn outside() -> Queueing {
        Queueing {
            queued: false,
            join: false,
            leave: false,
        }
    }
}

/// What one acquisition attempt found.
pub(crate) enum AttemptOutcome {
    /// The lock is ours, with this fencing token; its lease began no earlier than `sent`.
    Acquired { sent: Instant, fence: u64 },
    /// Someone else holds it, until `lease_end` at the latest. `queued`: the acquisition's
    /// entry is in the lock's queue now, for a releaser to hand it the lock.
    Held { lease_end: Instant, queued: bool },
}
