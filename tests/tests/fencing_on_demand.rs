//! A fencing token is paid for only where it can be read: a `#[redis_lock]` function that
//! does not bind its guard, or a `Lock` with `fencing(false)`, takes the lock with one bare
//! `SET key value NX PX lease` (no script, no counter), and the tokens of the acquisitions
//! that do take one still grow strictly, whatever ran in between.

use std::time::Duration;

use redis_locked::{ClientBuilder, Lock, LockError, redis_lock};
use redis_locked_tests::{RedisServer, command_calls as calls, reset_stats};

fn exists(server: &RedisServer, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query::<i64>(&mut server.connection())
        .unwrap()
        == 1
}

#[redis_lock(name = "report:{id}", client = "on-demand", expire = 10)]
async fn without_guard(id: u32) -> Result<(), LockError> {
    let _ = id;
    Ok(())
}

#[redis_lock(name = "report:{id}", client = "on-demand", expire = 10, guard = lock)]
async fn with_guard(id: u32) -> Result<u64, LockError> {
    let _ = id;
    Ok(lock.fencing_token())
}

#[redis_lock(name = "report:{id}", client = "on-demand", expire = 10)]
fn without_guard_blocking(id: u32) -> Result<(), LockError> {
    let _ = id;
    Ok(())
}

/// A function that cannot read its token takes the lock with one `SET NX PX`: the server
/// runs no acquisition script and no `TIME`, and no counter key appears. Its twin that
/// binds its guard gets a token, from the counter.
#[tokio::test]
async fn a_function_that_does_not_bind_its_guard_takes_the_lock_with_a_bare_set() {
    let server = RedisServer::start();
    redis_locked::register("on-demand", &server.url()).unwrap();
    // Load the release script once, so that what follows counts no `NOSCRIPT` round.
    without_guard(0).await.unwrap();

    reset_stats(&server);
    without_guard(1).await.unwrap();
    tokio::task::spawn_blocking(|| without_guard_blocking(2).unwrap())
        .await
        .unwrap();
    let ran = calls(&server);
    assert_eq!(ran.get("set"), Some(&2), "one SET NX PX each: {ran:?}");
    assert_eq!(
        ran.get("evalsha"),
        Some(&2),
        "the two releases only: {ran:?}"
    );
    assert_eq!(ran.get("time"), None, "no fencing token was drawn: {ran:?}");
    assert!(!exists(&server, "lock:{report:1}:fence"));
    assert!(!exists(&server, "lock:{report:2}:fence"));

    let token = with_guard(3).await.unwrap();
    assert!(token > 0);
    assert!(exists(&server, "lock:{report:3}:fence"));
}

/// On a Redlock quorum too (issue 13 item 2), async and sync: an acquisition without a
/// token is a bare `SET NX PX` on each member, no script, no `TIME`, no counter.
#[tokio::test]
async fn an_acquisition_without_a_token_is_a_bare_set_on_each_redlock_member() {
    let quorum = [
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start(),
    ];
    ClientBuilder::redlock(quorum.iter().map(RedisServer::url).collect::<Vec<_>>())
        .register("on-demand-bare-quorum")
        .unwrap();
    let lock = Lock::with_client("on-demand-bare-quorum", "bare")
        .unwrap()
        .expire(Duration::from_secs(10))
        .fencing(false);
    // Load the release script once, so that what follows counts no `NOSCRIPT` round.
    lock.acquire(None).await.unwrap().release().await.unwrap();
    quorum.iter().for_each(reset_stats);
    let guard = lock.acquire(None).await.unwrap();
    assert_eq!(guard.fencing_token(), 0);
    guard.release().await.unwrap();
    let blocking = lock.clone();
    tokio::task::spawn_blocking(move || blocking.acquire_blocking(None).unwrap().release())
        .await
        .unwrap()
        .unwrap();
    for server in &quorum {
        let ran = calls(server);
        assert_eq!(ran.get("set"), Some(&2), "one SET NX PX each: {ran:?}");
        assert_eq!(ran.get("evalsha"), Some(&2), "the releases only: {ran:?}");
        assert_eq!(ran.get("time"), None, "no fencing token was drawn: {ran:?}");
        assert!(!exists(server, "lock:{bare}:fence"));
    }
}

/// Acquisitions with and without a token take turns on one lock name: the ones without
/// report 0, and the tokens of the others grow strictly, on one server, on a Redlock
/// quorum (where an acquisition without a token also skips the round trip that writes it
/// to a majority: no counter appears on any server) and in memory.
#[tokio::test]
async fn tokens_grow_among_the_acquisitions_that_take_them() {
    let server = RedisServer::start();
    let quorum = [
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start(),
    ];
    redis_locked::register("on-demand-one", &server.url()).unwrap();
    ClientBuilder::redlock(quorum.iter().map(RedisServer::url).collect::<Vec<_>>())
        .register("on-demand-quorum")
        .unwrap();
    ClientBuilder::in_memory()
        .register("on-demand-memory")
        .unwrap();
    let clients: [(&str, Vec<&RedisServer>); 3] = [
        ("on-demand-one", vec![&server]),
        ("on-demand-quorum", quorum.iter().collect()),
        ("on-demand-memory", vec![]),
    ];
    for (client, servers) in clients {
        let fenced = Lock::with_client(client, "ledger")
            .unwrap()
            .expire(Duration::from_secs(10));
        let unfenced = fenced.clone().fencing(false);
        let mut tokens = Vec::new();
        for _ in 0..4 {
            let guard = unfenced.acquire(None).await.unwrap();
            assert_eq!(guard.fencing_token(), 0, "{client}: taken without a token");
            guard.release().await.unwrap();
            if tokens.is_empty() {
                for server in &servers {
                    assert!(!exists(server, "lock:{ledger}:fence"), "{client}");
                }
            }
            let guard = fenced.acquire(None).await.unwrap();
            tokens.push(guard.fencing_token());
            guard.release().await.unwrap();
        }
        assert!(
            tokens.windows(2).all(|w| w[0] < w[1]) && tokens[0] > 0,
            "{client}: {tokens:?}"
        );
    }
}

/// An acquisition without a token that finds the lock taken waits like any other (its
/// next attempt is the script, which tells the holder's lease and queues it), and gets the
/// lock at the release, not at the lease's end.
#[tokio::test]
async fn an_acquisition_without_a_token_waits_and_is_woken_like_any_other() {
    let server = RedisServer::start();
    redis_locked::register("on-demand-wait", &server.url()).unwrap();
    ClientBuilder::new(server.url())
        .register("on-demand-wait-2")
        .unwrap();
    let lock = |client| {
        Lock::with_client(client, "queue")
            .unwrap()
            .expire(Duration::from_secs(30))
            .fencing(false)
    };
    let holder = lock("on-demand-wait").acquire(None).await.unwrap();
    let waiter = lock("on-demand-wait-2");
    let waiter = tokio::spawn(async move { waiter.acquire(None).await });
    redis_locked_tests::wait_for_queue(&server, "lock:{queue}:queue", 1).await;
    let released = std::time::Instant::now();
    holder.release().await.unwrap();
    let guard = waiter.await.unwrap().unwrap();
    assert!(released.elapsed() < Duration::from_secs(2));
    guard.release().await.unwrap();
}

/// A lock handed over, to a waiter of the releaser's own process (HANDOFF) or to the first
/// queued process (the release's grant from the queue in Redis), draws a fencing token
/// only for a waiter that asks for one: handed to waiters without a token, on one name
/// only, the server runs no `TIME` and no counter appears; handed to waiters that ask,
/// their tokens are drawn and grow. Every waiter is queued in Redis before the release.
#[tokio::test]
async fn a_lock_handed_to_a_waiter_without_a_token_draws_none() {
    let server = RedisServer::start();
    for client in ["handed-a", "handed-b", "handed-c"] {
        ClientBuilder::new(server.url()).register(client).unwrap();
    }
    for fenced in [false, true] {
        let name = if fenced { "handed-fenced" } else { "handed" };
        let queue = format!("lock:{{{name}}}:queue");
        let lock = |client| {
            Lock::with_client(client, name)
                .unwrap()
                .expire(Duration::from_secs(30))
                .fencing(fenced)
        };
        reset_stats(&server);
        let mut tokens = Vec::new();
        // A waiter of the holder's own client: HANDOFF hands the lock straight to it.
        let holder = lock("handed-a").acquire(None).await.unwrap();
        tokens.push(holder.fencing_token());
        let own = lock("handed-a");
        let own = tokio::spawn(async move { own.acquire(None).await });
        redis_locked_tests::wait_for_queue(&server, &queue, 1).await;
        holder.release().await.unwrap();
        let holder = own.await.unwrap().unwrap();
        tokens.push(holder.fencing_token());
        // Two waiters of other processes: each release grants the lock to the next.
        let b = lock("handed-b");
        let b = tokio::spawn(async move { b.acquire(None).await });
        redis_locked_tests::wait_for_queue(&server, &queue, 1).await;
        let c = lock("handed-c");
        let c = tokio::spawn(async move { c.acquire(None).await });
        redis_locked_tests::wait_for_queue(&server, &queue, 2).await;
        holder.release().await.unwrap();
        let holder = b.await.unwrap().unwrap();
        tokens.push(holder.fencing_token());
        holder.release().await.unwrap();
        let holder = c.await.unwrap().unwrap();
        tokens.push(holder.fencing_token());
        holder.release().await.unwrap();

        let ran = calls(&server);
        let fence = format!("lock:{{{name}}}:fence");
        if fenced {
            assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
            assert!(exists(&server, &fence));
            assert!(ran.get("time").is_some_and(|&n| n >= 4), "{ran:?}");
        } else {
            assert_eq!(tokens, [0, 0, 0, 0]);
            assert!(!exists(&server, &fence));
            assert_eq!(ran.get("time"), None, "no fencing token was drawn: {ran:?}");
        }
    }
}
