//! Every connection the crate makes names itself (`CLIENT SETNAME
//! redis-locked:<client>:<pid>`), so an operator can tell them apart in `CLIENT LIST`:
//! the async and the blocking pools' connections and the pub/sub connection.

use std::time::Duration;

use redis_locked::Lock;
use redis_locked_tests::{RedisServer, wait_for_subscribers};

/// The `CLIENT LIST` lines of the connections named `name`.
fn named(server: &RedisServer, name: &str) -> Vec<String> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut server.connection())
        .unwrap();
    list.lines()
        .filter(|line| line.split(' ').any(|field| field == format!("name={name}")))
        .map(String::from)
        .collect()
}

/// How many of `lines` are (or are not) subscribed to channels.
fn count(lines: &[String], subscribed: bool) -> usize {
    lines
        .iter()
        .filter(|line| {
            line.split(' ')
                .filter_map(|f| f.strip_prefix("sub="))
                .any(|n| (n != "0") == subscribed)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_is_named_after_its_client_and_process() {
    let server = RedisServer::start();
    // Spaces are not allowed in a connection name: they become `_`.
    redis_locked::register("ops names", &server.url()).unwrap();
    let name = format!("redis-locked:ops_names:{}", std::process::id());
    let lock = Lock::with_client("ops names", "job")
        .unwrap()
        .expire(Duration::from_secs(30));

    // An async caller: a connection of this runtime's pool.
    let guard = lock.acquire(None).await.unwrap();
    let async_only = named(&server, &name);
    assert!(count(&async_only, false) >= 1, "{async_only:?}");
    assert_eq!(count(&async_only, true), 0, "{async_only:?}");

    // A waiter: the process's pub/sub connection subscribes to the lock's channel.
    let waiter = {
        let lock = lock.clone();
        tokio::spawn(async move { lock.acquire(None).await })
    };
    wait_for_subscribers(&server, lock.key(), 1).await;
    assert_eq!(count(&named(&server, &name), true), 1);
    guard.release().await.unwrap();
    waiter.await.unwrap().unwrap().release().await.unwrap();

    // A blocking caller: the blocking pool opens a connection of its own.
    let before = count(&named(&server, &name), false);
    tokio::task::spawn_blocking(move || lock.acquire_blocking(None).unwrap().release().unwrap())
        .await
        .unwrap();
    let all = named(&server, &name);
    assert_eq!(count(&all, false), before + 1, "{all:?}");
}
