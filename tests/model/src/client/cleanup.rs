//! Background releases (`runtime/src/algorithm/cleanup.rs`): RELEASE by token (with the
//! token's queue entry taken out first, for an acquisition that ended queued), retried
//! while Redis does not answer, until the token's lease must have ended.

use super::acquire::Outcome;
use crate::config::{Config, Fix};
use crate::redis::{Op, Reply};
use crate::state::{Cleanup, Owner, State, Time, Token};

impl State {
    /// `release_later(token, until)`. A token whose lease has ended by `until` is left to
    /// expire.
    pub fn schedule_cleanup(&mut self, cfg: &Config, p: usize, token: Token, until: Time) {
        self.schedule(cfg, p, token, until, false);
    }

    /// `withdraw_later(token, entry, until)`: the release also takes the token's entry out
    /// of Redis's queue first, in the same script.
    pub fn schedule_withdraw(&mut self, cfg: &Config, p: usize, token: Token, until: Time) {
        self.schedule(cfg, p, token, until, true);
    }

    fn schedule(&mut self, cfg: &Config, p: usize, token: Token, until: Time, withdraw: bool) {
        self.ghost.cleanup_scheduled |= token.bit();
        if until <= self.now {
            return;
        }
        if let Some(c) = self.cleanups.iter_mut().find(|c| c.token == token) {
            c.until = c.until.max(until);
            c.withdraw |= withdraw;
            return;
        }
        self.cleanups.push(Cleanup {
            token,
            process: p as u8,
            until,
            withdraw,
            retry_at: None,
        });
        let op = Op::Release { token, withdraw };
        self.send(cfg, Owner::Cleanup(token), p, op, Some(until));
    }

    fn cleanup_index(&self, token: Token) -> usize {
        self.cleanups
            .iter()
            .position(|c| c.token == token)
            .expect("the cleanup runs")
    }

    /// A cleanup's backoff ended: try again, or give up once the lease must have ended.
    pub fn retry_cleanup(&mut self, cfg: &Config, i: usize) {
        let c = self.cleanups[i];
        if self.now >= c.until {
            self.cleanups.remove(i);
            if cfg.has(Fix::CleanupPokes) {
                self.procs[usize::from(c.process)].notify();
            }
            return;
        }
        self.cleanups[i].retry_at = None;
        let p = usize::from(c.process);
        let op = Op::Release {
            token: c.token,
            withdraw: c.withdraw,
        };
        self.send(cfg, Owner::Cleanup(c.token), p, op, Some(c.until));
    }

    pub fn on_cleanup_outcome(&mut self, cfg: &Config, token: Token, outcome: Outcome) {
        let i = self.cleanup_index(token);
        let c = self.cleanups[i];
        match outcome {
            Outcome::Reply(Reply::Done(released)) => {
                // The request this cleans up after may have freed the lock, late, with an
                // announcement this process ignores as its own.
                if released || cfg.has(Fix::CleanupPokes) {
                    self.procs[usize::from(c.process)].notify();
                }
                self.cleanups.remove(i);
            }
            Outcome::Failed => {
                self.cleanups[i].retry_at = Some((self.now + 1).min(c.until));
            }
            other => unreachable!("a cleanup got {other:?}"),
        }
    }
}
