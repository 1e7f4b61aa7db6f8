//! Sync callers on a Redis Cluster, outside any runtime, drive a current-thread runtime of
//! the client's pool on their own thread (runtime/src/servers/cluster/blocking.rs): the
//! background runtime is left alone, threads beyond the pool's size still exclude each
//! other, a caller's deadline holds while the lock's shard is paused, and connections the
//! servers closed while the pool sat idle do not fail the next release.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_locked::{ClientBuilder, Lock, LockError};
use redis_locked_tests::{RedisCluster, background_thread_wakeups, read_counter};

/// Before the pool, each sync request went to the background runtime and back: its thread
/// woke about three times per call (909 times for these 300 calls).
#[test]
fn sync_calls_run_on_the_callers_thread() {
    let cluster = RedisCluster::start(3, 0);
    ClientBuilder::cluster(cluster.seed_urls())
        .register("cluster-sync-thread")
        .unwrap();
    let lock = Lock::with_client("cluster-sync-thread", "own-thread").unwrap();
    for _ in 0..20 {
        lock.acquire_blocking(None).unwrap().release().unwrap();
    }
    let before = background_thread_wakeups();
    for _ in 0..300 {
        lock.acquire_blocking(None).unwrap().release().unwrap();
    }
    let woken = background_thread_wakeups() - before;
    assert!(
        woken < 30,
        "the background thread woke {woken} times for 300 sync calls"
    );
}

/// Six threads and a pool of two runtimes: four find none free at times and go through
/// the background runtime; every increment inside the lock is kept.
#[test]
fn threads_beyond_the_pool_still_exclude_each_other() {
    const THREADS: usize = 6;
    const ITERATIONS: i64 = 40;
    let cluster = Arc::new(RedisCluster::start(3, 0));
    ClientBuilder::cluster(cluster.seed_urls())
        .max_connections(2)
        .register("cluster-sync-pool")
        .unwrap();
    let counter = "{pool-counter}:count";
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let cluster = cluster.clone();
            std::thread::spawn(move || {
                let lock = Lock::with_client("cluster-sync-pool", "pool-counter").unwrap();
                let mut conn = cluster.connection_to_master_of(counter);
                for _ in 0..ITERATIONS {
                    let guard = lock
                        .acquire_blocking(Some(Duration::from_secs(30)))
                        .unwrap();
                    let value = read_counter(&mut conn, counter);
                    std::thread::yield_now();
                    let _: () = redis::cmd("SET")
                        .arg(counter)
                        .arg(value + 1)
                        .query(&mut conn)
                        .unwrap();
                    guard.release().unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let mut conn = cluster.connection_to_master_of(counter);
    assert_eq!(
        read_counter(&mut conn, counter),
        THREADS as i64 * ITERATIONS
    );
}

/// With the master of `name`'s shard paused, a sync acquisition with a 300 ms timeout on
/// a fresh client (`warm`: after one call, so that its connections exist) returns
/// `NoAnswer` within 500 ms; after the shard thaws, the same thread takes and releases the
/// lock three times.
fn sync_timeout_holds_on_a_paused_shard(client: &str, name: &str, warm: bool) {
    let cluster = RedisCluster::start(3, 0);
    ClientBuilder::cluster(cluster.seed_urls())
        .register(client)
        .unwrap();
    let lock = Lock::with_client(client, name).unwrap();
    if warm {
        lock.acquire_blocking(None).unwrap().release().unwrap();
    }
    let master = cluster.master_of(&format!("lock:{{{name}}}"));
    master.pause();
    let start = Instant::now();
    let result = lock.acquire_blocking(Some(Duration::from_millis(300)));
    let elapsed = start.elapsed();
    master.resume();
    assert!(
        matches!(result, Err(LockError::NoAnswer { .. })),
        "{:?}",
        result.map(|_| ())
    );
    assert!(elapsed <= Duration::from_millis(500), "{elapsed:?}");
    for _ in 0..3 {
        lock.acquire_blocking(Some(Duration::from_secs(5)))
            .unwrap()
            .release()
            .unwrap();
    }
}

/// The request dropped at the deadline leaves the connection it was on out of use (a
/// blocking one is dropped) or in step (an async one): after the shard thaws, the lock
/// works from the same thread.
#[test]
fn a_paused_shard_keeps_a_sync_callers_timeout() {
    sync_timeout_holds_on_a_paused_shard("cluster-sync-paused", "paused", true);
}

/// No blocking connection made yet and the lock's shard paused: connecting to every master
/// would wait for the paused one far past the caller's deadline (48 s here when it was done
/// on the caller's thread), so it happens on a thread of its own and the timeout holds.
#[test]
fn a_paused_shard_before_the_first_call_keeps_a_sync_callers_timeout() {
    sync_timeout_holds_on_a_paused_shard("cluster-sync-first-paused", "first-paused", false);
}

/// Every connection of the masters killed while the lock is held and the pool's runtime
/// sits unused (nothing drives it to read the close): the release that follows is sent on
/// a connection that works, and is not left unknown.
#[test]
fn connections_closed_while_the_pool_was_idle_do_not_fail_a_release() {
    let cluster = RedisCluster::start(3, 0);
    ClientBuilder::cluster(cluster.seed_urls())
        .register("cluster-sync-idle")
        .unwrap();
    let lock = Lock::with_client("cluster-sync-idle", "idle").unwrap();
    lock.acquire_blocking(None).unwrap().release().unwrap();
    for round in 0..3 {
        let guard = lock
            .acquire_blocking(Some(Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("round {round}: acquire: {e}"));
        for node in cluster.nodes() {
            let _: i64 = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("normal")
                .arg("SKIPME")
                .arg("yes")
                .query(&mut node.connection())
                .unwrap();
        }
        // Unused for longer than the pool waits before it lets its connections look.
        std::thread::sleep(Duration::from_millis(150));
        guard
            .release()
            .unwrap_or_else(|e| panic!("round {round}: release: {e}"));
    }
}
