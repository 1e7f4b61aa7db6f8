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
//!
//! Waiting processes also queue, in `<prefix>{<name>}:queue` (same slot), oldest first: a
//! waiter that finds the lock taken joins it in the same script (ACQUIRE), and a release
//! hands the lock straight to the first queued process that still listens, telling only
//! that process (`grant_next!`). So a release wakes one process, not all of them to race
//! for the lock, and the lock is never free between two holders. A release with nobody
//! queued frees the lock and announces it to everyone, as above.

use std::sync::LazyLock;

use crate::protocol::counted::{COUNTED_ACQUIRE, COUNTED_EXTEND, COUNTED_RELEASE};
pub(crate) use crate::protocol::lua::Script;
use crate::protocol::lua::{grant_next, next_fence};

/// KEYS\[1\] lock key, KEYS\[2\] fence key, KEYS\[3\] queue key; ARGV\[1\] token, ARGV\[2\]
/// lease in ms, ARGV\[3\] flags: `f` for a fencing token (without it the counter is left
/// alone and the token is 0: an acquisition whose caller never reads its token, see
/// `Lock::fencing`), and how the acquisition stands in the lock's queue of waiting
/// processes: `q` when an earlier attempt queued it, `j` to queue it on failure, `l` to
/// take it out of the queue on failure (the last attempt of one that runs out of time); ARGV\[4\]
/// the client's instance id. Its entry there is ARGV\[2\] (followed by `f` with a fencing
/// token), ARGV\[4\] and ARGV\[1\] (see [`queue_entry`]); the queue lives for the holder's remaining lease and two of the
/// waiter's past the last entry (two days at most): a waiter sleeps no longer than the
/// holder's lease before it looks again (and queues again if it must). Takes the lock if it
/// is free: returns `{1, fencing token}` (`{1, 0}` without `f`), and takes the entry out of
/// the queue; else `{0, holder's PTTL}`, so a waiter
/// knows when to look again without asking separately, its entry at the queue's end if
/// it was not in it already (a releaser then hands the lock to it: see [`RELEASE`]). A key
/// that already holds ARGV\[1\] counts as taken too (its lease restarts): an earlier attempt
/// or handover of the same acquisition whose reply was lost, or this request sent again, is
/// settled by the next attempt. A resend, or an earlier attempt that reaches the server
/// late, is harmless too: an entry is queued only where it is not already, and taking the
/// lock removes every copy (the model checker found a resent first joining attempt queuing
/// an acquisition twice when the look was skipped for it).
/// A key that holds the holders of a shared lock (a hash: see [`COUNTED_ACQUIRE`]) is
/// taken too, and the exclusive acquisition waits and queues as for any holder; one that
/// holds a semaphore's is another use of the name: `{-1, what it holds}`.
/// A Redlock quorum's members run QUORUM_ACQUIRE instead.
///
/// No script takes more than 4 arguments besides its 3 keys: a server that wants a password
/// refuses a command of more than 10 parts from a connection that has not authenticated
/// with a protocol error, instead of the `NOAUTH` that says what is wrong.
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        "local entry = ARGV[2] .. (string.find(ARGV[3], 'f') and 'f' or '') .. ' ' .. ARGV[4] \
           .. ' ' .. ARGV[1] \
         local taken = redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) \
         local owner = taken or redis.pcall('get', KEYS[1]) \
         if taken or (owner == ARGV[1] \
                      and redis.call('pexpire', KEYS[1], ARGV[2]) == 1) then \
           if string.find(ARGV[3], '[qjl]') then redis.call('lrem', KEYS[3], 0, entry) end \
           if not string.find(ARGV[3], 'f') then return {1, 0} end ",
        next_fence!(),
        "  return {1, fence} \
         end \
         if type(owner) == 'table' and owner.err then \
           local kind = redis.pcall('hget', KEYS[1], '#kind') \
           if kind ~= 'shared' then \
             return {-1, type(kind) == 'string' and kind or 'another kind'} \
           end \
         end \
         local pttl = redis.call('pttl', KEYS[1]) \
         if string.find(ARGV[3], 'l') then \
           redis.call('lrem', KEYS[3], 0, entry) \
         elseif string.find(ARGV[3], 'j') then \
           if not redis.call('lpos', KEYS[3], entry) then \
             redis.call('rpush', KEYS[3], entry) \
           end \
           redis.call('pexpire', KEYS[3], \
             math.min(math.max(pttl, 0) + 2 * tonumber(ARGV[2]), 172800000)) \
         end \
         return {0, pttl}"
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

/// KEYS\[1\] lock key, KEYS\[2\] fence key, KEYS\[3\] queue key; ARGV\[1\] token, ARGV\[2\]
/// announcement payload, ARGV\[3\] (optional) a queue entry to take out first: that of an
/// acquisition that ended without the lock, freeing a lock handed to it meanwhile.
/// Returns 2 if the lock was ours and is now handed to the first listening process of
/// its queue (see `grant_next!`), 1 if it was ours and is now free, announced on its
/// channel to every waiting process, 0 if the key was not ours (expired, or another
/// owner's). The announcement is needed even when nobody is queued: exclusive acquisitions
/// of other processes queue once they listen, so the queue alone would wake them (the
/// model checker finds no violation without it), but shared and semaphore acquisitions
/// (see `counted.rs`) never queue, and one that waits on an exclusive holder of the same
/// name hears of the release only from this.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::sent_once(concat!(
        "if ARGV[3] and ARGV[3] ~= '' then redis.call('lrem', KEYS[3], 0, ARGV[3]) end \
         if redis.pcall('get', KEYS[1]) ~= ARGV[1] then return 0 end \
         local offered = false ",
        grant_next!("return 2"),
        "redis.call('del', KEYS[1]) \
         redis.call('publish', KEYS[1], ARGV[2]) \
         return 1"
    ))
});

/// KEYS\[1\] lock key; ARGV\[1\] token, ARGV\[2\] announcement payload. RELEASE on a member
/// of a Redlock quorum, where no process queues (see `Backend::queues`) and nobody is
/// handed the lock: frees the key if it holds ARGV\[1\] and announces it on its channel.
/// Without the queue's `LPOP` of RELEASE, which found nothing there every time: one
/// command less per member and release. Returns 1 if the key was ours, else 0 (also when
/// it is not a string: another kind of lock, whose holders' hash `GET` refuses).
pub(crate) static QUORUM_RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::sent_once(
        "if redis.pcall('get', KEYS[1]) ~= ARGV[1] then return 0 end \
         redis.call('del', KEYS[1]) \
         redis.call('publish', KEYS[1], ARGV[2]) \
         return 1",
    )
});

/// KEYS\[1\] lock key; ARGV\[1\] token, ARGV\[2\] how many more ms the lock stays taken,
/// ARGV\[3\] announcement payload. The release of a lock whose body ended before its
/// minimum hold (`min_hold`): instead of being deleted, the key is left to expire ARGV\[2\] ms
/// from now (sooner or later than its lease would have), and the change is announced, so
/// that waiting processes look again and sleep until the new end rather than the old one.
/// Nobody is handed the lock: the point is that nobody has it until then. Returns 1 if the
/// key was ours, else 0. Run twice, it answers alike and sets the expiry from the second
/// run, which comes within a round trip of the first.
pub(crate) static KEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end \
         redis.call('pexpire', KEYS[1], ARGV[2]) \
         redis.call('publish', KEYS[1], ARGV[3]) \
         return 1",
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

/// KEYS\[1\] lock key, KEYS\[2\] fence key, KEYS\[3\] queue key; ARGV\[1\] old token, ARGV\[2\]
/// the next waiter of this process as a queue entry (its lease in ms, `f` if it asks for a
/// fencing token, the client's instance id and its owner value: see [`queue_entry`]),
/// ARGV\[3\] how many of the key's subscribers are this process's own, ARGV\[4\]
/// announcement payload, ARGV\[5\] (optional) `1` when no request that could have queued
/// the waiter was ever sent, so queueing it needs no `LPOS` to look for its entry first.
/// Passes the lock straight to that waiter, without it ever being free: returns the new
/// owner's fencing token (> 0; 1 for a waiter without a token, whose handover leaves the
/// counter alone). When
/// another process queued first, it gets the lock instead (see `grant_next!`), and, when
/// this process listens (ARGV\[3\] > 0), the waiter joins the queue's end in the same
/// script, as its own attempt would have (the queue then lives the new holder's lease and
/// two of the waiter's): returns `{-1, the new holder's lease in ms}` (else -1);
/// when other processes wait without being queued (more subscribers than our own), it
/// releases to everyone, so they get their fair chance: returns -1 too. Returns 0 if the
/// key was not ours. A key that already holds the new token (this request sent again after
/// its reply was lost) counts as handed over: its lease restarts from this request (the
/// waiter counts it from when this request was sent) and the reply is the counter's
/// current value. Not resent even so: run again after it released to everyone, it would
/// find the key gone or another's and answer "not ours"; the releaser settles an unknown
/// outcome in the background instead.
pub(crate) static HANDOFF: LazyLock<Script> = LazyLock::new(|| {
    Script::sent_once(concat!(
        "local new_lease, fenced, _, new = string.match(ARGV[2], '^(%d+)(f?) (%S+) (.*)$') \
         local owner = redis.pcall('get', KEYS[1]) \
         if owner == new then \
           redis.call('pexpire', KEYS[1], new_lease) \
           return tonumber(redis.call('get', KEYS[2]) or '1') \
         end \
         if owner ~= ARGV[1] then \
           return 0 \
         end \
         local offered = ARGV[2] ",
        grant_next!(
            "if tonumber(ARGV[3]) > 0 then \
               if ARGV[5] == '1' or not redis.call('lpos', KEYS[3], offered) then \
                 redis.call('rpush', KEYS[3], offered) \
               end \
               redis.call('pexpire', KEYS[3], \
                 math.min(tonumber(lease) + 2 * tonumber(new_lease), 172800000)) \
               return {-1, tonumber(lease)} \
             end \
             return -1"
        ),
        "if not entry and redis.call('pubsub', 'numsub', KEYS[1])[2] > tonumber(ARGV[3]) then \
           redis.call('del', KEYS[1]) \
           redis.call('publish', KEYS[1], ARGV[4]) \
           return -1 \
         end \
         redis.call('set', KEYS[1], new, 'PX', new_lease) \
         if fenced ~= 'f' then return 1 end ",
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
/// if it is not held (or holds a semaphore's or shared lock's holders, which it does not
/// read), else `{owner token, PTTL, fencing token, subscribers of its channel}`
/// (the fencing token as a string, "0" if the lock was never acquired).
pub(crate) static INSPECT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local owner = redis.pcall('get', KEYS[1]) \
         if type(owner) ~= 'string' then return false end \
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
    [
        &*RELEASE,
        &*HANDOFF,
        &*RESET,
        &*INSPECT,
        &*KEEP,
        &*COUNTED_ACQUIRE,
        &*COUNTED_RELEASE,
        &*COUNTED_EXTEND,
    ]
    .into_iter()
    .map(|plain| {
        let body = plain
            .body
            .replace("'publish'", "'spublish'")
            .replace("'numsub'", "'shardnumsub'");
        // Made once per process, for eight scripts.
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
    // Not `format!`: this runs on every fenced Redlock call.
    let mut key = String::with_capacity(lock_key.len() + ":fence".len());
    key.push_str(lock_key);
    key.push_str(":fence");
    key
}

/// The keys every script on a lock is given: the lock's, its fencing counter's (see
/// [`fence_key`]) and its queue's, in that order (see [`LockKeys::all`]). The queue of
/// waiting processes is a list of [`queue_entry`]s, oldest first, in the lock's hash slot,
/// which expires when nobody has joined it for a while.
pub(crate) fn lock_keys(lock_key: &str) -> LockKeys<'_> {
    let mut suffixed = String::with_capacity(2 * lock_key.len() + ":fence:queue".len());
    suffixed.push_str(lock_key);
    suffixed.push_str(":fence");
    let fence_end = suffixed.len();
    suffixed.push_str(lock_key);
    suffixed.push_str(":queue");
    LockKeys {
        lock: lock_key,
        suffixed,
        fence_end,
    }
}

/// A lock's three keys, the fence's and the queue's made in one allocation: releases and
/// scripted attempts build them on every call.
pub(crate) struct LockKeys<'k> {
    lock: &'k str,
    /// The fence's key, then the queue's.
    suffixed: String,
    fence_end: usize,
}

impl LockKeys<'_> {
    /// The lock's key, its fencing counter's and its queue's.
    pub(crate) fn all(&self) -> [&str; 3] {
        let (fence, queue) = self.suffixed.split_at(self.fence_end);
        [self.lock, fence, queue]
    }
}

/// An acquisition's entry in its lock's queue: what a releaser needs to hand it the lock,
/// `<lease in ms>[f] <instance id> <owner value>`, `f` when it asks for a fencing token
/// (without it, a releaser that hands it the lock leaves the counter alone). The same for
/// every attempt of the acquisition, so each finds (and takes out) the one it put there.
pub(crate) fn queue_entry(lease_ms: &str, fenced: bool, instance_id: &str, value: &str) -> String {
    let f = if fenced { "f" } else { "" };
    format!("{lease_ms}{f} {instance_id} {value}")
}

/// The inbox channel of client `instance_id` for lock `lock_key`, where a releaser tells it
/// that the lock is handed to one of its queued acquisitions; in the lock's hash slot.
pub(crate) fn inbox_channel(lock_key: &str, instance_id: &str) -> String {
    format!("{lock_key}:{instance_id}")
}
