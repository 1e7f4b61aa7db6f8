//! The in-memory backend (`ClientBuilder::in_memory()`) without any redis-server: mutual
//! exclusion, leases that expire, waiters woken by a release, fencing tokens, the attribute,
//! separate stores, listing and resetting.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis_locked::{ClientBuilder, Lock, LockError, list_locks, redis_lock, reset_all};

const TASKS: u64 = 16;
const THREADS: u64 = 2;
const ITERATIONS: u64 = 200;

/// A deliberately non-atomic increment: a read, a yield, a write of the read value plus one.
#[redis_lock(name = "counter", client = "memory-mutex", expire = 10)]
async fn increment_async(counter: &AtomicU64) -> Result<(), LockError> {
    let value = counter.load(Ordering::SeqCst);
    tokio::task::yield_now().await;
    counter.store(value + 1, Ordering::SeqCst);
    Ok(())
}

#[redis_lock(name = "counter", client = "memory-mutex", expire = 10)]
fn increment_sync(counter: &AtomicU64) -> Result<(), LockError> {
    let value = counter.load(Ordering::SeqCst);
    std::thread::yield_now();
    counter.store(value + 1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_and_threads_never_overlap_on_an_in_memory_client() {
    ClientBuilder::in_memory().register("memory-mutex").unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let counter = counter.clone();
            tokio::spawn(async move {
                for _ in 0..ITERATIONS {
                    increment_async(&counter).await.unwrap();
                }
            })
        })
        .collect();
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let counter = counter.clone();
            std::thread::spawn(move || {
                for _ in 0..ITERATIONS {
                    increment_sync(&counter).unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for thread in threads {
        thread.join().unwrap();
    }
    // A lost update (two holders at once) would leave the count short.
    assert_eq!(
        counter.load(Ordering::SeqCst),
        (TASKS + THREADS) * ITERATIONS
    );
}

#[tokio::test]
async fn a_holder_that_stops_renewing_loses_the_lock_when_its_lease_ends() {
    let client = ClientBuilder::in_memory().build().unwrap();
    let lease = Duration::from_millis(150);
    let lock = client.lock("expiring").unwrap().expire(lease);
    let holder = lock.acquire(None).await.unwrap();
    let start = Instant::now();
    // Nobody releases: the waiter gets the lock when the holder's lease ends.
    let next = lock.acquire(Some(Duration::from_secs(30))).await.unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= lease - Duration::from_millis(20),
        "the lock was free after {waited:?}, before the holder's lease of {lease:?} ended"
    );
    assert!(next.fencing_token() > holder.fencing_token());
    assert_eq!(lock.owner().await.unwrap().as_deref(), Some(next.token()));
    let late = holder.release().await.unwrap_err();
    assert!(
        matches!(late, LockError::Lost { .. } | LockError::Expired { .. }),
        "{late:?}"
    );
    next.release().await.unwrap();
    assert!(!lock.is_locked().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_is_woken_by_the_release_not_by_the_lease() {
    let client = ClientBuilder::in_memory().build().unwrap();
    let lock = client
        .lock("woken")
        .unwrap()
        .expire(Duration::from_secs(60));
    let holder = lock.acquire(None).await.unwrap();
    let waiter = tokio::spawn({
        let lock = lock.clone();
        async move { lock.acquire(Some(Duration::from_secs(60))).await }
    });
    // The waiter has found the lock held and waits for it once the store counts it.
    let waiting = async {
        while lock.info().await.unwrap().unwrap().waiting_processes == 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the waiter subscribes to the lock's announcements");
    let released = Instant::now();
    let holder_fence = holder.fencing_token();
    holder.release().await.unwrap();
    let next = waiter.await.unwrap().unwrap();
    // The lease had a minute to run: only the release can have woken the waiter.
    assert!(released.elapsed() < Duration::from_secs(5));
    assert!(next.fencing_token() > holder_fence);
    next.release().await.unwrap();
}

#[tokio::test]
async fn fencing_tokens_increase_across_acquisitions_handovers_and_resets() {
    let client = ClientBuilder::in_memory().build().unwrap();
    let lock = client
        .lock("fenced")
        .unwrap()
        .expire(Duration::from_secs(60));
    let mut last = 0;
    for round in 0..20 {
        let guard = lock.acquire(None).await.unwrap();
        assert!(guard.fencing_token() > last, "round {round}");
        last = guard.fencing_token();
        let info = lock.info().await.unwrap().unwrap();
        assert_eq!(info.fencing_token, last);
        assert_eq!(info.owner, guard.token());
        if round % 3 == 0 {
            // A reset frees the lock; the counter stays.
            assert!(lock.reset().await.unwrap());
            assert!(matches!(
                guard.release().await,
                Err(LockError::Expired { .. })
            ));
        } else {
            guard.release().await.unwrap();
        }
    }
    // Handed from one task to the next while they queue.
    let holder = lock.acquire(None).await.unwrap();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let lock = lock.clone();
            tokio::spawn(async move {
                let guard = lock.acquire(Some(Duration::from_secs(30))).await.unwrap();
                let fence = guard.fencing_token();
                guard.release().await.unwrap();
                fence
            })
        })
        .collect();
    tokio::task::yield_now().await;
    assert!(holder.fencing_token() > last);
    last = holder.fencing_token();
    holder.release().await.unwrap();
    let mut fences = Vec::new();
    for waiter in waiters {
        fences.push(waiter.await.unwrap());
    }
    fences.sort_unstable();
    fences.dedup();
    assert_eq!(fences.len(), 4, "every holder had a token of its own");
    assert!(fences[0] > last);
}

#[redis_lock(name = "invoice:{order_id}", client = "memory-attr", expire = 10, guard = lock)]
async fn bill(order_id: u64) -> Result<(u64, u64), LockError> {
    Ok((order_id, lock.fencing_token()))
}

#[redis_lock(name = "report", client = "memory-attr", expire = 10, timeout = 0)]
fn report() -> Result<(), LockError> {
    Ok(())
}

#[tokio::test]
async fn the_attribute_locks_on_an_in_memory_client_without_redis() {
    ClientBuilder::in_memory().register("memory-attr").unwrap();
    let (order, first) = bill(7).await.unwrap();
    let (_, second) = bill(7).await.unwrap();
    assert_eq!(order, 7);
    assert!(
        second > first,
        "the lock was taken twice, with rising tokens"
    );

    let held = redis_locked::Lock::with_client("memory-attr", "report")
        .unwrap()
        .acquire(None)
        .await
        .unwrap();
    // `timeout = 0`: one attempt, refused while the lock is held.
    let refused = tokio::task::spawn_blocking(report).await.unwrap();
    assert!(
        matches!(refused, Err(LockError::Timeout { .. })),
        "{refused:?}"
    );
    held.release().await.unwrap();
    tokio::task::spawn_blocking(report).await.unwrap().unwrap();
}

#[tokio::test]
async fn two_in_memory_clients_are_two_separate_stores() {
    let first = ClientBuilder::in_memory().build().unwrap();
    let second = ClientBuilder::in_memory().build().unwrap();
    let one = first.lock("shared").unwrap().acquire(None).await.unwrap();
    let other = second.lock("shared").unwrap().try_acquire().await.unwrap();
    assert!(
        other.is_some(),
        "the same name on another store is another lock"
    );
    assert!(
        first
            .lock("shared")
            .unwrap()
            .try_acquire()
            .await
            .unwrap()
            .is_none()
    );
    one.release().await.unwrap();
}

#[tokio::test]
async fn listing_and_resetting_every_lock_work_in_memory() {
    let client = ClientBuilder::in_memory().build().unwrap();
    client
        .scope(async {
            let lease = Duration::from_secs(60);
            let a = client.lock("a").unwrap().expire(lease);
            let b = client.lock("b").unwrap().expire(lease);
            let (held_a, held_b) = (
                a.acquire(None).await.unwrap(),
                b.acquire(None).await.unwrap(),
            );
            let listed = list_locks(None).await.unwrap();
            let names: Vec<&str> = listed.iter().map(|info| info.name.as_str()).collect();
            assert_eq!(names, ["a", "b"]);
            assert_eq!(listed[0].owner, held_a.token());
            assert_eq!(listed[0].fencing_token, held_a.fencing_token());
            assert!(listed[0].remaining_lease.is_some_and(|left| left <= lease));
            assert_eq!(
                listed[0].holder.as_ref().map(|h| h.pid),
                Some(std::process::id())
            );

            assert_eq!(reset_all(None).await.unwrap(), 2);
            assert!(list_locks(None).await.unwrap().is_empty());
            assert!(!a.is_locked().await.unwrap());
            assert!(matches!(
                held_a.release().await,
                Err(LockError::Expired { .. })
            ));
            assert!(matches!(
                held_b.release().await,
                Err(LockError::Expired { .. })
            ));
        })
        .await;
}

/// A minimum hold on the in-memory store: released sooner, the lock stays taken until the
/// hold is over, and a waiter gets it then, not at the end of its 30 s lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_released_before_its_minimum_hold_stays_taken_until_it_ends() {
    ClientBuilder::in_memory().register("memory-hold").unwrap();
    let lock = Lock::with_client("memory-hold", "job")
        .unwrap()
        .expire(Duration::from_secs(30));
    let holder = lock
        .clone()
        .min_hold(Duration::from_millis(400))
        .acquire(None)
        .await
        .unwrap();
    let taken = Instant::now();
    holder.release().await.unwrap();
    assert!(lock.is_locked().await.unwrap());
    let next = lock.acquire(Some(Duration::from_secs(5))).await.unwrap();
    let after = taken.elapsed();
    assert!(
        after >= Duration::from_millis(390) && after < Duration::from_secs(2),
        "taken again {after:?} after it was first taken"
    );
    next.release().await.unwrap();
}

/// Semaphores and shared locks on the in-memory store, for users' unit tests: at most N
/// tasks inside a semaphore at once (and more than one), readers together and a writer
/// alone, another use of a semaphore's name refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphores_and_shared_locks_work_in_memory() {
    ClientBuilder::in_memory().register("memory-kinds").unwrap();
    let inside = Arc::new(AtomicU64::new(0));
    let most = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (inside, most) = (inside.clone(), most.clone());
            tokio::spawn(async move {
                let lock = Lock::with_client("memory-kinds", "pool")
                    .unwrap()
                    .permits(2);
                for _ in 0..20 {
                    let guard = lock.acquire(None).await.unwrap();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    guard.release().await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 2);

    let lock = Lock::with_client("memory-kinds", "pool").unwrap();
    let held = lock.clone().permits(2).acquire(None).await.unwrap();
    let error = lock.clone().permits(3).try_acquire().await.unwrap_err();
    assert!(matches!(error, LockError::KindMismatch { .. }), "{error:?}");
    held.release().await.unwrap();

    let doc = Lock::with_client("memory-kinds", "doc").unwrap();
    let first = doc.clone().shared().acquire(None).await.unwrap();
    let second = doc.clone().shared().try_acquire().await.unwrap().unwrap();
    assert!(doc.clone().shared().is_locked().await.unwrap());
    assert!(
        doc.try_acquire().await.unwrap().is_none(),
        "a writer waits for readers"
    );
    first.release().await.unwrap();
    second.release().await.unwrap();
    let writer = doc.acquire(None).await.unwrap();
    assert!(doc.clone().shared().try_acquire().await.unwrap().is_none());
    writer.release().await.unwrap();
}

/// A lock held by another task of this process, after waiters made the process subscribe
/// to it: a single attempt says it is held (`None`), not that Redis did not answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_attempt_on_a_lock_held_here_says_it_is_held() {
    ClientBuilder::in_memory()
        .register("memory-held-here")
        .unwrap();
    let lock = Lock::with_client("memory-held-here", "busy").unwrap();
    let first = lock.acquire(None).await.unwrap();
    // A waiter that gives up leaves the process subscribed to the lock for a while.
    assert!(lock.try_acquire().await.unwrap().is_none());
    first.release().await.unwrap();
    let second = lock.acquire(None).await.unwrap();
    assert!(lock.try_acquire().await.unwrap().is_none());
    second.release().await.unwrap();
}
