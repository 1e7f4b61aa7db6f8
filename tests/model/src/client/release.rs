//! A holder's extension and release (`runtime/src/held.rs` and `runtime/src/release.rs`): EXTEND, and
//! `Held::release_with`, which hands the lock to the next local waiter (HANDOFF) or
//! releases it (RELEASE), with what each failure leaves behind.

use super::acquire::Outcome;
use crate::config::{Config, Fix};
use crate::redis::{Op, Reply};
use crate::state::{
    AcquireStep, Acquiring, Grant, Holding, Owner, Phase, ReleaseStep, Releasing, State, Time,
    Token,
};

impl State {
    fn holding(&self, p: usize, t: usize) -> Holding {
        match self.task(p, t).phase {
            Phase::Holding(h) => h,
            other => unreachable!("p{p}t{t} does not hold: {other:?}"),
        }
    }

    fn releasing(&self, p: usize, t: usize) -> Releasing {
        match self.task(p, t).phase {
            Phase::Releasing(r) => r,
            other => unreachable!("p{p}t{t} is not releasing: {other:?}"),
        }
    }

    /// Whether the acquisition of task `t` waits for the reply to its ACQUIRE (the last one
    /// that leaves Redis's queue too) or CONFIRM.
    fn attempt_in_flight(&self, p: usize, t: usize) -> bool {
        matches!(
            self.task(p, t).phase,
            Phase::Acquiring(Acquiring {
                step: AcquireStep::Attempt { .. }
                    | AcquireStep::Confirm { .. }
                    | AcquireStep::Leave { .. },
                ..
            })
        )
    }

    /// `guard.extend()`.
    pub fn extend(&mut self, cfg: &Config, p: usize, t: usize) {
        let mut h = self.holding(p, t);
        h.extended = true;
        h.extending = Some(self.now);
        self.set_phase(p, t, Phase::Holding(h));
        self.send(
            cfg,
            Owner::Task(p as u8, t as u8),
            p,
            Op::Extend(h.token),
            None,
        );
    }

    pub fn on_extend_outcome(&mut self, cfg: &Config, p: usize, t: usize, outcome: Outcome) {
        let mut h = self.holding(p, t);
        let sent = h.extending.take().expect("an extension in flight");
        if let Outcome::Reply(Reply::Done(true)) = outcome {
            h.valid_until = sent + cfg.lease;
        }
        self.set_phase(p, t, Phase::Holding(h));
    }

    /// The critical section ends: release.
    pub fn release(&mut self, cfg: &Config, p: usize, t: usize) {
        let h = self.holding(p, t);
        self.hand_over_or_release(cfg, p, t, h.token, h.valid_until);
    }

    /// Offers the lock to the next local waiter, or releases it to everyone.
    fn hand_over_or_release(
        &mut self,
        cfg: &Config,
        p: usize,
        t: usize,
        token: Token,
        valid_until: Time,
    ) {
        let owner = Owner::Task(p as u8, t as u8);
        let head_attempting = self.procs[p]
            .queue
            .first()
            .is_some_and(|head| self.attempt_in_flight(p, usize::from(head.task)));
        // A head whose own ACQUIRE is in flight may take the lock under its token itself,
        // after a HANDOFF to that token ran; it would then have left the queue, and the
        // releaser, taking it for gone, would release the lock under it.
        let offer = if head_attempting && cfg.has(Fix::NoOfferDuringAttempt) {
            None
        } else {
            self.procs[p].offer_handoff(self.now)
        };
        let (step, op) = match offer {
            Some((task, round, unqueued)) => {
                let to = Token::new(p, task, round);
                let own = self.procs[p].own_subscriptions();
                let step = ReleaseStep::Handoff { to, sent: self.now };
                (
                    step,
                    Op::Handoff {
                        old: token,
                        new: to,
                        own,
                        unqueued,
                    },
                )
            }
            None => (
                ReleaseStep::Release,
                Op::Release {
                    token,
                    withdraw: false,
                },
            ),
        };
        let releasing = Releasing {
            token,
            valid_until,
            step,
        };
        self.set_phase(p, t, Phase::Releasing(releasing));
        self.send(cfg, owner, p, op, None);
    }

    pub fn on_release_outcome(&mut self, cfg: &Config, p: usize, t: usize, outcome: Outcome) {
        let r = self.releasing(p, t);
        match r.step {
            ReleaseStep::Handoff { to, sent } => {
                self.on_handoff_outcome(cfg, p, t, r, to, sent, outcome)
            }
            ReleaseStep::Release => {
                match outcome {
                    Outcome::Reply(_) => self.procs[p].notify(),
                    Outcome::Failed => {
                        self.procs[p].notify();
                        // Free it as soon as Redis answers again, rather than leave every
                        // waiter to its lease.
                        self.schedule_cleanup(cfg, p, r.token, r.valid_until);
                    }
                    Outcome::Cancelled => {
                        if cfg.has(Fix::CancelledReleaseCleansUp) {
                            self.schedule_cleanup(cfg, p, r.token, r.valid_until);
                        }
                    }
                }
                self.next_round(cfg, p, t);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_handoff_outcome(
        &mut self,
        cfg: &Config,
        p: usize,
        t: usize,
        r: Releasing,
        to: Token,
        sent: Time,
        outcome: Outcome,
    ) {
        let (task, round) = (to.task(), to.round());
        let present = self.procs[p].waiter_of(task, round).is_some();
        match outcome {
            Outcome::Reply(Reply::Handed(fence)) => {
                if present {
                    let grant = Grant { fence, since: sent };
                    self.procs[p].finish_handoff(task, round, Some(grant));
                } else {
                    // The waiter left while we handed it the lock: it is ours under its
                    // token now.
                    return self.hand_over_or_release(cfg, p, t, to, sent + cfg.lease);
                }
            }
            Outcome::Reply(Reply::Queued(pttl)) => {
                let holder_until = self.now + pttl;
                if present {
                    self.procs[p].finish_handoff(task, round, None);
                    if let Some(waiter) = self.procs[p].waiter_of(task, round) {
                        waiter.queued_by_handover = Some(holder_until);
                    }
                } else {
                    // The waiter left: its entry would be handed the lock, and nobody would
                    // take it.
                    let until = holder_until + 3 * cfg.lease;
                    self.schedule_withdraw(cfg, p, to, until);
                    if cfg.has(Fix::PokeAfterOfferedLeft) {
                        self.procs[p].notify();
                    }
                }
            }
            Outcome::Reply(_) => self.not_handed(cfg, p, task, round, present),
            Outcome::Failed | Outcome::Cancelled => {
                self.not_handed(cfg, p, task, round, present);
                let cancelled = matches!(outcome, Outcome::Cancelled);
                if cfg.has(Fix::HandoffFailureCleansUp)
                    || (cancelled && cfg.has(Fix::CancelledReleaseCleansUp))
                {
                    // The HANDOFF may not have run: our own token may still hold the lock.
                    self.schedule_cleanup(cfg, p, r.token, r.valid_until);
                }
                if cfg.has(Fix::HandoffFailureCleansUp) {
                    // It may have run: the waiter's token may hold the lock, or its entry
                    // stand in Redis's queue (bounded by three leases).
                    if present {
                        self.maybe_granted(cfg, p, task, sent);
                    } else {
                        self.schedule_withdraw(cfg, p, to, sent + 3 * cfg.lease);
                    }
                }
            }
        }
        self.next_round(cfg, p, t);
    }

    /// Not handed over (released to everyone, not ours, or unknown): the waiter, if still
    /// there, is poked to try for itself; if it left, the next head must hear of it too.
    fn not_handed(&mut self, cfg: &Config, p: usize, task: usize, round: u8, present: bool) {
        if present {
            self.procs[p].finish_handoff(task, round, None);
        } else if cfg.has(Fix::PokeAfterOfferedLeft) {
            self.procs[p].notify();
        }
    }

    /// The waiter learns that a HANDOFF to its token may have run (sent at `sent`): it
    /// may hold the lock, or be queued in Redis (`Attempts::may_be_queued_by_handover`).
    fn maybe_granted(&mut self, cfg: &Config, p: usize, task: usize, sent: Time) {
        if let Phase::Acquiring(a) = self.phase_mut(p, task) {
            a.unconfirmed = a.unconfirmed.max(Some(sent));
            a.queued_until = a.queued_until.max(Some(sent + 3 * cfg.lease));
        }
    }
}
