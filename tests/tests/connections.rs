//! Connections are made lazily, reused, and capped: many distinct locks taken at once cost
//! at most `max_connections` connections per pool, not one per caller.

use std::time::Duration;

use redis_locked::{ClientBuilder, Lock};
use redis_locked_tests::RedisServer;

/// Connections the server has accepted so far (ours included).
fn connections_received(conn: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("stats").query(conn).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO stats has total_connections_received")
}

/// A client registered as `name` with at most 3 connections per pool, on a server of its
/// own; a connection to that server, and how many connections it had received.
fn capped_client(name: &str) -> (RedisServer, redis::Connection, u64) {
    let server = RedisServer::start();
    ClientBuilder::new(server.url())
        .max_connections(3)
        .register(name)
        .unwrap();
    let mut inspector = server.connection();
    let before = connections_received(&mut inspector);
    (server, inspector, before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_distinct_locks_at_once_share_a_capped_pool() {
    let (_server, mut inspector, before) = capped_client("capped");

    // 200 tasks, each its own lock name, all starting together: uncontended, so no
    // waiting and no pub/sub, only SETs and releases competing for connections.
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            tokio::spawn(async move {
                let lock = Lock::with_client("capped", format!("job:{i}"))
                    .unwrap()
                    .expire(Duration::from_secs(10));
                for _ in 0..3 {
                    lock.acquire(None).await.unwrap().release().await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let async_opened = connections_received(&mut inspector) - before;
    assert!(
        (1..=3).contains(&async_opened),
        "600 acquisitions over 200 names opened {async_opened} connections"
    );

    // Sync callers on 16 threads share their own pool under the same cap.
    let before = connections_received(&mut inspector);
    let threads: Vec<_> = (0..16)
        .map(|i| {
            std::thread::spawn(move || {
                let lock = Lock::with_client("capped", format!("sync-job:{i}"))
                    .unwrap()
                    .expire(Duration::from_secs(10));
                for _ in 0..10 {
                    lock.acquire_blocking(None).unwrap().release().unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let sync_opened = connections_received(&mut inspector) - before;
    assert!(
        (1..=3).contains(&sync_opened),
        "160 sync acquisitions opened {sync_opened} connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_opened_only_when_every_open_one_is_busy() {
    let (_server, mut inspector, before) = capped_client("one-at-a-time");
    // One task, one request at a time: the connection it opened is always free again.
    for i in 0..50 {
        let lock = Lock::with_client("one-at-a-time", format!("job:{i}"))
            .unwrap()
            .expire(Duration::from_secs(10));
        lock.acquire(None).await.unwrap().release().await.unwrap();
    }
    assert_eq!(connections_received(&mut inspector) - before, 1);
}
