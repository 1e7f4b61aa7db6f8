//! A process dies (`kill -9`, a crash): everything it was doing stops, its pub/sub
//! connection closes, and what it sent may still arrive.

use crate::state::{Owner, Phase, PubSub, State, Subscription};

impl State {
    /// Process `p` dies. Its requests on their way stay on their way, answered to nobody;
    /// a lock it held or may have taken expires with its lease (nothing can free it).
    /// Its entries in Redis's queue stay there: a release must pass them over.
    pub fn crash(&mut self, p: usize) {
        self.ghost.dead |= 1 << p;
        let mine = |owner: Owner| match owner {
            Owner::Task(q, _) => usize::from(q) == p,
            Owner::Cleanup(token) => token.process() == p,
            Owner::Nobody => false,
        };
        while let Some(i) = self.net.iter().position(|r| mine(r.owner)) {
            self.abandon(i);
        }
        self.cleanups.retain(|c| usize::from(c.process) != p);
        if let Some(key) = &mut self.redis.key
            && key.token.process() == p
        {
            key.late = true;
        }
        self.redis.subscribers &= !(1 << p);
        let proc = &mut self.procs[p];
        proc.queue.clear();
        proc.holder_until = None;
        proc.subscription = Subscription::None;
        proc.pubsub = PubSub::Idle;
        proc.inbox.clear();
        proc.listen_late = false;
        for task in &mut proc.tasks {
            task.late = false;
            task.phase = Phase::Done;
        }
    }

    /// Whether process `p` has died.
    pub fn dead(&self, p: usize) -> bool {
        self.ghost.dead & (1 << p) != 0
    }
}
