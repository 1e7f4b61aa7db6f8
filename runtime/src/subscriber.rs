//! Release announcements from Redis, for waiters in this process.
//!
//! One pub/sub connection per client, on the background runtime, subscribed to exactly the
//! keys this process waits for. An announcement pokes the key's queue head (see
//! `waiters.rs`). If the connection drops, it reconnects, subscribes again and pokes every
//! head, since announcements may have been missed; meanwhile waiters still wake at the
//! holder's lease end, so a lost connection delays them but never strands them.

use std::future::poll_fn;
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::{mpsc, watch};

use crate::client::{LockClient, Target};
use crate::waiters::Subscription;

/// How often keys nobody waits for any more are unsubscribed and forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

pub(crate) struct Subscriber {
    requests: mpsc::UnboundedSender<String>,
}

impl Subscriber {
    pub(crate) fn start(client: &'static LockClient) -> Option<Subscriber> {
        let handle = crate::background::handle().ok()?;
        let (requests, receiver) = mpsc::unbounded_channel();
        match &client.target {
            Target::Cluster(cluster) => {
                handle.spawn(crate::cluster::pubsub::run(client, cluster, receiver));
            }
            _ => {
                handle.spawn(run(client, receiver));
            }
        }
        Some(Subscriber { requests })
    }

    pub(crate) fn subscribe(&self, key: &str) {
        let _ = self.requests.send(key.to_string());
    }
}

async fn run(client: &'static LockClient, mut requests: mpsc::UnboundedReceiver<String>) {
    let mut backoff = Duration::from_millis(50);
    // For a Sentinel-managed master: resolutions, to follow the master when it moves.
    let mut resolutions = match &client.target {
        Target::Sentinel(sentinel) => Some(sentinel.watch()),
        Target::Server(_) | Target::Cluster(_) => None,
    };
    loop {
        if let Some(resolutions) = &mut resolutions {
            resolutions.borrow_and_update();
        }
        let connected = async {
            let server = client.server(None).await.map_err(|e| e.to_string())?;
            let pubsub =
                tokio::time::timeout(client.connect_timeout, server.redis.get_async_pubsub())
                    .await
                    .map_err(|_| "connect timeout".to_string())?
                    .map_err(|e| e.to_string())?;
            Ok::<_, String>((pubsub, server.endpoint.generation))
        };
        let (pubsub, generation) = match connected.await {
            Ok(connected) => connected,
            Err(reason) => {
                tracing::warn!(client = %client.name, %reason, "redis-lock: pub/sub connection failed; retrying");
                refresh(client);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        let (mut sink, mut stream) = pubsub.split();
        let mut healthy = true;
        for key in client.waiters.resubscribe_all() {
            healthy &= subscribe(client, &mut sink, key).await;
        }
        client.waiters.notify_all();
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        while healthy {
            tokio::select! {
                request = requests.recv() => match request {
                    Some(key) => healthy = subscribe(client, &mut sink, key).await,
                    None => return,
                },
                message = poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)) => match message {
                    Some(msg) => {
                        if msg.get_payload_bytes() != client.instance_id.as_bytes() {
                            client.waiters.notify(msg.get_channel_name());
                        }
                    }
                    None => healthy = false,
                },
                _ = moved(&mut resolutions) => {
                    if current_generation(client) != generation {
                        tracing::info!(client = %client.name, "redis-lock: the master moved; subscribing there");
                        healthy = false;
                    }
                }
                _ = sweep.tick() => {
                    let idle = client.waiters.sweep_idle();
                    if !idle.is_empty() {
                        healthy = sink.unsubscribe(idle).await.is_ok();
                    }
                }
            }
        }
        tracing::warn!(client = %client.name, "redis-lock: pub/sub connection lost; reconnecting");
        refresh(client);
        client.waiters.notify_all();
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

/// The generation of the master's address now (0 for a fixed server).
fn current_generation(client: &LockClient) -> u64 {
    match &client.target {
        Target::Sentinel(sentinel) => sentinel.current().map_or(0, |s| s.endpoint.generation),
        Target::Server(server) => server.endpoint.generation,
        Target::Cluster(_) => 0,
    }
}

/// A lost or refused pub/sub connection may mean the master moved: ask again.
fn refresh(client: &LockClient) {
    if let Target::Sentinel(sentinel) = &client.target {
        let _ = sentinel.refresh();
    }
}

async fn subscribe(client: &LockClient, sink: &mut redis::aio::PubSubSink, key: String) -> bool {
    match sink.subscribe(&key).await {
        Ok(()) => {
            client.waiters.set_subscription(&key, Subscription::Active);
            true
        }
        Err(e) => {
            tracing::warn!(client = %client.name, error = %e, "redis-lock: subscribe failed");
            client
                .waiters
                .set_subscription(&key, Subscription::Requested);
            false
        }
    }
}
