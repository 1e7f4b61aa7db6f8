//! Which errors are which: timeouts, an unavailable Redis, what is worth retrying. Callers
//! that only want to know whether to try again ask these instead of matching variants.

use super::{LockError, is_io_timeout};

impl LockError {
    /// Whether something did not happen in time: the lock was not acquired within the
    /// caller's `timeout` ([`Timeout`](LockError::Timeout)), or Redis did not accept a
    /// connection or answer a request within the client's timeouts (or before the caller's
    /// deadline). Trying again later may succeed.
    pub fn is_timeout(&self) -> bool {
        match self {
            LockError::Timeout { .. } | LockError::NoAnswer { .. } => true,
            LockError::Connect { source, .. } | LockError::Io { source, .. } => {
                is_io_timeout(source)
            }
            LockError::Redis { source, .. } => source.is_timeout(),
            _ => false,
        }
    }

    /// Whether Redis could not be reached or could not answer just now: a refused, failed
    /// or dropped connection, a response timeout, a server still loading its data after a
    /// restart, a former master demoted to a replica by a Sentinel failover (`READONLY`), a
    /// cluster in the middle of a failover, a Redlock majority out of reach
    /// ([`NoQuorum`](LockError::NoQuorum)), a Redis that accepts connections but answers
    /// nothing ([`NoAnswer`](LockError::NoAnswer)).
    ///
    /// Such failures pass; an acquisition retries them by itself until its deadline or the
    /// client's [`outage_timeout`](crate::ClientBuilder::outage_timeout). Everything else
    /// (bad credentials, missing permissions, bad configuration) does not pass.
    pub fn is_unavailable(&self) -> bool {
        match self {
            LockError::Connect { .. }
            | LockError::Io { .. }
            | LockError::NoQuorum { .. }
            | LockError::NoAnswer { .. } => true,
            LockError::Redis { source: e, .. } => {
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.detail().is_some_and(|detail| {
                        is_readonly(detail)
                            || ["LOADING", "MASTERDOWN", "TRYAGAIN", "BUSY", "CLUSTERDOWN"]
                                .iter()
                                .any(|code| detail.starts_with(code))
                    })
            }
            _ => false,
        }
    }

    /// Whether the same call may succeed if simply made again later, with nothing fixed:
    /// the lock was busy ([`Timeout`](LockError::Timeout)), Redis was unavailable
    /// ([`is_unavailable`](LockError::is_unavailable)) or slow, or a cluster's replicas did
    /// not acknowledge the lock in time ([`NotReplicated`](LockError::NotReplicated)).
    ///
    /// False for what needs a fix first (configuration, credentials, permissions, a call
    /// that would wait for itself, a missing runtime), and for [`Lost`](LockError::Lost)
    /// and [`Expired`](LockError::Expired), which report on work already done: doing it
    /// again is the caller's decision.
    pub fn is_retryable(&self) -> bool {
        self.is_timeout()
            || self.is_unavailable()
            || matches!(self, LockError::NotReplicated { .. })
    }

    /// Whether this is Redis not answering a request in time: the request may have
    /// reached it, unlike a connection that was never made.
    pub(crate) fn is_response_timeout(&self) -> bool {
        match self {
            LockError::Io { source, .. } => is_io_timeout(source),
            LockError::Redis { source, .. } => source.is_timeout(),
            _ => false,
        }
    }
}

/// Whether an error reply says the server is a read-only replica: a master demoted by a
/// failover, which its clients must leave for the new master.
pub(crate) fn is_readonly(message: &str) -> bool {
    message.starts_with("READONLY")
}
