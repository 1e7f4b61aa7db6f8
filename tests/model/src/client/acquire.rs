//! One acquisition (`algorithm/acquire.rs` and `acquire/attempts.rs`): queue, let the head
//! try ACQUIRE (joining Redis's queue while the process listens), CONFIRM after an
//! unanswered attempt, sleep until poked or a timer, take a grant, give up at the deadline
//! (leaving the queue, after one last attempt that leaves Redis's, and withdrawing from
//! there in the background or cleaning up what may be ours).

use crate::config::{Config, Fix};
use crate::redis::{Op, Reply};
use crate::state::{
    AcquireStep, Acquiring, Grant, Holding, Owner, Phase, State, Subscription, Time, Token,
};

/// How a request ended for its caller.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    Reply(Reply),
    /// An error: no reply in time, a dropped connection. The request may have been applied.
    Failed,
    /// The caller's future was dropped at this await.
    Cancelled,
}

impl State {
    /// A task begins its next acquisition: it joins the queue.
    pub fn start(&mut self, cfg: &Config, p: usize, t: usize) {
        let round = self.task(p, t).round;
        let token = Token::new(p, t, round);
        let deadline = cfg.processes[p][t].timeout.map(|d| self.now + d);
        self.procs[p].enqueue(t, round);
        self.set_phase(
            p,
            t,
            Phase::Acquiring(Acquiring {
                token,
                deadline,
                unconfirmed: None,
                holder_lease_end: None,
                retry_at: None,
                queued_until: None,
                starved: 0,
                step: AcquireStep::Look,
            }),
        );
    }

    /// A runnable acquisition runs until its next await.
    pub fn step_acquire(&mut self, cfg: &Config, p: usize, t: usize) {
        let a = self.acquiring(p, t);
        if let AcquireStep::Sleep { .. } = a.step {
            let waiter = self.procs[p]
                .waiter_mut(t)
                .expect("an acquiring task queues");
            if waiter.poked {
                waiter.poked = false;
            } else if past(a.deadline, self.now) {
                // Woken by the clock at its deadline; a grant without a handover pending
                // is taken below.
                let (pending, granted) = (waiter.handoff_pending, waiter.granted.is_some());
                if pending && cfg.has(Fix::DeadlineWithHandoffPending) {
                    return self.give_up(cfg, p, t);
                }
                if !pending && !granted {
                    return self.run_out(cfg, p, t);
                }
            }
        }
        self.look(cfg, p, t);
    }

    /// One turn of the acquisition loop: take a grant, or (as the head) try, or sleep.
    fn look(&mut self, cfg: &Config, p: usize, t: usize) {
        let mut a = self.acquiring(p, t);
        a.retry_at = None;
        let now = self.now;
        let waiter = *self.procs[p].waiter(t).expect("an acquiring task queues");
        // A grant from Redis's queue while a releaser here hands the lock to this waiter
        // too waits for that handover's settlement, which pokes it: the releaser, finding
        // the waiter gone, would take the lock under its token and free it.
        let settled = !waiter.handoff_pending || !cfg.has(Fix::GrantWaitsForHandover);
        if let Some(grant) = waiter.granted
            && settled
            && self.take_grant(cfg, p, t, &mut a, grant)
        {
            return;
        }
        if let Some(holder_until) = waiter.queued_by_handover {
            // `Attempts::queued_by_handover`: queued in Redis as by an attempt of its own.
            self.procs[p]
                .waiter_mut(t)
                .expect("queued")
                .queued_by_handover = None;
            a.holder_lease_end = Some(holder_until);
            a.queued_until = a.queued_until.max(Some(holder_until + 2 * cfg.lease));
            return self.sleep(cfg, p, t, a);
        }
        let proc = &self.procs[p];
        if proc.is_head(t) && !waiter.handoff_pending {
            match proc.holder_until.filter(|&until| until > now) {
                // Another task of this process holds it; its release will poke us.
                Some(until) => a.holder_lease_end = Some(until),
                None => {
                    // Until the reply says otherwise, this attempt may take effect.
                    a.step = AcquireStep::Attempt {
                        sent: now,
                        earlier: a.unconfirmed,
                    };
                    a.unconfirmed = Some(now);
                    // Queued in Redis only while this process hears its inbox (an entry
                    // it would not hear of is passed over anyway: see the module doc).
                    let join = proc.subscription == Subscription::Active;
                    let queued = a.queued_until.is_some();
                    if join {
                        // Sent now, it may queue the acquisition whatever becomes of its reply.
                        a.queued_until = a.queued_until.max(Some(now + cfg.lease));
                    }
                    let waiter = self.procs[p].waiter_mut(t).expect("queued");
                    if !cfg.has(Fix::GrantLeaseFromFirstJoin) {
                        waiter.queued_since = Some(now);
                    } else if join {
                        // `Ticket::may_queue`: a lock handed from the queue was handed
                        // after this, however many attempts follow.
                        waiter.queued_since.get_or_insert(now);
                    }
                    self.set_phase(p, t, Phase::Acquiring(a));
                    let until = a.deadline.map(|d| d + cfg.grace);
                    let op = Op::Acquire {
                        token: a.token,
                        queued,
                        join,
                        leave: false,
                    };
                    return self.send(cfg, Owner::Task(p as u8, t as u8), p, op, until);
                }
            }
        }
        self.sleep(cfg, p, t, a);
    }

    /// `Lock::granted`: the lock was handed to this waiter. Returns false for a grant that
    /// is not a lock (its lease already ran out), which the waiter then treats as an
    /// attempt whose outcome is unknown.
    fn take_grant(
        &mut self,
        cfg: &Config,
        p: usize,
        t: usize,
        a: &mut Acquiring,
        grant: Grant,
    ) -> bool {
        let since = if cfg.has(Fix::LeaseFromHandoffSent) {
            if self.now >= grant.since + cfg.lease {
                self.procs[p].waiter_mut(t).expect("queued").granted = None;
                a.unconfirmed = a.unconfirmed.max(Some(grant.since));
                return false;
            }
            grant.since
        } else {
            // The releaser set the lease a moment before: counted from now.
            self.now
        };
        self.acquired(cfg, p, t, a.token, since, grant.fence);
        true
    }

    /// The acquisition returns a guard with `fence`, its lease counted from `since`.
    fn acquired(
        &mut self,
        cfg: &Config,
        p: usize,
        t: usize,
        token: Token,
        since: Time,
        fence: u16,
    ) {
        let valid_until = since + cfg.lease;
        self.procs[p].acquired(t, valid_until);
        self.set_phase(
            p,
            t,
            Phase::Holding(Holding {
                token,
                fence,
                valid_until,
                extended: false,
                extending: None,
            }),
        );
    }

    /// Sleeps until poked, or until the deadline, the holder's lease end (the head only)
    /// or the retry after an error.
    fn sleep(&mut self, cfg: &Config, p: usize, t: usize, mut a: Acquiring) {
        let proc = &self.procs[p];
        let waiter = proc.waiter(t).expect("an acquiring task queues");
        let wake_at = if waiter.handoff_pending {
            // The releaser answers within a round trip and pokes us either way.
            a.deadline
                .filter(|_| cfg.has(Fix::DeadlineWithHandoffPending))
        } else {
            let lease_end = a.holder_lease_end.filter(|_| proc.is_head(t));
            [a.deadline, lease_end, a.retry_at]
                .into_iter()
                .flatten()
                .min()
        };
        a.step = AcquireStep::Sleep { wake_at };
        self.set_phase(p, t, Phase::Acquiring(a));
    }

    /// The reply to ACQUIRE or CONFIRM, or its failure.
    pub fn on_acquire_outcome(&mut self, cfg: &Config, p: usize, t: usize, outcome: Outcome) {
        let mut a = self.acquiring(p, t);
        if let Outcome::Cancelled = outcome {
            return self.give_up(cfg, p, t);
        }
        match (a.step, outcome) {
            (AcquireStep::Attempt { sent, .. }, Outcome::Reply(Reply::Taken(fence)))
            | (AcquireStep::Leave { sent, .. }, Outcome::Reply(Reply::Taken(fence)))
            | (AcquireStep::Confirm { sent, .. }, Outcome::Reply(Reply::Confirmed(fence @ 1..))) => {
                self.acquired(cfg, p, t, a.token, sent, fence)
            }
            (AcquireStep::Leave { earlier, .. }, Outcome::Reply(Reply::Held(_))) => {
                // Out of Redis's queue: nothing to withdraw. Answered, so it took nothing.
                a.unconfirmed = earlier;
                a.queued_until = None;
                self.set_phase(p, t, Phase::Acquiring(a));
                self.give_up(cfg, p, t);
            }
            // No answer: the entry is left to the withdraw in the background, which also
            // frees what this attempt may have taken.
            (AcquireStep::Leave { .. }, Outcome::Failed) => self.give_up(cfg, p, t),
            (AcquireStep::Attempt { sent, earlier }, Outcome::Reply(Reply::Held(pttl))) => {
                a.unconfirmed = earlier;
                if a.queued_until.is_some() {
                    // Queued (by this attempt or an earlier one): the queue in Redis lives
                    // the holder's lease and two of ours past this.
                    a.queued_until = a.queued_until.max(Some(self.now + pttl + 2 * cfg.lease));
                }
                if earlier.is_some() {
                    // An earlier attempt whose reply was lost may have taken the lock for us.
                    a.step = AcquireStep::Confirm { sent, pttl };
                    self.set_phase(p, t, Phase::Acquiring(a));
                    let until = a.deadline.map(|d| d + cfg.grace);
                    return self.send(
                        cfg,
                        Owner::Task(p as u8, t as u8),
                        p,
                        Op::Confirm(a.token),
                        until,
                    );
                }
                self.held(cfg, p, t, a, pttl);
            }
            (AcquireStep::Confirm { pttl, .. }, Outcome::Reply(Reply::Confirmed(0))) => {
                self.held(cfg, p, t, a, pttl)
            }
            (_, Outcome::Failed) => {
                a.retry_at = Some(self.now + 1);
                self.after_attempt(cfg, p, t, a);
            }
            (step, outcome) => unreachable!("{step:?} got {outcome:?}"),
        }
    }

    /// Someone else holds it for `pttl` more ticks: subscribe to its releases and wait.
    fn held(&mut self, cfg: &Config, p: usize, t: usize, mut a: Acquiring, pttl: Time) {
        a.holder_lease_end = Some(self.now + pttl);
        let proc = &mut self.procs[p];
        if proc.subscription == Subscription::None {
            proc.subscription = Subscription::Requested;
        }
        self.after_attempt(cfg, p, t, a);
    }

    fn after_attempt(&mut self, cfg: &Config, p: usize, t: usize, a: Acquiring) {
        self.set_phase(p, t, Phase::Acquiring(a));
        if past(a.deadline, self.now) {
            return self.run_out(cfg, p, t);
        }
        self.sleep(cfg, p, t, a);
    }

    /// The deadline passed (`Attempts::leave_queue`): an acquisition that may be queued in
    /// Redis makes one last attempt, which takes the lock if it is free or was handed to
    /// it, and otherwise takes its entry out in the same script: left to the background,
    /// a release meanwhile would hand the lock to an acquisition that is gone. Like every
    /// attempt, it waits no longer than the deadline + grace. Not while a handover to it is
    /// pending, nor once it was handed the lock here (it cannot begin an attempt then);
    /// then, and when it is not queued, it gives up.
    fn run_out(&mut self, cfg: &Config, p: usize, t: usize) {
        let mut a = self.acquiring(p, t);
        let proc = &self.procs[p];
        let waiter = proc.waiter(t).expect("an acquiring task queues");
        let leave = cfg.has(Fix::WithdrawOnGiveUp)
            && a.queued_until.is_some()
            && proc.is_head(t)
            && !waiter.handoff_pending
            && waiter.granted.is_none();
        if !leave {
            return self.give_up(cfg, p, t);
        }
        // Until the reply says otherwise, this attempt may take effect.
        a.step = AcquireStep::Leave {
            sent: self.now,
            earlier: a.unconfirmed,
        };
        a.unconfirmed = Some(self.now);
        self.set_phase(p, t, Phase::Acquiring(a));
        let op = Op::Acquire {
            token: a.token,
            queued: true,
            join: false,
            leave: true,
        };
        let until = a.deadline.map(|d| d + cfg.grace);
        self.send(cfg, Owner::Task(p as u8, t as u8), p, op, until);
    }

    /// The acquisition ends without the lock (deadline, or cancelled): its ticket leaves
    /// the queue, then its attempts release whatever may have been taken for it; one that
    /// may be queued in Redis withdraws from there in the same request.
    pub fn give_up(&mut self, cfg: &Config, p: usize, t: usize) {
        let mut a = self.acquiring(p, t);
        let (waiter, was_head) = self.procs[p].remove(t);
        if let Some(holder_until) = waiter.queued_by_handover {
            a.queued_until = a.queued_until.max(Some(holder_until + 2 * cfg.lease));
        }
        let granted = waiter
            .granted
            .filter(|_| cfg.has(Fix::GrantedDropReleases))
            .map(|grant| grant.since);
        if was_head {
            self.procs[p].poke_head();
        }
        match a.queued_until.filter(|_| cfg.has(Fix::WithdrawOnGiveUp)) {
            Some(queued_until) => {
                // `Drop for Attempts`: from the earliest instant the lock may be ours.
                let since = [granted, a.unconfirmed].into_iter().flatten().min();
                let until = since.map_or(queued_until, |s| queued_until.max(s + cfg.lease));
                self.schedule_withdraw(cfg, p, a.token, until + cfg.lease);
            }
            None => {
                if let Some(since) = granted {
                    self.schedule_cleanup(cfg, p, a.token, since + cfg.lease);
                }
                if let Some(sent) = a.unconfirmed {
                    self.schedule_cleanup(cfg, p, a.token, sent + cfg.lease);
                }
            }
        }
        self.next_round(cfg, p, t);
    }

    pub fn next_round(&mut self, cfg: &Config, p: usize, t: usize) {
        let task = &mut self.procs[p].tasks[t];
        task.round += 1;
        task.phase = if task.round < cfg.processes[p][t].rounds {
            Phase::Idle
        } else {
            Phase::Done
        };
    }
}

fn past(deadline: Option<Time>, now: Time) -> bool {
    deadline.is_some_and(|d| now >= d)
}
