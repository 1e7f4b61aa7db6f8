//! Reading RESP2 replies from a byte buffer.
//!
//! Commands are encoded by `redis::Cmd`; only the reply side is ours, because the hot path
//! reads replies straight off the socket in the calling task (see `conn.rs`).

use crate::error::LockError;

/// One reply from Redis. Server errors are kept as data so callers can react to `NOSCRIPT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Nil,
    Status(String),
    Int(i64),
    Bulk(Vec<u8>),
    Array(Vec<Reply>),
    Error(String),
}

impl Reply {
    /// The reply as a server error, if it is one.
    pub(crate) fn into_result(self) -> Result<Reply, LockError> {
        match self {
            Reply::Error(message) => Err(server_error(message)),
            other => Ok(other),
        }
    }

    pub(crate) fn as_int(&self) -> Result<i64, LockError> {
        match self {
            Reply::Int(n) => Ok(*n),
            other => Err(unexpected(other)),
        }
    }
}

/// An error reply as a [`LockError`]: a refusal by the ACL becomes
/// [`NoPermission`](LockError::NoPermission), anything else [`Redis`](LockError::Redis).
pub(crate) fn server_error(message: String) -> LockError {
    if message.starts_with("NOPERM") {
        return LockError::NoPermission {
            reason: message,
            lock: None,
        };
    }
    // Inside a script Redis 7 does not say which command it refused, only the script's
    // hash (`scripts::explain` names the commands our scripts call).
    if message.contains("The user executing the script can't") {
        return LockError::NoPermission {
            reason: message,
            lock: None,
        };
    }
    if let Some(reason) = auth_failure(&message) {
        // Outside the handshake (which names its user), this is `NOAUTH`: the URL gave no
        // password, so the connection is the default user's.
        return LockError::Auth {
            user: "default".into(),
            reason,
            lock: None,
        };
    }
    redis::RedisError::from((redis::ErrorKind::Extension, "error reply", message)).into()
}

/// The reason, when an error reply says the connection is not (or could not be)
/// authenticated: a wrong password or unknown user, a server that wants a password, or a
/// password sent to a server without one. Such replies never echo the password.
pub(crate) fn auth_failure(message: &str) -> Option<String> {
    let refused = message.starts_with("WRONGPASS")
        || message.starts_with("NOAUTH")
        || (message.starts_with("ERR")
            && message.contains("AUTH")
            && (message.contains("without any password configured")
                || message.contains("no password is set")));
    refused.then(|| message.to_string())
}

pub(crate) fn unexpected(reply: &Reply) -> LockError {
    redis::RedisError::from((
        redis::ErrorKind::UnexpectedReturnType,
        "unexpected reply",
        format!("{reply:?}"),
    ))
    .into()
}

fn protocol_error(what: &str) -> LockError {
    redis::RedisError::from((redis::ErrorKind::Parse, "malformed reply", what.to_string())).into()
}

/// Parses one complete reply from the front of `buf`.
/// `Ok(None)` means more bytes are needed; `Ok(Some((reply, used)))` consumed `used` bytes.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, LockError> {
    let Some(line_end) = find_crlf(buf) else {
        return Ok(None);
    };
    if line_end == 0 {
        return Err(protocol_error("empty reply line"));
    }
    let line = &buf[1..line_end];
    let after_line = line_end + 2;
    let text = || String::from_utf8_lossy(line).into_owned();
    match buf[0] {
        b'+' => Ok(Some((Reply::Status(text()), after_line))),
        b'-' => Ok(Some((Reply::Error(text()), after_line))),
        b':' => Ok(Some((Reply::Int(parse_int(line)?), after_line))),
        b'$' => {
            let len = parse_int(line)?;
            if len < 0 {
                return Ok(Some((Reply::Nil, after_line)));
            }
            let end = after_line + len as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            Ok(Some((Reply::Bulk(buf[after_line..end].to_vec()), end + 2)))
        }
        b'*' => {
            let count = parse_int(line)?;
            if count < 0 {
                return Ok(Some((Reply::Nil, after_line)));
            }
            let mut items = Vec::with_capacity(count.min(1024) as usize);
            let mut used = after_line;
            for _ in 0..count {
                match parse(&buf[used..])? {
                    Some((item, n)) => {
                        items.push(item);
                        used += n;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(items), used)))
        }
        _ => Err(protocol_error("unknown reply type byte")),
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn parse_int(digits: &[u8]) -> Result<i64, LockError> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| protocol_error("bad integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_reply_type_and_waits_for_partial_input() {
        assert_eq!(
            parse(b"+OK\r\n").unwrap(),
            Some((Reply::Status("OK".into()), 5))
        );
        assert_eq!(parse(b":-2\r\n").unwrap(), Some((Reply::Int(-2), 5)));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Some((Reply::Nil, 5)));
        assert_eq!(
            parse(b"$3\r\nabc\r\n").unwrap(),
            Some((Reply::Bulk(b"abc".to_vec()), 9))
        );
        assert_eq!(parse(b"$3\r\nab").unwrap(), None);
        assert_eq!(
            parse(b"*2\r\n:1\r\n$0\r\n\r\n").unwrap(),
            Some((Reply::Array(vec![Reply::Int(1), Reply::Bulk(vec![])]), 14))
        );
        assert_eq!(parse(b"*2\r\n:1\r\n").unwrap(), None);
        assert_eq!(
            parse(b"-NOSCRIPT x\r\n").unwrap(),
            Some((Reply::Error("NOSCRIPT x".into()), 13))
        );
        assert!(parse(b"?\r\n").is_err());
    }

    #[test]
    fn classifies_permission_and_authentication_errors() {
        let e =
            server_error("NOPERM this user has no permissions to run the 'evalsha' command".into());
        assert!(
            matches!(&e, LockError::NoPermission { reason, .. } if reason.contains("'evalsha'")),
            "{e:?}"
        );
        let e = server_error(
            "ERR The user executing the script can't run this command or subcommand script: 0123, on @user_script:1.".into(),
        );
        assert!(matches!(&e, LockError::NoPermission { .. }), "{e:?}");
        for refused in [
            "WRONGPASS invalid username-password pair or user is disabled.",
            "NOAUTH Authentication required.",
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ] {
            let e = server_error(refused.into());
            assert!(matches!(e, LockError::Auth { .. }), "{e:?}");
        }
        let e = server_error("ERR unknown command 'x'".into());
        assert!(matches!(e, LockError::Redis { .. }), "{e:?}");
    }
}
