//! Locks on a master managed by Redis Sentinel: the whole core works through a client
//! registered with `ClientBuilder::sentinel`, and a forced failover while locks are taken
//! in a loop leaves every caller working on the new master, none hung.
//!
//! What a failover may lose: replication is asynchronous, and after a *forced* failover the
//! old master keeps accepting writes until the sentinels turn it into a replica (about 4 s
//! here; see `SentinelSetup`). A lock taken on the old master in that window, or taken
//! just before the promotion and not yet replicated, does not exist on the new master:
//! another caller may take it there while its holder still thinks it holds it, and the
//! holder's release then reports `Expired` (or fails, if the old master is already gone).
//! So these tests check progress and bounds around a failover, not mutual exclusion.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis_locked::{ClientBuilder, Lock, LockError, redis_lock};
use redis_locked_tests::{SentinelSetup, wait_for_subscribers};

fn register(setup: &SentinelSetup, client: &str) {
    ClientBuilder::sentinel(setup.master_name(), setup.sentinel_urls())
        .register(client)
        .unwrap();
}

/// Whether `key` exists on the node the sentinels report as master.
fn on_master(setup: &SentinelSetup, key: &str) -> bool {
    let n: i64 = redis::cmd("EXISTS")
        .arg(key)
        .query(&mut setup.master().connection())
        .unwrap();
    n == 1
}

#[redis_lock(
    name = "macro:{id}",
    client = "sentinel-basics",
    expire = 5,
    timeout = 0
)]
fn locked_sync(id: u32) -> Result<u32, LockError> {
    Ok(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_works_through_a_sentinel_client() {
    let setup = SentinelSetup::start("basics");
    register(&setup, "sentinel-basics");
    redis_locked_tests::core_checks::renewal_release_and_timeout("sentinel-basics").await;

    // Async: acquire, is_locked, a timed-out rival, release, reset.
    let lock = Lock::with_client("sentinel-basics", "a")
        .unwrap()
        .expire(Duration::from_secs(10));
    let guard = lock.acquire(Some(Duration::from_secs(5))).await.unwrap();
    assert!(lock.is_locked().await.unwrap());
    assert!(on_master(&setup, lock.key()));
    let rival = lock.acquire(Some(Duration::from_millis(200))).await;
    assert!(matches!(rival, Err(LockError::Timeout { .. })), "{rival:?}");
    assert!(lock.try_acquire().await.unwrap().is_none());
    guard.release().await.unwrap();
    assert!(!lock.is_locked().await.unwrap());
    assert!(!on_master(&setup, lock.key()));

    let _held = lock.acquire(None).await.unwrap();
    assert!(lock.reset().await.unwrap());
    assert!(!lock.is_locked().await.unwrap());

    // Sync, on a thread of its own.
    tokio::task::spawn_blocking(|| {
        let lock = Lock::with_client("sentinel-basics", "b")
            .unwrap()
            .expire(Duration::from_secs(10));
        let guard = lock.acquire_blocking(Some(Duration::from_secs(5))).unwrap();
        assert!(lock.is_locked_blocking().unwrap());
        assert!(lock.try_acquire_blocking().unwrap().is_none());
        let rival = lock.acquire_blocking(Some(Duration::from_millis(200)));
        assert!(matches!(rival, Err(LockError::Timeout { .. })), "{rival:?}");
        guard.release().unwrap();
        assert!(!lock.is_locked_blocking().unwrap());
        assert_eq!(locked_sync(7).unwrap(), 7);
        let held = lock.acquire_blocking(None).unwrap();
        assert!(lock.reset_blocking().unwrap());
        assert!(!lock.is_locked_blocking().unwrap());
        drop(held);
    })
    .await
    .unwrap();

    // reset_all frees every lock of the client.
    let c = Lock::with_client("sentinel-basics", "c").unwrap();
    let _c = c.acquire(None).await.unwrap();
    let reset = redis_locked::reset_all(Some("sentinel-basics"))
        .await
        .unwrap();
    assert!(reset >= 1, "{reset}");
    assert!(!c.is_locked().await.unwrap());
    assert!(!on_master(&setup, c.key()));
}

#[tokio::test]
async fn unreachable_sentinels_are_a_connect_error_after_the_outage_timeout() {
    ClientBuilder::sentinel("nowhere", ["redis://127.0.0.1:1"])
        .outage_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(200))
        .register("sentinel-nowhere")
        .unwrap();
    let lock = Lock::with_client("sentinel-nowhere", "x").unwrap();
    let start = Instant::now();
    let e = lock
        .acquire(Some(Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert!(matches!(e, LockError::Connect { .. }), "{e:?}");
    assert!(e.to_string().contains("nowhere"), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );

    let bad = ClientBuilder::sentinel("m", Vec::<String>::new()).register("sentinel-none");
    assert!(
        matches!(bad, Err(LockError::InvalidConfig { .. })),
        "{bad:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_wakes_a_waiter_through_pubsub() {
    let setup = SentinelSetup::start("wake");
    register(&setup, "sentinel-wake-holder");
    register(&setup, "sentinel-wake-waiter");
    woken_by_release(&setup, "sentinel-wake-holder", "sentinel-wake-waiter", "w").await;
}

/// A holder on one client takes `name` with a 30 s lease; a waiter on another client (a
/// separate subscriber, as another process would have) waits; the holder releases. Asserts
/// the waiter subscribed on the current master and was woken within 1 s.
async fn woken_by_release(setup: &SentinelSetup, holder: &str, waiter: &str, name: &str) {
    let held = Lock::with_client(holder, name)
        .unwrap()
        .expire(Duration::from_secs(30));
    let guard = held.acquire(Some(Duration::from_secs(5))).await.unwrap();
    let lock = Lock::with_client(waiter, name)
        .unwrap()
        .expire(Duration::from_secs(30));
    let waiting = tokio::spawn(async move {
        let guard = lock.acquire(Some(Duration::from_secs(20))).await;
        (Instant::now(), guard)
    });
    wait_for_subscribers(setup.master(), held.key(), 1).await;
    let released = Instant::now();
    guard.release().await.unwrap();
    let (acquired, guard) = waiting.await.unwrap();
    let guard = guard.unwrap();
    let after = acquired.duration_since(released);
    assert!(
        after < Duration::from_secs(1),
        "woken {after:?} after the release; the lease was 30 s"
    );
    guard.release().await.unwrap();
}

/// Lock cycles of one caller: when each ended, and the longest acquisition.
#[derive(Default)]
struct Progress {
    done: Mutex<Vec<Instant>>,
    longest: Mutex<Duration>,
    release_errors: AtomicU64,
}

impl Progress {
    fn record(&self, took: Duration, released: Result<(), LockError>) {
        if let Err(e) = released {
            // The lock was taken on the old master and is not on the new one (`Expired`),
            // or the old master dropped the connection (a connection error; after the
            // release was sent, its outcome unknown: `Io`, naming the lock).
            assert!(
                matches!(e, LockError::Expired { .. } | LockError::Connect { .. })
                    || matches!(e, LockError::Redis { .. })
                    || matches!(&e, LockError::Io { lock: Some(_), .. }),
                "{e:?}"
            );
            self.release_errors.fetch_add(1, Ordering::Relaxed);
        }
        let mut longest = self.longest.lock().unwrap();
        *longest = (*longest).max(took);
        self.done.lock().unwrap().push(Instant::now());
    }

    fn cycles_since(&self, since: Instant) -> usize {
        self.done
            .lock()
            .unwrap()
            .iter()
            .filter(|t| **t > since)
            .count()
    }
}

/// The bound on any one acquisition around a failover.
const CALL_BOUND: Duration = Duration::from_secs(10);
/// Cycles every caller must complete once the old master is a replica.
const CYCLES_AFTER: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_follow_a_forced_failover_to_the_new_master() {
    let mut setup = SentinelSetup::start("failover");
    register(&setup, "sentinel-failover");
    register(&setup, "sentinel-failover-other");
    let lease = Duration::from_secs(2);
    let stop = Arc::new(AtomicBool::new(false));

    let mut tasks = Vec::new();
    let mut progress = Vec::new();
    for _ in 0..3 {
        let p = Arc::new(Progress::default());
        progress.push(p.clone());
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let lock = Lock::with_client("sentinel-failover", "loop")
                .unwrap()
                .expire(lease);
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let guard = lock.acquire(Some(CALL_BOUND)).await.unwrap_or_else(|e| {
                    panic!("no lock within {CALL_BOUND:?} ({:?}): {e}", start.elapsed())
                });
                let took = start.elapsed();
                tokio::time::sleep(Duration::from_millis(2)).await;
                p.record(took, guard.release().await);
            }
        }));
    }
    let p = Arc::new(Progress::default());
    progress.push(p.clone());
    let thread = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let lock = Lock::with_client("sentinel-failover", "loop")
                .unwrap()
                .expire(lease);
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let guard = lock.acquire_blocking(Some(CALL_BOUND)).unwrap_or_else(|e| {
                    panic!("no lock within {CALL_BOUND:?} ({:?}): {e}", start.elapsed())
                });
                let took = start.elapsed();
                std::thread::sleep(Duration::from_millis(2));
                p.record(took, guard.release());
            }
        })
    };

    let every_caller = |since: Instant, n: usize| {
        let progress = progress.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let counts: Vec<usize> = progress.iter().map(|p| p.cycles_since(since)).collect();
                if counts.iter().all(|c| *c >= n) {
                    return since.elapsed();
                }
                assert!(
                    Instant::now() < deadline,
                    "callers stalled: cycles since {counts:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    every_caller(Instant::now(), 5).await;

    let old = setup.master().port();
    let new = setup.replica().port();
    let failover = tokio::task::block_in_place(|| setup.failover());
    eprintln!("forced failover: the sentinels report the new master after {failover:?}");
    // Until the old master is made a replica, our callers may still work on it; once it
    // is, every lock cycle must go to the new master.
    let took = tokio::task::block_in_place(|| setup.wait_until_ready());
    eprintln!("old master {old} a replica of {new} {took:?} later");
    let ready = Instant::now();
    let recovered = every_caller(ready, 1).await;
    eprintln!("every caller completed a cycle {recovered:?} after that");
    let recovered = every_caller(ready, CYCLES_AFTER).await;
    eprintln!("every caller completed {CYCLES_AFTER} cycles {recovered:?} after that");

    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("a caller task panicked");
    }
    thread.join().expect("the caller thread panicked");
    for (i, p) in progress.iter().enumerate() {
        let longest = *p.longest.lock().unwrap();
        eprintln!(
            "caller {i}: {} cycles, the longest acquisition {longest:?}, {} release errors",
            p.done.lock().unwrap().len(),
            p.release_errors.load(Ordering::Relaxed)
        );
        assert!(longest < CALL_BOUND, "caller {i} waited {longest:?}");
    }

    // The client talks to the new master: a lock it holds is there, and it says so.
    assert_eq!(setup.master().port(), new);
    let lock = Lock::with_client("sentinel-failover", "after").unwrap();
    let guard = lock.acquire(Some(Duration::from_secs(5))).await.unwrap();
    assert!(lock.is_locked().await.unwrap());
    assert!(on_master(&setup, lock.key()));
    guard.release().await.unwrap();
    assert!(!on_master(&setup, lock.key()));

    // And waiters are subscribed there: a release wakes them through pub/sub.
    woken_by_release(
        &setup,
        "sentinel-failover-other",
        "sentinel-failover",
        "after-wake",
    )
    .await;
}
