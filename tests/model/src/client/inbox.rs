//! A lock handed from Redis's queue (`grant_next!` in `scripts.rs`): the message on the
//! new holder's process's inbox, and what the process does with it
//! (`Listener::on_message`, `WaitTable::grant_from_queue` in `runtime/src/waiting/`).

use crate::config::{Config, Fix};
use crate::redis::queue::Next;
use crate::state::{Grant, Owner, State};

impl State {
    /// A script handed the lock to a queued acquisition: the message goes to its process
    /// if PUBLISH reached it.
    pub fn handed_from_queue(&mut self, next: Next) {
        let Next::Granted {
            token,
            fence,
            heard,
        } = next
        else {
            return;
        };
        // Nobody can free this grant but a release, pending now, of that token: one that
        // ended before it (a withdraw whose entry was in the queue twice) does not count.
        let pending = self.cleanups.iter().any(|c| {
            c.token == token
                && (c.retry_at.is_some()
                    || self
                        .net
                        .iter()
                        .any(|r| r.owner == Owner::Cleanup(token) && r.reply.is_none()))
        });
        if pending {
            self.ghost.cleanup_scheduled |= token.bit();
        } else {
            self.ghost.cleanup_scheduled &= !token.bit();
        }
        if heard {
            self.procs[token.process()].inbox.push((token, fence));
        }
    }

    /// The oldest message on process `p`'s inbox arrives (`grant_from_queue`): the waiter
    /// whose token it names takes it as a grant, its lease counted from the start of its
    /// first attempt that may have queued it, and is poked. A message for a token no waiter here has is ignored:
    /// that acquisition's withdraw frees the lock, or it holds it through its own attempt.
    pub fn inbox(&mut self, cfg: &Config, p: usize) {
        let (token, fence) = self.procs[p].inbox.remove(0);
        let now = self.now;
        let Some(waiter) = self.procs[p].waiter_of(token.task(), token.round()) else {
            return;
        };
        // Queued by one of its attempts, so it made one.
        let Some(began) = waiter.queued_since else {
            return;
        };
        if waiter.granted.is_none() {
            let since = if cfg.has(Fix::QueueGrantLeaseFromAttempt) {
                began
            } else {
                now
            };
            waiter.granted = Some(Grant { fence, since });
        }
        waiter.poked = true;
    }
}
