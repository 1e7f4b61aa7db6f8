//! Tasks of one process taking a lock in turn: each release hands the lock straight to the
//! next task (HANDOFF), for as long as no other process waits, and another process that
//! waits gets its turn from the handover script itself, even one that never queues in
//! Redis (a shared acquisition).
//!
//! Each client of this test binary has its own instance id, wait table and pub/sub
//! connection: to Redis it is a process of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis_locked::{ClientBuilder, Lock};
use redis_locked_tests::{RedisServer, command_calls, reset_stats};
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
