//! Redis and the network misbehave under running locks: Redis killed and restarted,
//! paused past callers' timeouts, connections killed mid-wait. Nothing panics or hangs,
//! every call returns within its bounds, and everything works again afterwards.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis_locked::{ClientBuilder, Lock, LockError};
use redis_locked_tests::{HolderProcess, RedisServer, wait_for_subscribers};

/// Generous bound for "did not hang": far below every lease used here.
const NO_HANG: Duration = Duration::from_secs(10);

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(NO_HANG, f)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_and_restarted_while_held_and_awaited() {
    let mut server = RedisServer::start();
    redis_locked::register("faults-restart", &server.url()).unwrap();
    let name = "restarted";
    let lock = Lock::with_client("faults-restart", name)
        .unwrap()
        .expire(Duration::from_secs(30))
        .auto_renew(true);
    let holder = lock.acquire(None).await.unwrap();

    // Waiters: two tasks, a thread, and another process.
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let lock = lock.clone();
            tokio::spawn(async move {
                let guard = lock.acquire(Some(Duration::from_secs(20))).await?;
                let at = Instant::now();
                guard.release().await.ok();
                Ok::<_, LockError>(at)
            })
        })
        .collect();
    let sync_lock = lock.clone();
    let thread = tokio::task::spawn_blocking(move || {
        let guard = sync_lock.acquire_blocking(Some(Duration::from_secs(20)))?;
        let at = Instant::now();
        guard.release().ok();
        Ok::<_, LockError>(at)
    });
    let mut process = Command::new(env!("CARGO_BIN_EXE_contender"))
        .args(["take", &server.url(), name])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Ours and the other process's subscriptions: everyone is waiting.
    wait_for_subscribers(&server, &format!("lock:{{{name}}}"), 2).await;

    server.kill();
    // The holder's release cannot reach Redis: an error, promptly, not a hang or a panic.
    let released = bounded("release with Redis down", holder.release()).await;
    assert!(released.is_err(), "{released:?}");
    // The waiters ride out the outage...
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(tasks.iter().all(|t| !t.is_finished()) && !thread.is_finished());

    server.start_again();
    let restarted = Instant::now();
    // ...and acquire once Redis is back (it forgot the lock: no persistence here).
    for task in tasks {
        let at = task.await.unwrap().unwrap();
        assert!(
            at - restarted < Duration::from_secs(3),
            "{:?}",
            at - restarted
        );
    }
    let at = thread.await.unwrap().unwrap();
    assert!(
        at - restarted < Duration::from_secs(3),
        "{:?}",
        at - restarted
    );
    let out = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(process.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        process.wait().unwrap();
        line
    });
    assert_eq!(
        bounded("the other process", out).await.unwrap().trim(),
        "ACQUIRED"
    );

    // The process goes on working with no restart of its own.
    let again = lock.acquire(Some(Duration::from_secs(5))).await.unwrap();
    again.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_paused_past_the_callers_timeouts() {
    let server = RedisServer::start();
    let response_timeout = Duration::from_millis(800);
    ClientBuilder::new(server.url())
        .response_timeout(response_timeout)
        .register("faults-pause")
        .unwrap();
    let held = Lock::with_client("faults-pause", "paused")
        .unwrap()
        .expire(Duration::from_secs(30))
        .auto_renew(true);
    let free = Lock::with_client("faults-pause", "free").unwrap();
    // Warm the pools, so the requests below go out on live connections and stall.
    free.acquire(None).await.unwrap().release().await.unwrap();
    let free_sync = free.clone();
    tokio::task::spawn_blocking(move || free_sync.acquire_blocking(None)?.release())
        .await
        .unwrap()
        .unwrap();
    let holder = held.acquire(None).await.unwrap();

    server.pause();
    let timeout = Duration::from_millis(400);
    let within = timeout + Duration::from_millis(200);
    // A held lock and a free one: either way, no answer means `NoAnswer` on time, never
    // `Timeout` (which says Redis answered that someone holds the lock).
    for lock in [&held, &free] {
        let start = Instant::now();
        let result = bounded("acquire", lock.acquire(Some(timeout))).await;
        assert!(
            matches!(result, Err(LockError::NoAnswer { .. })),
            "{result:?}"
        );
        assert!(start.elapsed() <= within, "async: {:?}", start.elapsed());

        let sync_lock = lock.clone();
        let (result, took) = tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            (sync_lock.acquire_blocking(Some(timeout)), start.elapsed())
        })
        .await
        .unwrap();
        assert!(
            matches!(result, Err(LockError::NoAnswer { .. })),
            "{result:?}"
        );
        assert!(took <= within, "sync: {took:?}");
    }
    // A single attempt does not report a stalled server as "held by someone else".
    let start = Instant::now();
    let tried = bounded("try_acquire", free.try_acquire()).await;
    assert!(
        matches!(tried, Err(LockError::NoAnswer { .. })),
        "{tried:?}"
    );
    // Its own short deadline, not the 800 ms response timeout.
    assert!(
        start.elapsed() <= Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    // Release is bounded by the response timeout.
    let start = Instant::now();
    let released = bounded("release", holder.release()).await;
    assert!(released.is_err(), "{released:?}");
    assert!(
        start.elapsed() <= response_timeout + Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );

    server.resume();
    let resumed = Instant::now();
    // The failed release is completed in the background once Redis answers: the lock is
    // free long before its 30 s lease, and everything works again.
    let guard = held.acquire(Some(Duration::from_secs(5))).await.unwrap();
    assert!(
        resumed.elapsed() < Duration::from_secs(2),
        "{:?}",
        resumed.elapsed()
    );
    guard.release().await.unwrap();
    free.acquire(Some(Duration::ZERO))
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_waiter_whose_connections_are_killed_still_gets_the_release() {
    let server = RedisServer::start();
    redis_locked::register("faults-kill-conn", &server.url()).unwrap();
    let name = "killed-conn";
    let holder = HolderProcess::start(env!("CARGO_BIN_EXE_contender"), &server.url(), name, "30");

    let lock = Lock::with_client("faults-kill-conn", name).unwrap();
    let waiter = tokio::spawn(async move {
        let guard = lock.acquire(None).await?;
        let at = Instant::now();
        guard.release().await?;
        Ok::<_, LockError>(at)
    });
    wait_for_subscribers(&server, &format!("lock:{{{name}}}"), 1).await;

    // Every client connection goes: the waiter's subscription and pooled connections, and
    // the holder's too. The release follows at once, before anyone has reconnected.
    let mut admin = server.connection();
    for kind in ["pubsub", "normal"] {
        let _: i64 = redis::cmd("CLIENT")
            .arg(&["KILL", "TYPE", kind, "SKIPME", "yes"][..])
            .query(&mut admin)
            .unwrap();
    }
    let released = tokio::task::spawn_blocking(move || holder.release())
        .await
        .unwrap();
    let acquired = bounded("the waiter", waiter).await.unwrap().unwrap();
    // Not the 30 s lease: the reconnected waiter looked again.
    let after = acquired.saturating_duration_since(released);
    assert!(after < Duration::from_secs(1), "{after:?}");
}

/// The ids of this process's connections for client `client`, from `CLIENT LIST`.
fn connection_ids(admin: &mut redis::Connection, client: &str) -> Vec<String> {
    redis_locked_tests::connections_of(admin, client)
        .iter()
        .map(|line| redis_locked_tests::connection_id(line))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_on_a_connection_closed_while_idle_is_not_left_unknown() {
    let server = RedisServer::start();
    redis_locked::register("faults-idle", &server.url()).unwrap();
    let lock = |name: &str| {
        Lock::with_client("faults-idle", name)
            .unwrap()
            .expire(Duration::from_secs(30))
    };
    let (async_lock, sync_lock) = (lock("idle-async"), lock("idle-sync"));
    let held = async_lock.acquire(None).await.unwrap();
    let sync_held = {
        let lock = sync_lock.clone();
        tokio::task::spawn_blocking(move || lock.acquire_blocking(None).unwrap())
            .await
            .unwrap()
    };
    // The condition under test, not a wait for an event: the pooled connections sit unused
    // for longer than the 100 ms after which a request that must not be sent twice (a
    // reset) checks its connection first...
    tokio::time::sleep(Duration::from_millis(150)).await;
    // ... and meanwhile the server closes them, as a restart or an idle timeout would.
    let mut admin = server.connection();
    let ours = connection_ids(&mut admin, "faults-idle");
    assert!(
        ours.len() >= 2,
        "an async and a blocking connection: {ours:?}"
    );
    for id in &ours {
        let _: i64 = redis::cmd("CLIENT")
            .arg(&["KILL", "ID", id][..])
            .query(&mut admin)
            .unwrap();
    }
    assert!(connection_ids(&mut admin, "faults-idle").is_empty());

    // Without the check each reset would go out on a dead connection: an unknown outcome.
    assert!(
        async_lock.reset().await.unwrap(),
        "the async reset freed the lock"
    );
    let lock = sync_lock.clone();
    let reset = tokio::task::spawn_blocking(move || lock.reset_blocking())
        .await
        .unwrap();
    assert!(reset.unwrap(), "the blocking reset freed the lock");
    drop(held);
    tokio::task::spawn_blocking(move || drop(sync_held))
        .await
        .unwrap();
}
