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
use tokio::sync::mpsc;

use crate::client::LockClient;
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
        handle.spawn(run(client, receiver));
        Some(Subscriber { requests })
    }

    pub(crate) fn subscribe(&self, key: &str) {
        let _ = self.requests.send(key.to_string());
    }
}

async fn run(client: &'static LockClient, mut requests: mpsc::UnboundedReceiver<String>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let connected = tokio::time::timeout(
            client.endpoint.connect_timeout,
            client.redis.get_async_pubsub(),
        )
        .await;
        let pubsub = match connected {
            Ok(Ok(pubsub)) => pubsub,
            failed => {
                let reason = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "connect timeout".to_string(),
                };
                tracing::warn!(client = %client.name, %reason, "redis-lock: pub/sub connection failed; retrying");
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
                _ = sweep.tick() => {
                    let idle = client.waiters.sweep_idle();
                    if !idle.is_empty() {
                        healthy = sink.unsubscribe(idle).await.is_ok();
                    }
                }
            }
        }
        tracing::warn!(client = %client.name, "redis-lock: pub/sub connection lost; reconnecting");
        client.waiters.notify_all();
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
