//! `auto_renew` keeps a lock through a long body; without it the lease runs out and
//! another holder enters.

use std::time::{Duration, Instant};

use redis_locked::{LockError, redis_lock};
use redis_locked_tests::RedisServer;
use tokio::sync::oneshot;

const LEASE: Duration = Duration::from_millis(300);

#[redis_lock(name = "renewed", client = "renewal", expire = 0.3, auto_renew)]
async fn long_renewed_body(entered: oneshot::Sender<()>) -> Result<Instant, LockError> {
    entered.send(()).unwrap();
    tokio::time::sleep(LEASE * 3).await;
    Ok(Instant::now())
}

#[redis_lock(name = "renewed", client = "renewal", expire = 0.3)]
async fn next_holder_renewed() -> Result<Instant, LockError> {
    Ok(Instant::now())
}

#[redis_lock(name = "unrenewed", client = "renewal", expire = 0.3)]
async fn long_unrenewed_body(entered: oneshot::Sender<()>) -> Result<Instant, LockError> {
    entered.send(()).unwrap();
    tokio::time::sleep(LEASE * 3).await;
    Ok(Instant::now())
}

#[redis_lock(name = "unrenewed", client = "renewal", expire = 0.3)]
async fn next_holder_unrenewed() -> Result<Instant, LockError> {
    Ok(Instant::now())
}

#[redis_lock(
    name = "renewed-sync",
    client = "renewal",
    expire = 0.3,
    auto_renew = true
)]
fn long_renewed_sync_body(entered: std::sync::mpsc::Sender<()>) -> Result<Instant, LockError> {
    entered.send(()).unwrap();
    std::thread::sleep(LEASE * 3);
    Ok(Instant::now())
}

#[redis_lock(name = "renewed-sync", client = "renewal", expire = 0.3)]
fn next_holder_renewed_sync() -> Result<Instant, LockError> {
    Ok(Instant::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_holds_and_its_absence_lets_others_in() {
    let server = RedisServer::start();
    redis_locked::register("renewal", &server.url()).unwrap();

    // With auto_renew: the next holder waits for the whole body.
    let (entered, is_in) = oneshot::channel();
    let holder = tokio::spawn(long_renewed_body(entered));
    is_in.await.unwrap();
    let next = next_holder_renewed().await.unwrap();
    let body_end = holder.await.unwrap().unwrap();
    assert!(
        next >= body_end,
        "renewed lock was held until the body ended"
    );

    // Without: the lease runs out mid-body and the next holder enters then.
    let (entered, is_in) = oneshot::channel();
    let start = Instant::now();
    let holder = tokio::spawn(long_unrenewed_body(entered));
    is_in.await.unwrap();
    let next = next_holder_unrenewed().await.unwrap();
    let body_end = holder.await.unwrap().unwrap();
    assert!(
        next < body_end,
        "expired lock let another holder in before the body ended"
    );
    assert!(
        next - start >= LEASE - Duration::from_millis(20),
        "{:?}",
        next - start
    );

    // Sync functions renew on the shared background renewer.
    let (entered, is_in) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || long_renewed_sync_body(entered));
    is_in.recv().unwrap();
    let next = tokio::task::spawn_blocking(next_holder_renewed_sync)
        .await
        .unwrap()
        .unwrap();
    let body_end = holder.join().unwrap().unwrap();
    assert!(
        next >= body_end,
        "renewed sync lock was held until the body ended"
    );
}

/// A body that keeps its runtime's only thread busy (CPU-bound work, a blocking call).
#[redis_lock(name = "starving", client = "renewal-starved", expire = 0.3, auto_renew, guard = lock)]
async fn body_starving_its_runtime(server: &RedisServer) -> Result<(bool, i64), LockError> {
    std::thread::sleep(LEASE * 4);
    let pttl: i64 = redis::cmd("PTTL")
        .arg("lock:{starving}")
        .query(&mut server.connection())
        .unwrap();
    Ok((lock.is_lost(), pttl))
}

/// Item 14 of the partial-failures review: renewal does not run on the caller's runtime,
/// where a body that never yields would starve it and the lock would expire under it.
#[test]
fn renewal_is_not_starved_by_a_busy_runtime() {
    let server = RedisServer::start();
    redis_locked::register("renewal-starved", &server.url()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (lost, pttl) = runtime
        .block_on(body_starving_its_runtime(&server))
        .unwrap();
    assert!(!lost, "renewal kept the lock");
    assert!(
        pttl > 0,
        "the key was renewed while the runtime was busy: {pttl}"
    );
}

/// A guard whose runtime shut down keeps being renewed: it does not lose its lock
/// silently with the runtime's tasks.
#[test]
fn renewal_outlives_the_runtime_that_acquired() {
    let server = RedisServer::start();
    redis_locked::register("renewal-runtime-gone", &server.url()).unwrap();
    let lock = redis_locked::Lock::with_client("renewal-runtime-gone", "outlives")
        .unwrap()
        .expire(LEASE)
        .auto_renew(true);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let guard = runtime.block_on(lock.acquire(None)).unwrap();
    drop(runtime);
    std::thread::sleep(LEASE * 4);
    assert!(!guard.is_lost());
    let pttl: i64 = redis::cmd("PTTL")
        .arg(lock.key())
        .query(&mut server.connection())
        .unwrap();
    assert!(pttl > 0, "still renewed: {pttl}");
    assert_eq!(
        lock.owner_blocking().unwrap().as_deref(),
        Some(guard.token())
    );
    // Released in the background when dropped, although its runtime is gone.
    drop(guard);
}

/// A renewed lock's renewal is spawned on the background thread only when its first
/// renewal is due (a third of the lease in): 300 calls that each end long before that wake
/// the thread a few times in all. Spawned at each acquisition and aborted at each release,
/// it woke the thread twice per call (about 600 times).
#[test]
fn calls_shorter_than_a_third_of_their_lease_leave_the_background_thread_asleep() {
    let server = RedisServer::start();
    redis_locked::register("renewal-short-calls", &server.url()).unwrap();
    let lock = redis_locked::Lock::with_client("renewal-short-calls", "short").unwrap();
    assert!(lock.auto_renews(), "the default lock is renewed");
    for _ in 0..20 {
        lock.acquire_blocking(None).unwrap().release().unwrap();
    }
    let before = redis_locked_tests::background_thread_wakeups();
    for _ in 0..300 {
        lock.acquire_blocking(None).unwrap().release().unwrap();
    }
    let woken = redis_locked_tests::background_thread_wakeups() - before;
    assert!(
        woken < 30,
        "the background thread woke {woken} times for 300 calls"
    );
}
