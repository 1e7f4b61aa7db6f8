//! `guard = <name>` gives the body the held lock: its fencing token, the lease left,
//! `extend`, whether it is still held, and (async) a future that completes when it is lost.

use std::time::Duration;

use redis_locked::{BlockingLockGuard, LockError, LockGuard, redis_lock};
use redis_locked_tests::RedisServer;

fn key_of(name: &str) -> String {
    format!("lock:{{{name}}}")
}

#[redis_lock(name = "report:{id}", client = "body", expire = 10, guard = lock)]
async fn report(
    id: u32,
    conn: &mut redis::aio::MultiplexedConnection,
) -> Result<(u64, Duration, i64), LockError> {
    let view: &LockGuard = lock;
    assert!(!view.is_lost());
    let lease_left = view.remaining_lease();
    view.extend(Some(Duration::from_secs(40))).await?;
    let pttl: i64 = redis::cmd("PTTL")
        .arg(key_of(&format!("report:{id}")))
        .query_async(conn)
        .await?;
    Ok((view.fencing_token(), lease_left, pttl))
}

#[redis_lock(name = "export", client = "body", expire = 0.6, auto_renew, guard = held)]
async fn export(server: &RedisServer) -> Result<&'static str, LockError> {
    let deleted: i64 = redis::cmd("DEL")
        .arg(key_of("export"))
        .query(&mut server.connection())?;
    assert_eq!(deleted, 1);
    // The body's own choice of what to do when the lock goes.
    tokio::select! {
        () = held.lost() => Ok("stopped: lock lost"),
        () = tokio::time::sleep(Duration::from_secs(10)) => Ok("finished"),
    }
}

#[redis_lock(name = "nightly", client = "body", expire = 10, guard = lock)]
fn nightly(conn: &mut redis::Connection) -> Result<(u64, Duration, i64, bool), LockError> {
    let view: &BlockingLockGuard = lock;
    let lease_left = view.remaining_lease();
    view.extend(Some(Duration::from_secs(40)))?;
    let pttl: i64 = redis::cmd("PTTL").arg(key_of("nightly")).query(conn)?;
    let lost = view.wait_lost(Duration::from_millis(10));
    Ok((view.fencing_token(), lease_left, pttl, lost))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_sees_its_lock() {
    let server = RedisServer::start();
    redis_locked::register("body", &server.url()).unwrap();
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();

    let (fence, lease_left, pttl) = report(7, &mut conn).await.unwrap();
    assert!(fence > 0);
    assert!(lease_left > Duration::from_secs(9) && lease_left <= Duration::from_secs(10));
    assert!(pttl > 39_000, "extended from the body: {pttl} ms");
    let (second, _, _) = report(7, &mut conn).await.unwrap();
    assert!(second > fence, "the next acquisition of the name");

    assert_eq!(export(&server).await.unwrap(), "stopped: lock lost");

    let url = server.url();
    let (fence, lease_left, pttl, lost) = tokio::task::spawn_blocking(move || {
        let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
        nightly(&mut conn)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(fence > 0);
    assert!(lease_left > Duration::from_secs(9));
    assert!(pttl > 39_000, "{pttl}");
    assert!(!lost);
}
