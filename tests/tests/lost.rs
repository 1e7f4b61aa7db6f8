//! A lock lost under a running body: its key deleted, its lease run out while renewal
//! could not reach Redis, or forgotten by a Redis restart without persistence. Renewal
//! notices; `on_lost` decides whether the body goes on (with a warning naming the lock)
//! or is stopped with `LockError::Lost`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis_locked::{Lock, LockError, redis_lock};
use redis_locked_tests::{RedisServer, capture_logs};
use tokio::sync::oneshot;

/// Set when a body gets past its long wait, which an aborted body never does.
static FINISHED: AtomicBool = AtomicBool::new(false);

#[redis_lock(
    name = "{name}",
    client = "lost",
    expire = 0.6,
    auto_renew,
    on_lost = "abort"
)]
async fn aborting(name: &str, entered: oneshot::Sender<()>) -> Result<(), LockError> {
    entered.send(()).unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    FINISHED.store(true, Ordering::SeqCst);
    Ok(())
}

#[redis_lock(name = "{name}", client = "lost", expire = 0.6, auto_renew)]
async fn continuing(name: &str, entered: oneshot::Sender<()>) -> Result<u32, LockError> {
    entered.send(()).unwrap();
    // Long enough for two renewals: the first after the key is gone finds it lost.
    tokio::time::sleep(Duration::from_millis(700)).await;
    Ok(7)
}

/// The raw `DEL` of another client, or an operator.
fn delete_key(server: &RedisServer, name: &str) {
    let deleted: i64 = redis::cmd("DEL")
        .arg(format!("lock:{{{name}}}"))
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(deleted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_lost_decides_what_a_deleted_key_does_to_the_body() {
    let mut server = RedisServer::start();
    redis_locked::register("lost", &server.url()).unwrap();
    capture_logs();

    // abort: the body stops at its await, the function returns `Lost` at the next renewal.
    let (entered, in_body) = oneshot::channel();
    let call = tokio::spawn(aborting("deleted-abort", entered));
    in_body.await.unwrap();
    delete_key(&server, "deleted-abort");
    let deleted = Instant::now();
    let result = call.await.unwrap();
    assert!(
        matches!(&result, Err(LockError::Lost { name }) if name == "deleted-abort"),
        "{result:?}"
    );
    // A renewal every 200 ms.
    assert!(
        deleted.elapsed() < Duration::from_millis(500),
        "{:?}",
        deleted.elapsed()
    );
    assert!(!FINISHED.load(Ordering::SeqCst), "the body was stopped");

    // continue (the default): the body completes, its result is returned, a warning names
    // the lock.
    let (entered, in_body) = oneshot::channel();
    let call = tokio::spawn(continuing("deleted-continue", entered));
    in_body.await.unwrap();
    delete_key(&server, "deleted-continue");
    assert_eq!(call.await.unwrap().unwrap(), 7);
    let logs = capture_logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("WARN") && l.contains("lost") && l.contains("deleted-continue")),
        "{logs}"
    );

    // Without persistence a restart forgets every lock; the holder learns it at its next
    // renewal.
    let (entered, in_body) = oneshot::channel();
    let call = tokio::spawn(aborting("restart-forgets", entered));
    in_body.await.unwrap();
    server.restart();
    let restarted = Instant::now();
    let result = call.await.unwrap();
    assert!(matches!(result, Err(LockError::Lost { .. })), "{result:?}");
    assert!(
        restarted.elapsed() < Duration::from_millis(600),
        "{:?}",
        restarted.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_runs_out_while_redis_is_paused_is_lost_on_time() {
    let server = RedisServer::start();
    redis_locked::register("lost-paused", &server.url()).unwrap();
    let lease = Duration::from_millis(600);
    let lock = Lock::with_client("lost-paused", "paused")
        .unwrap()
        .expire(lease)
        .auto_renew(true);
    let guard = lock.acquire(None).await.unwrap();
    let acquired = Instant::now();
    server.pause();
    // Renewal cannot get through: by this process's clock the lease runs out, and the
    // lock counts as lost then, while Redis is still paused.
    tokio::time::timeout(Duration::from_secs(5), guard.lost())
        .await
        .expect("the lock is lost when its lease runs out");
    let lost_after = acquired.elapsed();
    assert!(
        lost_after >= lease - Duration::from_millis(50)
            && lost_after < lease + Duration::from_millis(200),
        "{lost_after:?}"
    );
    assert!(guard.is_lost());
    server.resume();
    assert!(matches!(guard.release().await, Err(LockError::Lost { .. })));
    // Someone else can have it.
    lock.acquire(Some(Duration::from_secs(2)))
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_persistence_a_restart_keeps_the_lock() {
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    redis_locked::register("lost-aof", &server.url()).unwrap();
    let lease = Duration::from_millis(900);
    let lock = Lock::with_client("lost-aof", "durable")
        .unwrap()
        .expire(lease)
        .auto_renew(true);
    let guard = lock.acquire(None).await.unwrap();
    server.restart();
    // Renewals go on against the restarted server, which still has the key.
    tokio::time::sleep(lease * 2).await;
    assert!(!guard.is_lost());
    assert!(lock.try_acquire().await.unwrap().is_none(), "still held");
    guard.release().await.unwrap();
}

#[test]
fn a_sync_holder_sees_its_lock_lost() {
    let server = RedisServer::start();
    redis_locked::register("lost-sync", &server.url()).unwrap();
    let lock = Lock::with_client("lost-sync", "sync")
        .unwrap()
        .expire(Duration::from_millis(300))
        .auto_renew(true);
    let guard = lock.acquire_blocking(None).unwrap();
    delete_key(&server, "sync");
    let deleted = Instant::now();
    assert!(
        guard.wait_lost(Duration::from_secs(5)),
        "renewal never noticed"
    );
    assert!(
        deleted.elapsed() < Duration::from_millis(300),
        "{:?}",
        deleted.elapsed()
    );
    assert!(guard.is_lost());
    assert!(matches!(guard.release(), Err(LockError::Lost { .. })));
}
