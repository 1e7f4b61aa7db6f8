//! The programmatic API under the attribute: `Lock`, its guards, reset and reset_all.

use std::time::{Duration, Instant};

use redis_locked::{ClientBuilder, Lock, LockError};
use redis_locked_tests::{RedisServer, lock_keys, owner_token};

fn client(name: &str) -> RedisServer {
    let server = RedisServer::start();
    redis_locked::register(name, &server.url()).unwrap();
    server
}

#[tokio::test]
async fn acquire_try_release_and_inspect() {
    let server = client("prog-basic");
    let lock = Lock::with_client("prog-basic", "basic")
        .unwrap()
        .expire(Duration::from_secs(5));
    assert_eq!(lock.key(), "lock:{basic}");
    assert!(!lock.is_locked().await.unwrap());

    let guard = lock.acquire(None).await.unwrap();
    assert_eq!(guard.token().len(), 32, "128-bit hex owner token");
    assert!(lock.is_locked().await.unwrap());
    assert_eq!(lock.owner().await.unwrap().as_deref(), Some(guard.token()));
    let ttl: i64 = redis::cmd("PTTL")
        .arg("lock:{basic}")
        .query(&mut server.connection())
        .unwrap();
    assert!(ttl > 4000 && ttl <= 5000, "written with its lease: {ttl}");

    assert!(lock.try_acquire().await.unwrap().is_none());
    guard.release().await.unwrap();
    assert!(!lock.is_locked().await.unwrap());

    let again = lock
        .try_acquire()
        .await
        .unwrap()
        .expect("free after release");
    assert_ne!(again.token().len(), 0);
    again.release().await.unwrap();
}

#[test]
fn blocking_api_without_any_runtime() {
    let _server = client("prog-blocking");
    let lock = Lock::with_client("prog-blocking", "sync")
        .unwrap()
        .expire(Duration::from_millis(250));
    let guard = lock.acquire_blocking(None).unwrap();
    assert!(lock.try_acquire_blocking().unwrap().is_none());
    guard.extend(Some(Duration::from_secs(5))).unwrap();
    assert!(lock.is_locked_blocking().unwrap());
    guard.release().unwrap();
    assert!(lock.owner_blocking().unwrap().is_none());
}

#[tokio::test]
async fn release_never_deletes_another_owners_lock() {
    let server = client("prog-owner");
    let lock = Lock::with_client("prog-owner", "owned")
        .unwrap()
        .expire(Duration::from_millis(100));
    let first = lock.acquire(None).await.unwrap();
    // The lease runs out and a second owner enters.
    let second = lock.acquire(Some(Duration::from_secs(2))).await.unwrap();
    assert!(matches!(
        first.extend(None).await,
        Err(LockError::Expired { .. })
    ));
    assert!(matches!(
        first.release().await,
        Err(LockError::Expired { .. })
    ));
    let owner = owner_token(&mut server.connection(), "lock:{owned}");
    assert_eq!(owner.as_deref(), Some(second.token()));
    second.release().await.unwrap();
}

#[tokio::test]
async fn lost_lock_is_reported_by_release() {
    let server = client("prog-lost");
    let lock = Lock::with_client("prog-lost", "stolen")
        .unwrap()
        .expire(Duration::from_millis(150))
        .auto_renew(true);
    let guard = lock.acquire(None).await.unwrap();
    // Someone else overwrites the key: the next renewal must notice.
    let _: () = redis::cmd("SET")
        .arg("lock:{stolen}")
        .arg("intruder")
        .query(&mut server.connection())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !guard.is_lost() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(guard.is_lost(), "renewal noticed the lock was taken");
    assert!(matches!(guard.release().await, Err(LockError::Lost { .. })));
    let owner: Option<String> = redis::cmd("GET")
        .arg("lock:{stolen}")
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(
        owner.as_deref(),
        Some("intruder"),
        "the intruder's key is untouched"
    );
}

#[tokio::test]
async fn reset_frees_and_wakes_a_waiter() {
    let server = client("prog-reset");
    let lock = Lock::with_client("prog-reset", "stuck")
        .unwrap()
        .expire(Duration::from_secs(60));
    let holder = lock.acquire(None).await.unwrap();
    let waiter = {
        let lock = lock.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let guard = lock.acquire(Some(Duration::from_secs(5))).await.unwrap();
            (start.elapsed(), guard)
        })
    };
    // Once the waiter's process subscribed to the lock's releases, it is waiting.
    redis_locked_tests::wait_for_subscribers(&server, "lock:{stuck}", 1).await;
    assert!(lock.reset().await.unwrap());
    let (waited, guard) = waiter.await.unwrap();
    assert!(
        waited < Duration::from_secs(1),
        "woken by reset: {waited:?}"
    );
    guard.release().await.unwrap();
    assert!(matches!(
        holder.release().await,
        Err(LockError::Expired { .. })
    ));
}

#[tokio::test]
async fn reset_all_scans_only_this_prefix() {
    let server = RedisServer::start();
    ClientBuilder::new(server.url())
        .key_prefix("app:")
        .register("prog-reset-all")
        .unwrap();
    let mut conn = server.connection();
    let _: () = redis::cmd("SET")
        .arg("other:{x}")
        .arg("1")
        .query(&mut conn)
        .unwrap();
    let mut guards = Vec::new();
    for i in 0..25 {
        let lock = Lock::with_client("prog-reset-all", format!("n{i}")).unwrap();
        guards.push(lock.acquire(None).await.unwrap());
    }
    assert_eq!(
        redis_locked::reset_all(Some("prog-reset-all"))
            .await
            .unwrap(),
        25
    );
    assert_eq!(lock_keys(&mut conn), vec!["other:{x}".to_string()]);
    // The fencing counters stay: numbers never go back.
    let counters: Vec<String> = redis::cmd("KEYS")
        .arg("app:*:fence")
        .query(&mut conn)
        .unwrap();
    assert_eq!(counters.len(), 25);
    for g in guards {
        assert!(g.release().await.is_err());
    }
}

#[test]
fn configuration_errors_are_errors_not_panics() {
    assert!(matches!(
        redis_locked::register("prog-bad-url", "not a url"),
        Err(LockError::InvalidConfig { .. })
    ));
    let server = RedisServer::start();
    redis_locked::register("prog-twice", &server.url()).unwrap();
    assert!(matches!(
        redis_locked::register("prog-twice", &server.url()),
        Err(LockError::AlreadyRegistered { .. })
    ));
    assert!(matches!(
        Lock::with_client("prog-missing", "x"),
        Err(LockError::UnknownClient { .. })
    ));
    assert!(matches!(
        Lock::with_client("prog-twice", ""),
        Err(LockError::InvalidConfig { .. })
    ));
    let zero = Lock::with_client("prog-twice", "z")
        .unwrap()
        .expire(Duration::ZERO);
    assert!(matches!(
        zero.acquire_blocking(None),
        Err(LockError::InvalidConfig { .. })
    ));
}

#[tokio::test]
async fn redis_down_is_an_error() {
    let mut server = RedisServer::start();
    redis_locked::ClientBuilder::new(server.url())
        .outage_timeout(Duration::from_millis(200))
        .register("prog-down")
        .unwrap();
    server.kill();
    let lock = Lock::with_client("prog-down", "x").unwrap();
    // Waiting without a timeout rides out an outage for the client's outage timeout only.
    let start = Instant::now();
    assert!(matches!(
        lock.acquire(None).await,
        Err(LockError::Connect { .. })
    ));
    assert!(matches!(
        lock.acquire_blocking(None),
        Err(LockError::Connect { .. })
    ));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    // A single attempt reports the outage at once, not as a timeout.
    assert!(matches!(
        lock.acquire(Some(Duration::ZERO)).await,
        Err(LockError::Connect { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checks_every_kind_of_client_passes() {
    let _server = client("prog-core-checks");
    redis_locked_tests::core_checks::renewal_release_and_timeout("prog-core-checks").await;
}
