//! Waiting processes queue in Redis, and a release hands the lock to the first of them that
//! still listens, telling only that one: no other waiting process wakes, the order is the
//! order they queued in, and a queued process that died or an acquisition that gave up
//! does not hold the lock up.
//!
//! Each client of this test binary has its own instance id, wait table and pub/sub
//! connection, so to Redis it is a process of its own; the dead waiter is a real one (the
//! `contender` binary, killed with SIGKILL).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis_locked::{ClientBuilder, Lock};
use redis_locked_tests::{
    RedisCluster, RedisServer, scripts_run, until_no_script_for, wait_for_exactly_subscribers,
    wait_for_queue,
};

const LEASE: Duration = Duration::from_secs(30);

fn lock(client: &str, name: &str) -> Lock {
    Lock::with_client(client, name).unwrap().expire(LEASE)
}

fn register(server: &RedisServer, clients: &[&str]) {
    for client in clients {
        redis_locked::register(client, &server.url()).unwrap();
    }
}

/// Releases `holder` and asserts that `next`, a task that waits for the lock and returns when
/// it got it, got it at once: well within the 30 s lease that a lock handed to a waiter
/// that is gone would keep.
async fn released_to_next_at_once(
    holder: redis_locked::LockGuard,
    next: tokio::task::JoinHandle<(Instant, redis_locked::LockGuard)>,
) {
    let released = Instant::now();
    holder.release().await.unwrap();
    let (acquired, guard) = next.await.unwrap();
    let after = acquired.duration_since(released);
    assert!(
        after < Duration::from_secs(2),
        "the next waiter got the lock {after:?} after the release"
    );
    guard.release().await.unwrap();
}

/// Three processes queue behind a holder on `server` (the one server, or the master of the
/// lock's shard); each release hands the lock to the next in the order they queued, and
/// nobody else makes an attempt: from the holder's release on, the server runs four
/// scripts in all, the four releases. With every waiting process woken by each release
/// instead, the two still waiting would each try again after it. `register` registers a
/// client of the kind under test under a name.
async fn handed_on_in_queue_order(server: &RedisServer, register: impl Fn(&str), prefix: &str) {
    let clients = ["a", "b", "c", "d"].map(|c| format!("{prefix}-{c}"));
    for client in &clients {
        register(client);
    }
    let holder = lock(&clients[0], "fifo").acquire(None).await.unwrap();
    let first_fence = holder.fencing_token();

    let (acquired, mut order) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for (queued, client) in clients[1..].iter().enumerate() {
        let (lock, acquired) = (lock(client, "fifo"), acquired.clone());
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let guard = lock.acquire(None).await.unwrap();
            acquired.send((client, guard.fencing_token())).unwrap();
            guard.release().await.unwrap();
        }));
        // One at a time, so that they queue in this order.
        wait_for_queue(server, "lock:{fifo}:queue", queued + 1).await;
    }
    until_no_script_for(server, Duration::from_millis(100)).await;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut server.connection())
        .unwrap();

    holder.release().await.unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    drop(acquired);
    let mut got = Vec::new();
    while let Some(next) = order.recv().await {
        got.push(next);
    }
    let order: Vec<&str> = got.iter().map(|(client, _)| client.as_str()).collect();
    assert_eq!(order, clients[1..], "handed on in the order they queued");
    let fences: Vec<u64> = got.iter().map(|(_, fence)| *fence).collect();
    assert!(
        fences.windows(2).all(|w| w[0] < w[1]) && fences[0] > first_fence,
        "fencing tokens grow through the handovers: {first_fence} then {fences:?}"
    );
    assert_eq!(
        scripts_run(server),
        4,
        "the four releases only: a waiting process made an attempt"
    );
}

#[tokio::test]
async fn a_release_hands_the_lock_to_the_first_queued_process_and_wakes_no_other() {
    let server = RedisServer::start();
    let url = server.url();
    handed_on_in_queue_order(
        &server,
        |client| redis_locked::register(client, &url).unwrap(),
        "fifo",
    )
    .await;
}

/// The same on a Redis Cluster, where the queue, the announcement and each process's
/// inbox live on the lock's shard (`SPUBLISH`).
#[tokio::test]
async fn on_a_cluster_a_release_hands_the_lock_to_the_first_queued_process() {
    let cluster = RedisCluster::start(3, 0);
    let seeds = cluster.seed_urls();
    handed_on_in_queue_order(
        cluster.master_of("lock:{fifo}"),
        |client| {
            ClientBuilder::cluster(seeds.clone())
                .register(client)
                .unwrap()
        },
        "cluster-fifo",
    )
    .await;
}

/// A process queued for the lock is killed while it waits; the release passes it over (its
/// inbox has no listener) and hands the lock to the next process at once, not after the
/// 30 s lease the dead one would have been given.
#[tokio::test]
async fn a_queued_process_that_died_is_passed_over() {
    let server = RedisServer::start();
    register(&server, &["passover-a", "passover-b"]);
    let holder = lock("passover-a", "passover").acquire(None).await.unwrap();
    let mut dead = Command::new(env!("CARGO_BIN_EXE_contender"))
        .args(["take", &server.url(), "passover"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_queue(&server, "lock:{passover}:queue", 1).await;
    let next = lock("passover-b", "passover");
    let next = tokio::spawn(async move {
        let guard = next.acquire(None).await.unwrap();
        (Instant::now(), guard)
    });
    wait_for_queue(&server, "lock:{passover}:queue", 2).await;
    dead.kill().unwrap();
    dead.wait().unwrap();
    // The server closed the dead process's connections: only ours listens now.
    wait_for_exactly_subscribers(&server, "lock:{passover}", 1).await;

    released_to_next_at_once(holder, next).await;
}

/// A queued acquisition is cancelled (its future dropped) just before the holder releases.
/// Its entry is taken out of the queue in the background, in the same script that frees a
/// lock handed to it meanwhile; whichever comes first, the acquisition queued behind it
/// gets the lock at once, and the queue is left empty.
#[tokio::test]
async fn a_queued_acquisition_that_is_cancelled_does_not_hold_the_lock_up() {
    let server = RedisServer::start();
    register(&server, &["cancel-a", "cancel-b", "cancel-c"]);
    let holder = lock("cancel-a", "cancel").acquire(None).await.unwrap();
    let quitter = lock("cancel-b", "cancel");
    let quitter = tokio::spawn(async move { quitter.acquire(None).await });
    wait_for_queue(&server, "lock:{cancel}:queue", 1).await;
    let next = lock("cancel-c", "cancel");
    let next = tokio::spawn(async move {
        let guard = next.acquire(None).await.unwrap();
        (Instant::now(), guard)
    });
    wait_for_queue(&server, "lock:{cancel}:queue", 2).await;

    quitter.abort();
    assert!(quitter.await.unwrap_err().is_cancelled());
    released_to_next_at_once(holder, next).await;
    wait_for_queue(&server, "lock:{cancel}:queue", 0).await;
}

/// An acquisition of the holder's own client gives up while queued, and the holder
/// releases at once: the lock is free afterwards. The acquisition left the queue in its
/// last attempt before it returned, so the release cannot hand the lock to it (which would
/// leave it held until a withdrawal in the background).
#[tokio::test]
async fn a_release_hands_nothing_to_an_acquisition_of_its_own_client_that_gave_up() {
    let server = RedisServer::start();
    register(&server, &["own-entry"]);
    let lock = lock("own-entry", "own-entry");
    let holder = lock.acquire(None).await.unwrap();
    let quitter = {
        let lock = lock.clone();
        tokio::spawn(async move { lock.acquire(Some(Duration::from_millis(300))).await })
    };
    wait_for_queue(&server, "lock:{own-entry}:queue", 1).await;
    assert!(matches!(
        quitter.await.unwrap(),
        Err(redis_locked::LockError::Timeout { .. })
    ));
    holder.release().await.unwrap();
    assert!(
        !lock.is_locked().await.unwrap(),
        "handed to the acquisition that left"
    );
}

/// A queued acquisition that runs out of time leaves the queue before it returns (its last
/// attempt takes its entry out in the same script), so a release right after cannot hand
/// the lock to it: the queue is empty when `Timeout` comes back, and the lock is free after
/// the holder's release.
#[tokio::test]
async fn a_queued_acquisition_that_times_out_has_left_the_queue_when_it_returns() {
    let server = RedisServer::start();
    register(&server, &["leave-a", "leave-b"]);
    let holder = lock("leave-a", "leave").acquire(None).await.unwrap();
    let quitter = lock("leave-b", "leave");
    let quitter =
        tokio::spawn(async move { quitter.acquire(Some(Duration::from_millis(300))).await });
    wait_for_queue(&server, "lock:{leave}:queue", 1).await;
    assert!(matches!(
        quitter.await.unwrap(),
        Err(redis_locked::LockError::Timeout { .. })
    ));
    let queued: usize = redis::cmd("LLEN")
        .arg("lock:{leave}:queue")
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(queued, 0, "still queued when it returned");
    holder.release().await.unwrap();
    assert!(!lock("leave-a", "leave").is_locked().await.unwrap());
}

/// At its deadline a queued acquisition sends one request, the last attempt that leaves
/// the queue (and would take the lock were it free), not an ordinary attempt first.
/// Counted from 200 ms before the deadline: a queued waiter may also look once more when
/// the subscription of its inbox is confirmed (a grant sent before it would be missed), and
/// on a loaded machine that confirmation can come after it is seen queued.
#[tokio::test]
async fn a_queued_acquisition_sends_one_request_at_its_deadline() {
    let server = RedisServer::start();
    register(&server, &["deadline-a", "deadline-b"]);
    let holder = lock("deadline-a", "deadline").acquire(None).await.unwrap();
    let quitter = lock("deadline-b", "deadline");
    let timeout = Duration::from_millis(600);
    let started = tokio::time::Instant::now();
    let quitter = tokio::spawn(async move { quitter.acquire(Some(timeout)).await });
    wait_for_queue(&server, "lock:{deadline}:queue", 1).await;
    tokio::time::sleep_until(started + timeout - Duration::from_millis(200)).await;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut server.connection())
        .unwrap();
    assert!(matches!(
        quitter.await.unwrap(),
        Err(redis_locked::LockError::Timeout { .. })
    ));
    assert_eq!(scripts_run(&server), 1);
    wait_for_queue(&server, "lock:{deadline}:queue", 0).await;
    holder.release().await.unwrap();
}
