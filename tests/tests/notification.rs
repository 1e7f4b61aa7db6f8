//! Waiters in one process learn of a release in another by Redis pub/sub, at once, not at
//! the holder's lease end; and a lost pub/sub connection is re-established without
//! stranding them.

use std::time::{Duration, Instant};

use redis_locked::Lock;
use redis_locked_tests::{HolderProcess, RedisServer, wait_for_subscribers};

/// Waits in this process for `name` while the contender holds it (30 s lease); `between`
/// runs once the wait is under way. Asserts the waiter got the lock within 100 ms of the
/// contender's release, which only an announcement can do.
async fn woken_by_remote_release(client: &str, name: &str, between: impl FnOnce(&RedisServer)) {
    let server = RedisServer::start();
    redis_locked::register(client, &server.url()).unwrap();
    let holder = HolderProcess::start(env!("CARGO_BIN_EXE_contender"), &server.url(), name, "30");
    let channel = format!("lock:{{{name}}}");

    let lock = Lock::with_client(client, name).unwrap();
    let waiter = tokio::spawn(async move { lock.acquire(None).await.map(|g| (Instant::now(), g)) });
    // Our process subscribes to the lock's channel once its waiter has to wait.
    wait_for_subscribers(&server, &channel, 1).await;
    between(&server);
    wait_for_subscribers(&server, &channel, 1).await;

    let released = tokio::task::spawn_blocking(move || holder.release())
        .await
        .unwrap();
    let (acquired, guard) = waiter.await.unwrap().unwrap();
    let after = acquired.saturating_duration_since(released);
    assert!(
        after < Duration::from_millis(100),
        "woken {after:?} after the release; the lease was 30 s"
    );
    guard.release().await.unwrap();
}

#[tokio::test]
async fn a_release_in_another_process_wakes_waiters_at_once() {
    woken_by_remote_release("notify", "remote", |_| {}).await;
}

#[tokio::test]
async fn waiters_survive_a_lost_pubsub_connection() {
    // The server drops every pub/sub connection; ours must come back and subscribe again.
    woken_by_remote_release("notify-reconnect", "flaky", |server| {
        let _: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query(&mut server.connection())
            .unwrap();
    })
    .await;
}
