//! The server: one lock key with an expiry by the server's clock, its fencing counter, the
//! subscribers of its channels, its queue of waiting processes ([`queue`]), and the scripts
//! of `runtime/src/protocol/scripts.rs`, each run atomically.

pub mod queue;

use crate::state::{Time, Token};
use queue::{Entry, Next};

/// With the `TIME` floor, fencing tokens are at least `now * FENCE_PER_TICK`: the model's
/// stand-in for "never below the server clock in microseconds", sound while fewer than this
/// many acquisitions happen in one tick.
pub const FENCE_PER_TICK: u16 = 16;

#[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct Redis {
    /// The lock key while it exists (expired keys are removed when time passes).
    pub key: Option<Key>,
    /// The fencing counter (`<key>:fence`).
    pub fence: u16,
    /// The key is absent because a script deleted it (not because it expired or never
    /// existed): someone released the lock, so every waiter must hear of it.
    pub released: bool,
    /// Processes subscribed to the key's channel (bits), as `PUBSUB NUMSUB` counts them;
    /// each subscribes to its inbox for the key (`<key>:<instance id>`) at the same time,
    /// on the same connection, so the same bit says whether PUBLISH there reaches it.
    pub subscribers: u8,
    /// The queue of waiting processes' acquisitions (`<key>:queue`), oldest first.
    pub queue: Vec<Entry>,
    /// When the queue expires (0 while it is empty, as Redis deletes an empty list).
    pub queue_expires: Time,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Key {
    pub token: Token,
    pub expires: Time,
    /// Written by a request whose sender had stopped waiting for it: nobody can know it.
    pub late: bool,
}

/// A script call, with its arguments.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// `queued`: an earlier attempt of the acquisition joined the queue (`q`); `join`:
    /// join it if the lock is taken (`j`); `leave`: take it out if the lock is taken (`l`,
    /// the last attempt of an acquisition that runs out of time).
    Acquire {
        token: Token,
        queued: bool,
        join: bool,
        leave: bool,
    },
    Confirm(Token),
    /// `own`: how many of the channel's subscribers are the releaser's process (0 or 1);
    /// `unqueued`: the waiter is known never to have been queued, so queueing it pushes
    /// without looking for its entry (`LPOS`).
    Handoff {
        old: Token,
        new: Token,
        own: u8,
        unqueued: bool,
    },
    /// `withdraw`: the token's queue entry is taken out first (a cleanup after an
    /// acquisition that ended queued).
    Release {
        token: Token,
        withdraw: bool,
    },
    Extend(Token),
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reply {
    /// ACQUIRE took the lock: the fencing token.
    Taken(u16),
    /// ACQUIRE found it held, for this many more ticks.
    Held(Time),
    /// CONFIRM: the fencing token, 0 if the key is not ours.
    Confirmed(u16),
    /// HANDOFF gave the lock to the waiter: its fencing token.
    Handed(u16),
    /// HANDOFF released to everyone, or handed the lock to another process's queued
    /// acquisition, instead (-1): other processes wait too.
    ToEveryone,
    /// HANDOFF found the key not ours (0).
    NotOurs,
    /// HANDOFF handed the lock to another process's queued acquisition, and queued the
    /// waiter behind it, its process listening (`{-1, lease}`): the new holder's lease,
    /// in ticks.
    Queued(Time),
    /// RELEASE (2, handed to the queue, counts as 1) or EXTEND: 1 or 0.
    Done(bool),
}

/// What running a script did besides its reply.
pub struct Effects {
    pub reply: Reply,
    /// It published a release announcement.
    pub announced: bool,
    /// It handed the lock to a queued acquisition (`grant_next!`).
    pub granted: Option<Next>,
}

/// How the scripts behave: the switches of the checked configuration that matter here.
pub struct Scripts {
    pub lease: Time,
    pub idempotent: bool,
    /// Whether HANDOFF's idempotent branch restarts the lease.
    pub handoff_restarts_lease: bool,
    pub time_floor: bool,
    /// Whether `grant_next!` passes over an entry whose process PUBLISH did not reach.
    pub grant_skips_deaf: bool,
    /// Whether ACQUIRE with `j` looks for the entry before every push, and taking the lock
    /// (with `q` or `j`) or a withdraw removes every copy.
    pub join_looks_first: bool,
}

impl Redis {
    fn holds(&self, token: Token) -> bool {
        self.key.is_some_and(|k| k.token == token)
    }

    pub(crate) fn next_fence(&mut self, now: Time, scripts: &Scripts) -> u16 {
        let next = self.fence + 1;
        self.fence = if scripts.time_floor {
            next.max(u16::from(now) * FENCE_PER_TICK)
        } else {
            next
        };
        self.fence
    }

    pub(crate) fn set(&mut self, token: Token, now: Time, scripts: &Scripts, late: bool) {
        self.key = Some(Key {
            token,
            expires: now + scripts.lease,
            late,
        });
        self.released = false;
    }

    /// `PEXPIRE` of our own key: a later write of the same token keeps its earlier origin.
    fn touch(&mut self, now: Time, scripts: &Scripts, late: bool) {
        if let Some(key) = &mut self.key {
            key.expires = now + scripts.lease;
            key.late |= late;
        }
    }

    fn delete(&mut self) {
        self.key = None;
        self.released = true;
    }

    /// Runs `op` at `now`; `late` when nobody waits for its reply any more.
    pub fn run(&mut self, op: Op, now: Time, scripts: &Scripts, late: bool) -> Effects {
        let quiet = |reply| Effects {
            reply,
            announced: false,
            granted: None,
        };
        let released = |announced, granted| Effects {
            reply: Reply::Done(true),
            announced,
            granted,
        };
        match op {
            Op::Acquire {
                token,
                queued,
                join,
                leave,
            } => {
                let taken = match self.key {
                    None => {
                        self.set(token, now, scripts, late);
                        Some(self.next_fence(now, scripts))
                    }
                    Some(key) if key.token == token && scripts.idempotent => {
                        self.touch(now, scripts, late);
                        Some(self.fence)
                    }
                    Some(_) => None,
                };
                if let Some(fence) = taken {
                    // A resend of a joining attempt (`j` without `q`) may have queued it.
                    let flagged = queued || leave || (join && scripts.join_looks_first);
                    if flagged {
                        self.withdraw(token, scripts);
                    }
                    return quiet(Reply::Taken(fence));
                }
                let expires = self.key.expect("held").expires;
                if leave {
                    self.leave(token);
                } else if join {
                    self.join(token, queued, late, expires, scripts);
                }
                quiet(Reply::Held(expires - now))
            }
            Op::Confirm(token) => {
                if self.holds(token) {
                    self.touch(now, scripts, late);
                    quiet(Reply::Confirmed(self.fence))
                } else {
                    quiet(Reply::Confirmed(0))
                }
            }
            Op::Handoff {
                old,
                new,
                own,
                unqueued,
            } => {
                if !self.holds(old) {
                    if scripts.idempotent && self.holds(new) {
                        // Already the waiter's (a resend, or its own late ACQUIRE): its
                        // lease restarts too, as the waiter counts it from before this
                        // request was sent.
                        if scripts.handoff_restarts_lease {
                            self.touch(now, scripts, late);
                        }
                        return quiet(Reply::Handed(self.fence));
                    }
                    return quiet(Reply::NotOurs);
                }
                match self.grant_next(old, Some(new), now, scripts) {
                    Next::Offered => {}
                    granted @ Next::Granted { .. } => {
                        let mut reply = Reply::ToEveryone;
                        if own > 0 {
                            // The waiter joins the queue's end as its own attempt would.
                            let expires = self.key.expect("just granted").expires;
                            if unqueued {
                                self.push(new, late, expires, scripts);
                            } else {
                                self.join(new, true, late, expires, scripts);
                            }
                            reply = Reply::Queued(expires - now);
                        }
                        return Effects {
                            reply,
                            announced: false,
                            granted: Some(granted),
                        };
                    }
                    Next::Exhausted => {
                        if self.subscribers.count_ones() > u32::from(own) {
                            self.delete();
                            return Effects {
                                reply: Reply::ToEveryone,
                                announced: true,
                                granted: None,
                            };
                        }
                    }
                }
                self.set(new, now, scripts, late);
                quiet(Reply::Handed(self.next_fence(now, scripts)))
            }
            Op::Release { token, withdraw } => {
                if withdraw {
                    self.withdraw(token, scripts);
                }
                if !self.holds(token) {
                    return quiet(Reply::Done(false));
                }
                match self.grant_next(token, None, now, scripts) {
                    granted @ Next::Granted { .. } => released(false, Some(granted)),
                    _ => {
                        self.delete();
                        released(true, None)
                    }
                }
            }
            Op::Extend(token) => {
                let ours = self.holds(token);
                if ours {
                    self.touch(now, scripts, late);
                }
                quiet(Reply::Done(ours))
            }
        }
    }

    /// Time passed: the key is gone once its expiry is reached.
    pub fn expire(&mut self, now: Time) {
        if self.key.is_some_and(|k| k.expires <= now) {
            self.key = None;
            self.released = false;
        }
        self.expire_queue(now);
    }

    /// The server restarted with no data: no key, no queue, no subscribers, and the fencing
    /// counter back at zero (the `TIME` floor, if on, keeps the next tokens above the old ones).
    pub fn restart(&mut self) {
        *self = Redis::default();
    }
}
