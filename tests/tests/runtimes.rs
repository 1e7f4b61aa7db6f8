//! Any Tokio runtime flavour, several runtimes one after another, sync functions with or
//! without a runtime, and annotated futures that can be spawned.

use std::time::Duration;

use redis_locked::{Lock, LockError, redis_lock};
use redis_locked_tests::{RedisServer, lock_keys};

#[redis_lock(name = "rt", expire = 5)]
async fn locked_async(n: u32) -> Result<u32, LockError> {
    tokio::task::yield_now().await;
    Ok(n)
}

#[redis_lock(name = "rt", expire = 5)]
fn locked_sync(n: u32) -> Result<u32, LockError> {
    Ok(n)
}

#[redis_lock(name = "rt-renewed")]
async fn locked_async_default_lease() -> Result<(), LockError> {
    Ok(())
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// One test, because it owns the process's default client and runs runtimes in sequence.
#[test]
fn runtimes_one_after_another_and_of_every_flavour() {
    let server = RedisServer::start();
    redis_locked::init(&server.url()).unwrap();

    // Sync with no runtime at all.
    assert_eq!(locked_sync(1).unwrap(), 1);

    // A multi-thread runtime: async, a contended waiter, and a sync call inside it.
    let rt = multi_thread();
    rt.block_on(async {
        assert_eq!(locked_async(2).await.unwrap(), 2);
        let holder = Lock::new("rt").unwrap().acquire(None).await.unwrap();
        let waiter = tokio::spawn(locked_async(3));
        tokio::time::sleep(Duration::from_millis(20)).await;
        holder.release().await.unwrap();
        assert_eq!(waiter.await.unwrap().unwrap(), 3);
        assert_eq!(locked_sync(4).unwrap(), 4);
        locked_async_default_lease().await.unwrap();
    });
    drop(rt);

    // The first runtime is gone; a current-thread runtime works, async and sync.
    let rt = current_thread();
    rt.block_on(async {
        assert_eq!(locked_async(5).await.unwrap(), 5);
        assert_eq!(locked_sync(6).unwrap(), 6);
        // Spawned on the current-thread runtime, contended by the sync path.
        let task = tokio::spawn(locked_async(7));
        assert_eq!(task.await.unwrap().unwrap(), 7);
        locked_async_default_lease().await.unwrap();
    });
    drop(rt);

    // And again a fresh runtime, while an older one is still alive but idle.
    let idle = current_thread();
    idle.block_on(async { assert_eq!(locked_async(8).await.unwrap(), 8) });
    let rt = current_thread();
    rt.block_on(async { assert_eq!(locked_async(9).await.unwrap(), 9) });
    drop(idle);
    drop(rt);

    assert_eq!(locked_sync(10).unwrap(), 10);
    let keys = lock_keys(&mut server.connection());
    assert!(keys.is_empty(), "every lock released: {keys:?}");
}

#[test]
fn annotated_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let future = locked_async(0);
    assert_send(&future);
}
