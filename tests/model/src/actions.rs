//! Everything that can happen next, and its effect. Faults are counted against the run's
//! budget.

use crate::config::{Config, Fault};
use crate::state::{Owner, Phase, PubSub, State, Subscription};

/// One step of the system. Requests and cleanups are named by their index in the state's
/// sorted lists.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Action {
    /// A task begins its next acquisition.
    Start(u8, u8),
    /// A runnable task is polled and runs to its next await.
    Poll(u8, u8),
    /// A holder's critical section ends: it releases.
    Release(u8, u8),
    /// A holder extends its lease.
    Extend(u8, u8),
    /// The server runs a request.
    Apply(u8),
    /// A reply reaches its caller.
    Deliver(u8),
    /// A slow request reached its caller's bound: the caller stops waiting.
    TimeOut(u8),
    /// A background release's backoff ended.
    RetryCleanup(u8),
    /// The server confirms a process's subscription.
    Subscribed(u8),
    /// A release announcement reaches a process.
    Announce(u8),
    /// The oldest message on a process's inbox reaches it: a lock handed from Redis's queue.
    Inbox(u8),
    /// A process's pub/sub connection is back.
    Reconnect(u8),
    /// A process unsubscribes from a key nobody there waits for.
    Sweep(u8),
    /// One tick passes.
    Tick,
    /// Faults.
    LoseReply(u8),
    Resend(u8),
    Stall(u8),
    Cancel(u8, u8),
    PollLate(u8, u8),
    DropPubSub(u8),
    ListenLate(u8),
    Crash(u8),
    /// A tick passes during which the server restarts empty.
    TickRestart,
}

impl Action {
    pub fn fault(self) -> Option<Fault> {
        Some(match self {
            Action::LoseReply(_) => Fault::LoseReply,
            Action::Resend(_) => Fault::Resend,
            Action::Stall(_) => Fault::Stall,
            Action::Cancel(..) => Fault::Cancel,
            Action::PollLate(..) => Fault::PollLate,
            Action::DropPubSub(_) => Fault::DropPubSub,
            Action::ListenLate(_) => Fault::ListenLate,
            Action::Crash(_) => Fault::Crash,
            Action::TickRestart => Fault::Restart,
            _ => return None,
        })
    }
}

/// The actions enabled in `s`.
pub fn enabled(cfg: &Config, s: &State, actions: &mut Vec<Action>) {
    let may = |fault| s.faults_left > 0 && cfg.may(fault);
    for (p, proc) in s.procs.iter().enumerate() {
        let pu = p as u8;
        for (t, task) in proc.tasks.iter().enumerate() {
            let tu = t as u8;
            let runnable = s.runnable(p, t);
            match task.phase {
                Phase::Idle => actions.push(Action::Start(pu, tu)),
                Phase::Acquiring(_) => {
                    if runnable && !task.late {
                        actions.push(Action::Poll(pu, tu));
                        if may(Fault::PollLate) {
                            actions.push(Action::PollLate(pu, tu));
                        }
                    }
                    if may(Fault::Cancel) {
                        actions.push(Action::Cancel(pu, tu));
                    }
                }
                Phase::Holding(h) => {
                    if h.extending.is_none() {
                        actions.push(Action::Release(pu, tu));
                        if cfg.extend && !h.extended {
                            actions.push(Action::Extend(pu, tu));
                        }
                    } else if may(Fault::Cancel) {
                        actions.push(Action::Cancel(pu, tu));
                    }
                }
                Phase::Releasing(_) => {
                    if may(Fault::Cancel) {
                        actions.push(Action::Cancel(pu, tu));
                    }
                }
                Phase::Done => {}
            }
        }
        if !proc.listen_late {
            if !proc.inbox.is_empty() {
                actions.push(Action::Inbox(pu));
            }
            if (proc.pubsub == PubSub::Announced || !proc.inbox.is_empty())
                && may(Fault::ListenLate)
            {
                actions.push(Action::ListenLate(pu));
            }
        }
        if may(Fault::Crash) && !s.dead(p) {
            actions.push(Action::Crash(pu));
        }
        match proc.pubsub {
            PubSub::Announced if proc.listen_late => {}
            PubSub::Announced => actions.push(Action::Announce(pu)),
            PubSub::Reconnecting => actions.push(Action::Reconnect(pu)),
            PubSub::Idle => match proc.subscription {
                Subscription::Requested => actions.push(Action::Subscribed(pu)),
                Subscription::Active if proc.queue.is_empty() => actions.push(Action::Sweep(pu)),
                _ => {}
            },
        }
        if proc.subscription != Subscription::None
            && proc.pubsub != PubSub::Reconnecting
            && may(Fault::DropPubSub)
        {
            actions.push(Action::DropPubSub(pu));
        }
    }
    for (i, r) in s.net.iter().enumerate() {
        let iu = i as u8;
        match (r.owner, r.reply) {
            (_, None) => actions.push(Action::Apply(iu)),
            (Owner::Nobody, Some(_)) => unreachable!("an unread reply is dropped"),
            (_, Some(_)) => actions.push(Action::Deliver(iu)),
        }
        if r.owner == Owner::Nobody {
            continue;
        }
        if r.stalled && s.now >= r.bound {
            actions.push(Action::TimeOut(iu));
        }
        if may(Fault::LoseReply) {
            actions.push(Action::LoseReply(iu));
        }
        if r.reply.is_some() && may(Fault::Resend) {
            actions.push(Action::Resend(iu));
        }
        if !r.stalled && may(Fault::Stall) {
            actions.push(Action::Stall(iu));
        }
    }
    for (i, c) in s.cleanups.iter().enumerate() {
        if c.retry_at.is_some_and(|at| at <= s.now) {
            actions.push(Action::RetryCleanup(i as u8));
        }
    }
    if s.quiescent(cfg) {
        actions.push(Action::Tick);
        if cfg.restarts && may(Fault::Restart) && s.redis.key.is_none_or(|k| k.expires <= s.now + 1)
        {
            actions.push(Action::TickRestart);
        }
    }
}

/// The state after `action`.
pub fn apply(cfg: &Config, s: &State, action: Action) -> State {
    let mut s = s.clone();
    if action.fault().is_some() {
        s.faults_left -= 1;
    }
    let ix = |i: u8| usize::from(i);
    match action {
        Action::Start(p, t) => s.start(cfg, ix(p), ix(t)),
        Action::Poll(p, t) => s.step_acquire(cfg, ix(p), ix(t)),
        Action::Release(p, t) => s.release(cfg, ix(p), ix(t)),
        Action::Extend(p, t) => s.extend(cfg, ix(p), ix(t)),
        Action::Apply(i) => s.apply(cfg, ix(i)),
        Action::Deliver(i) => s.deliver(cfg, ix(i)),
        Action::TimeOut(i) | Action::LoseReply(i) => s.fail(cfg, ix(i)),
        Action::RetryCleanup(i) => s.retry_cleanup(cfg, ix(i)),
        Action::Subscribed(p) => s.subscribed(ix(p)),
        Action::Announce(p) => s.announce(ix(p)),
        Action::Inbox(p) => s.inbox(cfg, ix(p)),
        Action::Reconnect(p) => s.reconnect(ix(p)),
        Action::Sweep(p) => s.sweep(ix(p)),
        Action::Tick => s.tick(),
        Action::Resend(i) => s.resend(ix(i)),
        Action::Stall(i) => s.net[ix(i)].stalled = true,
        Action::Cancel(p, t) => s.cancel(cfg, ix(p), ix(t)),
        Action::PollLate(p, t) => s.procs[ix(p)].tasks[ix(t)].late = true,
        Action::DropPubSub(p) => s.drop_pubsub(ix(p)),
        Action::ListenLate(p) => s.procs[ix(p)].listen_late = true,
        Action::Crash(p) => s.crash(ix(p)),
        Action::TickRestart => {
            s.tick();
            s.restart();
        }
    }
    s.normalize();
    s
}
