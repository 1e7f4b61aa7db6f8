//! Metrics of `#[redis_lock]` calls, through the `metrics` crate's facade (feature
//! `metrics`); without the feature every function here is empty and free.
//!
//! Every metric is labelled `lock` with the attribute's name template (`"invoice:{id}"`),
//! never with the interpolated name, so the number of series stays bounded however many
//! ids pass through.
//!
//! | metric | kind | meaning |
//! |---|---|---|
//! | `redis_lock_acquired_total` | counter | acquisitions |
//! | `redis_lock_timeouts_total` | counter | calls whose `timeout` passed |
//! | `redis_lock_lost_total` | counter | locks found lost while held |
//! | `redis_lock_wait_seconds` | histogram | time from call to acquisition |
//! | `redis_lock_hold_seconds` | histogram | time from acquisition to the end of the call |
//! | `redis_lock_waiters` | gauge | calls waiting right now |

use std::time::Duration;

#[cfg(feature = "metrics")]
mod enabled {
    use std::time::Duration;

    pub(crate) fn acquired(template: &'static str, waited: Duration) {
        metrics::counter!("redis_lock_acquired_total", "lock" => template).increment(1);
        metrics::histogram!("redis_lock_wait_seconds", "lock" => template)
            .record(waited.as_secs_f64());
    }

    pub(crate) fn timed_out(template: &'static str) {
        metrics::counter!("redis_lock_timeouts_total", "lock" => template).increment(1);
    }

    pub(crate) fn held(template: &'static str, held: Duration) {
        metrics::histogram!("redis_lock_hold_seconds", "lock" => template)
            .record(held.as_secs_f64());
    }

    pub(crate) fn lost(template: &'static str) {
        metrics::counter!("redis_lock_lost_total", "lock" => template).increment(1);
    }

    pub(crate) fn waiting(template: &'static str, by: f64) {
        metrics::gauge!("redis_lock_waiters", "lock" => template).increment(by);
    }
}

#[cfg(not(feature = "metrics"))]
mod enabled {
    use std::time::Duration;

    pub(crate) fn acquired(_: &'static str, _: Duration) {}
    pub(crate) fn timed_out(_: &'static str) {}
    pub(crate) fn held(_: &'static str, _: Duration) {}
    pub(crate) fn lost(_: &'static str) {}
    pub(crate) fn waiting(_: &'static str, _: f64) {}
}

pub(crate) fn acquired(template: &'static str, waited: Duration) {
    enabled::acquired(template, waited);
}

pub(crate) fn timed_out(template: &'static str) {
    enabled::timed_out(template);
}

pub(crate) fn held(template: &'static str, held: Duration) {
    enabled::held(template, held);
}

/// A lock lost while held; programmatic locks (no template) are not counted.
pub(crate) fn lost(template: Option<&'static str>) {
    if let Some(template) = template {
        enabled::lost(template);
    }
}

/// Counts a waiting call in `redis_lock_waiters` while it lives.
pub(crate) struct Waiting(&'static str);

impl Waiting {
    pub(crate) fn new(template: &'static str) -> Waiting {
        enabled::waiting(template, 1.0);
        Waiting(template)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        enabled::waiting(self.0, -1.0);
    }
}
