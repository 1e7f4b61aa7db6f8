//! A Redis that cannot be reached is reported at once: one WARN naming the address (never
//! the password) when a client's first connection fails, while callers keep retrying for
//! up to the outage timeout; the retries are DEBUG only; an INFO says when it answers again.
//!
//! Its own test binary: the log capture is process-wide.

use std::time::{Duration, Instant};

use redis_locked::{ClientBuilder, Lock};
use redis_locked_tests::{RedisServer, capture_logs};

const PASSWORD: &str = "first-contact-s3cret";

/// The captured lines about `address` at `level`.
fn lines(level: &str, address: &str) -> Vec<String> {
    capture_logs()
        .lines()
        .filter(|line| line.contains(&format!(" {level} ")) && line.contains(address))
        .map(String::from)
        .collect()
}

/// Waits until `count` lines about `address` at `level` were logged; how long that took.
async fn logged(level: &str, address: &str, count: usize) -> Duration {
    let start = Instant::now();
    // The log has no event to wait for: look at it every few milliseconds.
    while lines(level, address).len() < count {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no {count} {level} lines about {address}: {:?}",
            capture_logs()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_one_warning_at_once_then_quiet_retries_and_info_when_back() {
    capture_logs();
    let mut server = RedisServer::start_with(&["--requirepass", PASSWORD]);
    let address = format!("127.0.0.1:{}", server.port());
    // Nothing listens on the port now.
    server.kill();
    ClientBuilder::new(format!("redis://:{PASSWORD}@{address}"))
        .register("first-contact")
        .unwrap();
    let lock = |name: &str| Lock::with_client("first-contact", name).unwrap();

    // An async and a blocking caller, of two locks, each riding out the outage.
    let waiting = {
        let lock = lock("async-job");
        tokio::spawn(async move { lock.acquire(Some(Duration::from_secs(20))).await })
    };
    let blocking = {
        let lock = lock("blocking-job");
        tokio::task::spawn_blocking(move || lock.acquire_blocking(Some(Duration::from_secs(20))))
    };

    // Said at once, long before any caller gives up.
    let took = logged("WARN", &address, 1).await;
    assert!(took < Duration::from_secs(1), "the warning took {took:?}");
    let warning = &lines("WARN", &address)[0];
    assert!(
        warning.contains("cannot connect to Redis")
            && warning.contains("first-contact")
            && warning.contains("refused"),
        "{warning}"
    );
    // Both callers retry (25 ms, then doubling): the retries are DEBUG only.
    logged("DEBUG", &address, 4).await;
    assert_eq!(lines("WARN", &address).len(), 1, "{:?}", capture_logs());

    // Back: both callers get the lock, and the log says it is reachable again.
    server.start_again();
    let guard = waiting.await.unwrap().unwrap();
    guard.release().await.unwrap();
    let guard = blocking.await.unwrap().unwrap();
    tokio::task::spawn_blocking(move || guard.release().unwrap())
        .await
        .unwrap();
    let recovered = lines("INFO", &address);
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert!(recovered[0].contains("again"), "{}", recovered[0]);
    assert_eq!(lines("WARN", &address).len(), 1);

    assert!(!capture_logs().contains(PASSWORD), "a password was logged");
}
