//! A process's pub/sub connection (`runtime/src/waiting/subscriber.rs`): subscriptions (to
//! the key's channel and the process's inbox for it, together), release announcements, a
//! dropped connection that reconnects and pokes every head, and the sweep of idle
//! subscriptions. Inbox messages: [`super::inbox`].

use crate::state::{PubSub, State, Subscription};

impl State {
    /// The server confirmed the subscription: a release may have been announced just
    /// before it, so the head is poked.
    pub fn subscribed(&mut self, p: usize) {
        self.redis.subscribers |= 1 << p;
        let proc = &mut self.procs[p];
        proc.subscription = Subscription::Active;
        proc.poke_head();
    }

    /// An announcement reached the process.
    pub fn announce(&mut self, p: usize) {
        self.procs[p].pubsub = PubSub::Idle;
        self.procs[p].notify();
    }

    /// Every other subscriber hears of a release by process `from`.
    pub fn publish(&mut self, from: usize) {
        for (p, proc) in self.procs.iter_mut().enumerate() {
            if p != from && self.redis.subscribers & (1 << p) != 0 && proc.pubsub == PubSub::Idle {
                proc.pubsub = PubSub::Announced;
            }
        }
    }

    /// The connection drops (a fault, or the server restarted): what was on its way is lost,
    /// inbox messages too.
    pub fn drop_pubsub(&mut self, p: usize) {
        self.redis.subscribers &= !(1 << p);
        let proc = &mut self.procs[p];
        proc.pubsub = PubSub::Reconnecting;
        proc.inbox.clear();
        proc.listen_late = false;
        if proc.subscription == Subscription::Active {
            proc.subscription = Subscription::Requested;
        }
    }

    /// Reconnected: subscribes again, then pokes every head, since announcements may have
    /// been missed.
    pub fn reconnect(&mut self, p: usize) {
        let proc = &mut self.procs[p];
        proc.pubsub = PubSub::Idle;
        if proc.subscription != Subscription::None {
            proc.subscription = Subscription::Active;
            self.redis.subscribers |= 1 << p;
        }
        proc.poke_head();
    }

    /// The periodic sweep unsubscribes from a key nobody here waits for.
    pub fn sweep(&mut self, p: usize) {
        self.redis.subscribers &= !(1 << p);
        self.procs[p].subscription = Subscription::None;
    }
}
