//! The Lua scripts that make owner-checked operations atomic on the server.
//!
//! Each lock lives in one key, `<prefix>{<name>}`, holding the owner's token, always with an
//! expiry. Releases are announced on a pub/sub channel with the same name as the key, so a
//! waiter subscribes only to the locks it waits for. The payload is the releasing client's
//! instance id: a process ignores its own announcements, having already woken its waiters.

use std::sync::LazyLock;

/// A script's body and SHA1, sent by hash (EVALSHA) and by body only after `NOSCRIPT`.
pub(crate) struct Script {
    pub(crate) body: &'static str,
    pub(crate) sha: String,
}

impl Script {
    fn new(body: &'static str) -> Script {
        Script {
            body,
            sha: redis::Script::new(body).get_hash().to_string(),
        }
    }
}

/// Which of our scripts an error message is about (it names the script's hash), and the
/// commands that script calls, for an error that must say what the ACL refused.
pub(crate) fn describe(message: &str) -> Option<String> {
    let scripts: [(&str, &Script, &str); 4] = [
        ("release", &RELEASE, "GET, DEL and PUBLISH"),
        ("extend", &EXTEND, "GET and PEXPIRE"),
        (
            "handoff",
            &HANDOFF,
            "GET, PUBSUB NUMSUB, DEL, PUBLISH and SET",
        ),
        ("reset", &RESET, "DEL and PUBLISH"),
    ];
    scripts
        .iter()
        .find(|(_, script, _)| message.contains(script.sha.as_str()))
        .map(|(name, _, commands)| {
            format!("the {name} script calls {commands} on the lock's key and its pub/sub channel")
        })
}

/// KEYS[1] lock key; ARGV[1] token, ARGV[2] announcement payload.
/// Returns 1 if released, 0 if the key was not ours (expired, or another owner's).
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('get', KEYS[1]) == ARGV[1] then \
           redis.call('del', KEYS[1]) \
           redis.call('publish', KEYS[1], ARGV[2]) \
           return 1 \
         end \
         return 0",
    )
});

/// KEYS[1] lock key; ARGV[1] token, ARGV[2] new lease in ms. Returns 1 if extended, else 0.
pub(crate) static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('get', KEYS[1]) == ARGV[1] then \
           return redis.call('pexpire', KEYS[1], ARGV[2]) \
         end \
         return 0",
    )
});

/// KEYS[1] lock key; ARGV[1] old token, ARGV[2] new token, ARGV[3] new lease in ms,
/// ARGV[4] how many of the key's subscribers are this process's own, ARGV[5] announcement
/// payload. Passes the lock straight to the next waiter of this process, without it ever
/// being free: returns 1. When other processes wait too (more subscribers than our own), it
/// releases to everyone instead, so they get their fair chance: returns 2. Returns 0 if the
/// key was not ours.
pub(crate) static HANDOFF: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('get', KEYS[1]) ~= ARGV[1] then \
           return 0 \
         end \
         if redis.call('pubsub', 'numsub', KEYS[1])[2] > tonumber(ARGV[4]) then \
           redis.call('del', KEYS[1]) \
           redis.call('publish', KEYS[1], ARGV[5]) \
           return 2 \
         end \
         redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) \
         return 1",
    )
});

/// KEYS[1] lock key; ARGV[1] announcement payload. Deletes whoever holds it and wakes waiters.
/// Returns 1 if a lock was held, else 0.
pub(crate) static RESET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local held = redis.call('del', KEYS[1]) \
         redis.call('publish', KEYS[1], ARGV[1]) \
         return held",
    )
});
