//! Tasks of one process taking a lock in turn: each release hands the lock straight to the
//! next task (HANDOFF), for as long as no other process waits, and another process that
//! waits gets its turn from the handover script itself, even one that never queues in
//! Redis (a shared acquisition), and also while the first process's pub/sub connection is
//! lost.
//!
//! Each client of this test binary has its own instance id, wait table and pub/sub
//! connection: to Redis it is a process of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis_locked::{ClientBuilder, Lock};
use redis_locked_tests::{RedisServer, command_calls, connection_id, connections_of, reset_stats};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const LEASE: Duration = Duration::from_secs(30);
/// How long each task holds the lock: long enough for the other task to be waiting when
/// it is released.
const HOLD: Duration = Duration::from_millis(2);

fn lock(client: &str, name: &str) -> Lock {
    Lock::with_client(client, name).unwrap().expire(LEASE)
}

/// Two tasks of `client` taking `name` in turn, `rounds` times each or until `stop`; each
/// acquisition is reported on `taken`.
fn two_tasks_in_turn(
    client: &str,
    name: &str,
    rounds: usize,
    stop: Arc<AtomicBool>,
    taken: mpsc::UnboundedSender<()>,
) -> Vec<JoinHandle<()>> {
    (0..2)
        .map(|_| {
            let (lock, stop, taken) = (lock(client, name), stop.clone(), taken.clone());
            tokio::spawn(async move {
                for _ in 0..rounds {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let guard = lock.acquire(None).await.unwrap();
                    let _ = taken.send(());
                    tokio::time::sleep(HOLD).await;
                    guard.release().await.unwrap();
                }
            })
        })
        .collect()
}

/// A lock released while another task of the process waits for it is handed to that task,
/// every time: the lock is never freed (no `DEL`) nor announced (no `PUBLISH`) between the
/// first acquisition and the last release. (A limit of four handovers in a row, which
/// freed and announced it every fifth release, made 20 of these 100.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handovers_inside_a_process_go_on_while_no_other_process_waits() {
    let server = RedisServer::start();
    ClientBuilder::new(server.url())
        .register("stream-alone")
        .unwrap();
    let name = "stream-alone";
    // The scripts loaded, and the process subscribed as a waiter would be.
    let (taken, mut reports) = mpsc::unbounded_channel();
    for task in two_tasks_in_turn("stream-alone", name, 2, Arc::default(), taken.clone()) {
        task.await.unwrap();
    }
    reset_stats(&server);

    for task in two_tasks_in_turn("stream-alone", name, 50, Arc::default(), taken) {
        task.await.unwrap();
    }
    let mut acquisitions = 0;
    while reports.recv().await.is_some() {
        acquisitions += 1;
    }
    assert_eq!(acquisitions, 4 + 100);
    let calls = command_calls(&server);
    let freed = calls.get("del").copied().unwrap_or(0);
    let announced = calls.get("publish").copied().unwrap_or(0);
    // The last release frees and announces it; so does one whose turn-mate had not come
    // back to wait yet (a task held up for a whole `HOLD` on a loaded machine): rarely,
    // far from one in five.
    assert!(
        freed < 10 && announced < 10,
        "of 100 releases, {freed} freed the lock and {announced} announced it: {calls:?}"
    );
}

/// A stream of handovers inside process `a` stops for process `b`, whose shared
/// acquisition never queues in Redis: the handover script sees a subscriber to the key's
/// announcements that is not `a`'s and frees the lock for everyone, so `b` gets its turn
/// while `a`'s tasks still want the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_waits_without_queuing_gets_its_turn_from_a_stream_of_handovers() {
    let server = RedisServer::start();
    for client in ["stream-a", "stream-b"] {
        ClientBuilder::new(server.url()).register(client).unwrap();
    }
    let name = "stream-shared";
    let stop = Arc::new(AtomicBool::new(false));
    let (taken, mut reports) = mpsc::unbounded_channel();
    let stream = two_tasks_in_turn("stream-a", name, usize::MAX, stop.clone(), taken);
    // The stream under way: handovers between `a`'s two tasks.
    for _ in 0..20 {
        reports.recv().await.unwrap();
    }

    let reader = Lock::with_client("stream-b", name).unwrap().shared();
    let read = reader.acquire(Some(Duration::from_secs(10))).await;
    let still_wanted = !stop.swap(true, Ordering::Relaxed);
    let queued: usize = redis::cmd("LLEN")
        .arg(format!("lock:{{{name}}}:queue"))
        .query(&mut server.connection())
        .unwrap();
    let guard = read.expect("the reader was starved by the handovers");
    assert!(still_wanted);
    assert_eq!(queued, 0, "a shared acquisition does not queue in Redis");
    guard.release().await.unwrap();
    for task in stream {
        task.await.unwrap();
    }
}

/// Subscribers of `channel`, as the server counts them.
fn subscribers(admin: &mut redis::Connection, channel: &str) -> u64 {
    let (_, count): (String, u64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query(admin)
        .unwrap();
    count
}

/// Until the server counts `count` subscribers of `channel` (a subscription is made on the
/// client's background thread, and nothing tells the test when it took effect).
async fn until_subscribers(admin: &mut redis::Connection, channel: &str, count: u64) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while subscribers(admin, channel) != count {
        assert!(
            Instant::now() < give_up,
            "{channel} never had {count} subscribers"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The ids of `client`'s pub/sub connections (those subscribed to something).
fn pubsub_connections(admin: &mut redis::Connection, client: &str) -> Vec<String> {
    connections_of(admin, client)
        .iter()
        .filter(|line| !line.contains(" sub=0 "))
        .map(|line| connection_id(line))
        .collect()
}

/// Process `a`, subscribed to a lock's announcements, has its pub/sub connection killed during
/// a stream of handovers between its two tasks, and the server takes no new connection, so `a` cannot make it again. Meanwhile
/// `a` hears nothing and counts itself subscribed to nothing: its handovers see `b`'s
/// subscription as another process waiting (a shared acquisition, which never queues in
/// Redis) and free the lock for it. While `a` still counted its lost subscription as its
/// own, every handover took `b`'s for `a`'s, and `b` waited until `a` could reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_whose_pubsub_connection_is_lost_does_not_pass_over_another() {
    let server = RedisServer::start();
    // One connection each for requests: none is opened once new ones are refused.
    for client in ["deaf-a", "deaf-b"] {
        ClientBuilder::new(server.url())
            .max_connections(1)
            .register(client)
            .unwrap();
    }
    let mut admin = server.connection();
    // `b`'s pub/sub connection made before new ones are refused: `b` waits for a lock
    // held from outside.
    let _: () = redis::cmd("SET")
        .arg(&["lock:{deaf-blocker}", "outside", "PX", "60000"][..])
        .query(&mut admin)
        .unwrap();
    let blocked = tokio::spawn(async {
        let lock = Lock::with_client("deaf-b", "deaf-blocker").unwrap();
        let _ = lock.acquire(Some(Duration::from_secs(60))).await;
    });
    until_subscribers(&mut admin, "lock:{deaf-blocker}", 1).await;

    // `a` subscribes to the lock's announcements when it finds the lock held by another
    // process: `b` holds it as the stream begins.
    let name = "deaf-shared";
    let first = lock("deaf-b", name).acquire(None).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (taken, mut reports) = mpsc::unbounded_channel();
    let stream = two_tasks_in_turn("deaf-a", name, usize::MAX, stop.clone(), taken);
    until_subscribers(&mut admin, "lock:{deaf-shared}", 1).await;
    first.release().await.unwrap();
    for _ in 0..20 {
        reports.recv().await.unwrap();
    }
    let clients: String = redis::cmd("INFO").arg("clients").query(&mut admin).unwrap();
    let connected: u64 = clients
        .lines()
        .find_map(|line| line.strip_prefix("connected_clients:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // As many as stay connected once `a`'s pub/sub connection is gone.
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "maxclients", &(connected - 1).to_string()][..])
        .query(&mut admin)
        .unwrap();
    let lost = pubsub_connections(&mut admin, "deaf-a");
    assert_eq!(lost.len(), 1, "a's pub/sub connection: {lost:?}");
    let _: i64 = redis::cmd("CLIENT")
        .arg(&["KILL", "ID", &lost[0]][..])
        .query(&mut admin)
        .unwrap();

    let reader = Lock::with_client("deaf-b", name).unwrap().shared();
    let read = reader.acquire(Some(Duration::from_secs(10))).await;
    let still_wanted = !stop.swap(true, Ordering::Relaxed);
    let reconnected = pubsub_connections(&mut admin, "deaf-a");
    let guard = read.expect("the reader was passed over while a could not hear");
    assert!(still_wanted);
    assert!(
        reconnected.is_empty(),
        "a was still without its pub/sub connection: {reconnected:?}"
    );
    guard.release().await.unwrap();
    // `a` may wait for the lock now, deaf to its release: connected again, it is poked.
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "maxclients", "10000"][..])
        .query(&mut admin)
        .unwrap();
    for task in stream {
        task.await.unwrap();
    }
    blocked.abort();
}
