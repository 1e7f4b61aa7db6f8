//! The lock's queue of waiting processes in Redis (`<key>:queue`, `scripts.rs`): ACQUIRE
//! joins it, RELEASE and HANDOFF hand the lock to its first entry whose process still
//! listens (`grant_next!`), a withdraw takes an entry out.

use super::{Redis, Scripts};
use crate::state::{Time, Token};

/// An acquisition's entry, `<lease> <instance id> <owner value>`: the lease is the same
/// for every acquisition here and the instance id is the token's process, so the token
/// names it.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Entry {
    pub token: Token,
    /// Pushed by a request whose sender had stopped waiting for it: a lock handed to it
    /// may find nobody who knows it, as a late `SET` may.
    pub late: bool,
}

/// How `grant_next!` ended.
#[derive(Clone, Copy, Debug)]
pub enum Next {
    /// It reached the entry of the waiter a HANDOFF offers the lock to (taken out).
    Offered,
    /// It handed the lock to this entry's acquisition, with this fencing token. `heard`:
    /// PUBLISH on its process's inbox reached a subscriber, so the message is on its way.
    Granted {
        token: Token,
        fence: u16,
        heard: bool,
    },
    /// The queue ran out.
    Exhausted,
}

impl Redis {
    fn queued(&self, token: Token) -> bool {
        self.queue.iter().any(|e| e.token == token)
    }

    /// `LREM <queue> 0 <entry>`: every occurrence; with `join_looks_first` reverted,
    /// `LREM <queue> 1 <entry>`, the first only.
    pub fn withdraw(&mut self, token: Token, scripts: &Scripts) {
        if scripts.join_looks_first {
            self.queue.retain(|e| e.token != token);
        } else if let Some(i) = self.queue.iter().position(|e| e.token == token) {
            self.queue.remove(i);
        }
        self.forget_empty_queue();
    }

    /// ACQUIRE's failure branch with `l`: `LREM <queue> 0 <entry>`, every occurrence.
    pub fn leave(&mut self, token: Token) {
        self.queue.retain(|e| e.token != token);
        self.forget_empty_queue();
    }

    /// ACQUIRE's failure branch with `j`: the entry at the end unless `LPOS` finds it
    /// there already (with `join_looks_first` reverted, `LPOS` looks only when `q` says an
    /// earlier attempt queued it); the queue lives the holder's remaining lease and two of
    /// the waiter's more.
    pub fn join(
        &mut self,
        token: Token,
        queued: bool,
        late: bool,
        holder_expires: Time,
        scripts: &Scripts,
    ) {
        let looks = queued || scripts.join_looks_first;
        if looks && self.queued(token) {
            self.queue_expires = holder_expires + 2 * scripts.lease;
        } else {
            self.push(token, late, holder_expires, scripts);
        }
    }

    /// `RPUSH` of the entry without looking for it first (HANDOFF, for a waiter that never
    /// sent a request that could have queued it); the queue lives the holder's remaining
    /// lease and two of the waiter's more.
    pub fn push(&mut self, token: Token, late: bool, holder_expires: Time, scripts: &Scripts) {
        self.queue.push(Entry { token, late });
        self.queue_expires = holder_expires + 2 * scripts.lease;
    }

    /// `grant_next!`: pops entries; stops at `offered`; skips the token released; writes
    /// the lock under the next one's token, of whichever process, the releaser's own too,
    /// with a fresh fencing token and publishes on its process's inbox, done if that
    /// reached a subscriber (or, with `grant_skips_deaf` off, whatever PUBLISH answered),
    /// else tries the next.
    pub fn grant_next(
        &mut self,
        releaser: Token,
        offered: Option<Token>,
        now: Time,
        scripts: &Scripts,
    ) -> Next {
        let next = loop {
            if self.queue.is_empty() {
                break Next::Exhausted;
            }
            let entry = self.queue.remove(0);
            if Some(entry.token) == offered {
                break Next::Offered;
            }
            if entry.token == releaser {
                continue;
            }
            self.set(entry.token, now, scripts, entry.late);
            let fence = self.next_fence(now, scripts);
            let heard = self.subscribers & (1 << entry.token.process()) != 0;
            if heard || !scripts.grant_skips_deaf {
                break Next::Granted {
                    token: entry.token,
                    fence,
                    heard,
                };
            }
        };
        self.forget_empty_queue();
        next
    }

    /// Time passed: the queue is gone once its expiry is reached.
    pub fn expire_queue(&mut self, now: Time) {
        if self.queue_expires <= now {
            self.queue.clear();
        }
        self.forget_empty_queue();
    }

    /// Redis deletes an empty list, and its expiry with it.
    fn forget_empty_queue(&mut self) {
        if self.queue.is_empty() {
            self.queue_expires = 0;
        }
    }
}
