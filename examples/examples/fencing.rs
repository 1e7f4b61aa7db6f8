//! Why fencing tokens: a holder that stalls past its lease still believes it holds the
//! lock. Here holder A stalls (a sleep stands in for a GC pause or a frozen VM), its lease
//! runs out, holder B takes the lock and writes; then A wakes up and writes too. A store
//! that checks fencing tokens refuses A's stale write. Uses `REDIS_URL` if set, else starts
//! a throwaway redis-server.
//!
//! ```text
//! cargo run -p redis-locked-examples --example fencing
//! ```

use std::time::Duration;

use redis_locked::{Lock, LockError};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _server) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let server = redis_locked_tests::RedisServer::start();
            (server.url(), Some(server))
        }
    };
    redis_locked::init(&url)?;
    let mut store = redis::Client::open(url.as_str())?.get_connection()?;
    let lease = Duration::from_millis(300);
    let lock = Lock::new("fencing-demo")?.expire(lease);

    let a = lock.acquire(None).await?;
    println!("A holds the lock with fencing token {}", a.fencing_token());
    println!(
        "A stalls for {:?}, longer than its {lease:?} lease...",
        lease * 2
    );

    let b_lock = lock.clone();
    let b = tokio::spawn(async move {
        let b = b_lock.acquire(Some(Duration::from_secs(5))).await?;
        println!("B holds the lock with fencing token {}", b.fencing_token());
        Ok::<_, LockError>(b)
    })
    .await??;
    let accepted =
        redis_locked_tests::fenced_write(&mut store, "fencing-demo:value", b.fencing_token(), "B");
    println!(
        "B writes with token {}: {}",
        b.fencing_token(),
        verdict(accepted)
    );
    b.release().await?;

    // A wakes up, unaware that its lease ran out.
    let accepted =
        redis_locked_tests::fenced_write(&mut store, "fencing-demo:value", a.fencing_token(), "A");
    println!(
        "A wakes and writes with token {}: {}",
        a.fencing_token(),
        verdict(accepted)
    );
    match a.release().await {
        Err(e) => println!("A's release: {e}"),
        Ok(()) => println!("A's release: ok"),
    }
    let value: String = redis::cmd("GET")
        .arg("fencing-demo:value")
        .query(&mut store)?;
    println!("the store holds B's write: {value:?}");
    Ok(())
}

fn verdict(accepted: bool) -> &'static str {
    if accepted {
        "accepted"
    } else {
        "REFUSED (stale token)"
    }
}
