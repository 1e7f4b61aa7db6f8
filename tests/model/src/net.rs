//! Requests between the clients and the server: sent, applied by the server, answered, and
//! the ways that goes wrong: a reply lost with the request applied or not, a request
//! applied after its caller stopped waiting, a resend after a reset connection, a request
//! slow enough for time to pass.

use crate::client::acquire::Outcome;
use crate::config::{Config, Fix};
use crate::redis::{Op, Scripts};
use crate::state::{Owner, Phase, Request, State, Time};

impl State {
    /// Sends `op` for `owner`, who waits for its reply until `until` (or the response
    /// timeout).
    pub fn send(&mut self, cfg: &Config, owner: Owner, from: usize, op: Op, until: Option<Time>) {
        let bound = until
            .unwrap_or(self.now + cfg.response_timeout)
            .max(self.now);
        self.net.push(Request {
            owner,
            from: from as u8,
            op,
            reply: None,
            stalled: false,
            bound,
        });
    }

    /// The server runs request `i`.
    pub fn apply(&mut self, cfg: &Config, i: usize) {
        let request = self.net[i].clone();
        let late = request.owner == Owner::Nobody;
        let scripts = Scripts {
            lease: cfg.lease,
            idempotent: cfg.has(Fix::IdempotentScripts),
            handoff_restarts_lease: cfg.has(Fix::IdempotentHandoffRestartsLease),
            time_floor: cfg.time_floor,
            grant_skips_deaf: cfg.has(Fix::GrantSkipsDeaf),
            join_looks_first: cfg.has(Fix::JoinLooksFirst),
        };
        let fence = self.redis.fence;
        let effects = self.redis.run(request.op, self.now, &scripts, late);
        if self.redis.fence != fence {
            // A grant: its fencing token must exceed every earlier grant's.
            let ghost = &mut self.ghost;
            ghost.fence_regressed |= self.redis.fence <= ghost.max_fence;
            ghost.max_fence = ghost.max_fence.max(self.redis.fence);
        }
        if effects.announced {
            self.publish(usize::from(request.from));
        }
        if let Some(next) = effects.granted {
            self.handed_from_queue(next);
        }
        if late {
            // Nobody reads its reply.
            self.net.remove(i);
        } else {
            self.net[i].reply = Some(effects.reply);
        }
    }

    /// Request `i`'s reply reaches its caller.
    pub fn deliver(&mut self, cfg: &Config, i: usize) {
        let request = self.net.remove(i);
        let reply = request.reply.expect("a reply to deliver");
        self.dispatch(cfg, request.owner, Outcome::Reply(reply));
    }

    /// Request `i`'s caller stops waiting for it (its reply was lost, or it took too long).
    /// If it has not reached the server yet, it still may.
    pub fn fail(&mut self, cfg: &Config, i: usize) {
        let owner = self.abandon(i);
        self.dispatch(cfg, owner, Outcome::Failed);
    }

    /// Nobody waits for request `i` any more; returns who did.
    pub fn abandon(&mut self, i: usize) -> Owner {
        let request = &mut self.net[i];
        let owner = request.owner;
        if request.reply.is_some() {
            self.net.remove(i);
        } else {
            request.owner = Owner::Nobody;
            request.stalled = false;
            request.bound = 0;
        }
        owner
    }

    /// The connection reset after request `i` was applied: the client sends it again.
    pub fn resend(&mut self, i: usize) {
        self.net[i].reply = None;
    }

    /// The request the task waits for, if any.
    pub fn request_of(&self, p: usize, t: usize) -> Option<usize> {
        let owner = Owner::Task(p as u8, t as u8);
        self.net.iter().position(|r| r.owner == owner)
    }

    /// Hands an outcome to whoever waited for it.
    pub fn dispatch(&mut self, cfg: &Config, owner: Owner, outcome: Outcome) {
        match owner {
            Owner::Task(p, t) => {
                let (p, t) = (usize::from(p), usize::from(t));
                match self.task(p, t).phase {
                    Phase::Acquiring(_) => self.on_acquire_outcome(cfg, p, t, outcome),
                    Phase::Holding(_) => self.on_extend_outcome(cfg, p, t, outcome),
                    Phase::Releasing(_) => self.on_release_outcome(cfg, p, t, outcome),
                    other => unreachable!("a reply for p{p}t{t} in {other:?}"),
                }
            }
            Owner::Cleanup(token) => self.on_cleanup_outcome(cfg, token, outcome),
            Owner::Nobody => {}
        }
    }

    /// The task's future is dropped at its await: whatever it waited for is abandoned, and
    /// it runs what its drop runs.
    pub fn cancel(&mut self, cfg: &Config, p: usize, t: usize) {
        if let Some(i) = self.request_of(p, t) {
            self.abandon(i);
        }
        match self.task(p, t).phase {
            Phase::Acquiring(_) => self.give_up(cfg, p, t),
            Phase::Holding(_) | Phase::Releasing(_) => {
                self.dispatch(cfg, Owner::Task(p as u8, t as u8), Outcome::Cancelled)
            }
            other => unreachable!("cancelled p{p}t{t} in {other:?}"),
        }
    }
}
