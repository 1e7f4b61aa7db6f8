//! Fencing tokens: every acquisition of a lock name gets a number greater than every
//! earlier one, kept across releases and resets; and the classic failure they exist for,
//! a holder paused past its lease writing after the next holder, is caught by a store that
//! checks them.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use redis_locked::{ClientBuilder, Lock};
use redis_locked_tests::{RedisServer, fenced_write, wait_for_subscribers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fencing_tokens_only_grow() {
    let server = RedisServer::start();
    redis_locked::register("fence-a", &server.url()).unwrap();
    ClientBuilder::new(server.url())
        .register("fence-b")
        .unwrap();
    let lock = Lock::with_client("fence-a", "ledger").unwrap();
    let other_client = Lock::with_client("fence-b", "ledger").unwrap();
    let mut seen = Vec::new();

    // Plain acquisitions, async and blocking, on two clients.
    for _ in 0..3 {
        let guard = lock.acquire(None).await.unwrap();
        seen.push(guard.fencing_token());
        guard.release().await.unwrap();
        let guard = other_client.acquire(None).await.unwrap();
        seen.push(guard.fencing_token());
        guard.release().await.unwrap();
    }
    let sync_lock = lock.clone();
    seen.push(
        tokio::task::spawn_blocking(move || {
            let guard = sync_lock.acquire_blocking(None).unwrap();
            guard.fencing_token()
        })
        .await
        .unwrap(),
    );
    // A handover inside the process gives the next holder the next number too.
    let holder = lock.acquire(None).await.unwrap();
    seen.push(holder.fencing_token());
    let waiter = {
        let lock = lock.clone();
        tokio::spawn(async move { lock.acquire(None).await.unwrap() })
    };
    wait_for_subscribers(&server, lock.key(), 1).await;
    holder.release().await.unwrap();
    let handed = waiter.await.unwrap();
    seen.push(handed.fencing_token());
    // A reset frees the lock but keeps the counter.
    assert!(lock.reset().await.unwrap());
    drop(handed);
    let guard = lock.acquire(None).await.unwrap();
    seen.push(guard.fencing_token());
    guard.release().await.unwrap();

    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(seen[0], 1);
    let counter: u64 = redis::cmd("GET")
        .arg(format!("{}:fence", lock.key()))
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(counter, *seen.last().unwrap());
}

#[tokio::test]
async fn a_paused_holders_stale_write_is_refused() {
    let server = RedisServer::start();
    redis_locked::register("fence-pause", &server.url()).unwrap();
    let lease = Duration::from_millis(500);
    let mut stale = Command::new(env!("CARGO_BIN_EXE_contender"))
        .args(["fenced-write", &server.url(), "account", "balance"])
        .arg(lease.as_secs_f64().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(stale.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let first: u64 = line
        .trim()
        .strip_prefix("HOLDING ")
        .unwrap()
        .parse()
        .unwrap();

    // The holder stops (a GC pause, a frozen VM) past its lease...
    let pid = stale.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    // ...so the lock expires and the next holder takes it and writes.
    let lock = Lock::with_client("fence-pause", "account").unwrap();
    let guard = lock.acquire(Some(Duration::from_secs(5))).await.unwrap();
    assert!(guard.fencing_token() > first);
    let mut conn = server.connection();
    assert!(fenced_write(
        &mut conn,
        "balance",
        guard.fencing_token(),
        "next holder"
    ));
    guard.release().await.unwrap();

    // The first holder wakes up, still believing it holds the lock, and writes: refused.
    assert!(
        Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    writeln!(stale.stdin.as_mut().unwrap(), "write").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "WRITE REJECTED");
    stale.wait().unwrap();
    let value: String = redis::cmd("GET").arg("balance").query(&mut conn).unwrap();
    assert_eq!(value, "next holder");
}
