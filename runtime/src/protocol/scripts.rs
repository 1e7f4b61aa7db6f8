//! The Lua scripts that make owner-checked operations atomic on the server.
//!
//! Each lock lives in one key, `<prefix>{<name>}`, holding the owner's token, always with an
//! expiry. Its fencing counter lives next to it in `<prefix>{<name>}:fence` (same hash slot),
//! advanced by every acquisition in the same script that takes the lock. Every key the crate
//! writes expires: the counter a day after its last use (see `next_fence!`), so per-id lock
//! names do not grow Redis without bound. Releases are announced on a pub/sub channel with
//! the same name as the key, so a waiter subscribes only to the locks it waits for. The
//! payload is the releasing client's instance id: a process ignores its own announcements,
//! having already woken its waiters.

use std::sync::LazyLock;

use crate::util::error::LockError;

/// A script's body and SHA1, sent by hash (EVALSHA) and by body only after `NOSCRIPT`.
pub(crate) struct Script {
    pub(crate) body: &'static str,
    pub(crate) sha: String,
    /// Whether running it twice has the effect and the answer of running it once, so the
    /// transport may send it again when the connection it went out on turns out closed.
    /// A release run twice answers "not ours" the second time: that would report a lock
    /// it had just released as expired.
    pub(crate) resend_safe: bool,
}

impl Script {
    fn new(body: &'static str) -> Script {
        Script {
            body,
            sha: redis::Script::new(body).get_hash().to_string(),
            resend_safe: true,
        }
    }

    /// A script whose second run would answer differently: never resent.
    fn sent_once(body: &'static str) -> Script {
        Script {
            resend_safe: false,
            ..Script::new(body)
        }
    }
}

/// KEYS\[1\] lock key, KEYS\[2\] fence key; ARGV\[1\] token, ARGV\[2\] lease in ms, ARGV\[3\] `1` to
/// learn the holder's remaining lease on failure. Takes the lock if it is free: returns
/// `{1, fencing token}`; else `{0, holder's PTTL}` (or `{0}`), so a waiter knows when to
/// look again without asking separately. A key that already holds ARGV\[1\] counts as taken
/// too (its lease restarts): an earlier attempt or handover of the same acquisition whose
/// reply was lost, or this request sent again, is settled by the next attempt, and a resend
/// is harmless. A Redlock quorum's members run QUORUM_ACQUIRE instead.
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        "if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) \
            or (redis.call('get', KEYS[1]) == ARGV[1] \
                and redis.call('pexpire', KEYS[1], ARGV[2]) == 1) ",
        acquire_reply!()
    ))
});

/// KEYS\[1\] lock key, KEYS\[2\] fence key; ARGV\[1\] token, ARGV\[2\] lease in ms. ACQUIRE for one
/// server of a Redlock quorum (see `redlock.rs`), taking the lock alike (our own token
/// counts as taken) but leaving the fencing counter alone: the quorum decides the token
/// from every answer and writes it with RAISE_FENCE. A member that restarted empty then
/// has no counter until a token vouched for by a majority is written there, so it cannot
/// pass for one that knows the last token. Returns `{1, counter, server clock in µs}` or
/// `{0, holder's PTTL, counter}`, the counter as a string, or nil where there is none.
pub(crate) static QUORUM_ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local counter = redis.call('get', KEYS[2]) or false \
         if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) \
            or (redis.call('get', KEYS[1]) == ARGV[1] \
                and redis.call('pexpire', KEYS[1], ARGV[2]) == 1) then \
           local now = redis.call('time') \
           return {1, counter, now[1] .. string.format('%06d', tonumber(now[2]))} \
         end \
         return {0, redis.call('pttl', KEYS[1]), counter}",
    )
});

/// Lua that sets the local `fence` to the next fencing token of the counter in KEYS\[2\]: one
/// more than the last, and never less than the server's clock in microseconds (`TIME`,
/// allowed in scripts since they replicate their effects). The counter then expires a day
/// after its last use. A counter that expired, or that a restart without persistence lost,
/// starts again above every token it gave out, as long as the server's clock has not gone
/// back past them: tokens grow with the clock, one acquisition at a time, and an
/// acquisition takes far longer than a microsecond. Three commands (TIME, GET, and one
/// SET that writes the token and the expiry together): with the clock floor, nearly every
/// acquisition writes the counter anyway, so an INCR and a separate PEXPIRE would only add
/// work to every acquisition.
macro_rules! next_fence {
    () => {
        "local now = redis.call('time') \
         local floor = now[1] .. string.format('%06d', tonumber(now[2])) \
         local fence = tonumber(redis.call('get', KEYS[2]) or '0') + 1 \
         local written = string.format('%d', fence) \
         if fence < tonumber(floor) then \
           fence = tonumber(floor) \
           written = floor \
         end \
         redis.call('set', KEYS[2], written, 'PX', 86400000) "
    };
}

/// The end of both acquisition scripts, after the condition that the lock is ours: the
/// fencing token when it is, else (if asked) the holder's remaining lease.
macro_rules! acquire_reply {
    () => {
        concat!(
            "then ",
            next_fence!(),
            "return {1, fence} \
         end \
         if ARGV[3] == '1' then \
           return {0, redis.call('pttl', KEYS[1])} \
         end \
         return {0}"
        )
    };
}
use {acquire_reply, next_fence};

/// KEYS\[1\] fence key; ARGV\[1\] a fencing token. Raises the counter to at least that token,
/// so that a Redlock acquisition's token (the maximum over its majority) is known to a
/// majority (see `redlock.rs`); also creates the counter on a member that has none. Returns 1. The counter expires like `next_fence!`'s.
pub(crate) static RAISE_FENCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if tonumber(redis.call('get', KEYS[1]) or '0') < tonumber(ARGV[1]) then \
           redis.call('set', KEYS[1], ARGV[1]) \
         end \
         redis.call('pexpire', KEYS[1], 86400000) \
         return 1",
    )
});

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
    let scripts: [(&str, &Script, &str); 9] = [
        ("acquire", &ACQUIRE, "SET, GET, PEXPIRE, TIME and PTTL"),
        (
            "quorum acquire",
            &QUORUM_ACQUIRE,
            "GET, SET, PEXPIRE, TIME and PTTL",
        ),
        ("quorum renewal", &EXTEND_OR_RESTORE, "GET, PEXPIRE and SET"),
        ("raise fence", &RAISE_FENCE, "GET, SET and PEXPIRE"),
        ("release", &RELEASE, "GET, DEL and PUBLISH"),
        ("extend", &EXTEND, "GET and PEXPIRE"),
        (
            "handoff",
            &HANDOFF,
            "GET, PUBSUB NUMSUB, DEL, PUBLISH, SET, TIME and PEXPIRE",
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
            format!("the {name} script calls {commands} on the lock's key, its fencing counter and its pub/sub channel")
        })
}

/// KEYS\[1\] lock key; ARGV\[1\] token, ARGV\[2\] announcement payload.
/// Returns 1 if released, 0 if the key was not ours (expired, or another owner's).
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::sent_once(
        "if redis.call('get', KEYS[1]) == ARGV[1] then \
           redis.call('del', KEYS[1]) \
           redis.call('publish', KEYS[1], ARGV[2]) \
           return 1 \
         end \
         return 0",
    )
});

/// KEYS\[1\] lock key; ARGV\[1\] token, ARGV\[2\] new lease in ms. Returns 1 if extended, else 0.
pub(crate) static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('get', KEYS[1]) == ARGV[1] then \
           return redis.call('pexpire', KEYS[1], ARGV[2]) \
         end \
         return 0",
    )
});

/// KEYS\[1\] lock key; ARGV\[1\] token, ARGV\[2\] new lease in ms. Renewal on one server of a
/// Redlock quorum: extends the lock if it holds our token, and writes it again if the key
/// is absent (the server restarted empty, or the key expired there while the majority kept
/// it), so a restarted member rejoins the holding set instead of leaving it for good.
/// Another owner's key is never touched; running it twice is running it once. Returns 1
/// if the key now holds our token, else 0.
pub(crate) static EXTEND_OR_RESTORE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local owner = redis.call('get', KEYS[1]) \
         if owner == ARGV[1] then \
           return redis.call('pexpire', KEYS[1], ARGV[2]) \
         end \
         if not owner then \
           redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) \
           return 1 \
         end \
         return 0",
    )
});

/// KEYS\[1\] lock key, KEYS\[2\] fence key; ARGV\[1\] old token, ARGV\[2\] new token, ARGV\[3\] new
/// lease in ms, ARGV\[4\] how many of the key's subscribers are this process's own, ARGV\[5\]
/// announcement payload. Passes the lock straight to the next waiter of this process,
/// without it ever being free: returns the new owner's fencing token (> 0). When other
/// processes wait too (more subscribers than our own), it releases to everyone instead, so
/// they get their fair chance: returns -1. Returns 0 if the key was not ours. A key that
/// already holds the new token (this request sent again after its reply was lost) counts
/// as handed over: its lease restarts from this request (the waiter counts it from when
/// this request was sent) and the reply is the counter's current value. Not resent even so:
/// run again after it released to everyone, it would find the key gone or another's and
/// answer "not ours"; the releaser settles an unknown outcome in the background instead.
pub(crate) static HANDOFF: LazyLock<Script> = LazyLock::new(|| {
    Script::sent_once(concat!(
        "local owner = redis.call('get', KEYS[1]) \
         if owner == ARGV[2] then \
           redis.call('pexpire', KEYS[1], ARGV[3]) \
           return tonumber(redis.call('get', KEYS[2]) or '1') \
         end \
         if owner ~= ARGV[1] then \
           return 0 \
         end \
         if redis.call('pubsub', 'numsub', KEYS[1])[2] > tonumber(ARGV[4]) then \
           redis.call('del', KEYS[1]) \
           redis.call('publish', KEYS[1], ARGV[5]) \
           return -1 \
         end \
         redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) ",
        next_fence!(),
        "return fence"
    ))
});

/// KEYS\[1\] lock key; ARGV\[1\] announcement payload. Deletes whoever holds it and wakes waiters.
/// Returns 1 if a lock was held, else 0. The fencing counter stays.
pub(crate) static RESET: LazyLock<Script> = LazyLock::new(|| {
    Script::sent_once(
        "local held = redis.call('del', KEYS[1]) \
         redis.call('publish', KEYS[1], ARGV[1]) \
         return held",
    )
});

/// KEYS\[1\] lock key, KEYS\[2\] fence key. Reads a lock from outside, writing nothing: nil
/// if it is not held, else `{owner token, PTTL, fencing token, subscribers of its channel}`
/// (the fencing token as a string, "0" if the lock was never acquired).
pub(crate) static INSPECT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local owner = redis.call('get', KEYS[1]) \
         if not owner then return false end \
         return {owner, redis.call('pttl', KEYS[1]), redis.call('get', KEYS[2]) or '0', \
                 redis.call('pubsub', 'numsub', KEYS[1])[2]}",
    )
});

/// The variant of `script` for a Redis Cluster: announcements on sharded pub/sub
/// (`SPUBLISH`, counted by `PUBSUB SHARDNUMSUB`), which stays on the lock's shard, where a
/// plain `PUBLISH` would be broadcast to every node. Scripts that announce nothing are
/// their own variant.
pub(crate) fn sharded(script: &Script) -> &Script {
    SHARDED
        .iter()
        .find(|(plain, _)| *plain == script.sha)
        .map_or(script, |(_, sharded)| sharded)
}

/// Each script's hash with its sharded variant, for the scripts that announce.
static SHARDED: LazyLock<Vec<(String, Script)>> = LazyLock::new(|| {
    [&*RELEASE, &*HANDOFF, &*RESET, &*INSPECT]
        .into_iter()
        .map(|plain| {
            let body = plain
                .body
                .replace("'publish'", "'spublish'")
                .replace("'numsub'", "'shardnumsub'");
            // Made once per process, for four scripts.
            let sharded = Script::new(Box::leak(body.into_boxed_str()));
            (
                plain.sha.clone(),
                Script {
                    resend_safe: plain.resend_safe,
                    ..sharded
                },
            )
        })
        .collect()
});

/// The key of a lock's fencing counter, next to the lock's key in the same hash slot.
pub(crate) fn fence_key(lock_key: &str) -> String {
    format!("{lock_key}:fence")
}
