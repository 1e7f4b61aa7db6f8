//! One acquisition attempt, whatever the backend: what it asks, and what it found.

use std::time::{Duration, Instant};

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
}

/// What one acquisition attempt found.
pub(crate) enum AttemptOutcome {
    /// The lock is ours, with this fencing token; its lease began no earlier than `sent`.
    Acquired { sent: Instant, fence: u64 },
    /// Someone else holds it, until `lease_end` at the latest.
    Held { lease_end: Instant },
}
