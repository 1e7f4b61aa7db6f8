//! A holder process killed with SIGKILL frees its lock within its lease: its waiters wake
//! at the lease's end even though no release is ever announced.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis_locked::Lock;
use redis_locked_tests::{HolderProcess, RedisServer};

#[tokio::test]
async fn a_killed_holder_frees_the_lock_within_its_lease() {
    let server = RedisServer::start();
    redis_locked::register("crash", &server.url()).unwrap();
    let lease = Duration::from_millis(600);

    let holder = HolderProcess::start(
        env!("CARGO_BIN_EXE_contender"),
        &server.url(),
        "crashy",
        &lease.as_secs_f64().to_string(),
    );

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

    let killed = Instant::now();
    holder.kill();
    let acquired = waiter.await.unwrap();
    let after = acquired - killed;
    assert!(
        after <= lease + Duration::from_millis(100),
        "freed within its lease: {after:?}"
    );
}

#[tokio::test]
async fn one_of_three_waiting_processes_takes_over_from_a_killed_holder() {
    let server = RedisServer::start();
    let lease = Duration::from_millis(600);
    let name = "crashy-three";
    let holder = HolderProcess::start(
        env!("CARGO_BIN_EXE_contender"),
        &server.url(),
        name,
        &lease.as_secs_f64().to_string(),
    );

    // Three processes wait; each reports when it has the lock.
    let (acquired_tx, mut acquired) = tokio::sync::mpsc::unbounded_channel();
    let mut waiters = Vec::new();
    for _ in 0..3 {
        let mut waiter = Command::new(env!("CARGO_BIN_EXE_contender"))
            .args(["take", &server.url(), name])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = waiter.stdout.take().unwrap();
        let tx = acquired_tx.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            BufReader::new(out).read_line(&mut line).unwrap();
            let _ = tx.send((Instant::now(), line));
        });
        waiters.push(waiter);
    }
    // Each waiting process subscribes to the lock's channel.
    redis_locked_tests::wait_for_subscribers(&server, &format!("lock:{{{name}}}"), 3).await;

    let killed = Instant::now();
    holder.kill();
    let (first, line) = acquired.recv().await.unwrap();
    assert_eq!(line.trim(), "ACQUIRED");
    let after = first - killed;
    assert!(
        after <= lease + Duration::from_millis(100),
        "one waiter took over within the lease: {after:?}"
    );
    // The others follow as each releases.
    for _ in 0..2 {
        let (_, line) = tokio::time::timeout(Duration::from_secs(5), acquired.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(line.trim(), "ACQUIRED");
    }
    for mut waiter in waiters {
        assert!(waiter.wait().unwrap().success());
    }
}
