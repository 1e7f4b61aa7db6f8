//! `max_hold` and `min_hold`: a runaway holder lets go when its maximum hold is over, and
//! the next process gets the lock then; a job whose body ends sooner than its minimum hold
//! keeps the lock taken until the hold is over, so machines that start it late skip it,
//! and a waiter gets the lock when the hold ends, not when the old lease would have.
//!
//! The runaway holder and the job's machines are real processes (the `contender`
//! binary); each in-process client stands for a process of its own to Redis.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use redis_locked::{ClientBuilder, Lock, LockError, redis_lock};
use redis_locked_tests::{
    HolderProcess, KilledOnDrop, RedisCluster, RedisServer, RedlockServers, freed_within,
    read_counter, wait_for_queue,
};

/// The key of lock `name` with the default prefix.
fn key(name: &str) -> String {
    format!("lock:{{{name}}}")
}

/// How many connections subscribe to `channel` on `server`.
fn numsub(server: &RedisServer, channel: &str) -> i64 {
    let (_, n): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query(&mut server.connection())
        .unwrap();
    n
}

fn pttl(conn: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(conn).unwrap()
}

/// Runs the `contender` binary in `mode` to its end (or to its first line, for a process
/// that does not end) and returns that line.
fn contender_line(child: &mut std::process::Child) -> String {
    let out = child.stdout.as_mut().expect("stdout is piped");
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    line.trim().to_string()
}

fn contender(args: &[&str]) -> KilledOnDrop {
    KilledOnDrop::contender(env!("CARGO_BIN_EXE_contender"), args)
}

/// A process runs a body that never ends, under `max_hold = 1` with a 0.3 s lease that it
/// renews: it lets the lock go a second after taking it, while still running, and a
/// waiter in another process gets it then. Without `max_hold`, renewal would keep it
/// from the waiter for good (its 10 s timeout).
#[tokio::test(flavor = "multi_thread")]
async fn max_hold_lets_a_runaway_holder_go_to_the_next_process() {
    let server = RedisServer::start();
    redis_locked::register("runaway-next", &server.url()).unwrap();
    let mut runaway = contender(&["runaway", &server.url(), "runaway"]);
    assert_eq!(contender_line(&mut runaway), "HOLDING");
    let holding = Instant::now();

    let lock = Lock::with_client("runaway-next", "runaway").unwrap();
    let guard = lock.acquire(Some(Duration::from_secs(10))).await.unwrap();
    let waited = holding.elapsed();
    assert!(
        runaway.try_wait().unwrap().is_none(),
        "the runaway process is still running"
    );
    // Taken a little before `HOLDING` was read; let go a second after it was taken, at
    // the end of a lease that its last renewal cut to the hold.
    assert!(
        waited > Duration::from_millis(700) && waited < Duration::from_secs(2),
        "the next process got the lock {waited:?} after the runaway one held it"
    );
    guard.release().await.unwrap();
}

#[redis_lock(
    name = "forever-{id}",
    client = "hold-abort",
    expire = 0.2,
    max_hold = 0.6,
    auto_renew,
    on_lost = "abort"
)]
async fn forever(id: u32) -> Result<(), LockError> {
    let _ = id;
    std::future::pending::<()>().await;
    Ok(())
}

/// With `on_lost = "abort"`, the body is stopped when the maximum hold is over, the call
/// returns `LockError::Lost`, and the lock is free.
#[tokio::test(flavor = "multi_thread")]
async fn max_hold_stops_an_aborting_body_and_frees_the_lock() {
    let server = RedisServer::start();
    redis_locked::register("hold-abort", &server.url()).unwrap();
    let start = Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(5), forever(1))
        .await
        .expect("the body is stopped when the maximum hold is over")
        .unwrap_err();
    let ran = start.elapsed();
    assert!(matches!(error, LockError::Lost { .. }), "{error:?}");
    assert!(
        ran > Duration::from_millis(500) && ran < Duration::from_millis(1500),
        "the body was stopped after {ran:?}"
    );
    // Free within a trip of the call's end: the hold counts from the acquisition's reply,
    // so Redis may keep the key that much longer (or until the release the lost guard
    // leaves in the background frees it), but not for another lease (200 ms).
    let lock = Lock::with_client("hold-abort", "forever-1").unwrap();
    assert!(
        freed_within(&lock, Duration::from_millis(100)).await,
        "the lock was freed"
    );
}

/// Neither renewal nor `extend` carries the lease past the maximum hold: an extension
/// asked for a minute gets what is left of the hold, the guard reports the lock lost when
/// the hold is over, and then extending and releasing fail with `Lost`.
#[tokio::test(flavor = "multi_thread")]
async fn max_hold_bounds_renewal_and_extension() {
    let server = RedisServer::start();
    redis_locked::register("hold-extend", &server.url()).unwrap();
    let lock = Lock::with_client("hold-extend", "bounded")
        .unwrap()
        .expire(Duration::from_millis(200))
        .auto_renew(true)
        .max_hold(Duration::from_millis(700));
    let taken = Instant::now();
    let guard = lock.acquire(None).await.unwrap();
    guard.extend(Some(Duration::from_secs(60))).await.unwrap();
    let left = pttl(&mut server.connection(), &key("bounded"));
    assert!(left > 0 && left <= 700, "extended to {left} ms");

    tokio::time::timeout(Duration::from_secs(3), guard.lost())
        .await
        .expect("the lock is lost when the maximum hold is over");
    let held = taken.elapsed();
    assert!(held > Duration::from_millis(550), "lost after {held:?}");
    assert!(guard.is_lost());
    assert!(matches!(
        guard.extend(None).await,
        Err(LockError::Lost { .. })
    ));
    assert!(matches!(guard.release().await, Err(LockError::Lost { .. })));
}

/// A lease longer than the maximum hold is cut to it from the start.
#[tokio::test(flavor = "multi_thread")]
async fn a_lease_longer_than_the_maximum_hold_is_cut_to_it() {
    let server = RedisServer::start();
    redis_locked::register("hold-cut", &server.url()).unwrap();
    let lock = Lock::with_client("hold-cut", "cut")
        .unwrap()
        .expire(Duration::from_secs(60))
        .max_hold(Duration::from_secs(2));
    let guard = lock.acquire(None).await.unwrap();
    let left = pttl(&mut server.connection(), &key("cut"));
    assert!(left > 0 && left <= 2000, "a lease of {left} ms");
    assert!(guard.remaining_lease() <= Duration::from_secs(2));
    guard.release().await.unwrap();
}

/// Four machines start the same job, each after the one before has finished (their clocks
/// run late by different amounts), with `timeout = 0` and `min_hold = 2`: the job runs
/// once, and the others skip it, because the first left the lock taken for the rest of
/// the two seconds. Without `min_hold`, each would find the lock free and run it again.
#[test]
fn min_hold_makes_a_job_run_once_though_its_machines_start_it_at_different_times() {
    let server = RedisServer::start();
    let started = Instant::now();
    let mut lines = Vec::new();
    for _ in 0..4 {
        let mut machine = contender(&["job", &server.url(), "nightly", "runs"]);
        lines.push(contender_line(&mut machine));
        assert!(machine.wait().unwrap().success());
    }
    let mut conn = server.connection();
    let left = pttl(&mut conn, &key("nightly"));
    // The runs took well under the two seconds, or the test proves nothing.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "too slow to tell"
    );
    assert_eq!(lines, ["RAN", "SKIPPED", "SKIPPED", "SKIPPED"]);
    assert_eq!(read_counter(&mut conn, "runs"), 1);
    assert!(
        left > 0 && left <= 2000,
        "the lock stays taken for the rest of the hold: {left} ms"
    );
}

/// A holder with a 30 s lease and `min_hold` of 1 s releases as soon as a waiter of
/// `waiter_client` waits: the lock stays taken until the hold is over, and then the
/// waiter gets it, woken for the hold's end, not the 30 s lease's. `subscribers` counts the
/// connections subscribed to the lock's channel.
async fn a_waiter_gets_it_when_the_hold_ends(
    holder_client: &str,
    waiter_client: &str,
    subscribers: impl Fn(&str) -> i64,
) {
    let name = format!("kept-{holder_client}-{waiter_client}");
    let lock = |client: &str| {
        Lock::with_client(client, name.as_str())
            .unwrap()
            .expire(Duration::from_secs(30))
    };
    let holder = lock(holder_client)
        .min_hold(Duration::from_secs(1))
        .acquire(None)
        .await
        .unwrap();
    let taken = Instant::now();
    let waiter = lock(waiter_client);
    let waiter = tokio::spawn(async move {
        let guard = waiter.acquire(Some(Duration::from_secs(10))).await.unwrap();
        let got = Instant::now();
        guard.release().await.unwrap();
        got
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while subscribers(&key(&name)) < 1 {
        assert!(Instant::now() < deadline, "the waiter never subscribed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    holder.release().await.unwrap();
    assert!(
        lock(holder_client).is_locked().await.unwrap(),
        "released before its minimum hold, the lock stays taken"
    );
    let after = waiter.await.unwrap().duration_since(taken);
    assert!(
        after > Duration::from_millis(900) && after < Duration::from_secs(3),
        "the waiter got the lock {after:?} after it was taken"
    );
}

/// A waiter in another process, and one in the holder's own.
async fn waiters_get_it_when_the_hold_ends(
    holder_client: &str,
    other_client: &str,
    subscribers: impl Fn(&str) -> i64 + Copy,
) {
    a_waiter_gets_it_when_the_hold_ends(holder_client, other_client, subscribers).await;
    a_waiter_gets_it_when_the_hold_ends(holder_client, holder_client, subscribers).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn waiters_get_a_lock_kept_for_its_minimum_hold_when_the_hold_ends() {
    let server = RedisServer::start();
    for client in ["kept-a", "kept-b"] {
        redis_locked::register(client, &server.url()).unwrap();
    }
    waiters_get_it_when_the_hold_ends("kept-a", "kept-b", |key| numsub(&server, key)).await;
    // The other process had queued, and was not handed the lock: its entry is gone once
    // it took the lock itself.
    wait_for_queue(&server, &format!("{}:queue", key("kept-kept-a-kept-b")), 0).await;
}

/// The same on a Redis Cluster (the announcement on the shard's channel) and a Redlock
/// quorum (the hold kept on a majority).
#[tokio::test(flavor = "multi_thread")]
async fn a_minimum_hold_on_a_cluster_and_a_redlock_quorum() {
    let cluster = RedisCluster::start(3, 0);
    let quorum = RedlockServers::start(3);
    for client in ["kept-cluster-a", "kept-cluster-b"] {
        ClientBuilder::cluster(cluster.seed_urls())
            .register(client)
            .unwrap();
    }
    for client in ["kept-redlock-a", "kept-redlock-b"] {
        ClientBuilder::redlock(quorum.urls())
            .register(client)
            .unwrap();
    }
    waiters_get_it_when_the_hold_ends("kept-cluster-a", "kept-cluster-b", |key| {
        cluster.shard_subscribers(key)
    })
    .await;
    waiters_get_it_when_the_hold_ends("kept-redlock-a", "kept-redlock-b", |key| {
        numsub(quorum.server(0), key)
    })
    .await;
}

/// A holder that crashes during its body has not reached its release, so its minimum
/// hold plays no part: the lock is free at the end of its lease, as any crashed holder's.
#[tokio::test(flavor = "multi_thread")]
async fn a_holder_killed_before_its_release_lets_go_at_its_lease_end() {
    let server = RedisServer::start();
    redis_locked::register("kept-crash", &server.url()).unwrap();
    let holder = HolderProcess::start_with_min_hold(
        env!("CARGO_BIN_EXE_contender"),
        &server.url(),
        "crashing",
        "1",
        "60",
    );
    holder.kill();
    let killed = Instant::now();
    let lock = Lock::with_client("kept-crash", "crashing").unwrap();
    let guard = lock.acquire(Some(Duration::from_secs(10))).await.unwrap();
    let after = killed.elapsed();
    assert!(
        after < Duration::from_millis(1500),
        "the lock was free {after:?} after its holder was killed"
    );
    guard.release().await.unwrap();
}
