//! A script or a command sent to several servers of a quorum at once, through
//! [`Io::each_request`]: for sync callers, every request written from one thread before any
//! reply is read, instead of a thread per server.

use std::time::Instant;

use crate::protocol::scripts::Script;
use crate::servers::io::{ByBody, EachRequest, Io, command_with_room, evalsha};
use crate::servers::single::Single;
use crate::transport::reply::Reply;
use crate::util::error::LockError;

/// [`eval_until`](crate::servers::io::eval_until) on every server of `members` at once:
/// by hash, then by body on the servers that do not know the script; the outcomes in
/// order, an error reply as an error.
pub(super) async fn eval_each<I: Io>(
    io: &I,
    members: &[&Single],
    script: &Script,
    keys: &[&str],
    args: &[&str],
    until: Option<Instant>,
) -> Vec<Result<Reply, LockError>> {
    let first = evalsha(script, keys, args);
    let by_body = ByBody::new(script, keys, args);
    let request = EachRequest {
        cmd: &first,
        if_noscript: Some(&by_body),
        until,
        resend_safe: script.resend_safe,
    };
    let outcomes = io.each_request(members, request).await;
    outcomes
        .into_iter()
        .map(|outcome| {
            outcome?
                .into_result()
                .map_err(crate::protocol::explain::explain)
        })
        .collect()
}

/// `SET key token NX PX lease` on every server of `members` at once, sent once (run
/// twice, it would find its own first run and answer "taken"): whether each granted it
/// (`OK`, else nil).
pub(super) async fn set_each<I: Io>(
    io: &I,
    members: &[&Single],
    key: &str,
    token: &str,
    lease_ms: &str,
    until: Option<Instant>,
) -> Vec<Result<bool, LockError>> {
    let bytes = key.len() + token.len() + "NXPX".len() + lease_ms.len();
    let mut set = command_with_room("SET", 5, bytes);
    set.arg(key).arg(token).arg("NX").arg("PX").arg(lease_ms);
    let request = EachRequest {
        cmd: &set,
        if_noscript: None,
        until,
        resend_safe: false,
    };
    let outcomes = io.each_request(members, request).await;
    outcomes
        .into_iter()
        .map(|outcome| match outcome?.into_result()? {
            Reply::Status(_) => Ok(true),
            Reply::Nil => Ok(false),
            other => Err(crate::transport::reply::unexpected(&other)),
        })
        .collect()
}
