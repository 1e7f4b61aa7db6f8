//! Release announcements on a Redis Cluster: sharded pub/sub (`SSUBSCRIBE`), so an
//! announcement travels only within the lock's own shard instead of being broadcast to
//! every node as a plain `PUBLISH` is.
//!
//! The subscriptions ride on the shared cluster connection; its messages arrive as RESP3
//! pushes. The `redis` crate remembers them and subscribes again after a reconnect or a
//! failover, on whichever node then serves the slot. Announcements made meanwhile are
//! lost, so every (re)subscription confirmation pokes the key's waiters, and waiters
//! still wake at the holder's lease end: a failover delays them, never strands them.

use std::time::Duration;

use redis::PushKind;
use tokio::sync::mpsc;

use crate::client::LockClient;
use crate::cluster::Cluster;
use crate::waiters::Subscription;

/// How often keys nobody waits for any more are unsubscribed and forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// How soon subscriptions that failed are tried again.
const RETRY_AFTER: Duration = Duration::from_millis(250);

pub(crate) async fn run(
    client: &'static LockClient,
    cluster: &'static Cluster,
    mut requests: mpsc::UnboundedReceiver<String>,
) {
    let Some(mut pushes) = cluster.take_pushes() else {
        return;
    };
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    let mut retry = tokio::time::interval(RETRY_AFTER);
    let mut failed = false;
    loop {
        tokio::select! {
            request = requests.recv() => match request {
                Some(key) => failed |= !subscribe(client, cluster, vec![key]).await,
                None => return,
            },
            push = pushes.recv() => match push {
                Some(push) => on_push(client, push),
                None => return,
            },
            _ = retry.tick(), if failed => {
                failed = !subscribe(client, cluster, client.waiters.resubscribe_all()).await;
            }
            _ = sweep.tick() => {
                let idle = client.waiters.sweep_idle();
                if !idle.is_empty()
                    && let Ok(mut connection) = cluster.connection().await
                {
                    let _ = connection.sunsubscribe(idle).await;
                }
            }
        }
    }
}

/// Subscribes to `keys`' shard channels; false if that failed (to be tried again).
async fn subscribe(client: &LockClient, cluster: &Cluster, keys: Vec<String>) -> bool {
    if keys.is_empty() {
        return true;
    }
    let outcome = match cluster.connection().await {
        Ok(mut connection) => connection
            .ssubscribe(&keys)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(crate::error::Chain(&e).to_string()),
    };
    match outcome {
        Ok(()) => {
            for key in &keys {
                client.waiters.set_subscription(key, Subscription::Active);
            }
            true
        }
        Err(error) => {
            tracing::warn!(client = %client.name, %error, "redis-locked: sharded subscribe failed; retrying");
            for key in &keys {
                client
                    .waiters
                    .set_subscription(key, Subscription::Requested);
            }
            false
        }
    }
}

fn on_push(client: &LockClient, push: redis::PushInfo) {
    let channel = |data: &[redis::Value]| match data.first() {
        Some(redis::Value::BulkString(name)) => Some(String::from_utf8_lossy(name).into_owned()),
        _ => None,
    };
    match push.kind {
        PushKind::SMessage => {
            let own = matches!(push.data.get(1),
                Some(redis::Value::BulkString(payload)) if payload == client.instance_id.as_bytes());
            if !own && let Some(key) = channel(&push.data) {
                client.waiters.notify(&key);
            }
        }
        // A (re)subscription, perhaps on a new master after a failover: a release may have
        // gone unheard meanwhile.
        PushKind::SSubscribe => {
            if let Some(key) = channel(&push.data) {
                client.waiters.notify(&key);
            }
        }
        PushKind::Disconnection => client.waiters.notify_all(),
        _ => {}
    }
}
