//! How a [`LockError`] reads: one sentence saying what went wrong and, where it helps,
//! what to do; the causes are the error's sources.

use super::{LockError, is_io_timeout, redis_failure};

/// `exclusive`, `shared` or a number of permits, as a phrase.
fn kind_words(kind: &str) -> String {
    match kind {
        "exclusive" => "an exclusive lock".to_owned(),
        "shared" => "a shared lock".to_owned(),
        permits if permits.parse::<u32>().is_ok() => format!("a semaphore of {permits} permits"),
        other => format!("a `{other}`"),
    }
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Failures of Redis itself say first which lock they were about.
        if let LockError::Connect {
            lock: Some(name), ..
        }
        | LockError::Auth {
            lock: Some(name), ..
        }
        | LockError::NoPermission {
            lock: Some(name), ..
        }
        | LockError::Io {
            lock: Some(name), ..
        }
        | LockError::Redis {
            lock: Some(name), ..
        } = self
        {
            write!(f, "lock `{name}`: ")?;
        }
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
            LockError::KindMismatch {
                name,
                held_as,
                asked,
            } => write!(
                f,
                "lock `{name}` is held as {} elsewhere, and this call asked for {}: every caller of one name must ask for the same kind of lock",
                kind_words(held_as),
                kind_words(asked)
            ),
            LockError::NoRuntime => {
                f.write_str("an async lock operation was called outside a Tokio runtime")
            }
            LockError::Connect { address, .. } => {
                write!(f, "could not connect to Redis at {address}")
            }
            // The server's answer is not a cause of ours but the refusal itself: it is the
            // message's detail, and these variants have no source.
            LockError::Auth { user, reason, .. } => {
                write!(f, "Redis refused to authenticate user `{user}`: {reason}")
            }
            LockError::NoPermission { reason, .. } => write!(
                f,
                "Redis denied this client's user a command, key or channel the lock needs: {reason}"
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
            LockError::Io { source, .. } => f.write_str(if is_io_timeout(source) {
                "Redis did not answer in time"
            } else {
                "the connection to Redis failed"
            }),
            LockError::Redis { source, .. } => f.write_str(redis_failure(source)),
        }
    }
}
