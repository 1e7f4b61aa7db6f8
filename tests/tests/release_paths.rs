//! The lock is released on every way out of the body, at once (not at lease expiry).

use std::time::Duration;

use redis_locked::{Lock, LockError, redis_lock};
use redis_locked_tests::RedisServer;

#[derive(Debug)]
enum AppError {
    Lock(#[allow(dead_code)] LockError),
    Invalid,
}

impl From<LockError> for AppError {
    fn from(e: LockError) -> Self {
        AppError::Lock(e)
    }
}

fn parse(ok: bool) -> Result<u32, AppError> {
    if ok { Ok(1) } else { Err(AppError::Invalid) }
}

#[redis_lock(name = "paths", client = "paths", expire = 60)]
async fn async_question_mark(ok: bool) -> Result<u32, AppError> {
    let n = parse(ok)?;
    Ok(n)
}

#[redis_lock(name = "paths", client = "paths", expire = 60)]
async fn async_early_return(early: bool) -> Result<u32, AppError> {
    if early {
        return Ok(0);
    }
    Ok(1)
}

#[redis_lock(name = "paths", client = "paths", expire = 60)]
async fn async_panics() -> Result<(), LockError> {
    panic!("body panicked");
}

#[redis_lock(name = "paths", client = "paths", expire = 60)]
async fn async_never_finishes() -> Result<(), LockError> {
    std::future::pending::<()>().await;
    Ok(())
}

#[redis_lock(name = "paths", client = "paths", expire = 60)]
fn sync_question_mark(ok: bool) -> Result<u32, AppError> {
    let n = parse(ok)?;
    Ok(n)
}

#[redis_lock(name = "paths", client = "paths", expire = 60)]
fn sync_early_return(early: bool) -> Result<u32, AppError> {
    if early {
        return Ok(0);
    }
    Ok(1)
}

#[redis_lock(name = "paths", client = "paths", expire = 60)]
fn sync_panics() -> Result<(), LockError> {
    panic!("body panicked");
}

/// The lock must be free now, or be freed promptly (a dropped guard is released in the
/// background): another acquirer gets it within 2 s, not at the 60 s lease's end.
async fn assert_released() {
    let lock = Lock::with_client("paths", "paths").unwrap();
    let guard = lock
        .acquire(Some(Duration::from_secs(2)))
        .await
        .expect("released promptly, not at lease expiry (60 s)");
    guard.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_out_releases_at_once() {
    let server = RedisServer::start();
    redis_locked::register("paths", &server.url()).unwrap();

    assert!(matches!(
        async_question_mark(false).await,
        Err(AppError::Invalid)
    ));
    assert_released().await;
    assert_eq!(async_question_mark(true).await.unwrap(), 1);
    assert_released().await;
    assert_eq!(async_early_return(true).await.unwrap(), 0);
    assert_released().await;

    let panicked = tokio::spawn(async_panics()).await;
    assert!(panicked.unwrap_err().is_panic());
    assert_released().await;

    // Cancellation: the future is dropped mid-body.
    let cancelled = tokio::time::timeout(Duration::from_millis(50), async_never_finishes()).await;
    assert!(cancelled.is_err());
    assert_released().await;

    // A spawned task aborted mid-body.
    let task = tokio::spawn(async_never_finishes());
    let lock = Lock::with_client("paths", "paths").unwrap();
    while !lock.is_locked().await.unwrap() {
        tokio::task::yield_now().await;
    }
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_released().await;

    tokio::task::spawn_blocking(|| {
        assert!(matches!(sync_question_mark(false), Err(AppError::Invalid)));
    })
    .await
    .unwrap();
    assert_released().await;
    assert_eq!(sync_early_return(true).unwrap(), 0);
    assert_released().await;
    let panicked = std::thread::spawn(sync_panics).join();
    assert!(panicked.is_err());
    assert_released().await;
}
