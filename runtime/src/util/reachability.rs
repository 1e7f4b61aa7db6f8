//! Whether a server has been reachable, so that an outage is reported once, at WARN, when
//! it begins (also at a client's very first connection), and once, at INFO, when it ends.
//!
//! Callers ride out an unreachable Redis by retrying for up to the client's outage timeout
//! (30 s by default) before any error reaches them; without this, a wrong address or a
//! server that is down would go unmentioned all that time. The retries in between are
//! DEBUG events only, so a long outage does not flood the log.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::util::error::LockError;

/// No connection attempt has ended yet.
const UNKNOWN: u8 = 0;
/// The latest connection attempt succeeded.
const UP: u8 = 1;
/// The latest connection attempt failed.
const DOWN: u8 = 2;

/// What the latest connection attempt to one server came to.
#[derive(Debug)]
pub(crate) struct Reachability {
    state: AtomicU8,
}

impl Reachability {
    pub(crate) fn new() -> Reachability {
        Reachability {
            state: AtomicU8::new(UNKNOWN),
        }
    }

    /// A connection to `address` for client `client` could not be made.
    pub(crate) fn failed(&self, client: &str, address: &str, error: &LockError) {
        let error = error as &(dyn std::error::Error + 'static);
        match self.state.swap(DOWN, Ordering::AcqRel) {
            DOWN => tracing::debug!(
                client,
                address,
                error,
                "redis-locked: still cannot connect to Redis; retrying"
            ),
            UNKNOWN => tracing::warn!(
                client,
                address,
                error,
                "redis-locked: cannot connect to Redis at {address} (the client's first connection); \
                 callers keep retrying until their timeout or the outage timeout"
            ),
            _ => tracing::warn!(
                client,
                address,
                error,
                "redis-locked: cannot connect to Redis at {address} any more; \
                 callers keep retrying until their timeout or the outage timeout"
            ),
        }
    }

    /// A connection to `address` for client `client` was made.
    pub(crate) fn connected(&self, client: &str, address: &str) {
        // Read first: the usual case, a server that was up all along, then writes nothing.
        if self.state.load(Ordering::Acquire) == UP {
            return;
        }
        if self.state.swap(UP, Ordering::AcqRel) == DOWN {
            tracing::info!(
                client,
                address,
                "redis-locked: connected to Redis at {address} again"
            );
        }
    }
}
