//! What a refusal by the ACL inside one of our scripts means: Redis 7 names only the
//! script's hash, so the error gets the commands that script calls.

use crate::protocol::scripts::{
    ACQUIRE, EXTEND, EXTEND_OR_RESTORE, HANDOFF, INSPECT, QUORUM_ACQUIRE, QUORUM_RELEASE,
    RAISE_FENCE, RELEASE, RESET, Script, sharded,
};
use crate::util::error::LockError;

/// A script's failure, with the commands the script calls added to a refusal by the ACL:
/// inside a script Redis 7 names only the script's hash, not the command it refused.
pub(crate) fn explain(error: LockError) -> LockError {
    match error {
        LockError::NoPermission { reason, lock } => match describe(&reason) {
            Some(script) => LockError::NoPermission {
                reason: format!("{reason} ({script})"),
                lock,
            },
            None => LockError::NoPermission { reason, lock },
        },
        other => other,
    }
}

/// Which of our scripts an error message is about (it names the script's hash), and the
/// commands that script calls, for an error that must say what the ACL refused.
fn describe(message: &str) -> Option<String> {
    let scripts: [(&str, &Script, &str); 10] = [
        (
            "acquire",
            &ACQUIRE,
            "SET, GET, PEXPIRE, TIME, PTTL, LREM, LPOS and RPUSH",
        ),
        (
            "quorum acquire",
            &QUORUM_ACQUIRE,
            "GET, SET, PEXPIRE, TIME and PTTL",
        ),
        ("quorum release", &QUORUM_RELEASE, "GET, DEL and PUBLISH"),
        ("quorum renewal", &EXTEND_OR_RESTORE, "GET, PEXPIRE and SET"),
        ("raise fence", &RAISE_FENCE, "GET, SET and PEXPIRE"),
        (
            "release",
            &RELEASE,
            "LREM, GET, LPOP, SET, TIME, DEL and PUBLISH",
        ),
        ("extend", &EXTEND, "GET and PEXPIRE"),
        (
            "handoff",
            &HANDOFF,
            "GET, LPOP, LPOS, RPUSH, PUBSUB NUMSUB, DEL, PUBLISH, SET, TIME and PEXPIRE",
        ),
        ("reset", &RESET, "DEL and PUBLISH"),
        ("inspect", &INSPECT, "GET, PTTL and PUBSUB NUMSUB"),
    ];
    scripts
        .iter()
        .find(|(_, script, _)| {
            message.contains(script.sha.as_str()) || message.contains(sharded(script).sha.as_str())
        })
        .map(|(name, _, commands)| {
            format!("the {name} script calls {commands} on the lock's key, its fencing counter, its queue and its pub/sub channels")
        })
}
