//! The one error type of the crate.
//!
//! Each variant's `Display` says what happened in the crate's own terms, and names the lock
//! when there is one; the underlying cause (an I/O error, a TLS error, an error reply) is
//! reachable only through [`source`](std::error::Error::source), never repeated in the
//! message. So `anyhow`'s `{:#}`, `eyre`'s report and `tracing`'s error fields, which print
//! the message and then every source, show each piece once.

use std::error::Error;
use std::time::Duration;

pub(crate) mod classify;
mod display;

/// Everything that can go wrong when taking, holding or releasing a lock.
///
/// The variants tell apart the cases a caller handles differently: retry later
/// ([`Timeout`](LockError::Timeout)), fix start-up ([`NotConfigured`](LockError::NotConfigured),
/// [`UnknownClient`](LockError::UnknownClient), [`InvalidConfig`](LockError::InvalidConfig)),
/// distrust work already done under the lock ([`Lost`](LockError::Lost),
/// [`Expired`](LockError::Expired)), fix the deployment ([`Connect`](LockError::Connect),
/// [`Auth`](LockError::Auth), [`NoPermission`](LockError::NoPermission)), or look at Redis
/// ([`Redis`](LockError::Redis)). [`is_timeout`](LockError::is_timeout),
/// [`is_unavailable`](LockError::is_unavailable) and [`is_retryable`](LockError::is_retryable)
/// group them for callers that only want to know whether to try again.
///
/// Failures of Redis itself ([`Connect`](LockError::Connect), [`Io`](LockError::Io),
/// [`Auth`](LockError::Auth), [`NoPermission`](LockError::NoPermission),
/// [`Redis`](LockError::Redis)) carry the name of
/// the lock being worked on in `lock` (`None` for operations on no single lock, such as
/// [`reset_all`](crate::reset_all)), and keep their cause as the error's
/// [`source`](std::error::Error::source).
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
    /// The lock's name is in use as another kind of lock: a semaphore of another number of
    /// permits, or a semaphore where a plain or shared lock was asked for, or the reverse.
    /// Every caller of one name must ask for the same kind; nothing was taken.
    KindMismatch {
        /// The lock's name.
        name: String,
        /// What Redis holds under the name: `exclusive`, `shared`, or a number of permits.
        held_as: String,
        /// What this caller asked for, in the same words.
        asked: String,
    },
    /// An async operation was called outside a Tokio runtime.
    NoRuntime,
    /// No connection to Redis could be made: the host name did not resolve, the connection
    /// was refused or not accepted within the connect timeout, or the TLS handshake failed.
    /// Such failures usually pass; a waiter retries them until its deadline.
    Connect {
        /// Where we tried to connect: `host:port` or a socket path, never credentials.
        address: String,
        /// The lock being worked on, if any.
        lock: Option<String>,
        /// Why, as the operating system put it: `ConnectionRefused`, `TimedOut` (the connect
        /// timeout), `NotFound` (a host name without address) and so on; for a failed TLS
        /// handshake, an error whose own source is the TLS library's.
        source: std::io::Error,
    },
    /// A connection to Redis failed during a request (reset, closed by the server), or Redis
    /// did not answer within the response timeout or the caller's deadline (`source.kind()`
    /// is then `TimedOut`). Whether Redis ran the request is unknown. Such failures usually
    /// pass; a waiter retries them until its deadline.
    Io {
        /// The lock being worked on, if any.
        lock: Option<String>,
        /// What the operating system or the timeout said.
        source: std::io::Error,
    },
    /// Redis refused the credentials: a wrong password or unknown user (`WRONGPASS`), a
    /// server that wants a password the URL does not give (`NOAUTH`), or a password given
    /// to a server that has none.
    Auth {
        /// The user we authenticated as (`default` when the URL names none).
        user: String,
        /// The server's answer (it never contains the password).
        reason: String,
        /// The lock being worked on, if any.
        lock: Option<String>,
    },
    /// The client's ACL user may not run a command, or touch a key or channel, that the lock
    /// needs (`NOPERM`); see the README's "Security" section for the ACL a lock user needs.
    NoPermission {
        /// The server's answer, naming the command, key or channel refused.
        reason: String,
        /// The lock being worked on, if any.
        lock: Option<String>,
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
    /// Any other failure of Redis: an error reply, a reply the crate did not expect, or a
    /// failure reported by the `redis` crate's Redis Cluster client.
    Redis {
        /// The lock being worked on, if any.
        lock: Option<String>,
        /// What failed, as the `redis` crate describes it.
        source: redis::RedisError,
    },
}

fn is_io_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

/// What a failed request to Redis came to, in a few words; the details are the source's.
fn redis_failure(e: &redis::RedisError) -> &'static str {
    if e.is_timeout() {
        "Redis did not answer in time"
    } else if e.is_io_error() {
        "the connection to Redis failed"
    } else {
        match e.kind() {
            redis::ErrorKind::UnexpectedReturnType => "Redis sent a reply the lock did not expect",
            redis::ErrorKind::Parse => "Redis sent a malformed reply",
            redis::ErrorKind::Extension | redis::ErrorKind::Server(_) => {
                "Redis answered with an error"
            }
            _ => "a request to Redis failed",
        }
    }
}

impl Error for LockError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            LockError::Connect { source, .. } | LockError::Io { source, .. } => Some(source),
            LockError::Redis { source, .. } => Some(cause(source)),
            _ => None,
        }
    }
}

/// The error to report as the cause of a `redis::RedisError`. One that wraps another error
/// (an I/O error, a server's error reply) shows that error's text as its own message and
/// returns it as its source as well, so a chain through it would print the text twice:
/// the wrapped error stands in for it. One of the crate's own making (no source) is itself
/// the cause.
pub(crate) fn cause(e: &redis::RedisError) -> &(dyn Error + 'static) {
    e.source().unwrap_or(e)
}

// What anyhow, eyre and `Box<dyn Error + Send + Sync>` need of an error, checked when the
// crate is built rather than when a user first tries.
const _: fn() = || {
    fn is_a_sendable_error<E: Error + Send + Sync + 'static>() {}
    is_a_sendable_error::<LockError>();
};

impl From<redis::RedisError> for LockError {
    fn from(source: redis::RedisError) -> Self {
        LockError::Redis { lock: None, source }
    }
}

impl From<std::io::Error> for LockError {
    fn from(source: std::io::Error) -> Self {
        LockError::Io { lock: None, source }
    }
}

impl LockError {
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        LockError::InvalidConfig {
            reason: reason.into(),
        }
    }

    /// Names lock `name` in a failure of Redis that names no lock yet.
    pub(crate) fn for_lock(mut self, name: &str) -> Self {
        if let LockError::Connect { lock, .. }
        | LockError::Io { lock, .. }
        | LockError::Auth { lock, .. }
        | LockError::NoPermission { lock, .. }
        | LockError::Redis { lock, .. } = &mut self
            && lock.is_none()
        {
            *lock = Some(name.to_string());
        }
        self
    }
}

/// An error and its causes, one after another (`message: cause: cause`), for text that
/// holds errors: log events record errors as such instead (`tracing` shows the causes).
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

/// The error of a request cut short by its caller's deadline. It is a timeout: whether
/// Redis ran the command is unknown.
pub(crate) fn deadline_passed() -> LockError {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "redis did not answer before the caller's deadline",
    )
    .into()
}
