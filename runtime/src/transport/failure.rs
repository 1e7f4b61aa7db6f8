//! What a failed connection or request becomes: an I/O error of the kind it is at bottom,
//! showing each message once (the `redis` crate's errors repeat their cause's), so that a
//! report prints the chain without repeats.

use std::time::Duration;

use crate::util::error::LockError;

/// A failed request: no reply within `timeout`, or the connection failed (`Io`, with the
/// kind of what happened), or something else the `redis` crate reports.
pub(crate) fn request_error(e: redis::RedisError, timeout: Duration) -> LockError {
    if e.is_timeout() {
        return std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no reply within {timeout:?}"),
        )
        .into();
    }
    if e.is_io_error() || e.is_connection_dropped() {
        return LockError::Io {
            lock: None,
            source: io_error(e),
        };
    }
    e.into()
}

/// The I/O error inside a `redis` crate error, if it holds one (at any depth).
fn inner_io(e: &redis::RedisError) -> Option<&std::io::Error> {
    std::iter::successors(std::error::Error::source(e), |cause| cause.source())
        .find_map(|cause| cause.downcast_ref::<std::io::Error>())
}

/// A `redis` crate error about a connection as the I/O error it is at bottom: the
/// operating system's own, or one of the same kind that shows what it says once.
pub(crate) fn io_error(e: redis::RedisError) -> std::io::Error {
    use std::io::ErrorKind;
    match inner_io(&e) {
        Some(inner) => match inner.raw_os_error() {
            Some(code) => std::io::Error::from_raw_os_error(code),
            None => std::io::Error::new(inner.kind(), Cause(e)),
        },
        None => {
            let kind = if e.is_connection_refusal() {
                ErrorKind::ConnectionRefused
            } else if e.is_connection_dropped() {
                ErrorKind::BrokenPipe
            } else {
                ErrorKind::Other
            };
            std::io::Error::new(kind, Cause(e))
        }
    }
}

/// A `redis` crate error that shows, and leads on to, the I/O error inside it when it holds
/// one (its own message repeats that error's).
#[derive(Debug)]
struct Cause(redis::RedisError);

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match inner_io(&self.0) {
            Some(inner) => inner.fmt(f),
            None => self.0.fmt(f),
        }
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match inner_io(&self.0) {
            Some(inner) => inner.get_ref().and_then(|e| e.source()),
            // The `redis` crate's error repeats its cause's message: skip to what is new.
            None => {
                let shown = self.0.to_string();
                let mut cause = std::error::Error::source(&self.0);
                while let Some(c) = cause
                    && c.to_string() == shown
                {
                    cause = c.source();
                }
                cause
            }
        }
    }
}

/// A failed TLS handshake: says so, and keeps the TLS library's reason as its source.
#[derive(Debug)]
pub(crate) struct HandshakeFailed(pub(crate) std::io::Error);

impl std::fmt::Display for HandshakeFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TLS handshake failed")
    }
}

impl std::error::Error for HandshakeFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}
