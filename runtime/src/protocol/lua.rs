//! What every script file shares: the [`Script`] type, and the Lua pieces several scripts
//! are made of (the next fencing token, the grant from the queue of waiting processes).

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
    pub(crate) fn new(body: &'static str) -> Script {
        Script {
            body,
            sha: redis::Script::new(body).get_hash().to_string(),
            resend_safe: true,
        }
    }

    /// A script whose second run would answer differently: never resent.
    pub(crate) fn sent_once(body: &'static str) -> Script {
        Script {
            resend_safe: false,
            ..Script::new(body)
        }
    }
}

/// Lua that sets the local `fence` to the next fencing token of the counter in KEYS\[2\]
/// (and `written` to it as a string): one more than the last, and never less than the
/// server's clock in microseconds (`TIME`, allowed in scripts since they replicate their
/// effects). The counter then expires a day after its last use. A counter that expired,
/// that a restart without persistence lost, or that a restart brought back older (from a
/// snapshot, or an AOF that lost its last second) starts again above every token it gave
/// out, as long as the server's clock has not gone back past them: tokens grow with the
/// clock, one acquisition at a time, and an acquisition takes far longer than a
/// microsecond. That last case is why every token is floored, not only a missing counter's
/// first: an `INCR` that took the clock only when it found no counter would cost the server
/// fewer commands per token, and give out the lost tokens again after such a restart. Three
/// commands (TIME, GET, and one SET that writes the token and the expiry together): with
/// the clock floor, nearly every acquisition writes the counter anyway, so an INCR and a
/// separate PEXPIRE would only add work to every acquisition. The floor is computed as a
/// number, not as a string of seconds and zero-padded microseconds that is then parsed
/// (less work for the server per token, the same tokens): microseconds since 1970 stay
/// below 2^53, where Lua's numbers (doubles) and `%d` are exact, for two more centuries.
macro_rules! next_fence {
    () => {
        "local now = redis.call('time') \
         local fence = tonumber(redis.call('get', KEYS[2]) or '0') + 1 \
         local floor = tonumber(now[1]) * 1000000 + tonumber(now[2]) \
         if fence < floor then fence = floor end \
         local written = string.format('%d', fence) \
         redis.call('set', KEYS[2], written, 'PX', 86400000) "
    };
}

/// Lua that hands the lock, whose key the running script has found to hold the releaser's
/// value ARGV\[1\], to the first process in its queue (KEYS\[3\]) that still listens: the key
/// is written with that entry's owner value and lease, the fencing counter advanced if the
/// entry asks for a token (its lease is followed by `f`; else the token is 0 and the
/// counter is left alone, as for ACQUIRE without `f`), and the new holder told on its
/// process's inbox channel (`<lock key>:<instance id>`, which only that process subscribes
/// to) with `<fencing token> <owner value>`. `PUBLISH` answers how
/// many received it: none means that process is gone (its pub/sub connection closed, so it
/// crashed or exited), and the next entry is tried. Then runs `$granted` (a `return`).
/// Entries of the releasing client itself are handed the lock like any other: dropping them
/// (its waiters are served by its wait table) was tried, and the model checker showed a
/// background release that landed late dropping a live waiter's entry and announcing the
/// release under this client's id, which the client ignores, so the waiter slept on a free
/// lock. An acquisition that runs out of time leaves the queue in its last attempt instead.
/// Stops, leaving the key alone, at the entry equal to the local `offered` (a handover's
/// own waiter, given the lock by the script itself). Entries are
/// `<lease in ms>[f] <instance id> <owner value>` (see [`queue_entry`]).
macro_rules! grant_next {
    ($granted:literal) => {
        concat!(
            "local entry = redis.call('lpop', KEYS[3]) \
             while entry do \
               if entry == offered then break end \
               local lease, fenced, inbox, value = \
                 string.match(entry, '^(%d+)(f?) (%S+) (.*)$') \
               if value and value ~= ARGV[1] then \
                 redis.call('set', KEYS[1], value, 'PX', lease) \
                 local token = '0' \
                 if fenced == 'f' then ",
            next_fence!(),
            "      token = written \
                 end \
                 if redis.call('publish', KEYS[1] .. ':' .. inbox, token .. ' ' .. value) > 0 then ",
            $granted,
            "    end \
               end \
               entry = redis.call('lpop', KEYS[3]) \
             end "
        )
    };
}
pub(crate) use grant_next;
pub(crate) use next_fence;
