//! Checks of the core that every kind of client must pass, run by the tests of each kind
//! (one server, Sentinel, Redlock, Cluster) on a client registered under `client`.

use std::time::{Duration, Instant};

use redis_locked::{Lock, LockError};

/// Auto-renewal keeps a short lease held past several leases; dropping a guard (a panic,
/// an early return, a cancelled future) releases at once; a held lock times out others on
/// schedule.
pub async fn renewal_release_and_timeout(client: &str) {
    let lease = Duration::from_millis(600);
    let lock = Lock::with_client(client, "core-checks")
        .unwrap()
        .expire(lease)
        .auto_renew(true);
    let other = Lock::with_client(client, "core-checks").unwrap();

    let guard = lock.acquire(Some(Duration::from_secs(5))).await.unwrap();
    // Three leases pass: only renewal keeps it held.
    tokio::time::sleep(lease * 3).await;
    assert!(!guard.is_lost(), "{client}: renewal kept it");
    assert!(lock.is_locked().await.unwrap(), "{client}: still held");
    let start = Instant::now();
    let timed_out = other.acquire(Some(Duration::from_millis(300))).await;
    assert!(
        matches!(timed_out, Err(LockError::Timeout { .. })),
        "{client}: {timed_out:?}"
    );
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "{client}: {:?}",
        start.elapsed()
    );

    // A dropped guard (what a panic or `?` out of a locked body does) frees it promptly.
    drop(guard);
    let start = Instant::now();
    let next = other.acquire(Some(Duration::from_secs(5))).await.unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{client}: freed after {:?}",
        start.elapsed()
    );
    next.release().await.unwrap();
    assert!(!lock.is_locked().await.unwrap());

    // A cancelled acquisition leaves nothing behind.
    let holder = lock.acquire(None).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_millis(100), other.acquire(None)).await;
    assert!(waiting.is_err(), "{client}: the waiter was cancelled");
    holder.release().await.unwrap();
    other
        .acquire(Some(Duration::ZERO))
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
}
