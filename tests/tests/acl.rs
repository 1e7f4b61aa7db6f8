//! The minimal ACL of a lock user (README, "Security"): a user with exactly these rights
//! can do everything the crate does, and one without a needed command gets `NoPermission`
//! naming it.

use std::time::{Duration, Instant};

use redis_locked::{ClientBuilder, Lock, LockError};
use redis_locked_tests::{
    HolderProcess, RedisServer, capture_logs, until_waiter_settled, wait_for_subscribers,
};

/// The README's ACL, without the user name and password.
const MINIMAL_ACL: &[&str] = &[
    "resetkeys",
    "resetchannels",
    "~lock:*",
    "&lock:*",
    "-@all",
    "+set",
    "+time",
    "+get",
    "+pttl",
    "+del",
    "+pexpire",
    "+rpush",
    "+lpos",
    "+lpop",
    "+lrem",
    "+publish",
    "+pubsub|numsub",
    "+subscribe",
    "+unsubscribe",
    "+evalsha",
    "+eval",
    "+scan",
    "+client|setname",
];

/// Creates ACL user `user` with password `pw` and the minimal ACL, less `without`, plus
/// `extra`, then registers a client `client` connecting as that user.
fn lock_user(server: &RedisServer, client: &str, user: &str, without: &[&str], extra: &[&str]) {
    lock_user_with(server, user, without, extra)
        .register(client)
        .unwrap();
}

/// [`lock_user`]'s ACL user, and a builder of a client connecting as that user.
fn lock_user_with(
    server: &RedisServer,
    user: &str,
    without: &[&str],
    extra: &[&str],
) -> ClientBuilder {
    let mut rules = vec!["SETUSER", user, "reset", "on", ">pw"];
    rules.extend(MINIMAL_ACL.iter().filter(|r| !without.contains(r)));
    rules.extend(extra);
    let _: () = redis::cmd("ACL")
        .arg(&rules)
        .query(&mut server.connection())
        .unwrap();
    ClientBuilder::new(format!("redis://{user}:pw@127.0.0.1:{}", server.port()))
}

/// Every command the server refused so far (its ACL log), as `user: command/key/channel`.
fn refused(server: &RedisServer) -> Vec<String> {
    let log: Vec<Vec<redis::Value>> = redis::cmd("ACL")
        .arg("LOG")
        .query(&mut server.connection())
        .unwrap();
    log.iter()
        .map(|entry| {
            let field = |name: &str| {
                entry
                    .chunks(2)
                    .find(
                        |kv| matches!(&kv[0], redis::Value::BulkString(k) if k == name.as_bytes()),
                    )
                    .map(|kv| match &kv[1] {
                        redis::Value::BulkString(v) => String::from_utf8_lossy(v).into_owned(),
                        other => format!("{other:?}"),
                    })
                    .unwrap_or_default()
            };
            format!(
                "{}: {} {}",
                field("username"),
                field("reason"),
                field("object")
            )
        })
        .collect()
}

/// Waits until nobody subscribes to `channel` any more.
async fn wait_for_no_subscribers(server: &RedisServer, channel: &str) {
    let mut conn = server.connection();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, n): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query(&mut conn)
            .unwrap();
        if n == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{channel} is still subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minimal_acl_is_enough_for_everything() {
    let server = RedisServer::start();
    lock_user(&server, "acl-min", "locker", &[], &[]);
    let lock = |name: &str| Lock::with_client("acl-min", name).unwrap();

    // Async acquire, try, inspect, extend, release.
    let a = lock("a").expire(Duration::from_secs(10));
    let guard = a.acquire(None).await.unwrap();
    assert!(a.try_acquire().await.unwrap().is_none());
    assert!(a.is_locked().await.unwrap());
    assert_eq!(a.owner().await.unwrap().as_deref(), Some(guard.token()));
    guard.extend(Some(Duration::from_secs(20))).await.unwrap();
    guard.release().await.unwrap();
    assert!(!a.is_locked().await.unwrap());

    // The same, blocking.
    let b = lock("b").expire(Duration::from_secs(10));
    tokio::task::spawn_blocking(move || {
        let guard = b.acquire_blocking(None).unwrap();
        assert!(b.try_acquire_blocking().unwrap().is_none());
        assert!(b.is_locked_blocking().unwrap());
        assert_eq!(b.owner_blocking().unwrap().as_deref(), Some(guard.token()));
        guard.extend(None).unwrap();
        guard.release().unwrap();
        assert!(b.owner_blocking().unwrap().is_none());
    })
    .await
    .unwrap();

    // Auto-renewal keeps a 300 ms lease for a second: release finds the lock still ours.
    let renewed = lock("renewed")
        .expire(Duration::from_millis(300))
        .auto_renew(true);
    let guard = renewed.acquire(None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    guard.release().await.unwrap();

    // A waiter of this process, woken by a release here (handed over by the HANDOFF
    // script, which counts subscribers with PUBSUB NUMSUB), well before the 30 s lease.
    let local = lock("local").expire(Duration::from_secs(30));
    let holder = local.acquire(None).await.unwrap();
    let waiter = {
        let local = local.clone();
        tokio::spawn(async move { local.acquire(None).await })
    };
    until_waiter_settled(&server, "lock:{local}").await;
    let released = Instant::now();
    holder.release().await.unwrap();
    let next = waiter.await.unwrap().unwrap();
    assert!(released.elapsed() < Duration::from_secs(5));
    next.release().await.unwrap();

    // A waiter of this process, woken by a release in another process (by pub/sub).
    let url = format!("redis://locker:pw@127.0.0.1:{}", server.port());
    let mut holder = HolderProcess::start(env!("CARGO_BIN_EXE_contender"), &url, "remote", "30");
    let remote = lock("remote").expire(Duration::from_secs(30));
    let waiter = {
        let remote = remote.clone();
        tokio::spawn(async move { remote.acquire(None).await })
    };
    // Subscribed: the contender's auto-renewal and our waiter both wait on it.
    wait_for_subscribers(&server, "lock:{remote}", 1).await;
    holder.tell_release();
    let released = Instant::now();
    let guard = waiter.await.unwrap().unwrap();
    assert!(
        released.elapsed() < Duration::from_secs(5),
        "woken by the announcement, not the 30 s lease"
    );
    holder.wait_released();

    // Reset one lock, then all of them.
    assert!(remote.reset().await.unwrap());
    assert!(matches!(
        guard.release().await,
        Err(LockError::Expired { .. })
    ));
    let x = lock("x").acquire(None).await.unwrap();
    let y = lock("y").acquire(None).await.unwrap();
    // Listing and reading locks from outside, async and blocking.
    let held = redis_locked::list_locks(Some("acl-min")).await.unwrap();
    assert_eq!(
        held.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
        ["x", "y"]
    );
    assert_eq!(lock("x").info().await.unwrap().unwrap().owner, x.token());
    tokio::task::spawn_blocking(|| {
        assert_eq!(
            redis_locked::list_locks_blocking(Some("acl-min"))
                .unwrap()
                .len(),
            2
        );
        assert!(
            Lock::with_client("acl-min", "y")
                .unwrap()
                .info_blocking()
                .unwrap()
                .is_some()
        );
    })
    .await
    .unwrap();
    assert_eq!(redis_locked::reset_all(Some("acl-min")).await.unwrap(), 2);
    assert!(!lock("x").is_locked().await.unwrap());
    drop((x, y));

    // Keys nobody waits for any more are unsubscribed (every 5 s).
    for channel in ["lock:{local}", "lock:{remote}"] {
        wait_for_no_subscribers(&server, channel).await;
    }

    // Nothing was refused along the way, not even a command whose failure is ignored.
    assert_eq!(refused(&server), Vec::<String>::new());
}

#[tokio::test]
async fn a_user_without_a_needed_command_gets_no_permission_naming_it() {
    let server = RedisServer::start();

    // Without EVALSHA and EVAL nothing works: acquiring is a script too. The error is not
    // one to wait out: it comes at once, although the caller would wait 10 s.
    lock_user(
        &server,
        "acl-no-eval",
        "no-eval",
        &["+evalsha", "+eval"],
        &[],
    );
    let lock = Lock::with_client("acl-no-eval", "n")
        .unwrap()
        .expire(Duration::from_secs(10));
    match lock.acquire(Some(Duration::from_secs(10))).await {
        Err(LockError::NoPermission { reason, lock }) => {
            assert!(reason.contains("'evalsha'"), "{reason}");
            assert_eq!(lock.as_deref(), Some("n"), "the error names the lock");
        }
        other => panic!("expected NoPermission, got {other:?}"),
    }

    // Without PUBLISH, refused inside the release script: the error names the script's
    // commands, since Redis names only the script.
    lock_user(&server, "acl-no-publish", "no-publish", &["+publish"], &[]);
    let lock = Lock::with_client("acl-no-publish", "p")
        .unwrap()
        .expire(Duration::from_secs(10));
    let guard = lock.acquire(None).await.unwrap();
    match guard.release().await {
        Err(e @ LockError::NoPermission { .. }) => {
            let shown = e.to_string();
            assert!(
                shown.contains("release script") && shown.contains("PUBLISH"),
                "{shown}"
            );
        }
        other => panic!("expected NoPermission, got {other:?}"),
    }

    let log = refused(&server);
    assert!(
        log.iter().any(|r| r == "no-eval: command evalsha"),
        "{log:?}"
    );

    // Without CLIENT SETNAME everything works; only the connections go unnamed (and the
    // server's ACL log records each refusal).
    lock_user(
        &server,
        "acl-no-setname",
        "no-setname",
        &["+client|setname"],
        &[],
    );
    let lock = Lock::with_client("acl-no-setname", "s").unwrap();
    let guard = lock.acquire(Some(Duration::from_secs(5))).await.unwrap();
    assert!(lock.is_locked().await.unwrap());
    guard.release().await.unwrap();
    let log = refused(&server);
    assert!(
        log.iter()
            .any(|r| r == "no-setname: command client|setname"),
        "{log:?}"
    );

    // With keys other than the prefix's: the key is refused.
    lock_user(
        &server,
        "acl-other-keys",
        "other-keys",
        &["~lock:*"],
        &["~app:*"],
    );
    let lock = Lock::with_client("acl-other-keys", "k").unwrap();
    match lock.acquire(None).await {
        Err(LockError::NoPermission { reason, .. }) => assert!(reason.contains("keys"), "{reason}"),
        other => panic!("expected NoPermission, got {other:?}"),
    }
}

/// Returns the captured log once a line of it contains `text` and `key` (within 20 s).
async fn logged(text: &str, key: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = capture_logs();
        if logs
            .lines()
            .any(|line| line.contains(text) && line.contains(key))
        {
            return logs;
        }
        assert!(
            Instant::now() < deadline,
            "never logged {text:?} about {key}: {logs}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The WARN lines of `logs` that mention `key`.
fn warnings_about<'a>(logs: &'a str, key: &str) -> Vec<&'a str> {
    logs.lines()
        .filter(|line| line.contains(" WARN ") && line.contains(key))
        .collect()
}

/// A token freed in the background that may never have held the lock (an acquisition whose
/// request went unanswered) is no news worth a warning when freeing it fails; a lock that
/// was held, freed in the background after its release went unanswered, is. Freeing fails
/// here because the user may not publish the release announcement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_lock_that_was_held_is_warned_about_when_it_cannot_be_freed() {
    capture_logs();
    let server = RedisServer::start();
    lock_user_with(&server, "orphans", &["+publish"], &[])
        .response_timeout(Duration::from_millis(300))
        .register("acl-orphans")
        .unwrap();
    let lock = |name: &str| {
        Lock::with_client("acl-orphans", name)
            .unwrap()
            .expire(Duration::from_secs(30))
    };
    // The scripts loaded and the connection made while Redis answers.
    let held = lock("held").acquire(None).await.unwrap();

    // Redis stalls: the acquisition gives up unanswered, and its request runs on resume.
    server.pause();
    let maybe = lock("maybe")
        .acquire(Some(Duration::from_millis(200)))
        .await;
    server.resume();
    assert!(
        matches!(maybe, Err(LockError::NoAnswer { .. })),
        "{maybe:?}"
    );
    let logs = logged(
        "could not free a lock an unanswered request may have taken",
        "lock:{maybe}",
    )
    .await;
    assert_eq!(warnings_about(&logs, "lock:{maybe}"), Vec::<&str>::new());

    // Redis stalls during a release: freed in the background, which fails, with a warning.
    server.pause();
    let released = held.release().await;
    server.resume();
    assert!(
        matches!(&released, Err(e) if e.is_unavailable()),
        "{released:?}"
    );
    let logs = logged("could not release the lock", "lock:{held}").await;
    assert_eq!(warnings_about(&logs, "lock:{held}").len(), 1, "{logs}");
}
