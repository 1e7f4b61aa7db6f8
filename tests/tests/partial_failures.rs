//! Requests whose outcome is unknown are never taken for "no": the interleavings of the
//! in-process handover and of releases, forced with SIGSTOP of redis-server, a pool of one
//! connection, and futures dropped or polled late at chosen points.

use std::future::Future;
use std::time::{Duration, Instant};

use redis_locked::{ClientBuilder, Lock, LockError};
use redis_locked_tests::{RedisServer, until_waiter_settled, wait_for_subscribers};

/// Long enough that a lock stranded for its lease, or a waiter asleep for one, fails the
/// assertions below, which all allow a second or two.
const LONG_LEASE: Duration = Duration::from_secs(30);

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

/// Polls `waiter` until it has tried the lock, subscribed to its release announcements and
/// queued in Redis (its look once the subscription is confirmed), then a little longer so
/// that it has read that look's reply: it is then the head of this process's queue, the
/// one a release hands the lock to. (A release that meets the look instead frees the lock
/// or hands it to the queued entry, which is not what these tests are about.)
async fn queue_up<F: Future + Unpin>(server: &RedisServer, lock: &Lock, waiter: &mut F) {
    let queue = format!("{}:queue", lock.key());
    let give_up = Instant::now() + Duration::from_secs(10);
    while queue_len(server, &queue) == 0 {
        assert!(Instant::now() < give_up, "the waiter never queued");
        assert!(
            tokio::time::timeout(Duration::from_millis(10), &mut *waiter)
                .await
                .is_err(),
            "the waiter waits"
        );
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut *waiter)
            .await
            .is_err(),
        "the waiter waits"
    );
    wait_for_subscribers(server, lock.key(), 1).await;
}

fn queue_len(server: &RedisServer, queue: &str) -> usize {
    redis::cmd("LLEN")
        .arg(queue)
        .query(&mut server.connection())
        .unwrap()
}

/// Takes and releases `lock`, which must be free within a second (not at its lease's end):
/// `why` says what should have freed it.
async fn free_at_once(lock: &Lock, why: &str) {
    let start = Instant::now();
    let next = bounded(
        "the next acquisition",
        lock.acquire(Some(Duration::from_secs(3))),
    )
    .await
    .expect(why);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{why}: {:?}",
        start.elapsed()
    );
    next.release().await.unwrap();
}

fn pttl(server: &RedisServer, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query(&mut server.connection())
        .unwrap()
}

/// Item 1: a waiter polled late (a `select!` loop, a busy runtime) must not believe in a
/// lock that was handed to it and has expired since: the lease counts from before the
/// handover was sent, not from when the waiter looks at it.
#[tokio::test]
async fn a_handover_looked_at_after_its_lease_is_not_a_lock() {
    let server = RedisServer::start();
    redis_locked::register("partial-late", &server.url()).unwrap();
    let lease = Duration::from_millis(300);
    let lock = Lock::with_client("partial-late", "late")
        .unwrap()
        .expire(lease);
    let holder = lock.acquire(None).await.unwrap();
    let mut waiter = Box::pin(lock.acquire(None));
    queue_up(&server, &lock, &mut waiter).await;
    let before_release = redis_locked::Lock::with_client("partial-late", "late")
        .unwrap()
        .owner()
        .await
        .unwrap();
    holder.release().await.unwrap();
    let handed_to = lock.owner().await.unwrap();
    assert!(
        handed_to.is_some() && handed_to != before_release,
        "handed over to the waiter's token"
    );
    // The waiter is not polled until the handed-over lease has run out in Redis.
    while pttl(&server, lock.key()) != -2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let guard = bounded("the late waiter", waiter).await.unwrap();
    let owner = lock.owner().await.unwrap();
    assert_eq!(
        owner.as_deref(),
        Some(guard.token()),
        "the guard's token is in Redis"
    );
    let left = pttl(&server, lock.key());
    assert!(
        guard.remaining_lease() <= Duration::from_millis(left.max(0) as u64 + 5),
        "the local lease {:?} outlasts Redis's {left} ms",
        guard.remaining_lease()
    );
    guard.release().await.unwrap();
}

/// Item 7: a waiter dropped after the lock was handed to it does not strand the lock
/// under its token for a lease.
#[tokio::test]
async fn a_waiter_dropped_after_a_handover_frees_the_lock() {
    let server = RedisServer::start();
    redis_locked::register("partial-dropped", &server.url()).unwrap();
    let lock = Lock::with_client("partial-dropped", "dropped")
        .unwrap()
        .expire(LONG_LEASE);
    let holder = lock.acquire(None).await.unwrap();
    let mut waiter = Box::pin(lock.acquire(None));
    queue_up(&server, &lock, &mut waiter).await;
    holder.release().await.unwrap();
    assert!(lock.is_locked().await.unwrap(), "handed to the waiter");
    drop(waiter);

    free_at_once(&lock, "the dropped waiter's lock was freed").await;
}

/// Item 9: a handover whose reply never comes (Redis stalled past the response timeout)
/// may still run. The releaser frees its own token once Redis answers, and the waiter,
/// told the outcome is unknown, finds its own token in the key and takes the lock: it
/// does not wait out the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_whose_reply_is_lost_is_settled() {
    let server = RedisServer::start();
    ClientBuilder::new(server.url())
        .response_timeout(Duration::from_millis(300))
        .register("partial-handoff-lost")
        .unwrap();
    let lock = Lock::with_client("partial-handoff-lost", "lost-reply")
        .unwrap()
        .expire(LONG_LEASE);
    let holder = lock.acquire(None).await.unwrap();
    let waiter = tokio::spawn({
        let lock = lock.clone();
        async move {
            let guard = lock.acquire(None).await?;
            let at = Instant::now();
            guard.release().await?;
            Ok::<_, LockError>(at)
        }
    });
    until_waiter_settled(&server, lock.key()).await;

    server.pause();
    let released = bounded("release", holder.release()).await;
    assert!(released.is_err(), "no reply: {released:?}");
    server.resume();
    let resumed = Instant::now();
    let acquired = bounded("the waiter", waiter).await.unwrap().unwrap();
    let after = acquired.saturating_duration_since(resumed);
    assert!(after < Duration::from_secs(2), "{after:?}");
}

/// Item 10: a release future dropped before it is done (here while it waits for the only
/// pooled connection) still frees the lock, in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_release_still_frees_the_lock() {
    let server = RedisServer::start();
    ClientBuilder::new(server.url())
        .max_connections(1)
        .response_timeout(Duration::from_secs(2))
        .register("partial-cancelled-release")
        .unwrap();
    let lock = Lock::with_client("partial-cancelled-release", "cancelled")
        .unwrap()
        .expire(LONG_LEASE);
    let holder = lock.acquire(None).await.unwrap();

    server.pause();
    // Takes the pool's one connection and keeps it until Redis answers.
    let busy = tokio::spawn({
        let lock = lock.clone();
        async move { lock.is_locked().await }
    });
    tokio::task::yield_now().await;
    let cancelled = tokio::time::timeout(Duration::from_millis(200), holder.release()).await;
    assert!(cancelled.is_err(), "the release was cancelled half-way");
    server.resume();
    let _ = bounded("the busy request", busy).await;

    free_at_once(&lock, "the cancelled release was finished").await;
}

/// Item 13: a waiter whose handover is in flight still returns by its own deadline,
/// not when the releaser hears back from a stalled Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_holds_with_a_handover_in_flight() {
    let server = RedisServer::start();
    ClientBuilder::new(server.url())
        .response_timeout(Duration::from_secs(3))
        .register("partial-deadline")
        .unwrap();
    let lock = Lock::with_client("partial-deadline", "deadline")
        .unwrap()
        .expire(LONG_LEASE);
    let holder = lock.acquire(None).await.unwrap();
    let timeout = Duration::from_millis(800);
    let started = Instant::now();
    let waiter = tokio::spawn({
        let lock = lock.clone();
        async move { lock.acquire(Some(timeout)).await.map(drop) }
    });
    until_waiter_settled(&server, lock.key()).await;

    server.pause();
    let release = tokio::spawn(holder.release());
    let result = bounded("the waiter", waiter).await.unwrap();
    let took = started.elapsed();
    assert!(result.is_err(), "{result:?}");
    assert!(took <= timeout + Duration::from_millis(200), "{took:?}");
    server.resume();
    let _ = bounded("the release", release).await;

    // Whatever the handover did, the lock is free again at once.
    free_at_once(&lock, "free after the handover to a waiter that left").await;
}

/// Item 15: after a release, a waiter that loses the race to another process waits for
/// the new holder's lease, not for the longest lease it ever saw.
#[tokio::test]
async fn a_waiter_waits_for_the_current_holders_lease() {
    let server = RedisServer::start();
    redis_locked::register("partial-ttl", &server.url()).unwrap();
    let lock = Lock::with_client("partial-ttl", "ttl").unwrap();
    let mut conn = server.connection();
    // Another process holds it for 10 s...
    let _: () = redis::cmd("SET")
        .arg(lock.key())
        .arg("first-holder")
        .arg("PX")
        .arg(10_000)
        .query(&mut conn)
        .unwrap();
    let start = Instant::now();
    let waiter = tokio::spawn({
        let lock = lock.clone();
        async move { lock.acquire(Some(Duration::from_secs(5))).await.map(drop) }
    });
    wait_for_subscribers(&server, lock.key(), 1).await;
    // ...then passes it to a third process, which takes it for 300 ms and dies, and the
    // release is announced.
    let _: () = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(lock.key())
        .arg("second-holder")
        .arg("PX")
        .arg(300)
        .ignore()
        .cmd("PUBLISH")
        .arg(lock.key())
        .arg("another-process")
        .ignore()
        .query(&mut conn)
        .unwrap();
    bounded("the waiter", waiter)
        .await
        .unwrap()
        .expect("acquired when the short lease ended");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}
