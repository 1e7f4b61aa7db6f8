//! `timeout` is an overall deadline; `timeout = 0` is a single attempt.

use std::time::{Duration, Instant};

use redis_locked::{Lock, LockError, redis_lock};
use redis_locked_tests::RedisServer;

#[redis_lock(name = "busy", client = "timeouts", timeout = 0.3)]
async fn wait_300ms() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = "busy", client = "timeouts", timeout = 0)]
async fn one_attempt() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = "busy", client = "timeouts", timeout = 0.3)]
fn wait_300ms_sync() -> Result<(), LockError> {
    Ok(())
}

#[redis_lock(name = "busy", client = "timeouts", timeout = 0)]
fn one_attempt_sync() -> Result<(), LockError> {
    Ok(())
}

#[tokio::test]
async fn timeouts_are_overall_deadlines() {
    let server = RedisServer::start();
    redis_locked::register("timeouts", &server.url()).unwrap();
    let holder = Lock::with_client("timeouts", "busy")
        .unwrap()
        .expire(Duration::from_secs(30))
        .acquire(None)
        .await
        .unwrap();

    let start = Instant::now();
    let result = wait_300ms().await;
    let waited = start.elapsed();
    assert!(
        matches!(result, Err(LockError::Timeout { .. })),
        "{result:?}"
    );
    // Upper bounds with room for a loaded machine's scheduling, far below the holder's
    // lease, which a timeout not kept would wait for.
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_millis(600), "{waited:?}");

    let start = Instant::now();
    assert!(matches!(
        one_attempt().await,
        Err(LockError::Timeout { .. })
    ));
    assert!(
        start.elapsed() < Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );

    let waited = tokio::task::spawn_blocking(|| {
        let start = Instant::now();
        assert!(matches!(wait_300ms_sync(), Err(LockError::Timeout { .. })));
        let waited = start.elapsed();
        let start = Instant::now();
        assert!(matches!(one_attempt_sync(), Err(LockError::Timeout { .. })));
        (waited, start.elapsed())
    })
    .await
    .unwrap();
    assert!(
        waited.0 >= Duration::from_millis(300) && waited.0 < Duration::from_millis(600),
        "{waited:?}"
    );
    assert!(waited.1 < Duration::from_millis(250), "{waited:?}");

    holder.release().await.unwrap();
    one_attempt().await.unwrap();
    one_attempt_sync().unwrap();
}

#[tokio::test]
async fn a_timeout_spans_many_wake_ups() {
    // Releases by other holders wake the waiter several times; it still gives up at its
    // deadline, not one timeout after the last wake-up.
    let server = RedisServer::start();
    redis_locked::register("timeouts-wakeups", &server.url()).unwrap();
    let lock = Lock::with_client("timeouts-wakeups", "churn")
        .unwrap()
        .expire(Duration::from_secs(30));
    let churn = {
        let lock = lock.clone();
        tokio::spawn(async move {
            let stop = Instant::now() + Duration::from_millis(600);
            while Instant::now() < stop {
                let guard = lock.acquire(None).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                guard.release().await.unwrap();
            }
        })
    };
    let start = Instant::now();
    let mut outcomes = 0;
    while start.elapsed() < Duration::from_millis(500) {
        let attempt = Instant::now();
        match lock.acquire(Some(Duration::from_millis(100))).await {
            Ok(guard) => {
                guard.release().await.unwrap();
            }
            Err(LockError::Timeout { .. }) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(
            attempt.elapsed() < Duration::from_millis(200),
            "{:?}",
            attempt.elapsed()
        );
        outcomes += 1;
    }
    assert!(outcomes > 0);
    churn.await.unwrap();
}
