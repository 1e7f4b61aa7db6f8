//! The one error type of the crate.

use std::time::Duration;

/// Everything that can go wrong when taking, holding or releasing a lock.
///
/// The variants tell apart the cases a caller handles differently: retry later
/// ([`Timeout`](LockError::Timeout)), fix start-up ([`NotConfigured`](LockError::NotConfigured),
/// [`UnknownClient`](LockError::UnknownClient), [`InvalidConfig`](LockError::InvalidConfig)),
/// distrust work already done under the lock ([`Lost`](LockError::Lost),
/// [`Expired`](LockError::Expired)), fix the deployment ([`Connect`](LockError::Connect),
/// [`Auth`](LockError::Auth), [`NoPermission`](LockError::NoPermission)), or look at Redis
/// ([`Redis`](LockError::Redis)).
///
/// No variant ever shows a password: URLs in messages have it replaced by `***`.
#[derive(Debug)]
#[non_exhaustive]
pub enum LockError {
    /// The lock was not acquired within the caller's `timeout` (a `timeout` of zero means
    /// a single attempt, so this also reports "the lock is held right now").
    Timeout {
        /// The lock's name, as passed by the caller (without the key prefix).
        name: String,
        /// How long the caller waited before giving up.
        waited: Duration,
    },
    /// Redis answered none of the requests of this acquisition before its deadline (a
    /// stalled server or network: connections are accepted, replies never come). Unlike
    /// [`Timeout`](LockError::Timeout), nobody knows whether the lock is free, so a
    /// scheduled job that skips its run on `Timeout` hears that something is wrong instead.
    /// Like [`Connect`](LockError::Connect), it usually passes.
    NoAnswer {
        /// The lock's name.
        name: String,
        /// How long the caller waited before giving up.
        waited: Duration,
    },
    /// No default client is registered: call [`init`](crate::init) at start-up.
    NotConfigured,
    /// No client is registered under this name: call [`register`](crate::register) at start-up.
    UnknownClient {
        /// The name the caller asked for.
        client: String,
    },
    /// A client is already registered under this name; clients are configured once.
    AlreadyRegistered {
        /// The client name (`"default"` for the one set by [`init`](crate::init)).
        client: String,
    },
    /// A configuration value is unusable: a malformed Redis URL, an unsupported scheme,
    /// a zero lease, a lease too long for Redis, an empty lock name.
    InvalidConfig {
        /// What is wrong, in a sentence.
        reason: String,
    },
    /// Auto-renewal found that the lock had been taken from its holder (the key was gone or
    /// held by another owner) while the protected code ran. Work done under the lock after
    /// that moment was not exclusive.
    Lost {
        /// The lock's name.
        name: String,
    },
    /// At release (or extend) the lock was no longer held by this owner: its lease ran out
    /// before the protected code finished, and another owner may have entered.
    Expired {
        /// The lock's name.
        name: String,
    },
    /// A `#[redis_lock]` function was called, directly or through others, by one that holds
    /// the same lock in the same task (async) or thread (sync): waiting for it would wait
    /// for itself. Add `reentrant` to the attribute to let such calls pass through.
    WouldDeadlock {
        /// The lock's name.
        name: String,
    },
    /// An async operation was called outside a Tokio runtime.
    NoRuntime,
    /// No connection to Redis could be made: the host name did not resolve, the connection
    /// was refused or not accepted within the connect timeout, or the TLS handshake failed.
    /// Such failures usually pass; a waiter retries them until its deadline.
    Connect {
        /// Where we tried to connect: `host:port` or a socket path, never credentials.
        address: String,
        /// What went wrong, as the operating system or TLS library put it.
        reason: String,
    },
    /// Redis refused the credentials: a wrong password or unknown user (`WRONGPASS`), a
    /// server that wants a password the URL does not give (`NOAUTH`), or a password given
    /// to a server that has none.
    Auth {
        /// The user we authenticated as (`default` when the URL names none).
        user: String,
        /// The server's answer (it never contains the password).
        reason: String,
    },
    /// The client's ACL user may not run a command, or touch a key or channel, that the lock
    /// needs (`NOPERM`); see the README's "Security" section for the ACL a lock user needs.
    NoPermission {
        /// The server's answer, naming the command, key or channel refused.
        reason: String,
    },
    /// A Redlock client (see [`ClientBuilder::redlock`](crate::ClientBuilder::redlock))
    /// could not reach a majority of its servers: fewer than `needed` of the `total`
    /// answered in time. Nothing is held (what an attempt took on the others was undone).
    /// Like [`Connect`](LockError::Connect), it usually passes; an acquisition retries it
    /// until its timeout or the client's outage timeout, then returns it.
    NoQuorum {
        /// The lock's name (empty for operations on every lock of the client).
        name: String,
        /// How many servers answered. For an acquisition that a majority granted but whose
        /// fencing counters came from fewer than a majority while a server was missing (a
        /// server restarted empty, see the README's Redlock section): how many servers
        /// answered with a counter.
        answered: usize,
        /// How many must answer: a majority.
        needed: usize,
        /// How many servers the client has.
        total: usize,
    },
    /// On a Redis Cluster client with [`min_replicas`](crate::ClientBuilder::min_replicas):
    /// the lock was taken, but fewer replicas than required acknowledged the write within
    /// the replica timeout, so a failover could lose it. The lock has been released again.
    NotReplicated {
        /// The lock's name.
        name: String,
        /// How many replicas had to acknowledge.
        wanted: usize,
        /// How many did.
        acknowledged: usize,
    },
    /// Any other failure of Redis: a dropped connection, a response timeout, an error reply.
    Redis(redis::RedisError),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Timeout { name, waited } => {
                write!(f, "lock `{name}` was not acquired within {waited:?}")
            }
            LockError::NoAnswer { name, waited } => write!(
                f,
                "lock `{name}`: Redis did not answer within {waited:?}, so whether the lock is free is unknown"
            ),
            LockError::NotConfigured => f.write_str(
                "no default Redis client is configured: call `redis_locked::init(url)` at start-up",
            ),
            LockError::UnknownClient { client } => write!(
                f,
                "no Redis client named `{client}` is registered: call `redis_locked::register(\"{client}\", url)` at start-up"
            ),
            LockError::AlreadyRegistered { client } => {
                write!(f, "a Redis client named `{client}` is already registered")
            }
            LockError::InvalidConfig { reason } => write!(f, "invalid configuration: {reason}"),
            LockError::Lost { name } => write!(
                f,
                "lock `{name}` was lost while held: auto-renewal found it expired or taken by another owner"
            ),
            LockError::Expired { name } => write!(
                f,
                "lock `{name}` had already expired when released: its lease ran out while it was held"
            ),
            LockError::WouldDeadlock { name } => write!(
                f,
                "lock `{name}` is already held by this task or thread: waiting for it would deadlock (add `reentrant` to the attribute to let nested calls pass through)"
            ),
            LockError::NoRuntime => {
                f.write_str("an async lock operation was called outside a Tokio runtime")
            }
            LockError::Connect { address, reason } => {
                write!(f, "could not connect to redis at {address}: {reason}")
            }
            LockError::Auth { user, reason } => {
                write!(f, "redis refused to authenticate user `{user}`: {reason}")
            }
            LockError::NoPermission { reason } => write!(
                f,
                "redis denied this client's user a command, key or channel the lock needs: {reason}"
            ),
            LockError::NoQuorum {
                name,
                answered,
                needed,
                total,
            } => write!(
                f,
                "lock `{name}`: only {answered} of {total} Redlock servers answered; a majority of {needed} is needed"
            ),
            LockError::NotReplicated {
                name,
                wanted,
                acknowledged,
            } => write!(
                f,
                "lock `{name}` was not acquired: {acknowledged} of the {wanted} required replicas acknowledged it in time, so a failover could lose it"
            ),
            LockError::Redis(e) => write!(f, "redis error: {e}"),
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Redis(e) => Some(e),
            _ => None,
        }
    }
}

impl From<redis::RedisError> for LockError {
    fn from(e: redis::RedisError) -> Self {
        LockError::Redis(e)
    }
}

impl From<std::io::Error> for LockError {
    fn from(e: std::io::Error) -> Self {
        LockError::Redis(e.into())
    }
}

impl LockError {
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        LockError::InvalidConfig {
            reason: reason.into(),
        }
    }

    /// Whether this is Redis not answering in time.
    pub(crate) fn is_timeout(&self) -> bool {
        matches!(self, LockError::Redis(e) if e.is_timeout())
    }

    /// Whether Redis could not be reached or could not answer just now: a refused or
    /// dropped connection, a response timeout, a server still loading its data after a
    /// restart, a former master demoted to a replica by a Sentinel failover (`READONLY`),
    /// a Redlock majority out of reach.
    /// Such failures pass; a waiter retries them until its deadline. Everything else (bad
    /// credentials, missing permissions, bad configuration) does not pass.
    pub(crate) fn is_unavailable(&self) -> bool {
        match self {
            LockError::Connect { .. } | LockError::NoQuorum { .. } | LockError::NoAnswer { .. } => {
                true
            }
            LockError::Redis(e) => {
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
}

/// Whether an error reply says the server is a read-only replica: a master demoted by a
/// failover, which its clients must leave for the new master.
pub(crate) fn is_readonly(message: &str) -> bool {
    message.starts_with("READONLY")
}
