//! A holder process killed with SIGKILL frees its lock within its lease: its waiters wake
//! at the lease's end even though no release is ever announced.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis_lock::Lock;
use redis_lock_tests::RedisServer;

#[tokio::test]
async fn a_killed_holder_frees_the_lock_within_its_lease() {
    let server = RedisServer::start();
    redis_lock::register("crash", &server.url()).unwrap();
    let lease = Duration::from_millis(600);

    let mut holder = Command::new(env!("CARGO_BIN_EXE_contender"))
        .args([
            "hold",
            &server.url(),
            "crashy",
            &lease.as_secs_f64().to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "HOLDING");

    let lock = Lock::with_client("crash", "crashy").unwrap();
    let waiter = tokio::spawn(async move {
        let guard = lock.acquire(Some(Duration::from_secs(10))).await.unwrap();
        let at = Instant::now();
        guard.release().await.unwrap();
        at
    });
    // The holder renews its lease while alive: the waiter must still be waiting after
    // several leases.
    tokio::time::sleep(lease * 3).await;
    assert!(
        !waiter.is_finished(),
        "a live, renewing holder keeps the lock"
    );

    holder.kill().unwrap();
    let killed = Instant::now();
    holder.wait().unwrap();
    let acquired = waiter.await.unwrap();
    let after = acquired - killed;
    assert!(
        after <= lease + Duration::from_millis(100),
        "freed within its lease: {after:?}"
    );
}
