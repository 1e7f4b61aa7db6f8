//! Time. Everything but faults happens within a tick: requests are answered, announcements
//! arrive, runnable tasks run. A tick passes only once nothing is left to do but wait for a
//! timer, a held lock's body, a request a fault made slow, or a task a fault left unpolled.

use crate::config::Config;
use crate::state::{AcquireStep, Owner, Phase, PubSub, State, Subscription};

impl State {
    /// Whether time may pass now.
    pub fn quiescent(&self, cfg: &Config) -> bool {
        if self.now >= cfg.horizon {
            return false;
        }
        let requests_wait = self
            .net
            .iter()
            .all(|r| r.owner == Owner::Nobody || (r.stalled && self.now < r.bound));
        let tasks_wait = self.procs.iter().enumerate().all(|(p, proc)| {
            (0..proc.tasks.len()).all(|t| proc.tasks[t].late || !self.runnable(p, t))
        });
        let pubsub_quiet = self.procs.iter().all(|proc| {
            let on_its_way = proc.pubsub == PubSub::Announced || !proc.inbox.is_empty();
            (!on_its_way || proc.listen_late)
                && proc.pubsub != PubSub::Reconnecting
                && proc.subscription != Subscription::Requested
        });
        let cleanups_wait = self
            .cleanups
            .iter()
            .all(|c| c.retry_at.is_none_or(|at| at > self.now));
        requests_wait && tasks_wait && pubsub_quiet && cleanups_wait
    }

    /// One tick passes.
    pub fn tick(&mut self) {
        self.check_free_lock_sleepers();
        self.now += 1;
        self.redis.expire(self.now);
        for proc in &mut self.procs {
            proc.listen_late = false;
            for task in &mut proc.tasks {
                if task.late {
                    task.late = false;
                    if let Phase::Acquiring(a) = &mut task.phase {
                        a.starved += 1;
                    }
                }
            }
        }
    }

    /// The server restarted empty during the tick that just passed; every pub/sub
    /// connection dropped with it.
    pub fn restart(&mut self) {
        self.redis.restart();
        for p in 0..self.procs.len() {
            if self.procs[p].subscription != Subscription::None {
                self.drop_pubsub(p);
            }
        }
    }

    /// Before a tick: the lock is free because someone released it (or Redis holds the
    /// head's own token: a request of its acquisition took it, one its caller still
    /// awaited), yet a process's queue head sleeps with no poke coming: no release,
    /// announcement, reconnect or background release of its own process in flight, no
    /// retry pending. It waits for a lease timer (or its deadline) on a lock it could have.
    fn check_free_lock_sleepers(&mut self) {
        let free = self.redis.key.is_none() && self.redis.released;
        let stranded = self.procs.iter().enumerate().any(|(p, proc)| {
            let Some(head) = proc.queue.first() else {
                return false;
            };
            // Not when a request its caller stopped waiting for wrote it: no reply, message
            // or announcement tells of that, so the head takes it (ACQUIRE finds its own
            // token) at its next timer, the holder's lease end it last saw, at most a lease
            // away; the runtime has no event to wait for.
            let own = self
                .redis
                .key
                .is_some_and(|k| k.token == head.token(p) && !k.late);
            if !free && !own {
                return false;
            }
            let task = &proc.tasks[usize::from(head.task)];
            let asleep = match task.phase {
                Phase::Acquiring(a) => {
                    matches!(a.step, AcquireStep::Sleep { .. }) && a.retry_at.is_none()
                }
                _ => false,
            };
            let releasing_here = proc
                .tasks
                .iter()
                .any(|t| matches!(t.phase, Phase::Releasing(_)));
            let cleaning_here = self.cleanups.iter().any(|c| usize::from(c.process) == p);
            // A subscriber task polled late has an announcement or a grant on its way.
            let message_here = proc.pubsub == PubSub::Announced || !proc.inbox.is_empty();
            asleep
                && !message_here
                && !task.late
                && !head.poked
                && !head.handoff_pending
                && head.granted.is_none()
                && !releasing_here
                && !cleaning_here
        });
        if stranded {
            self.ghost.slept_on_free_lock = true;
        }
    }
}
