//! Looking at locks from outside: `list_locks`, `Lock::info`, and `Lock::reset` as the
//! operator's force-release.

use std::time::{Duration, SystemTime};

use redis_locked::{ClientBuilder, Lock, LockError, LockInfo, redis_lock};
use redis_locked_tests::{RedisServer, until_waiter_settled, wait_for_subscribers};

fn lock(client: &str, name: &str) -> Lock {
    Lock::with_client(client, name)
        .unwrap()
        .expire(Duration::from_secs(10))
}

fn names(locks: &[LockInfo]) -> Vec<&str> {
    locks.iter().map(|l| l.name.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_held_locks_with_lease_fencing_token_owner_and_waiters() {
    let server = RedisServer::start();
    redis_locked::register("inspect-list", &server.url()).unwrap();
    // Another client stands for another process: its waiting task subscribes to the key.
    redis_locked::register("inspect-list-waiter", &server.url()).unwrap();
    ClientBuilder::new(server.url())
        .key_prefix("other:")
        .register("inspect-list-other")
        .unwrap();

    // An earlier acquisition of `a`, so that its fencing token is 2.
    lock("inspect-list", "a")
        .acquire(None)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    let a = lock("inspect-list", "a").acquire(None).await.unwrap();
    let b = lock("inspect-list", "b:{x}").acquire(None).await.unwrap();
    // The client's default lease (30 s), renewed.
    let c = Lock::with_client("inspect-list", "c")
        .unwrap()
        .acquire(None)
        .await
        .unwrap();
    let other = lock("inspect-list-other", "a").acquire(None).await.unwrap();
    let waiter = tokio::spawn(async {
        let guard = lock("inspect-list-waiter", "a")
            .acquire(Some(Duration::from_secs(10)))
            .await
            .unwrap();
        let fence = guard.fencing_token();
        // Released before the task ends: a dropped guard's release runs in the background
        // and could still be on its way when the listing below looks.
        guard.release().await.unwrap();
        fence
    });
    wait_for_subscribers(&server, "lock:{a}", 1).await;

    let locks = redis_locked::list_locks(Some("inspect-list"))
        .await
        .unwrap();
    assert_eq!(names(&locks), ["a", "b:{x}", "c"], "{locks:?}");
    for (info, guard, lease) in [
        (&locks[0], &a, 10_000),
        (&locks[1], &b, 10_000),
        (&locks[2], &c, 30_000),
    ] {
        assert_eq!(info.key, format!("lock:{{{}}}", info.name));
        let left = info.remaining_lease.expect("lock keys expire").as_millis();
        assert!(left > lease - 2_000 && left <= lease, "{info:?}");
        assert_eq!(info.fencing_token, guard.fencing_token(), "{info:?}");
        assert_eq!(info.owner, guard.token(), "{info:?}");
    }
    assert_eq!(
        locks
            .iter()
            .map(|l| l.waiting_processes)
            .collect::<Vec<_>>(),
        [1, 0, 0]
    );

    // Another prefix on the same server is another client's business.
    let others = redis_locked::list_locks(Some("inspect-list-other"))
        .await
        .unwrap();
    assert_eq!(names(&others), ["a"]);
    assert_eq!(others[0].owner, other.token());

    // The blocking twin sees the same.
    let blocking = tokio::task::spawn_blocking(|| {
        redis_locked::list_locks_blocking(Some("inspect-list")).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(names(&blocking), ["a", "b:{x}", "c"]);

    // A released lock is not listed; its fencing counter stays.
    let b_fence = b.fencing_token();
    b.release().await.unwrap();
    let locks = redis_locked::list_locks(Some("inspect-list"))
        .await
        .unwrap();
    assert_eq!(names(&locks), ["a", "c"]);
    let fence: Option<u64> = redis::cmd("GET")
        .arg("lock:{b:{x}}:fence")
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(
        fence,
        Some(b_fence),
        "a released lock's counter stays (until it expires)"
    );

    // Force-release (what the `locks` tool's `release` does) wakes the other process's
    // waiter, whose acquisition gets the next fencing token.
    assert!(lock("inspect-list", "a").reset().await.unwrap());
    let fence = tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .expect("the reset woke the waiter")
        .unwrap();
    assert!(fence > a.fencing_token(), "{fence}");
    assert!(a.release().await.is_err(), "the reset took the lock away");
    c.release().await.unwrap();
    other.release().await.unwrap();
    assert_eq!(
        redis_locked::list_locks(Some("inspect-list"))
            .await
            .unwrap(),
        []
    );
}

#[tokio::test]
async fn info_of_one_lock() {
    let server = RedisServer::start();
    redis_locked::register("inspect-info", &server.url()).unwrap();
    let held = lock("inspect-info", "held");
    assert_eq!(held.info().await.unwrap(), None, "never acquired");

    let guard = held.acquire(None).await.unwrap();
    let info = held.info().await.unwrap().expect("held");
    assert_eq!(
        (info.name.as_str(), info.key.as_str()),
        ("held", "lock:{held}")
    );
    assert_eq!(info.owner, guard.token());
    assert_eq!(info.fencing_token, guard.fencing_token());
    assert_eq!(info.waiting_processes, 0);
    assert!(info.remaining_lease.unwrap() > Duration::from_secs(8));

    guard.release().await.unwrap();
    assert_eq!(held.info().await.unwrap(), None, "free again");

    // A key written behind the crate's back: no expiry, no fencing counter.
    let _: () = redis::cmd("SET")
        .arg("lock:{manual}")
        .arg("someone")
        .query(&mut server.connection())
        .unwrap();
    let info = lock("inspect-info", "manual")
        .info()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.remaining_lease, None);
    assert_eq!(info.fencing_token, 0);
    assert_eq!(info.owner, "someone");
    assert_eq!(info.holder, None, "the value does not describe a holder");
}

/// What Redis says about lock `report:<day>` while this function holds it.
#[redis_lock(name = "report:{day}", client = "inspect-holder", expire = 10)]
async fn report(day: &str) -> Result<Option<LockInfo>, LockError> {
    lock("inspect-holder", &format!("report:{day}"))
        .info()
        .await
}

/// A holder's `since` is in whole milliseconds.
const MS: Duration = Duration::from_millis(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_says_who_holds_the_lock_and_since_when() {
    let server = RedisServer::start();
    redis_locked::register("inspect-holder", &server.url()).unwrap();
    // Another client stands for another process.
    redis_locked::register("inspect-holder-other", &server.url()).unwrap();

    // Taken by an annotated function: its name template, this process, this host.
    let before = SystemTime::now();
    let info = report("monday").await.unwrap().expect("held in the body");
    let holder = info.holder.expect("the key describes its holder");
    assert_eq!(holder.template.as_deref(), Some("report:{day}"));
    assert_eq!(holder.pid, std::process::id());
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        assert_eq!(holder.host, host.trim());
    }
    assert!(holder.since + MS >= before && holder.since <= SystemTime::now());
    assert_eq!(
        holder.to_string(),
        format!("{}:{}, fn report:{{day}}", holder.host, holder.pid)
    );

    // Taken through the API, and listed.
    let first = lock("inspect-holder", "job").acquire(None).await.unwrap();
    let listed = redis_locked::list_locks(Some("inspect-holder"))
        .await
        .unwrap();
    let holder = listed[0].holder.clone().expect("described");
    assert_eq!((holder.template, holder.pid), (None, std::process::id()));
    assert_eq!(listed[0].owner, first.token());

    // A waiter of this process is handed the lock on release. Its value is written once
    // for its whole acquisition (a handover whose reply was lost is settled by finding it),
    // so `since` is when it began to wait, not later than the handover.
    let began = SystemTime::now();
    let local = tokio::spawn(async {
        let guard = lock("inspect-holder", "job").acquire(None).await.unwrap();
        let info = lock("inspect-holder", "job").info().await.unwrap();
        (guard, info.expect("held"))
    });
    // Time passes between beginning to wait and getting the lock (and the waiter settles,
    // so that the release hands it the lock).
    until_waiter_settled(&server, "lock:{job}").await;
    let released = SystemTime::now();
    first.release().await.unwrap();
    let (second, info) = local.await.unwrap();
    assert_eq!(info.owner, second.token(), "handed over");
    let since = info.holder.expect("described").since;
    assert!(
        since + MS >= began && since <= released,
        "{since:?} is not between {began:?} and the handover {released:?}"
    );
    second.release().await.unwrap();

    // So does a waiter of another process, which takes the lock by a fresh attempt.
    let held = lock("inspect-holder", "job2").acquire(None).await.unwrap();
    let began = SystemTime::now();
    let other = tokio::spawn(async {
        let guard = lock("inspect-holder-other", "job2")
            .acquire(None)
            .await
            .unwrap();
        let info = lock("inspect-holder-other", "job2").info().await.unwrap();
        (guard, info.expect("held"))
    });
    wait_for_subscribers(&server, "lock:{job2}", 1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let released = SystemTime::now();
    held.release().await.unwrap();
    let (guard, info) = other.await.unwrap();
    assert_eq!(info.owner, guard.token());
    let since = info.holder.expect("described").since;
    assert!(
        since + MS >= began && since <= released,
        "{since:?} is not between {began:?} and the release {released:?}"
    );
    guard.release().await.unwrap();
}

#[test]
fn info_and_list_without_any_runtime() {
    let server = RedisServer::start();
    ClientBuilder::new(server.url())
        .key_prefix("app:[1]*:")
        .register("inspect-blocking")
        .unwrap();
    // Matched by the prefix read as a glob pattern, but not under the prefix.
    let _: () = redis::cmd("SET")
        .arg("app:1x:{decoy}")
        .arg("someone")
        .query(&mut server.connection())
        .unwrap();
    let l = lock("inspect-blocking", "sync");
    assert_eq!(l.info_blocking().unwrap(), None);
    let guard = l.acquire_blocking(None).unwrap();
    let info = l.info_blocking().unwrap().unwrap();
    assert_eq!(info.key, "app:[1]*:{sync}");
    assert_eq!(info.fencing_token, guard.fencing_token());
    let locks = redis_locked::list_locks_blocking(Some("inspect-blocking")).unwrap();
    assert_eq!(names(&locks), ["sync"]);
    assert_eq!(locks[0].owner, guard.token());
    guard.release().unwrap();
    assert_eq!(
        redis_locked::list_locks_blocking(Some("inspect-blocking")).unwrap(),
        []
    );
}
