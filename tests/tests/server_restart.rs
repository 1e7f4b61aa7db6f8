//! Redis restarts under a running application: pooled connections to the old server are
//! dead, and the next locked call reconnects instead of failing.

use std::time::Duration;

use redis_locked::Lock;
use redis_locked_tests::RedisServer;

#[tokio::test]
async fn locked_calls_reconnect_after_a_server_restart() {
    let mut server = RedisServer::start();
    redis_locked::register("restart", &server.url()).unwrap();
    let lock = Lock::with_client("restart", "survivor")
        .unwrap()
        .expire(Duration::from_secs(10));

    // Fill both pools: the async one of this runtime, and the sync one.
    lock_and_release_both_ways(&lock).await;
    server.restart();
    lock_and_release_both_ways(&lock).await;
}

/// Takes and releases `lock` once through each pool.
async fn lock_and_release_both_ways(lock: &Lock) {
    lock.acquire(None).await.unwrap().release().await.unwrap();
    let sync_lock = lock.clone();
    tokio::task::spawn_blocking(move || sync_lock.acquire_blocking(None)?.release())
        .await
        .unwrap()
        .unwrap();
}
