//! The scripts of locks that several callers hold at once: a semaphore of N permits, and
//! the shared (read) side of a read-write lock.
//!
//! Their holders live in a hash at the lock's own key, so that one name is one lock
//! whatever its kind: field `#kind` says which (`shared`, or the number of permits), and
//! each holder's owner value maps to when its lease ends, in ms of the server's clock
//! (`TIME`). A holder whose lease ended is swept out by the next script that reads the
//! hash, and the key itself expires with the last lease, so a set of crashed holders
//! leaves nothing behind. An exclusive holder of the same name is the plain string key
//! (see `ACQUIRE`): shared holders wait for it, and it for them; a semaphore and any
//! other use of its name are refused (`{-1, what the key holds}`), never mixed into a
//! wrong count. Shared acquisitions let a waiting exclusive one go first: while a process
//! that still listens is queued for the lock, a new shared holder is not let in, so a
//! stream of readers cannot starve a writer.

use std::sync::LazyLock;

use crate::protocol::lua::{Script, grant_next, next_fence};

/// Lua that reads the server's clock into the local `now`, in ms.
macro_rules! server_ms {
    () => {
        "local clock = redis.call('time') \
         local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) "
    };
}

/// Lua that sweeps the expired holders out of the hash in KEYS\[1\] and counts the others
/// (`holders`, besides ARGV\[1\], whose presence is `mine`), with the first and last ends
/// of their leases (`first_end`, `last_end`).
macro_rules! count_holders {
    () => {
        "local holders, mine, first_end, last_end = 0, false, nil, 0 \
         local all = redis.call('hgetall', KEYS[1]) \
         for i = 1, #all, 2 do \
           local field, ends = all[i], tonumber(all[i + 1]) \
           if field ~= '#kind' then \
             if ends <= now then \
               redis.call('hdel', KEYS[1], field) \
             elseif field == ARGV[1] then \
               mine = true \
             else \
               holders = holders + 1 \
               if not first_end or ends < first_end then first_end = ends end \
               if ends > last_end then last_end = ends end \
             end \
           end \
         end "
    };
}

/// KEYS\[1\] lock key, KEYS\[2\] fence key, KEYS\[3\] queue key; ARGV\[1\] token, ARGV\[2\]
/// lease in ms, ARGV\[3\] the kind (`shared`, or the number of permits), ARGV\[4\] flags
/// (`f` for a fencing token). Takes a place among the holders if there is one: returns
/// `{1, fencing token}` (`{1, 0}` without `f`); else `{0, ms until a holder's lease
/// ends}`, for the waiter to look again then if nobody announced a release before; or
/// `{-1, what the key holds}` when the name is used as another kind of lock. A key that
/// already lists ARGV\[1\] counts as taken (its lease restarts): an attempt whose reply was
/// lost is settled by the next, and the script may be sent twice.
pub(crate) static COUNTED_ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        server_ms!(),
        "local lease = tonumber(ARGV[2]) \
         local kind = redis.call('type', KEYS[1]).ok \
         if kind == 'string' then \
           if ARGV[3] == 'shared' then return {0, redis.call('pttl', KEYS[1])} end \
           return {-1, 'exclusive'} \
         end \
         if kind ~= 'none' and kind ~= 'hash' then return {-1, kind} end \
         local stored = redis.call('hget', KEYS[1], '#kind') \
         if stored and stored ~= ARGV[3] then return {-1, stored} end ",
        count_holders!(),
        "local room = mine \
         if not mine then \
           if ARGV[3] == 'shared' then \
             room = true \
             local entry = redis.call('lindex', KEYS[3], 0) \
             while entry do \
               local inbox = string.match(entry, '^%d+f? (%S+) ') \
               if inbox and redis.call('pubsub', 'numsub', KEYS[1] .. ':' .. inbox)[2] > 0 then \
                 local pttl = redis.call('pttl', KEYS[1]) \
                 return {0, pttl > 0 and pttl or 100} \
               end \
               redis.call('lpop', KEYS[3]) \
               entry = redis.call('lindex', KEYS[3], 0) \
             end \
           else \
             room = holders < tonumber(ARGV[3]) \
           end \
         end \
         if not room then return {0, first_end - now} end \
         redis.call('hset', KEYS[1], '#kind', ARGV[3], ARGV[1], now + lease) \
         if redis.call('pttl', KEYS[1]) < lease then redis.call('pexpire', KEYS[1], lease) end \
         if not string.find(ARGV[4], 'f') then return {1, 0} end ",
        next_fence!(),
        "return {1, fence}"
    ))
});

/// KEYS\[1\] lock key; ARGV\[1\] token, ARGV\[2\] new lease in ms, ARGV\[3\] (optional) an
/// announcement payload. Restarts a holder's lease if it is still listed with time left:
/// renewal and `extend`, and, with ARGV\[3\], the release of a holder before its minimum hold
/// is over (`min_hold`), whose place is kept until the hold ends and the change announced,
/// so that waiters look again. Returns 1 if extended, else 0; run twice, it answers alike.
pub(crate) static COUNTED_EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        "if redis.call('type', KEYS[1]).ok ~= 'hash' then return 0 end ",
        server_ms!(),
        "local ends = tonumber(redis.call('hget', KEYS[1], ARGV[1])) \
         if not ends or ends <= now then return 0 end \
         local lease = tonumber(ARGV[2]) \
         redis.call('hset', KEYS[1], ARGV[1], now + lease) \
         if redis.call('pttl', KEYS[1]) < lease then redis.call('pexpire', KEYS[1], lease) end \
         if ARGV[3] then redis.call('publish', KEYS[1], ARGV[3]) end \
         return 1"
    ))
});

/// KEYS\[1\] lock key, KEYS\[2\] fence key, KEYS\[3\] queue key; ARGV\[1\] token, ARGV\[2\]
/// announcement payload (ARGV\[3\], a queue entry for exclusive releases, is ignored).
/// Takes the holder out and announces it, so that waiters look again. The last holder out
/// deletes the key and hands the lock to the first exclusive acquisition queued for it
/// that still listens (see `grant_next!`). Returns 1 (2 when handed on) if the holder was
/// listed with time left, else 0. Not resent: a second run would answer 0.
pub(crate) static COUNTED_RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::sent_once(concat!(
        "if redis.call('type', KEYS[1]).ok ~= 'hash' then return 0 end ",
        server_ms!(),
        "local ends = tonumber(redis.call('hget', KEYS[1], ARGV[1])) \
         if not ends then return 0 end \
         redis.call('hdel', KEYS[1], ARGV[1]) \
         local ours = ends > now ",
        count_holders!(),
        "if holders == 0 then \
           redis.call('del', KEYS[1]) \
           local offered = false ",
        grant_next!("return ours and 2 or 0"),
        "else \
           redis.call('pexpire', KEYS[1], last_end - now) \
         end \
         redis.call('publish', KEYS[1], ARGV[2]) \
         return ours and 1 or 0"
    ))
});

/// KEYS\[1\] lock key. How many hold a semaphore's or shared lock's places now (leases not
/// yet ended), writing nothing; 0 when the key holds no such lock.
pub(crate) static COUNTED_HOLDERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        "if redis.call('type', KEYS[1]).ok ~= 'hash' then return 0 end ",
        server_ms!(),
        "local holders = 0 \
         local all = redis.call('hgetall', KEYS[1]) \
         for i = 1, #all, 2 do \
           if all[i] ~= '#kind' and tonumber(all[i + 1]) > now then holders = holders + 1 end \
         end \
         return holders"
    ))
});
