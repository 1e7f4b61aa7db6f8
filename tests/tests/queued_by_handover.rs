//! A release that would hand the lock to a waiter of its own process, but finds another
//! process first in the lock's queue in Redis, hands it to that process and queues its own
//! waiter behind it in the same script (HANDOFF): the waiter makes no request of its own
//! to queue, is handed the lock by the next release, and, should it give up meanwhile,
//! leaves the queue so that no release hands the lock to it once it is gone.
//!
//! Each client of this test binary has its own instance id, wait table and pub/sub
//! connection: to Redis it is a process of its own.

use std::time::Duration;

use redis_locked::{ClientBuilder, Lock, LockError, LockGuard};
use redis_locked_tests::{
    RedisServer, command_calls, reset_stats, scripts_run, until_no_script_for, wait_for_queue,
};

const LEASE: Duration = Duration::from_secs(30);

fn lock(client: &str, name: &str) -> Lock {
    Lock::with_client(client, name).unwrap().expire(LEASE)
}

fn queue_len(server: &RedisServer, queue: &str) -> usize {
    redis::cmd("LLEN")
        .arg(queue)
        .query(&mut server.connection())
        .unwrap()
}

/// Process `b` holds `name`; two acquisitions of process `a` wait (the first queued in
/// Redis, the second behind it in `a`'s wait table), then one of process `c` queues in
/// Redis behind the first. `b` releases: the first of `a` gets the lock, returned here
/// with the tasks of the second (`timeout`) and of `c`.
async fn a_holds_with_own_waiter_and_c_queued(
    server: &RedisServer,
    name: &str,
    timeout: Option<Duration>,
) -> (
    LockGuard,
    tokio::task::JoinHandle<Result<LockGuard, LockError>>,
    tokio::task::JoinHandle<Result<LockGuard, LockError>>,
) {
    for client in ["a", "b", "c"] {
        let client = format!("{name}-{client}");
        ClientBuilder::new(server.url()).register(&client).unwrap();
    }
    let (a, b, c) = (
        format!("{name}-a"),
        format!("{name}-b"),
        format!("{name}-c"),
    );
    // Process `a` connected, so that its acquisitions below queue in its wait table in the
    // order they are spawned, before either of them sends anything.
    let warm = lock(&a, "warm-up").acquire(None).await.unwrap();
    warm.release().await.unwrap();
    let queue = format!("lock:{{{name}}}:queue");
    let holder = lock(&b, name).acquire(None).await.unwrap();
    let first = lock(&a, name);
    let first = tokio::spawn(async move { first.acquire(None).await });
    let own = lock(&a, name);
    let own = tokio::spawn(async move { own.acquire(timeout).await });
    wait_for_queue(server, &queue, 1).await;
    let other = lock(&c, name);
    let other = tokio::spawn(async move { other.acquire(None).await });
    wait_for_queue(server, &queue, 2).await;
    holder.release().await.unwrap();
    let first = first.await.unwrap().unwrap();
    (first, own, other)
}

/// The handover queues the waiter: from the release of `a` to the waiter's own release,
/// the server runs three scripts (the handover, `c`'s release, which grants the waiter the
/// lock, and the waiter's release), not a fourth, the waiter's own attempt to queue.
#[tokio::test(flavor = "current_thread")]
async fn a_waiter_passed_over_for_another_process_is_queued_by_the_same_script() {
    let server = RedisServer::start();
    let (first, own, other) = a_holds_with_own_waiter_and_c_queued(&server, "fold", None).await;
    until_no_script_for(&server, Duration::from_millis(100)).await;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut server.connection())
        .unwrap();
    first.release().await.unwrap();
    let other = other.await.unwrap().unwrap();
    assert_eq!(
        queue_len(&server, "lock:{fold}:queue"),
        1,
        "the waiter queued"
    );
    other.release().await.unwrap();
    let own = own.await.unwrap().unwrap();
    own.release().await.unwrap();
    assert_eq!(scripts_run(&server), 3);
}

/// The waiter had only waited in its process's wait table, behind the acquisition that
/// releases: no request of it could have put it in the queue in Redis, so the handover
/// pushes its entry without looking for it there first (no `LPOS`), and it stands there
/// once.
#[tokio::test(flavor = "current_thread")]
async fn a_handover_queues_a_waiter_that_never_queued_without_looking_for_it() {
    let server = RedisServer::start();
    let (first, own, other) = a_holds_with_own_waiter_and_c_queued(&server, "fresh", None).await;
    until_no_script_for(&server, Duration::from_millis(100)).await;
    reset_stats(&server);
    first.release().await.unwrap();
    let other = other.await.unwrap().unwrap();
    let calls = command_calls(&server);
    assert_eq!(calls.get("lpos"), None, "no LPOS: {calls:?}");
    assert_eq!(calls.get("rpush"), Some(&1), "{calls:?}");
    assert_eq!(queue_len(&server, "lock:{fresh}:queue"), 1, "queued once");
    other.release().await.unwrap();
    own.await.unwrap().unwrap().release().await.unwrap();
    assert_eq!(queue_len(&server, "lock:{fresh}:queue"), 0);
}

/// The waiter queued by the handover gives up while `c` holds the lock: its last attempt
/// takes its entry out of the queue, so `c`'s release frees the lock rather than hand it
/// to an acquisition that is gone (which would keep it for its 30 s lease).
#[tokio::test(flavor = "current_thread")]
async fn a_waiter_queued_by_a_handover_that_gives_up_leaves_the_queue() {
    let server = RedisServer::start();
    let timeout = Some(Duration::from_millis(1500));
    let (first, own, other) = a_holds_with_own_waiter_and_c_queued(&server, "quit", timeout).await;
    first.release().await.unwrap();
    let other = other.await.unwrap().unwrap();
    assert!(matches!(own.await.unwrap(), Err(LockError::Timeout { .. })));
    assert_eq!(
        queue_len(&server, "lock:{quit}:queue"),
        0,
        "the waiter left"
    );
    other.release().await.unwrap();
    let next = lock("quit-b", "quit").try_acquire().await.unwrap();
    assert!(next.is_some(), "free at once after the release");
}

/// The same waiter is cancelled instead (its future dropped): its entry is withdrawn in
/// the background, and `c`'s release frees the lock.
#[tokio::test(flavor = "current_thread")]
async fn a_waiter_queued_by_a_handover_that_is_cancelled_is_withdrawn() {
    let server = RedisServer::start();
    let (first, own, other) = a_holds_with_own_waiter_and_c_queued(&server, "drop", None).await;
    first.release().await.unwrap();
    let other = other.await.unwrap().unwrap();
    own.abort();
    assert!(own.await.unwrap_err().is_cancelled());
    wait_for_queue(&server, "lock:{drop}:queue", 0).await;
    other.release().await.unwrap();
    let next = lock("drop-b", "drop").try_acquire().await.unwrap();
    assert!(next.is_some(), "free at once after the release");
}

/// The handover's reply is lost (the server stalled past the response timeout) after it
/// ran: the lock went to `c` and the waiter was queued behind it, which nobody here knows.
/// The waiter counts itself as maybe queued, and `c`'s release hands it the lock at once,
/// not at the end of `c`'s 30 s lease; the queue is left empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_whose_reply_is_lost_after_it_queued_its_waiter_is_settled() {
    let server = RedisServer::start();
    ClientBuilder::new(server.url())
        .response_timeout(Duration::from_millis(300))
        .register("lost-a")
        .unwrap();
    ClientBuilder::new(server.url()).register("lost-c").unwrap();
    let queue = "lock:{lost}:queue";
    let holder = lock("lost-a", "lost").acquire(None).await.unwrap();
    let other = lock("lost-c", "lost");
    let other = tokio::spawn(async move { other.acquire(None).await });
    wait_for_queue(&server, queue, 1).await;
    let own = lock("lost-a", "lost");
    let own = tokio::spawn(async move { own.acquire(None).await });
    wait_for_queue(&server, queue, 2).await;

    server.pause();
    assert!(holder.release().await.is_err(), "no reply");
    server.resume();
    let other = other.await.unwrap().unwrap();
    let released = std::time::Instant::now();
    other.release().await.unwrap();
    let own = own.await.unwrap().unwrap();
    let after = released.elapsed();
    assert!(after < Duration::from_secs(2), "{after:?}");
    own.release().await.unwrap();
    assert_eq!(queue_len(&server, queue), 0);
}
