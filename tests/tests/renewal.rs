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
