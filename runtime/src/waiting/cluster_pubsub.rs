//! Release announcements on a Redis Cluster: sharded pub/sub (`SSUBSCRIBE`), so an
//! announcement travels only within the lock's own shard instead of being broadcast to
//! every node as a plain `PUBLISH` is.
//!
//! The subscriptions ride on the shared cluster connection; its messages arrive as RESP3
//! pushes. The `redis` crate remembers them and subscribes again after it refreshes its
//! slot map, on whichever node then serves the slot; after a node's connection drops,
//! this task also subscribes every key again itself, every 250 ms until that works, so as
//! not to depend on when the crate refreshes. Announcements made meanwhile
//! are lost, so every (re)subscription pokes the key's waiters, and waiters still wake at
//! the holder's lease end at the latest: a failover delays them, never strands them.

use std::time::{Duration, Instant};

use redis::PushKind;
use tokio::sync::mpsc;

use crate::backends::backend::Backend;
use crate::servers::cluster::Cluster;
use crate::util::repeated_failure::RepeatedFailure;
use crate::waiting::listener::{Alive, Listener};
use crate::waiting::waiters::Subscription;

/// How often keys nobody waits for any more are unsubscribed and forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// How soon subscriptions that failed are tried again.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// Ends when the client is gone; holds it only while it acts (see `subscriber.rs`).
pub(crate) async fn run(client: Listener, mut requests: mpsc::UnboundedReceiver<String>) {
    let Some(mut pushes) = client
        .upgrade()
        .and_then(|alive| cluster_of(&alive.backend)?.take_pushes())
    else {
        return;
    };
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    let mut retry = tokio::time::interval(RETRY_AFTER);
    let mut failed = false;
    // Retried every 250 ms through an outage: warned about when it begins, then every 10 s.
    let mut failures = RepeatedFailure::default();
    loop {
        tokio::select! {
            request = requests.recv() => match request {
                Some(key) => {
                    let Some(alive) = client.upgrade() else { return };
                    failed |= !subscribe(&client, &alive, vec![key], &mut failures).await;
                }
                None => return,
            },
            push = pushes.recv() => match push {
                Some(push) => {
                    let Some(alive) = client.upgrade() else { return };
                    // A node's connection dropped (a failover, a restart): the `redis`
                    // crate subscribes again when it refreshes its slot map, and waiters
                    // that sleep until their holder's lease end depend on that. So as not
                    // to depend on when the crate does it, every key is also subscribed
                    // again from here, retried until it takes on the node that now serves
                    // it (the attempts themselves make the crate refresh).
                    failed |= matches!(push.kind, PushKind::Disconnection);
                    on_push(&client, &alive, push);
                }
                None => return,
            },
            _ = retry.tick(), if failed => {
                let Some(alive) = client.upgrade() else { return };
                let keys = alive.waiters.resubscribe_all();
                failed = !subscribe(&client, &alive, keys, &mut failures).await;
            }
            _ = sweep.tick() => {
                let Some(alive) = client.upgrade() else { return };
                let idle = alive.waiters.sweep_idle();
                if !idle.is_empty()
                    && let Some(cluster) = cluster_of(&alive.backend)
                    && let Ok(mut connection) = cluster.connection().await
                {
                    let _ = connection.sunsubscribe(channels_of(&client, &alive.backend, &idle)).await;
                }
            }
        }
    }
}

/// The client's cluster: always there, since only a cluster client starts this task.
fn cluster_of(backend: &Backend) -> Option<&Cluster> {
    match backend {
        Backend::Cluster(cluster) => Some(cluster),
        Backend::Single(_) | Backend::Redlock(_) | Backend::Memory(_) => None,
    }
}

/// The shard channels of `keys`: each one's announcements, and this client's inbox for it
/// where the cluster's waiters queue in Redis.
fn channels_of(client: &Listener, backend: &Backend, keys: &[String]) -> Vec<String> {
    let queues = backend.queues();
    keys.iter()
        .flat_map(|key| client.channels(key, queues))
        .collect()
}

/// Subscribes to `keys`' shard channels; false if that failed (to be tried again).
async fn subscribe(
    client: &Listener,
    alive: &Alive,
    keys: Vec<String>,
    failures: &mut RepeatedFailure,
) -> bool {
    if keys.is_empty() {
        return true;
    }
    let Some(cluster) = cluster_of(&alive.backend) else {
        return true;
    };
    let connection = cluster.connection().await;
    let channels = channels_of(client, &alive.backend, &keys);
    let outcome = match connection {
        Ok(mut connection) => match connection.ssubscribe(&channels).await {
            Ok(()) => Ok(connection),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    match outcome {
        Ok(mut connection) => {
            if failures.worked() {
                tracing::info!(client = %client.name, "redis-locked: sharded subscribe works again");
            }
            // Keys swept while the subscription was on its way are taken back, or they
            // would stay subscribed for good.
            let swept: Vec<String> = keys
                .iter()
                .filter(|key| !alive.waiters.set_subscription(key, Subscription::Active))
                .cloned()
                .collect();
            if !swept.is_empty() {
                let swept = channels_of(client, &alive.backend, &swept);
                let _ = connection.sunsubscribe(swept).await;
            }
            true
        }
        Err(error) => {
            if let Some(failed) = failures.failed(Instant::now()) {
                tracing::warn!(client = %client.name, %error, failed, "redis-locked: sharded subscribe failed; retrying every 250 ms, warning every 10 s");
            }
            for key in &keys {
                alive.waiters.set_subscription(key, Subscription::Requested);
            }
            false
        }
    }
}

fn on_push(client: &Listener, alive: &Alive, push: redis::PushInfo) {
    let channel = |data: &[redis::Value]| match data.first() {
        Some(redis::Value::BulkString(name)) => Some(String::from_utf8_lossy(name).into_owned()),
        _ => None,
    };
    match push.kind {
        PushKind::SMessage => {
            if let [
                redis::Value::BulkString(channel),
                redis::Value::BulkString(payload),
                ..,
            ] = push.data.as_slice()
            {
                client.on_message(&alive.waiters, channel, payload);
            }
        }
        // A (re)subscription, perhaps on a new master after a failover: a release may have
        // gone unheard meanwhile. (A confirmation for the inbox names no key's queue: the
        // poke then finds nobody and does nothing.)
        PushKind::SSubscribe => {
            if let Some(key) = channel(&push.data) {
                alive.waiters.notify(&key);
            }
        }
        PushKind::Disconnection => alive.waiters.subscriptions_lost(),
        _ => {}
    }
}
