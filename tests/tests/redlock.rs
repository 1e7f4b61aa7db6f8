//! Redlock clients over 3 and 5 independent servers: mutual exclusion across tasks,
//! threads and processes; a minority of servers down changes nothing; a majority down is
//! `NoQuorum` within the caller's timeout, and the restarted servers work again; a release
//! in another process wakes waiters at once; the rest of the core works on a quorum; members
//! that forgot the scripts are sent them by body.

use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_locked::{ClientBuilder, Lock, LockError, redis_lock};
use redis_locked_tests::{
    HolderProcess, RedlockServers, blocking_acquisition_error, command_calls, owner_token,
    read_counter, reset_stats,
};

fn register(client: &str, servers: &RedlockServers) {
    ClientBuilder::redlock(servers.urls())
        .register(client)
        .unwrap();
}

/// The servers' URLs as the contender takes them.
fn joined(servers: &RedlockServers) -> String {
    servers.urls().join(",")
}

#[test]
fn a_quorum_needs_an_odd_number_of_at_least_three_servers() {
    for n in [1, 2, 4] {
        let urls: Vec<String> = (0..n)
            .map(|i| format!("redis://127.0.0.1:{}", 7000 + i))
            .collect();
        let e = ClientBuilder::redlock(urls)
            .register(&format!("redlock-bad-{n}"))
            .unwrap_err();
        assert!(matches!(e, LockError::InvalidConfig { .. }), "{n}: {e}");
    }
}

#[redis_lock(name = "counter", client = "redlock-mutex-3", expire = 10)]
fn increment_3(conn: &mut redis::Connection) -> Result<(), LockError> {
    increment(conn)
}

#[redis_lock(name = "counter", client = "redlock-mutex-5", expire = 10)]
async fn increment_5(conn: Arc<std::sync::Mutex<redis::Connection>>) -> Result<(), LockError> {
    let value = read_counter(&mut conn.lock().unwrap(), "count");
    tokio::task::yield_now().await;
    let _: () = redis::cmd("SET")
        .arg("count")
        .arg(value + 1)
        .query(&mut *conn.lock().unwrap())?;
    Ok(())
}

fn increment(conn: &mut redis::Connection) -> Result<(), LockError> {
    let value = read_counter(conn, "count");
    std::thread::yield_now();
    let _: () = redis::cmd("SET").arg("count").arg(value + 1).query(conn)?;
    Ok(())
}

/// A contender process making `n` locked increments of `count` (on the first server).
fn counting_process(servers: &RedlockServers, n: u32) -> Child {
    Command::new(env!("CARGO_BIN_EXE_contender"))
        .args(["count", &joined(servers), "counter", "count"])
        .arg(n.to_string())
        .spawn()
        .unwrap()
}

#[test]
fn three_servers_exclude_threads_and_another_process() {
    const THREADS: usize = 3;
    const ITERATIONS: usize = 60;
    const PROCESS: u32 = 100;
    let servers = RedlockServers::start(3);
    register("redlock-mutex-3", &servers);
    let mut process = counting_process(&servers, PROCESS);
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let mut conn = servers.server(0).connection();
            std::thread::spawn(move || {
                for _ in 0..ITERATIONS {
                    increment_3(&mut conn).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(process.wait().unwrap().success());
    let expected = (THREADS * ITERATIONS) as i64 + i64::from(PROCESS);
    assert_eq!(
        read_counter(&mut servers.server(0).connection(), "count"),
        expected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_servers_exclude_tasks_and_another_process() {
    const TASKS: usize = 6;
    const ITERATIONS: usize = 40;
    const PROCESS: u32 = 100;
    let servers = RedlockServers::start(5);
    register("redlock-mutex-5", &servers);
    let process = counting_process(&servers, PROCESS);
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let conn = Arc::new(std::sync::Mutex::new(servers.server(0).connection()));
        tasks.push(tokio::spawn(async move {
            for _ in 0..ITERATIONS {
                increment_5(conn.clone()).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let status = tokio::task::spawn_blocking(move || {
        let mut process = process;
        process.wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(status.success());
    let expected = (TASKS * ITERATIONS) as i64 + i64::from(PROCESS);
    assert_eq!(
        read_counter(&mut servers.server(0).connection(), "count"),
        expected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_down_changes_nothing_a_majority_down_is_no_quorum_until_restarted() {
    let mut servers = RedlockServers::start(5);
    register("redlock-outage", &servers);
    let lock = Lock::with_client("redlock-outage", "outage")
        .unwrap()
        .expire(Duration::from_secs(10));
    let first = lock.acquire(Some(Duration::ZERO)).await.unwrap();
    let first_fence = first.fencing_token();
    first.release().await.unwrap();

    // Two of five down: a majority of three is still there.
    servers.kill(0);
    servers.kill(1);
    let guard = lock.acquire(Some(Duration::from_secs(2))).await.unwrap();
    assert!(guard.fencing_token() > first_fence);
    assert!(lock.is_locked().await.unwrap());
    assert_eq!(lock.owner().await.unwrap().as_deref(), Some(guard.token()));
    assert!(lock.try_acquire().await.unwrap().is_none());
    guard.extend(None).await.unwrap();
    let second_fence = guard.fencing_token();
    guard.release().await.unwrap();
    assert!(!lock.is_locked().await.unwrap());

    // Three of five down: no majority, reported as such within the caller's timeout.
    servers.kill(2);
    let timeout = Duration::from_millis(800);
    let start = Instant::now();
    let e = lock.acquire(Some(timeout)).await.unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(
            e,
            LockError::NoQuorum {
                answered: 2,
                needed: 3,
                total: 5,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("only 2 of 5"), "{e}");
    assert!(took < timeout + Duration::from_millis(500), "{took:?}");
    let (e, took) = blocking_acquisition_error(&lock, timeout).await;
    assert!(matches!(e, LockError::NoQuorum { .. }), "{e}");
    assert!(took < timeout + Duration::from_millis(500), "{took:?}");
    assert!(matches!(
        lock.is_locked().await,
        Err(LockError::NoQuorum { .. })
    ));

    // Back, empty: the fencing token still grows, since the surviving servers (a part of
    // every majority since) were raised to the last token.
    for i in 0..3 {
        servers.start_again(i);
    }
    let guard = lock.acquire(Some(Duration::from_secs(5))).await.unwrap();
    assert!(guard.fencing_token() > second_fence);
    guard.release().await.unwrap();
    let blocking = lock.clone();
    tokio::task::spawn_blocking(move || {
        blocking
            .acquire_blocking(Some(Duration::from_secs(5)))
            .unwrap()
            .release()
            .unwrap()
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_in_another_process_wakes_waiters_at_once() {
    let mut servers = RedlockServers::start(3);
    register("redlock-notify", &servers);
    // One server down: the announcements of the two others must do.
    servers.kill(2);
    let holder = HolderProcess::start(
        env!("CARGO_BIN_EXE_contender"),
        &joined(&servers),
        "notified",
        "30",
    );
    let lock = Lock::with_client("redlock-notify", "notified").unwrap();
    assert!(lock.try_acquire().await.unwrap().is_none());

    let waiter = {
        let lock = lock.clone();
        tokio::spawn(async move { lock.acquire(None).await.map(|g| (Instant::now(), g)) })
    };
    let blocking = {
        let lock = lock.clone();
        tokio::task::spawn_blocking(move || {
            lock.acquire_blocking(None).map(|g| {
                let at = Instant::now();
                g.release().unwrap();
                at
            })
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let released = tokio::task::spawn_blocking(move || holder.release())
        .await
        .unwrap();
    let (acquired, guard) = waiter.await.unwrap().unwrap();
    guard.release().await.unwrap();
    let acquired_blocking = blocking.await.unwrap().unwrap();
    for at in [acquired, acquired_blocking] {
        let after = at.saturating_duration_since(released);
        assert!(
            after < Duration::from_secs(1),
            "woken {after:?} after the release; the lease was 30 s"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_works_on_a_quorum() {
    let servers = RedlockServers::start(3);
    register("redlock-core", &servers);
    redis_locked_tests::core_checks::renewal_release_and_timeout("redlock-core").await;
    let lock = Lock::with_client("redlock-core", "core").unwrap();

    // Timeouts: held elsewhere, a waiter gives up on time.
    let guard = lock
        .clone()
        .expire(Duration::from_secs(1))
        .auto_renew(true)
        .acquire(None)
        .await
        .unwrap();
    let start = Instant::now();
    let e = lock
        .acquire(Some(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(matches!(e, LockError::Timeout { .. }), "{e}");
    assert!(start.elapsed() < Duration::from_millis(900));

    // Auto-renewal keeps a 1 s lease held for longer, on every server.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!guard.is_lost());
    assert!(lock.try_acquire().await.unwrap().is_none());
    for server in servers.servers() {
        let owner = owner_token(&mut server.connection(), lock.key());
        assert_eq!(owner.as_deref(), Some(guard.token()));
    }
    let info = lock.info().await.unwrap().unwrap();
    assert_eq!(info.owner, guard.token());
    assert_eq!(
        info.holder.map(|holder| holder.pid),
        Some(std::process::id()),
        "the majority's value describes its holder"
    );
    assert_eq!(info.fencing_token, guard.fencing_token());
    assert!(info.remaining_lease.unwrap() <= Duration::from_secs(1));
    let listed = redis_locked::list_locks(Some("redlock-core"))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (&listed[0].name, &listed[0].owner, listed[0].fencing_token),
        (&info.name, &info.owner, info.fencing_token)
    );

    // Release on drop, on every server.
    drop(guard);
    let deadline = Instant::now() + Duration::from_secs(2);
    while lock.is_locked().await.unwrap() {
        assert!(Instant::now() < deadline, "not released after the drop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for server in servers.servers() {
        assert_eq!(
            redis_locked_tests::lock_keys(&mut server.connection()).len(),
            0
        );
    }

    // reset and reset_all free locks held on every server.
    let held = lock.acquire(None).await.unwrap();
    assert!(lock.reset().await.unwrap());
    assert!(!lock.is_locked().await.unwrap());
    assert!(matches!(
        held.release().await,
        Err(LockError::Expired { .. })
    ));
    let other = Lock::with_client("redlock-core", "other").unwrap();
    let a = lock.acquire(None).await.unwrap();
    let b = other.acquire(None).await.unwrap();
    assert!(b.fencing_token() >= 1 && a.fencing_token() > 1);
    assert_eq!(
        redis_locked::reset_all(Some("redlock-core")).await.unwrap(),
        2
    );
    assert!(!lock.is_locked().await.unwrap() && !other.is_locked().await.unwrap());
    drop((a, b));

    // The sync side: acquire, fencing tokens grow, extend, release.
    let blocking = lock.clone();
    tokio::task::spawn_blocking(move || {
        let first = blocking.acquire_blocking(Some(Duration::ZERO)).unwrap();
        assert!(blocking.is_locked_blocking().unwrap());
        first.extend(Some(Duration::from_secs(5))).unwrap();
        let fence = first.fencing_token();
        first.release().unwrap();
        let second = blocking.acquire_blocking(Some(Duration::ZERO)).unwrap();
        assert!(second.fencing_token() > fence);
        assert!(blocking.reset_blocking().unwrap());
    })
    .await
    .unwrap();
}

/// Forgets every script on every member, as a restart or `SCRIPT FLUSH` does.
fn flush_scripts(servers: &RedlockServers) {
    for server in servers.servers() {
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query(&mut server.connection())
            .unwrap();
    }
}

/// Whether no member holds `key`.
fn free_everywhere(servers: &RedlockServers, key: &str) -> bool {
    servers
        .servers()
        .iter()
        .all(|server| owner_token(&mut server.connection(), key).is_none())
}

/// Members that forgot the scripts (a restart, `SCRIPT FLUSH`) are sent them by body, by
/// sync and async callers alike: a fenced acquisition (QUORUM_ACQUIRE, RAISE_FENCE) and a
/// release (RELEASE) still work, and the release frees the lock on every member.
#[test]
fn members_that_forgot_the_scripts_are_sent_them_by_body() {
    let servers = RedlockServers::start(3);
    register("redlock-by-body", &servers);
    let lock = Lock::with_client("redlock-by-body", "by-body")
        .unwrap()
        .fencing(true);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut last_fence = 0;
    for round in 0..2 {
        flush_scripts(&servers);
        let guard = lock.acquire_blocking(None).unwrap();
        assert!(guard.fencing_token() > last_fence, "round {round}, sync");
        last_fence = guard.fencing_token();
        flush_scripts(&servers);
        guard.release().unwrap();
        assert!(free_everywhere(&servers, lock.key()), "round {round}, sync");

        flush_scripts(&servers);
        let guard = runtime.block_on(lock.acquire(None)).unwrap();
        assert!(guard.fencing_token() > last_fence, "round {round}, async");
        last_fence = guard.fencing_token();
        flush_scripts(&servers);
        runtime.block_on(guard.release()).unwrap();
        assert!(
            free_everywhere(&servers, lock.key()),
            "round {round}, async"
        );
    }
}

/// A release on a quorum frees the key on every member and announces it there, and runs
/// nothing else: a quorum keeps no queue of waiting processes, so there is no queue to
/// look into (RELEASE's `LPOP`, which found nothing there every time). Sync and async.
#[test]
fn a_release_frees_and_announces_the_lock_on_every_member_and_runs_nothing_else() {
    let servers = RedlockServers::start(3);
    register("redlock-release-commands", &servers);
    let lock = Lock::with_client("redlock-release-commands", "released").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Once first, so that the scripts are loaded: what follows counts no `NOSCRIPT` round.
    lock.acquire_blocking(None).unwrap().release().unwrap();
    let only_the_release_ran = |caller: &str| {
        let expected: std::collections::HashMap<String, u64> =
            [("evalsha", 1), ("get", 1), ("del", 1), ("publish", 1)]
                .into_iter()
                .map(|(name, calls)| (name.to_string(), calls))
                .collect();
        for (i, server) in servers.servers().iter().enumerate() {
            let mut ran = command_calls(server);
            ran.remove("config|resetstat");
            assert_eq!(ran, expected, "{caller}, server {i}");
        }
        assert!(free_everywhere(&servers, lock.key()), "{caller}");
    };

    let guard = lock.acquire_blocking(None).unwrap();
    servers.servers().iter().for_each(reset_stats);
    guard.release().unwrap();
    only_the_release_ran("sync");

    let guard = runtime.block_on(lock.acquire(None)).unwrap();
    servers.servers().iter().for_each(reset_stats);
    runtime.block_on(guard.release()).unwrap();
    only_the_release_ran("async");
}
