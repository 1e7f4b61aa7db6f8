//! When a request to a Redis Cluster goes out again. The `redis` crate's cluster connection
//! would resend any request up to 16 times, also after a lost connection or a timeout, when
//! the node may well have run it: a second RELEASE then finds the key gone and reports the
//! lock as expired, and a second HANDOFF that had released to everyone finds another
//! owner. So the connection is built with `retries(0)`, and this policy decides instead:
//! a request goes again at once after an answer that proves it did not run (a redirect,
//! `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, `READONLY`, no connection to send it on), but after
//! a failure that leaves its outcome unknown only if running it twice is running it once
//! (`Script::resend_safe`).

use std::time::Duration;

use redis::{RedisError, RetryMethod};

/// At most this many sends of one request (the `redis` crate's own default).
const MAX_SENDS: u32 = 16;

/// What to do with a request that failed with an error.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Send it to the node named by a `MOVED` (`asking: false`) or `ASK` redirect.
    Redirect {
        host: String,
        port: u16,
        asking: bool,
    },
    /// Send it again where its slot lives, after this pause (the slot map is being
    /// refreshed, or the node is busy).
    After(Duration),
    /// Return the error.
    GiveUp,
}

/// The next step after the `sends`-th send of a request failed with `error`.
pub(super) fn after_error(error: &RedisError, sends: u32, resend_safe: bool) -> Next {
    if sends >= MAX_SENDS {
        return Next::GiveUp;
    }
    let pause = Duration::from_millis(10 << sends.min(6));
    match error.retry_method() {
        method @ (RetryMethod::MovedRedirect | RetryMethod::AskRedirect) => {
            let asking = matches!(method, RetryMethod::AskRedirect);
            match error
                .redirect_node()
                .and_then(|(address, _slot)| address.rsplit_once(':'))
                .and_then(|(host, port)| Some((host.to_string(), port.parse().ok()?)))
            {
                Some((host, port)) => Next::Redirect { host, port, asking },
                None => Next::After(pause),
            }
        }
        // The node refused to run it, or it was never sent.
        RetryMethod::WaitAndRetry
        | RetryMethod::RefreshSlotsAndRetry
        | RetryMethod::ReconnectFromInitialConnections => Next::After(pause),
        // A connection refused never carried the request.
        _ if error.is_connection_refusal() => Next::After(pause),
        // Sent, and then the connection went or the reply was late: it may have run.
        RetryMethod::Reconnect | RetryMethod::RetryImmediately if resend_safe => Next::After(pause),
        _ => Next::GiveUp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(reply: &str) -> RedisError {
        redis::parse_redis_value(format!("-{reply}\r\n").as_bytes())
            .unwrap()
            .extract_error()
            .unwrap_err()
    }

    fn io_error(kind: std::io::ErrorKind) -> RedisError {
        std::io::Error::from(kind).into()
    }

    #[test]
    fn redirects_go_to_the_node_they_name() {
        assert_eq!(
            after_error(&server_error("MOVED 3999 127.0.0.1:7001"), 1, false),
            Next::Redirect {
                host: "127.0.0.1".into(),
                port: 7001,
                asking: false
            }
        );
        assert_eq!(
            after_error(&server_error("ASK 3999 10.0.0.2:7002"), 1, false),
            Next::Redirect {
                host: "10.0.0.2".into(),
                port: 7002,
                asking: true
            }
        );
    }

    #[test]
    fn refusals_by_the_server_are_sent_again_even_when_not_resend_safe() {
        for reply in [
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "CLUSTERDOWN The cluster is down",
            "LOADING Redis is loading the dataset in memory",
            "READONLY You can't write against a read only replica.",
        ] {
            assert!(
                matches!(after_error(&server_error(reply), 1, false), Next::After(_)),
                "{reply}"
            );
        }
        let refused = io_error(std::io::ErrorKind::ConnectionRefused);
        assert!(matches!(after_error(&refused, 1, false), Next::After(_)));
    }

    #[test]
    fn an_unknown_outcome_is_sent_again_only_when_resend_safe() {
        for kind in [
            std::io::ErrorKind::TimedOut,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::UnexpectedEof,
        ] {
            let error = io_error(kind);
            assert_eq!(after_error(&error, 1, false), Next::GiveUp, "{kind:?}");
            assert!(
                matches!(after_error(&error, 1, true), Next::After(_)),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn script_errors_and_the_send_limit_end_it() {
        let script_error =
            server_error("ERR user_script:1: Script attempted to access a non local key");
        assert_eq!(after_error(&script_error, 1, true), Next::GiveUp);
        let noperm =
            server_error("NOPERM this user has no permissions to run the 'evalsha' command");
        assert_eq!(after_error(&noperm, 1, true), Next::GiveUp);
        let moved = server_error("MOVED 3999 127.0.0.1:7001");
        assert_eq!(after_error(&moved, MAX_SENDS, true), Next::GiveUp);
    }
}
