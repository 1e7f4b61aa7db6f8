//! Release announcements from Redis, for waiters in this process.
//!
//! One pub/sub connection per client, on the background runtime, subscribed to exactly the
//! keys this process waits for. Not on a caller's runtime: that would spare a handover
//! from another process one thread wake-up (a trial cut the bench's cross-process p99 by
//! about a quarter), but a runtime blocked by its own code (a sync locked call in a task,
//! every worker busy) would then hold up every waiter of the process, sync ones too. It is
//! a RESP3 connection of the `redis` crate, whose messages arrive as pushes, named,
//! authenticated and timed like the others (see `endpoint.rs`). An announcement pokes the
//! key's queue head (see `waiters.rs`). If the connection drops, it reconnects, subscribes
//! again and pokes every head, since announcements may have been missed; meanwhile waiters
//! still wake at the holder's lease end, so a lost connection delays them but never strands
//! them, and the process counts itself subscribed to nothing (see
//! `WaitTable::subscriptions_lost`).
//!
//! A Redlock client has one such connection per server, all poking the same waiters: a
//! release is announced on every server, and any one of them getting through wakes the
//! waiter. An in-memory client's store announces in-process instead (see `in_memory`).

use std::collections::HashSet;
use std::time::Duration;

use redis::PushKind;
use redis::aio::MultiplexedConnection;
use tokio::sync::{mpsc, watch};

use crate::backends::backend::Backend;
use crate::servers::memory::Announcement;
use crate::util::error::LockError;
use crate::waiting::listener::Listener;
use crate::waiting::waiters::{Subscription, WaitTable};

/// How often keys nobody waits for any more are unsubscribed and forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

pub(crate) struct Subscriber {
    /// One per pub/sub connection. Dropped with the client, which ends the tasks.
    requests: Vec<mpsc::UnboundedSender<String>>,
}

impl Subscriber {
    /// Starts the client's pub/sub tasks. They hold its wait table and backend weakly (it
    /// holds them, through their request channels), so a dropped [`Client`](crate::Client) ends them.
    pub(crate) fn start(listener: Listener, backend: &Backend) -> Option<Subscriber> {
        let handle = crate::util::background::handle().ok()?;
        let weak = listener;
        let requests = match backend {
            // A cluster's subscriptions are sharded, on the shared cluster connection.
            Backend::Cluster(_) => {
                let (requests, receiver) = mpsc::unbounded_channel();
                handle.spawn(crate::waiting::cluster_pubsub::run(weak, receiver));
                vec![requests]
            }
            // One subscriber task per server of a Redlock quorum.
            Backend::Redlock(quorum) => {
                Self::per_server(handle, &weak, (0..quorum.members.len()).map(Some).collect())
            }
            Backend::Single(_) => Self::per_server(handle, &weak, vec![None]),
            Backend::Memory(memory) => {
                let (requests, receiver) = mpsc::unbounded_channel();
                handle.spawn(in_memory(weak, receiver, memory.listen()));
                vec![requests]
            }
        };
        Some(Subscriber { requests })
    }

    /// A subscriber task for each of `servers` (an index into a Redlock quorum, or `None`
    /// for the client's own server); their request channels.
    fn per_server(
        handle: &tokio::runtime::Handle,
        weak: &Listener,
        servers: Vec<Option<usize>>,
    ) -> Vec<mpsc::UnboundedSender<String>> {
        servers
            .into_iter()
            .map(|member| {
                let (requests, receiver) = mpsc::unbounded_channel();
                handle.spawn(run(weak.clone(), member, receiver));
                requests
            })
            .collect()
    }

    pub(crate) fn subscribe(&self, key: &str) {
        for requests in &self.requests {
            let _ = requests.send(key.to_string());
        }
    }
}

/// One pub/sub connection: to the client's server, or to server `member` of a Redlock
/// client's quorum. Ends when the client is gone. It holds the client only while it acts,
/// never while it waits for the next message or request.
async fn run(
    client: Listener,
    member: Option<usize>,
    mut requests: mpsc::UnboundedReceiver<String>,
) {
    let mut backoff = Duration::from_millis(50);
    // For a Sentinel-managed master: resolutions, to follow the master when it moves.
    let Some(mut resolutions) = client.upgrade().map(|alive| {
        let single = alive.backend.single();
        single
            .and_then(|s| s.sentinel())
            .map(|sentinel| sentinel.watch())
    }) else {
        return;
    };
    loop {
        if let Some(resolutions) = &mut resolutions {
            resolutions.borrow_and_update();
        }
        let Some(strong) = client.upgrade() else {
            return;
        };
        let connected = async {
            let Some(single) = strong.backend.server_of(member) else {
                return Err(LockError::invalid(
                    "internal error: a pub/sub connection for a server this client does not have",
                ));
            };
            let server = single.server(None).await?;
            let (pushes_to, pushes) = mpsc::unbounded_channel();
            let conn = server.endpoint.connect_pubsub(pushes_to).await?;
            Ok::<_, LockError>((conn, pushes, server.endpoint.generation))
        };
        let (mut sink, mut pushes, generation) = match connected.await {
            Ok(connected) => connected,
            Err(e) => {
                {
                    let error = &e as &(dyn std::error::Error + 'static);
                    tracing::warn!(client = %client.name, error, "redis-locked: pub/sub connection failed; retrying");
                }
                refresh(&strong.backend);
                drop(strong);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        let mut healthy = true;
        // A Redlock server's keys subscribed on this connection: the subscribers share the
        // waiters' records, so each must find out for itself what to unsubscribe.
        let mut ours = HashSet::new();
        // Only a client of one server queues in Redis; a Redlock quorum's members do not.
        let queues = member.is_none() && strong.backend.queues();
        for key in strong.waiters.resubscribe_all() {
            healthy &= subscribe(&client, &strong.waiters, &mut sink, key.clone(), queues).await;
            if member.is_some() {
                ours.insert(key);
            }
        }
        strong.waiters.notify_all();
        drop(strong);
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        while healthy {
            tokio::select! {
                request = requests.recv() => match request {
                    Some(key) => {
                        let Some(alive) = client.upgrade() else { return };
                        if !alive.waiters.wants_announcements(&key) {
                            // Nobody waits for it any more: swept before this request came up.
                            continue;
                        }
                        healthy = subscribe(&client, &alive.waiters, &mut sink, key.clone(), queues).await;
                        if member.is_some() {
                            ours.insert(key);
                        }
                    }
                    None => return,
                },
                push = pushes.recv() => match push {
                    Some(push) => {
                        let Some(alive) = client.upgrade() else { return };
                        healthy = on_push(&client, &alive.waiters, push);
                    }
                    None => healthy = false,
                },
                _ = moved(&mut resolutions) => {
                    let Some(alive) = client.upgrade() else { return };
                    if current_generation(&alive.backend, member) != generation {
                        tracing::info!(client = %client.name, "redis-locked: the master moved; subscribing there");
                        healthy = false;
                    }
                }
                _ = sweep.tick() => {
                    let Some(alive) = client.upgrade() else { return };
                    let mut idle = alive.waiters.sweep_idle();
                    if member.is_some() {
                        idle = ours
                            .iter()
                            .filter(|key| !alive.waiters.wants_announcements(key))
                            .cloned()
                            .collect();
                        for key in &idle {
                            ours.remove(key);
                        }
                    }
                    drop(alive);
                    if !idle.is_empty() {
                        let channels: Vec<String> = idle
                            .iter()
                            .flat_map(|key| client.channels(key, queues))
                            .collect();
                        healthy = sink.unsubscribe(channels).await.is_ok();
                    }
                }
            }
        }
        let Some(alive) = client.upgrade() else {
            return;
        };
        tracing::warn!(client = %client.name, "redis-locked: pub/sub connection lost; reconnecting");
        refresh(&alive.backend);
        alive.waiters.subscriptions_lost();
    }
}

/// The listener of an in-memory client's store: what `run` is for a server, without a
/// connection to lose. A subscription takes effect at once; an announcement is taken as a
/// message is (this client's own are ignored: it woke its waiters already); idle keys are
/// swept alike.
async fn in_memory(
    client: Listener,
    mut requests: mpsc::UnboundedReceiver<String>,
    mut announcements: mpsc::UnboundedReceiver<Announcement>,
) {
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            request = requests.recv() => {
                let (Some(key), Some(alive)) = (request, client.upgrade()) else { return };
                let Some(memory) = alive.backend.memory() else { return };
                memory.subscribe(&key);
                if !alive.waiters.set_subscription(&key, Subscription::Active) {
                    // Swept while the request was on its way: take it back.
                    memory.unsubscribe(&[key]);
                }
            }
            Some(announcement) = announcements.recv() => {
                let Some(alive) = client.upgrade() else { return };
                client.on_message(
                    &alive.waiters,
                    announcement.channel.as_bytes(),
                    announcement.payload.as_bytes(),
                );
            }
            _ = sweep.tick() => {
                let Some(alive) = client.upgrade() else { return };
                let idle = alive.waiters.sweep_idle();
                if let Some(memory) = alive.backend.memory() {
                    memory.unsubscribe(&idle);
                }
            }
        }
    }
}

/// The next resolution of a Sentinel-managed master; never, for a fixed server.
async fn moved(resolutions: &mut Option<watch::Receiver<u64>>) {
    match resolutions {
        Some(resolutions) => {
            if resolutions.changed().await.is_err() {
                std::future::pending::<()>().await
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// The generation of the server's address now (it changes when a Sentinel-managed master
/// moves).
fn current_generation(backend: &Backend, member: Option<usize>) -> u64 {
    backend
        .server_of(member)
        .map_or(0, |single| single.generation())
}

/// A lost or refused pub/sub connection may mean the master moved: ask again.
fn refresh(backend: &Backend) {
    if let Some(single) = backend.single() {
        single.refresh();
    }
}

/// Subscribes `sink` to `key`'s announcements, and its inbox where `queues`; false when
/// the connection failed.
async fn subscribe(
    client: &Listener,
    waiters: &WaitTable,
    sink: &mut MultiplexedConnection,
    key: String,
    queues: bool,
) -> bool {
    let channels = client.channels(&key, queues);
    match sink.subscribe(&channels).await {
        Ok(()) => {
            if waiters.set_subscription(&key, Subscription::Active) {
                true
            } else {
                // Swept while the subscription was on its way: take it back.
                sink.unsubscribe(&channels).await.is_ok()
            }
        }
        Err(e) => {
            let error = &e as &(dyn std::error::Error + 'static);
            tracing::warn!(client = %client.name, error, "redis-locked: subscribe failed");
            waiters.set_subscription(&key, Subscription::Requested);
            false
        }
    }
}

/// Acts on one push of the pub/sub connection: an announcement pokes its key's head
/// (unless this client sent it). False when the push says the connection was lost.
fn on_push(client: &Listener, waiters: &WaitTable, push: redis::PushInfo) -> bool {
    match push.kind {
        PushKind::Message => {
            if let [
                redis::Value::BulkString(channel),
                redis::Value::BulkString(payload),
            ] = push.data.as_slice()
            {
                client.on_message(waiters, channel, payload);
            }
            true
        }
        PushKind::Disconnection => false,
        _ => true,
    }
}
