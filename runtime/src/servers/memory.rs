//! The in-memory backend ([`ClientBuilder::in_memory`](crate::ClientBuilder::in_memory)):
//! one client's locks in a store of this process, for tests that should not need Redis.
//!
//! Each operation does what its Lua script in `scripts.rs` does on redis-server, and
//! answers what it answers: a key holds an owner value until its lease ends (a key past
//! its end is absent, as Redis never returns an expired key), our own value counts as
//! taken, a fencing counter gives strictly increasing tokens that never fall below the
//! clock in microseconds and is forgotten a day after its last use, and a release, reset or
//! handover to everyone announces on the key's channel. The store is one mutex: every
//! operation is atomic, as a script is. `tests/tests/memory_differential.rs` runs random
//! operation sequences here and on redis-server and compares every answer.
//!
//! Announcements go to the client's one listener (`subscriber.rs`), which treats them as
//! it treats a pub/sub message; the store counts its subscriptions, for `INSPECT`'s
//! waiting processes and the handover's "others wait too".

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::util::sync::{Mutex, MutexGuard, lock};

/// How long a fencing counter outlives its last use (`next_fence!` in `scripts.rs`).
const COUNTER_KEPT: Duration = Duration::from_secs(86_400);

/// How often expired keys and counters are swept out, so that per-id lock names do not
/// grow the store without bound (Redis expires them itself).
const PURGE_EVERY: Duration = Duration::from_secs(1);

/// When a lease of `lease` from `now` ends; a lease too long for this platform's clock
/// (some centuries) ends after a century instead, never a panic.
fn lease_end(now: Instant, lease: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);
    now.checked_add(lease)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

/// A client's in-process store.
pub(crate) struct Memory {
    store: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    /// Lock key: its owner value and when its lease ends.
    locks: HashMap<String, Lease>,
    /// Lock key: its fencing counter's last token and when the counter expires.
    counters: HashMap<String, (u64, Instant)>,
    /// Lock key: the holders of a lock several may hold (see `memory/counted.rs`).
    holders: HashMap<String, Holders>,
    /// The channels (lock keys) the client's listener subscribes to.
    subscribed: HashSet<String>,
    /// Where announcements go: the client's listener, once it listens.
    listener: Option<mpsc::UnboundedSender<Announcement>>,
    next_purge: Option<Instant>,
}

/// The holders of one lock several may hold (see `memory/counted.rs`).
struct Holders {
    /// `shared`, or the number of permits (the hash's `#kind`).
    kind: String,
    /// Each holder's owner value, and when its lease ends.
    ends: HashMap<String, Instant>,
}

struct Lease {
    value: String,
    ends: Instant,
}

/// A release announced on a lock's channel, as `PUBLISH` would send it.
pub(crate) struct Announcement {
    pub(crate) channel: String,
    pub(crate) payload: String,
}

/// What an acquisition attempt (ACQUIRE) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Taken now, or already held under the same value: its lease restarted.
    Taken { fence: u64 },
    /// Held by another value, for this much longer.
    Held { remaining: Duration },
    /// The name is used as another kind of lock (a semaphore of this many permits).
    Other { held_as: String },
}

/// What a handover (HANDOFF) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handoff {
    /// The key holds the new value, with this fencing token.
    Handed { fence: u64 },
    /// Others wait too: released to everyone and announced.
    Released,
    /// The key was not the old value's.
    NotOurs,
}

/// A held lock, as INSPECT reads it.
pub(crate) struct Inspected {
    pub(crate) value: String,
    pub(crate) remaining: Duration,
    /// 0 when the lock has no counter.
    pub(crate) fence: u64,
    pub(crate) subscribers: u64,
}

impl Memory {
    pub(crate) fn new() -> Memory {
        Memory {
            store: Mutex::new(Store::default()),
        }
    }

    /// ACQUIRE: takes `key` for `value` if it is free or already `value`'s; with `fenced`,
    /// draws the next fencing token, else leaves the counter alone (token 0).
    pub(crate) fn acquire(&self, key: &str, value: &str, lease: Duration, fenced: bool) -> Attempt {
        let now = Instant::now();
        let mut store = self.store(now);
        if let Some((kind, remaining)) = store.holders_left(key, now) {
            return match kind {
                // Shared holders: the exclusive acquisition waits for them.
                "shared" => Attempt::Held { remaining },
                other => Attempt::Other {
                    held_as: other.to_string(),
                },
            };
        }
        match store.live(key, now) {
            Some(held) if held.value != value => {
                return Attempt::Held {
                    remaining: held.ends - now,
                };
            }
            Some(ours) => ours.ends = lease_end(now, lease),
            None => store.set(key, value, lease_end(now, lease)),
        }
        Attempt::Taken {
            fence: match fenced {
                true => store.next_fence(key, now),
                false => 0,
            },
        }
    }

    /// EXTEND: restarts the lease of `key` if it holds `value`.
    pub(crate) fn extend(&self, key: &str, value: &str, lease: Duration) -> bool {
        let now = Instant::now();
        match self.store(now).live(key, now) {
            Some(ours) if ours.value == value => {
                ours.ends = lease_end(now, lease);
                true
            }
            Some(_) | None => false,
        }
    }

    /// KEEP: leaves `key`, if it holds `value`, to expire `hold` from now, and announces it.
    pub(crate) fn keep(&self, key: &str, value: &str, hold: Duration, payload: &str) -> bool {
        let now = Instant::now();
        let mut store = self.store(now);
        match store.live(key, now) {
            Some(ours) if ours.value == value => ours.ends = lease_end(now, hold),
            Some(_) | None => return false,
        }
        store.publish(key, payload);
        true
    }

    /// RELEASE: frees `key` if it holds `value`, and announces it with `payload`.
    pub(crate) fn release(&self, key: &str, value: &str, payload: &str) -> bool {
        let now = Instant::now();
        let mut store = self.store(now);
        if store.live(key, now).is_none_or(|held| held.value != value) {
            return false;
        }
        store.locks.remove(key);
        store.publish(key, payload);
        true
    }

    /// RESET: frees `key` whoever holds it, announcing it even when it was free; whether
    /// it was held. The fencing counter stays.
    pub(crate) fn reset(&self, key: &str, payload: &str) -> bool {
        let now = Instant::now();
        let mut store = self.store(now);
        let held = store.live(key, now).is_some() | store.live_holders(key, now).is_some();
        store.locks.remove(key);
        store.holders.remove(key);
        store.publish(key, payload);
        held
    }

    /// HANDOFF: passes `key` from value `old` to value `new` without it ever being free,
    /// unless more than `own` subscribers wait for it (then released to everyone), with the
    /// next fencing token if `fenced` (else the reply is 1 and the counter stays). A key
    /// that holds `new` already was handed by an earlier run: its lease restarts.
    pub(crate) fn handoff(
        &self,
        key: &str,
        [old, new]: [&str; 2],
        lease: Duration,
        fenced: bool,
        own: u64,
        payload: &str,
    ) -> Handoff {
        let now = Instant::now();
        let mut store = self.store(now);
        match store.live(key, now) {
            Some(handed) if handed.value == new => {
                handed.ends = lease_end(now, lease);
                // The script reads a missing counter as 1.
                let fence = store.counter(key, now).unwrap_or(1);
                return Handoff::Handed { fence };
            }
            Some(held) if held.value == old => {}
            Some(_) | None => return Handoff::NotOurs,
        }
        if store.subscribers(key) > own {
            store.locks.remove(key);
            store.publish(key, payload);
            return Handoff::Released;
        }
        store.set(key, new, lease_end(now, lease));
        Handoff::Handed {
            fence: match fenced {
                true => store.next_fence(key, now),
                false => 1,
            },
        }
    }

    /// INSPECT: the lock held in `key`, if any, writing nothing.
    pub(crate) fn inspect(&self, key: &str) -> Option<Inspected> {
        let now = Instant::now();
        let mut store = self.store(now);
        let held = store.live(key, now)?;
        let (value, remaining) = (held.value.clone(), held.ends - now);
        Some(Inspected {
            value,
            remaining,
            fence: store.counter(key, now).unwrap_or(0),
            subscribers: store.subscribers(key),
        })
    }

    /// `GET`: the value `key` holds.
    pub(crate) fn get(&self, key: &str) -> Option<String> {
        let now = Instant::now();
        self.store(now)
            .live(key, now)
            .map(|held| held.value.clone())
    }

    /// The held lock keys after `prefix` (both layouts of `keys.rs`: `<prefix>{...`
    /// and `<prefix>}...`), as the walk of `scan.rs` finds them.
    pub(crate) fn keys(&self, prefix: &str) -> Vec<String> {
        let now = Instant::now();
        let mut store = self.store(now);
        store.holders.retain(|_, holders| holders.any_live(now));
        store
            .locks
            .iter()
            .filter(|(key, held)| {
                held.ends > now
                    && key
                        .strip_prefix(prefix)
                        .is_some_and(|rest| rest.starts_with(['{', '}']))
            })
            .map(|(key, _)| key.clone())
            .chain(
                store
                    .holders
                    .keys()
                    .filter(|key| {
                        key.strip_prefix(prefix)
                            .is_some_and(|rest| rest.starts_with(['{', '}']))
                    })
                    .cloned(),
            )
            .collect()
    }

    /// The client's listener: announcements on the channels it subscribes to come here.
    pub(crate) fn listen(&self) -> mpsc::UnboundedReceiver<Announcement> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.store(Instant::now()).listener = Some(sender);
        receiver
    }

    /// The listener subscribes to `key`'s announcements.
    pub(crate) fn subscribe(&self, key: &str) {
        self.store(Instant::now())
            .subscribed
            .insert(key.to_string());
    }

    /// The listener unsubscribes from `keys`' announcements.
    pub(crate) fn unsubscribe(&self, keys: &[String]) {
        let mut store = self.store(Instant::now());
        for key in keys {
            store.subscribed.remove(key);
        }
    }

    /// The store, with what expired before `now` swept out from time to time.
    fn store(&self, now: Instant) -> MutexGuard<'_, Store> {
        let mut store = lock(&self.store);
        if store.next_purge.is_none_or(|at| now >= at) {
            store.locks.retain(|_, held| held.ends > now);
            store.counters.retain(|_, (_, expires)| *expires > now);
            store.holders.retain(|_, holders| holders.any_live(now));
            store.next_purge = Some(now + PURGE_EVERY);
        }
        store
    }
}

impl Store {
    /// `key`'s lease, unless it ended (then the key is gone, as an expired key in Redis).
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Lease> {
        if self.locks.get(key).is_some_and(|held| held.ends <= now) {
            self.locks.remove(key);
        }
        self.locks.get_mut(key)
    }

    fn set(&mut self, key: &str, value: &str, ends: Instant) {
        let value = value.to_string();
        self.locks.insert(key.to_string(), Lease { value, ends });
    }

    /// `key`'s fencing counter, unless it expired.
    fn counter(&self, key: &str, now: Instant) -> Option<u64> {
        self.counters
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(last, _)| *last)
    }

    /// `next_fence!`: one more than the last token, never less than the clock in
    /// microseconds; the counter then expires a day later.
    fn next_fence(&mut self, key: &str, now: Instant) -> u64 {
        let floor = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_micros() as u64);
        let fence = (self.counter(key, now).unwrap_or(0) + 1).max(floor);
        self.counters
            .insert(key.to_string(), (fence, now + COUNTER_KEPT));
        fence
    }

    /// `PUBSUB NUMSUB`: the client's listener is the store's only possible subscriber.
    fn subscribers(&self, key: &str) -> u64 {
        u64::from(self.subscribed.contains(key))
    }

    /// `PUBLISH`: to the listener, if it subscribes to `channel`.
    fn publish(&mut self, channel: &str, payload: &str) {
        if !self.subscribed.contains(channel) {
            return;
        }
        let announcement = Announcement {
            channel: channel.to_string(),
            payload: payload.to_string(),
        };
        if let Some(listener) = &self.listener
            && listener.send(announcement).is_err()
        {
            // The listener ended with its client.
            self.listener = None;
        }
    }
}

mod counted;
mod requests;
#[cfg(test)]
mod tests;
