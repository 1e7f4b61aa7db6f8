//! The in-memory store's locks that several hold at once (semaphores, shared locks): what
//! the scripts of `protocol/counted.rs` do on redis-server, on the store. A name is one
//! lock whatever its kind: an exclusive lease and a set of holders never share a key.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{Holders, Memory, Store, lease_end};
use crate::transport::reply::Reply;

impl Holders {
    /// Whether any lease of them has time left at `now`.
    pub(super) fn any_live(&self, now: Instant) -> bool {
        self.ends.values().any(|ends| *ends > now)
    }
}

impl Store {
    /// `key`'s holders with time left, the others swept out; `None` once there are none
    /// (then the key is gone, as the hash expires with its last lease).
    pub(super) fn live_holders(&mut self, key: &str, now: Instant) -> Option<&mut Holders> {
        if let Some(holders) = self.holders.get_mut(key) {
            holders.ends.retain(|_, ends| *ends > now);
            if holders.ends.is_empty() {
                self.holders.remove(key);
            }
        }
        self.holders.get_mut(key)
    }

    /// How long the last of `key`'s holders has left, if any hold it.
    pub(super) fn holders_left(&mut self, key: &str, now: Instant) -> Option<(&str, Duration)> {
        let holders = self.live_holders(key, now)?;
        let last = holders.ends.values().max().copied().unwrap_or(now);
        Some((holders.kind.as_str(), last - now))
    }
}

impl Memory {
    /// COUNTED_ACQUIRE: `{1, fence}`, `{0, ms until a holder's lease ends}`, or
    /// `{-1, what the key holds}`.
    pub(super) fn counted_acquire(
        &self,
        key: &str,
        value: &str,
        lease: Duration,
        kind: &str,
        fenced: bool,
    ) -> Reply {
        let now = Instant::now();
        let mut store = self.store(now);
        let answer = |parts: [Reply; 2]| Reply::Array(parts.into());
        if let Some(held) = store.live(key, now) {
            return match kind {
                "shared" => answer([Reply::Int(0), Reply::Int(millis(held.ends - now))]),
                _ => answer([Reply::Int(-1), Reply::Bulk(b"exclusive".to_vec())]),
            };
        }
        let holders = store
            .holders
            .entry(key.to_string())
            .or_insert_with(|| Holders {
                kind: kind.to_string(),
                ends: HashMap::new(),
            });
        holders.ends.retain(|_, ends| *ends > now);
        if holders.ends.is_empty() {
            holders.kind = kind.to_string();
        }
        if holders.kind != kind {
            let held_as = holders.kind.clone().into_bytes();
            return answer([Reply::Int(-1), Reply::Bulk(held_as)]);
        }
        let mine = holders.ends.contains_key(value);
        let others = holders.ends.len() - usize::from(mine);
        // One process: its wait table lets a waiting writer go before new readers.
        let room = mine || kind == "shared" || kind.parse().is_ok_and(|n: usize| others < n);
        if !room {
            let first = holders.ends.values().min().copied().unwrap_or(now);
            return answer([Reply::Int(0), Reply::Int(millis(first - now))]);
        }
        holders
            .ends
            .insert(value.to_string(), lease_end(now, lease));
        let fence = match fenced {
            true => store.next_fence(key, now),
            false => 0,
        };
        answer([Reply::Int(1), Reply::Int(fence as i64)])
    }

    /// COUNTED_EXTEND: restarts holder `value`'s lease (`lease` from now),
    /// announcing it with `payload` if given; whether it was listed with time left.
    pub(super) fn counted_extend(
        &self,
        key: &str,
        value: &str,
        lease: Duration,
        payload: Option<&str>,
    ) -> bool {
        let now = Instant::now();
        let mut store = self.store(now);
        let Some(ends) = store
            .live_holders(key, now)
            .and_then(|holders| holders.ends.get_mut(value))
        else {
            return false;
        };
        *ends = lease_end(now, lease);
        if let Some(payload) = payload {
            store.publish(key, payload);
        }
        true
    }

    /// COUNTED_HOLDERS: how many hold places of `key` now.
    pub(super) fn counted_holders(&self, key: &str) -> usize {
        let now = Instant::now();
        let mut store = self.store(now);
        store
            .live_holders(key, now)
            .map_or(0, |holders| holders.ends.len())
    }

    /// COUNTED_RELEASE: takes holder `value` out and announces it; whether it was listed
    /// with time left.
    pub(super) fn counted_release(&self, key: &str, value: &str, payload: &str) -> bool {
        let now = Instant::now();
        let mut store = self.store(now);
        let Some(holders) = store.holders.get_mut(key) else {
            return false;
        };
        let ours = holders.ends.remove(value).is_some_and(|ends| ends > now);
        store.live_holders(key, now);
        store.publish(key, payload);
        ours
    }
}

fn millis(left: Duration) -> i64 {
    i64::try_from(left.as_millis()).unwrap_or(i64::MAX)
}
