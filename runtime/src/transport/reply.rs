//! What Redis answered, as the lock algorithm reads it: the `redis` crate's values (RESP2
//! or RESP3) in the few shapes our scripts and commands answer with, and error replies as
//! data, so that a caller can react to `NOSCRIPT` or `READONLY` before they become errors.

use crate::util::error::LockError;

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

impl From<redis::Value> for Reply {
    /// RESP3 adds types that RESP2 spelled differently; they are mapped to what RESP2 would
    /// have sent (a Lua `false` was a nil).
    fn from(value: redis::Value) -> Reply {
        use redis::Value;
        match value {
            Value::Nil | Value::Boolean(false) => Reply::Nil,
            Value::Boolean(true) => Reply::Int(1),
            Value::Int(n) => Reply::Int(n),
            Value::BulkString(bytes) => Reply::Bulk(bytes),
            Value::Array(values) | Value::Set(values) | Value::Push { data: values, .. } => {
                Reply::Array(values.into_iter().map(Reply::from).collect())
            }
            Value::Map(pairs) => Reply::Array(
                pairs
                    .into_iter()
                    .flat_map(|(k, v)| [Reply::from(k), Reply::from(v)])
                    .collect(),
            ),
            Value::SimpleString(s) => Reply::Status(s),
            Value::Okay => Reply::Status("OK".into()),
            Value::Attribute { data, .. } => Reply::from(*data),
            Value::Double(d) => Reply::Bulk(d.to_string().into_bytes()),
            Value::VerbatimString { text, .. } => Reply::Bulk(text.into_bytes()),
            Value::BigNumber(n) => Reply::Bulk(format!("{n:?}").into_bytes()),
            Value::ServerError(e) => Reply::Error(match e.details() {
                Some(detail) => format!("{} {detail}", e.code()),
                None => e.code().to_string(),
            }),
            other => Reply::Error(format!("unsupported reply {other:?}")),
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
    // hash (`protocol::explain` names the commands our scripts call).
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

#[cfg(test)]
mod tests {
    use super::*;

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
