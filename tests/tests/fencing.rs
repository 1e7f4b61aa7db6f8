//! Fencing tokens: every acquisition of a lock name gets a number greater than every
//! earlier one, kept across releases and resets; and the classic failure they exist for,
//! a holder paused past its lease writing after the next holder, is caught by a store that
//! checks them.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use redis_locked::{ClientBuilder, Lock};
use redis_locked_tests::{RedisServer, fenced_write, until_waiter_settled};

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
    until_waiter_settled(&server, lock.key()).await;
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
    let counter: u64 = redis::cmd("GET")
        .arg(format!("{}:fence", lock.key()))
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(counter, *seen.last().unwrap());
}

/// The server's clock in microseconds, as `TIME` gives it.
fn server_micros(conn: &mut redis::Connection) -> u64 {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query(conn).unwrap();
    secs * 1_000_000 + micros
}

/// Every key the crate writes expires, the fencing counter too; and tokens keep growing
/// when the counter is gone (expired, or lost with a restart), because they never fall
/// below the server's clock in microseconds.
#[tokio::test]
async fn fencing_counters_expire_and_tokens_still_grow_without_them() {
    let mut server = RedisServer::start();
    redis_locked::register("fence-expiry", &server.url()).unwrap();
    let mut conn = server.connection();
    let lock = Lock::with_client("fence-expiry", "order:1").unwrap();
    let fence_key = format!("{}:fence", lock.key());

    let before = server_micros(&mut conn);
    let guard = lock.acquire(None).await.unwrap();
    let first = guard.fencing_token();
    assert!(
        first >= before,
        "at or above the server's clock: {first} < {before}"
    );
    let ttl: i64 = redis::cmd("PTTL").arg(&fence_key).query(&mut conn).unwrap();
    assert!(
        ttl > 0 && ttl <= 86_400_000,
        "the counter expires within a day: {ttl}"
    );
    // Handed over inside the process: the handover script sets the expiry too.
    let waiter = {
        let lock = lock.clone();
        tokio::spawn(async move { lock.acquire(None).await.unwrap() })
    };
    until_waiter_settled(&server, lock.key()).await;
    let _: () = redis::cmd("PERSIST")
        .arg(&fence_key)
        .query(&mut conn)
        .unwrap();
    guard.release().await.unwrap();
    let handed = waiter.await.unwrap();
    let second = handed.fencing_token();
    assert!(second > first, "{second} > {first}");
    let ttl: i64 = redis::cmd("PTTL").arg(&fence_key).query(&mut conn).unwrap();
    assert!(
        ttl > 0,
        "the handover refreshed the counter's expiry: {ttl}"
    );
    handed.release().await.unwrap();

    // The counter vanishes (as when it expires, or a restart loses it): the next token is
    // still larger than every earlier one.
    let _: () = redis::cmd("DEL").arg(&fence_key).query(&mut conn).unwrap();
    let guard = lock.acquire(None).await.unwrap();
    assert!(
        guard.fencing_token() > second,
        "{} > {second}",
        guard.fencing_token()
    );
    let third = guard.fencing_token();
    guard.release().await.unwrap();
    // Nothing is left without an expiry.
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
        assert!(ttl > 0, "`{key}` expires: {ttl}");
    }

    // A counter ahead of the clock (tokens given out faster than one a microsecond, or a
    // clock stepped back) goes on from where it is.
    let ahead: u64 = 9_000_000_000_000_000;
    let _: () = redis::cmd("SET")
        .arg(&fence_key)
        .arg(ahead)
        .query(&mut conn)
        .unwrap();
    let guard = lock.acquire(None).await.unwrap();
    assert_eq!(guard.fencing_token(), ahead + 1);
    guard.release().await.unwrap();

    // A restart without persistence forgets the counter along with everything else.
    server.restart();
    let guard = lock.acquire(None).await.unwrap();
    assert!(
        guard.fencing_token() > third,
        "{} > {third}",
        guard.fencing_token()
    );
    guard.release().await.unwrap();
}

/// A restart that restores an older counter (a snapshot taken before the last tokens were
/// given out; AOF with `appendfsync everysec` loses up to a second of writes the same way):
/// the next token is still larger than every earlier one, because each token is floored at
/// the server's clock, not only a fresh counter's first. A counter that only counted up
/// (`INCR`) would give out the lost tokens again.
#[tokio::test]
async fn tokens_still_grow_after_a_restart_restores_an_older_counter() {
    let mut server = RedisServer::start();
    redis_locked::register("fence-restore", &server.url()).unwrap();
    let mut conn = server.connection();
    let lock = Lock::with_client("fence-restore", "ledger").unwrap();
    let fence_key = format!("{}:fence", lock.key());

    let guard = lock.acquire(None).await.unwrap();
    let snapshotted = guard.fencing_token();
    guard.release().await.unwrap();
    // The snapshot the restart will load (`SAVE`: written before it answers).
    let _: () = redis::cmd("SAVE").query(&mut conn).unwrap();
    let mut later = Vec::new();
    for _ in 0..3 {
        let guard = lock.acquire(None).await.unwrap();
        later.push(guard.fencing_token());
        guard.release().await.unwrap();
    }
    let last = *later.last().unwrap();
    assert!(later.iter().all(|&token| token > snapshotted), "{later:?}");

    // Killed, not shut down (which would save again): the restart loads the snapshot.
    server.restart();
    let mut conn = server.connection();
    let restored: u64 = redis::cmd("GET").arg(&fence_key).query(&mut conn).unwrap();
    assert_eq!(
        restored, snapshotted,
        "the counter went back to the snapshot's"
    );
    let guard = lock.acquire(None).await.unwrap();
    assert!(
        guard.fencing_token() > last,
        "{} > {last}",
        guard.fencing_token()
    );
    guard.release().await.unwrap();
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
