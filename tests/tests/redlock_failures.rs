//! Redlock under partial failures: a member that restarted empty, a member paused (not
//! dead), an acquisition cancelled half-way through its round, an attempt undone while a
//! member does not answer. Each test fails on the code before its fix.

use std::time::{Duration, Instant};

use redis_locked::{ClientBuilder, Lock, LockError};
use redis_locked_tests::{RedisServer, RedlockServers, blocking_acquisition_error};

/// Registers `client` on `servers`, each request bounded by `response_timeout`.
fn register(client: &str, servers: &RedlockServers, response_timeout: Duration) {
    ClientBuilder::redlock(servers.urls())
        .response_timeout(response_timeout)
        .register(client)
        .unwrap();
}

/// The owner token of whoever holds `key` on `server`.
fn owner_on(server: &RedisServer, key: &str) -> Option<String> {
    redis_locked_tests::owner_token(&mut server.connection(), key)
}

/// Waits until `check` holds, asking every 10 ms: no member announces these changes.
async fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < within, "{what}: not so after {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Counters far above every member's clock in microseconds (about 1.8e15 in 2026), as
/// after raises to the token of a member whose clock runs ahead; below 2^53, so exact in
/// the scripts' Lua numbers.
const HIGH: u64 = 5_000_000_000_000_000;

/// The counter-example (N = 3; counters A = B = 10, C = 3; {A, B} grant 11; A
/// restarts empty; {A, C} would grant 4), with the counters set by hand above the clocks so
/// that the clock floor of a fresh counter does not hide it. No majority then vouches for
/// the last token: the acquisition waits for one that does instead of going back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_tokens_do_not_go_back_after_a_member_restarts_empty() {
    let mut servers = RedlockServers::start(3);
    register(
        "redlock-fence-restart",
        &servers,
        Duration::from_millis(500),
    );
    let lock = Lock::with_client("redlock-fence-restart", "fenced")
        .unwrap()
        .expire(Duration::from_secs(10));
    let fence_key = format!("{}:fence", lock.key());
    for (i, counter) in [(0, HIGH + 10), (1, HIGH + 10), (2, HIGH + 3)] {
        let _: () = redis::cmd("SET")
            .arg(&fence_key)
            .arg(counter)
            .query(&mut servers.server(i).connection())
            .unwrap();
    }

    // {A, B} grant, C does not answer.
    servers.pause(2);
    let first = lock.acquire(Some(Duration::from_secs(2))).await.unwrap();
    let last = first.fencing_token();
    assert!(last > HIGH + 10, "{last}");
    first.release().await.unwrap();

    // A restarts empty; {A, C} answer, B does not.
    servers.kill(0);
    servers.start_again(0);
    servers.resume(2);
    servers.pause(1);
    match lock.acquire(Some(Duration::from_millis(500))).await {
        Ok(guard) => panic!(
            "granted token {} after token {last} by a majority that does not know it",
            guard.fencing_token()
        ),
        Err(e) => assert!(matches!(e, LockError::NoQuorum { .. }), "{e}"),
    }

    // B back: its counter vouches for the last token, so the next one is larger, and A
    // learns it.
    servers.resume(1);
    let next = lock.acquire(Some(Duration::from_secs(2))).await.unwrap();
    assert!(
        next.fencing_token() > last,
        "{} <= {last}",
        next.fencing_token()
    );
    let on_a: u64 = redis::cmd("GET")
        .arg(&fence_key)
        .query(&mut servers.server(0).connection())
        .unwrap();
    assert_eq!(on_a, next.fencing_token());
    next.release().await.unwrap();
}

/// A member that restarted empty is written again by the next renewal, so a lock held
/// through two restarts (each of a different member) stays held on a majority.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_writes_the_lock_again_on_members_that_restarted_empty() {
    let mut servers = RedlockServers::start(3);
    register(
        "redlock-renew-restart",
        &servers,
        Duration::from_millis(500),
    );
    let lock = Lock::with_client("redlock-renew-restart", "renewed")
        .unwrap()
        .expire(Duration::from_secs(1))
        .auto_renew(true);
    let guard = lock.acquire(Some(Duration::from_secs(2))).await.unwrap();
    for i in [0, 1] {
        servers.kill(i);
        servers.start_again(i);
        assert_eq!(owner_on(servers.server(i), lock.key()), None);
        // A renewal comes every third of the lease.
        eventually(
            &format!("member {i} holds the lock again"),
            Duration::from_secs(3),
            || owner_on(servers.server(i), lock.key()).as_deref() == Some(guard.token()),
        )
        .await;
    }
    assert!(!guard.is_lost());
    for server in servers.servers() {
        assert_eq!(owner_on(server, lock.key()).as_deref(), Some(guard.token()));
    }
    assert!(lock.try_acquire().await.unwrap().is_none());
    guard.release().await.unwrap();
}

/// A sync acquisition asks the members in parallel, each bounded on its own: a paused
/// first member does not eat the time of the others.
#[test]
fn a_paused_member_does_not_fail_sync_acquisitions() {
    let servers = RedlockServers::start(3);
    register("redlock-sync-paused", &servers, Duration::from_millis(500));
    // A 2 s lease: each member has 200 ms to answer an acquisition.
    let lock = Lock::with_client("redlock-sync-paused", "sync")
        .unwrap()
        .expire(Duration::from_secs(2));
    servers.pause(0);
    let start = Instant::now();
    let guard = lock
        .acquire_blocking(Some(Duration::from_secs(1)))
        .unwrap_or_else(|e| panic!("after {:?}: {e}", start.elapsed()));
    assert!(
        start.elapsed() < Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );
    assert!(guard.remaining_lease() > Duration::from_secs(1));
    guard.release().unwrap();
    servers.resume(0);
}

/// As above, with every member's connection open and idle, so that a sync acquisition
/// writes its requests to all members from one thread before reading any reply (issue 13
/// item 2): the paused member's unanswered request holds up the others' replies no longer
/// than its own bound.
#[test]
fn a_paused_member_does_not_fail_sync_acquisitions_on_open_connections() {
    let servers = RedlockServers::start(3);
    register(
        "redlock-sync-paused-warm",
        &servers,
        Duration::from_millis(500),
    );
    // A 2 s lease: each member has 200 ms to answer an acquisition.
    let lock = Lock::with_client("redlock-sync-paused-warm", "sync")
        .unwrap()
        .expire(Duration::from_secs(2));
    for fenced in [true, false] {
        let lock = lock.clone().fencing(fenced);
        lock.acquire_blocking(None).unwrap().release().unwrap();
        servers.pause(0);
        let start = Instant::now();
        let guard = lock
            .acquire_blocking(Some(Duration::from_secs(1)))
            .unwrap_or_else(|e| panic!("after {:?}: {e}", start.elapsed()));
        let took = start.elapsed();
        assert!(took < Duration::from_millis(600), "{took:?}");
        assert!(guard.remaining_lease() > Duration::from_secs(1));
        let start = Instant::now();
        guard.release().unwrap();
        // The release waits for the paused member up to the response timeout, no more.
        let took = start.elapsed();
        assert!(took < Duration::from_millis(900), "{took:?}");
        servers.resume(0);
    }
}

/// An acquisition cancelled while its round waits for a paused member, after the two
/// others granted it: its token is released on every member in the background, not left
/// there for the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acquisition_cancelled_mid_round_is_released_on_every_member() {
    let servers = RedlockServers::start(3);
    register("redlock-cancelled", &servers, Duration::from_secs(5));
    // A 10 s lease: the round waits up to 1 s for the paused member.
    let lock = Lock::with_client("redlock-cancelled", "cancelled")
        .unwrap()
        .expire(Duration::from_secs(10));
    servers.pause(2);
    let attempt = tokio::spawn({
        let lock = lock.clone();
        async move { lock.acquire(None).await.map(|_| ()) }
    });
    eventually("members 0 and 1 granted", Duration::from_secs(1), || {
        (0..2).all(|i| owner_on(servers.server(i), lock.key()).is_some())
    })
    .await;
    assert!(
        !attempt.is_finished(),
        "the round should still wait for member 2"
    );
    attempt.abort();
    assert!(attempt.await.unwrap_err().is_cancelled());
    eventually(
        "released on members 0 and 1",
        Duration::from_secs(2),
        || (0..2).all(|i| owner_on(servers.server(i), lock.key()).is_none()),
    )
    .await;
    // Member 2 ran the request queued while it was paused: freed once it answers.
    servers.resume(2);
    eventually("released on member 2", Duration::from_secs(2), || {
        owner_on(servers.server(2), lock.key()).is_none()
    })
    .await;
    lock.try_acquire()
        .await
        .unwrap()
        .unwrap()
        .release()
        .await
        .unwrap();
}

/// An attempt that did not win a majority is undone within the caller's deadline, also
/// while a member does not answer (its undo goes on in the background): `timeout` + 200
/// ms holds, async and sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_while_a_member_is_paused_keeps_the_callers_timeout() {
    let servers = RedlockServers::start(3);
    register("redlock-undo", &servers, Duration::from_secs(5));
    // A 30 s lease: each member may take up to 3 s to answer, by the per-server bound.
    let lock = Lock::with_client("redlock-undo", "undone")
        .unwrap()
        .expire(Duration::from_secs(30));
    // Member 0 is held by someone else: with member 2 paused, no majority.
    let _: () = redis::cmd("SET")
        .arg(lock.key())
        .arg("someone-else")
        .arg("PX")
        .arg(30_000)
        .query(&mut servers.server(0).connection())
        .unwrap();
    servers.pause(2);
    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    let e = lock.acquire(Some(timeout)).await.unwrap_err();
    let took = start.elapsed();
    assert!(matches!(e, LockError::Timeout { .. }), "{e}");
    assert!(took < timeout + Duration::from_millis(200), "{took:?}");
    let (e, took) = blocking_acquisition_error(&lock, timeout).await;
    assert!(matches!(e, LockError::Timeout { .. }), "{e}");
    assert!(took < timeout + Duration::from_millis(200), "{took:?}");
    // Member 1's grant was undone at once; member 2's once it answers.
    assert_eq!(owner_on(servers.server(1), lock.key()), None);
    servers.resume(2);
    eventually("undone on member 2", Duration::from_secs(2), || {
        owner_on(servers.server(2), lock.key()).is_none()
    })
    .await;
}
