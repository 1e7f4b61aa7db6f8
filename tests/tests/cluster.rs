//! Locks on a Redis Cluster through `ClientBuilder::cluster`: exclusion across tasks,
//! threads and a second process on locks of three shards, notification by sharded pub/sub
//! from another process, the listing and reset of locks on every master, and a master
//! killed while waiters wait, with `min_replicas` keeping the lock on the promoted replica.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis_locked::{ClientBuilder, Lock, LockError};
use redis_locked_tests::{RedisCluster, freed_within, read_counter};

const TASKS: usize = 4;
const ITERATIONS: i64 = 20;
const PROCESS_ITERATIONS: i64 = 30;

/// A non-atomic increment of `counter` under lock `name`.
async fn increment(lock: &Lock, conn: &mut redis::Connection, counter: &str) {
    let guard = lock.acquire(Some(Duration::from_secs(30))).await.unwrap();
    let value = read_counter(conn, counter);
    tokio::task::yield_now().await;
    let _: () = redis::cmd("SET")
        .arg(counter)
        .arg(value + 1)
        .query(conn)
        .unwrap();
    guard.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_works_on_a_cluster_across_shards_tasks_and_processes() {
    let cluster = Arc::new(RedisCluster::start(3, 0));
    let seeds = cluster.seed_urls();
    ClientBuilder::cluster(&seeds).register("cl").unwrap();
    redis_locked_tests::core_checks::renewal_release_and_timeout("cl").await;

    // The three locks live on three shards.
    let names = ["a", "b", "c"];
    let mut masters: Vec<u16> = names
        .iter()
        .map(|n| cluster.master_of(&format!("lock:{{{n}}}")).port())
        .collect();
    masters.sort();
    masters.dedup();
    assert_eq!(masters.len(), 3);

    // Exclusion: async tasks on each lock, a thread on `a`, and another process on `a`.
    let counter_a = "count:{a}";
    let mut process_seeds = vec![cluster.master_of(counter_a).url()];
    process_seeds.extend(seeds.iter().cloned());
    let process = Command::new(env!("CARGO_BIN_EXE_contender"))
        .args([
            "count",
            &format!("cluster:{}", process_seeds.join(",")),
            "a",
            counter_a,
        ])
        .arg(PROCESS_ITERATIONS.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut tasks = Vec::new();
    for name in names {
        for _ in 0..TASKS {
            let cluster = cluster.clone();
            tasks.push(tokio::spawn(async move {
                let counter = format!("count:{{{name}}}");
                let mut conn = cluster.connection_to_master_of(&counter);
                let lock = Lock::with_client("cl", name).unwrap();
                for _ in 0..ITERATIONS {
                    increment(&lock, &mut conn, &counter).await;
                }
            }));
        }
    }
    let thread = {
        let cluster = cluster.clone();
        std::thread::spawn(move || {
            let mut conn = cluster.connection_to_master_of(counter_a);
            let lock = Lock::with_client("cl", "a").unwrap();
            for _ in 0..ITERATIONS {
                let guard = lock.acquire_blocking(None).unwrap();
                let value = read_counter(&mut conn, counter_a);
                std::thread::yield_now();
                let _: () = redis::cmd("SET")
                    .arg(counter_a)
                    .arg(value + 1)
                    .query(&mut conn)
                    .unwrap();
                guard.release().unwrap();
            }
        })
    };
    for task in tasks {
        task.await.unwrap();
    }
    thread.join().unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let mut process = process;
        process.wait().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success());
    for name in names {
        let counter = format!("count:{{{name}}}");
        let expected = TASKS as i64 * ITERATIONS
            + if name == "a" {
                ITERATIONS + PROCESS_ITERATIONS
            } else {
                0
            };
        let mut conn = cluster.connection_to_master_of(&counter);
        assert_eq!(read_counter(&mut conn, &counter), expected, "{counter}");
    }

    // Notification on the shard: another process releases, a waiter here wakes long
    // before the holder's 30 s lease would have run out.
    let mut holder = Command::new(env!("CARGO_BIN_EXE_contender"))
        .args([
            "hold-until-told",
            &format!("cluster:{}", seeds.join(",")),
            "n",
            "30",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(holder.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "HOLDING");
    let waiter = tokio::spawn(async {
        let lock = Lock::with_client("cl", "n").unwrap();
        let guard = lock.acquire(Some(Duration::from_secs(20))).await.unwrap();
        let woke = Instant::now();
        guard.release().await.unwrap();
        woke
    });
    cluster.wait_for_shard_subscribers("lock:{n}", 1).await;
    let released = Instant::now();
    std::io::Write::write_all(holder.stdin.as_mut().unwrap(), b"go\n").unwrap();
    let woke = waiter.await.unwrap();
    assert!(
        woke.duration_since(released) < Duration::from_secs(5),
        "woken {:?} after the release",
        woke.duration_since(released)
    );
    holder.wait().unwrap();

    // is_locked, list_locks and reset_all over every master.
    let locks: Vec<Lock> = names
        .iter()
        .map(|n| Lock::with_client("cl", *n).unwrap().auto_renew(false))
        .collect();
    let mut guards = Vec::new();
    for lock in &locks {
        guards.push(lock.acquire(None).await.unwrap());
        assert!(lock.is_locked().await.unwrap());
    }
    assert_eq!(redis_locked::list_locks(Some("cl")).await.unwrap().len(), 3);
    assert_eq!(redis_locked::reset_all(Some("cl")).await.unwrap(), 3);
    for lock in &locks {
        assert!(!lock.is_locked().await.unwrap());
    }
    for guard in guards {
        assert!(matches!(
            guard.release().await,
            Err(LockError::Expired { .. })
        ));
    }
    assert!(locks[0].try_acquire().await.unwrap().is_some());

    // min_replicas on masters without replicas: a clear error, and the lock is let go.
    ClientBuilder::cluster(&seeds)
        .min_replicas(1, Duration::from_millis(100))
        .register("cl-acked")
        .unwrap();
    let Err(err) = Lock::with_client("cl-acked", "r")
        .unwrap()
        .acquire(None)
        .await
    else {
        panic!("no replica can acknowledge");
    };
    assert!(
        matches!(
            err,
            LockError::NotReplicated {
                wanted: 1,
                acknowledged: 0,
                ..
            }
        ),
        "{err}"
    );
    let lock = Lock::with_client("cl", "r").unwrap();
    let guard = lock.acquire(Some(Duration::from_secs(5))).await.unwrap();
    guard.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_ride_out_a_failover_and_min_replicas_keeps_the_lock() {
    let mut cluster = RedisCluster::start(3, 1);
    let seeds = cluster.seed_urls();
    ClientBuilder::cluster(&seeds)
        .min_replicas(1, Duration::from_millis(1000))
        .register("fo")
        .unwrap();
    ClientBuilder::cluster(&seeds).register("fo-plain").unwrap();
    // Its own wait queue: a lock check that does not queue behind the waiters below.
    ClientBuilder::cluster(&seeds).register("fo-check").unwrap();

    // What WAIT costs: uncontended acquire + release, with and without it.
    for client in ["fo-plain", "fo"] {
        let lock = Lock::with_client(client, "cost").unwrap();
        lock.acquire(None).await.unwrap().release().await.unwrap();
        let start = Instant::now();
        for _ in 0..100 {
            lock.acquire(None).await.unwrap().release().await.unwrap();
        }
        eprintln!(
            "{client}: {:?} per acquire + release",
            start.elapsed() / 100
        );
    }

    // With min_replicas a lock is never handed straight to a waiter of this process (the
    // handover would skip WAIT): the waiter takes it itself and waits for a replica too.
    let waits_on = |key: &str| -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut cluster.connection_to_master_of(key))
            .unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_wait:calls="))
            .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
    };
    let handed = Lock::with_client("fo", "g").unwrap();
    let first = handed.acquire(None).await.unwrap();
    let waiter = {
        let handed = handed.clone();
        tokio::spawn(async move { handed.acquire(Some(Duration::from_secs(10))).await })
    };
    cluster.wait_for_shard_subscribers("lock:{g}", 1).await;
    let before = waits_on("lock:{g}");
    first.release().await.unwrap();
    waiter.await.unwrap().unwrap().release().await.unwrap();
    // At least one: the waiter's acquisition. More when an attempt that found the lock
    // still taken (the subscription's confirmation wakes the waiter to look again) ran
    // after the count began; none if the lock had been handed over.
    assert!(
        waits_on("lock:{g}") - before >= 1,
        "the waiter's own acquisition ran WAIT"
    );

    let key = "lock:{f}";
    let holder = Lock::with_client("fo", "f").unwrap();
    let guard = holder.acquire(None).await.unwrap();
    // Its fencing counter was written by the same script as the lock, and WAIT covered both.
    let before_failover = guard.fencing_token();
    let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
    let acquired = Arc::new(AtomicU64::new(0));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let acquired = acquired.clone();
            let tokens = tokens.clone();
            tokio::spawn(async move {
                // Without min_replicas: after the failover the new master has no replica
                // left, so only the holder's client waits for replicas.
                let lock = Lock::with_client("fo-plain", "f").unwrap();
                let guard = lock.acquire(Some(Duration::from_secs(40))).await.unwrap();
                tokens.lock().unwrap().push(guard.fencing_token());
                acquired.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                guard.release().await.unwrap();
            })
        })
        .collect();
    cluster.wait_for_shard_subscribers(key, 1).await;

    let took = tokio::task::block_in_place(|| cluster.kill_master_of(key));
    eprintln!("master of {key} killed; replica promoted in {took:?}");

    // The lock survived on the promoted replica: nobody else can take it.
    let other = Lock::with_client("fo-check", "f").unwrap();
    let taken = once_the_new_master_answers(|| other.try_acquire()).await;
    assert!(taken.is_none(), "the lock was lost in the failover");
    assert!(holder.is_locked().await.unwrap());
    assert_eq!(acquired.load(Ordering::SeqCst), 0);

    // The holder releases on the new master; every waiter gets its turn.
    let released = Instant::now();
    guard.release().await.unwrap();
    for waiter in waiters {
        waiter.await.unwrap();
    }
    assert_eq!(acquired.load(Ordering::SeqCst), 3);
    eprintln!("waiters done {:?} after the release", released.elapsed());
    // Fencing tokens kept growing through the failover: with min_replicas the promoted
    // replica had the counter the old master last gave out.
    let tokens = tokens.lock().unwrap().clone();
    assert!(
        tokens.iter().all(|&t| t > before_failover) && tokens.windows(2).all(|w| w[0] < w[1]),
        "before the failover {before_failover}, after {tokens:?}"
    );
    assert!(released.elapsed() < Duration::from_secs(5));

    // Locks taken after the failover work on the new master too, sync and async; with
    // min_replicas they fail clearly, the new master having no replica left.
    let lock = Lock::with_client("fo-plain", "f").unwrap();
    let after = lock.acquire(None).await.unwrap();
    assert!(after.fencing_token() > *tokens.last().unwrap());
    after.release().await.unwrap();
    tokio::task::block_in_place(|| {
        lock.acquire_blocking(None).unwrap().release().unwrap();
    });
    let Err(err) = holder.acquire(None).await else {
        panic!("no replica left");
    };
    assert!(matches!(err, LockError::NotReplicated { .. }), "{err}");
}

/// Names that start with `}` or hold braces anywhere work on a cluster (their lock key and
/// fencing counter share a slot, no CROSSSLOT), are listed under their own names, and a
/// key prefix with braces is refused at registration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_braces_keep_a_lock_in_one_slot() {
    let cluster = RedisCluster::start(3, 0);
    let seeds = cluster.seed_urls();
    ClientBuilder::cluster(&seeds)
        .register("cl-braces")
        .unwrap();
    let names = ["}x", "{a}b", "a}{b", "}", "}{}"];
    let mut guards = Vec::new();
    for name in names {
        let lock = Lock::with_client("cl-braces", name).unwrap();
        let key = lock.key().to_string();
        assert_eq!(
            redis_locked_tests::key_slot(&key),
            redis_locked_tests::key_slot(&format!("{key}:fence")),
            "{name:?}: {key}"
        );
        let guard = lock
            .acquire(Some(Duration::from_secs(5)))
            .await
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert!(guard.fencing_token() > 0);
        assert!(lock.is_locked().await.unwrap(), "{name:?}");
        assert_eq!(lock.info().await.unwrap().unwrap().name, name);
        guards.push(guard);
    }
    let mut listed: Vec<String> = redis_locked::list_locks(Some("cl-braces"))
        .await
        .unwrap()
        .into_iter()
        .map(|info| info.name)
        .collect();
    listed.sort();
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected);
    for guard in guards {
        guard.release().await.unwrap();
    }
    // Sync callers too.
    tokio::task::block_in_place(|| {
        let lock = Lock::with_client("cl-braces", "}x").unwrap();
        lock.acquire_blocking(None).unwrap().release().unwrap();
    });

    for prefix in ["app{}:", "app:{tenant}:", "}"] {
        let refused = ClientBuilder::cluster(&seeds)
            .key_prefix(prefix)
            .register(&format!("cl-prefix-{prefix}"));
        assert!(
            matches!(refused, Err(LockError::InvalidConfig { .. })),
            "{prefix}: {refused:?}"
        );
    }
}

/// The id of a client blocked in `WAIT` on `node`, once there is one.
fn blocked_wait(node: &redis_locked_tests::RedisServer) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = node.connection();
    loop {
        let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut conn).unwrap();
        let blocked = list.lines().find(|line| {
            line.split(' ').any(|f| f == "cmd=wait")
                && line
                    .split(' ')
                    .any(|f| f.strip_prefix("flags=").is_some_and(|f| f.contains('b')))
        });
        if let Some(line) = blocked {
            let id = line.split(' ').find_map(|f| f.strip_prefix("id=")).unwrap();
            return id.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "nobody blocked in WAIT: {list}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An acquisition of lock `name` by a `min_replicas(1, wait)` client `client` (its scripts
/// loaded and its connection made first), blocked in its `WAIT` because the replica of the
/// lock's shard is paused. Returns the lock, the acquisition, the paused replica, and the
/// id of the master's client blocked in `WAIT`.
async fn acquisition_blocked_in_wait<'c>(
    cluster: &'c RedisCluster,
    client: &str,
    name: &str,
    wait: Duration,
) -> (
    Lock,
    tokio::task::JoinHandle<Result<redis_locked::LockGuard, LockError>>,
    &'c redis_locked_tests::RedisServer,
    u64,
) {
    ClientBuilder::cluster(cluster.seed_urls())
        .min_replicas(1, wait)
        .register(client)
        .unwrap();
    let lock = Lock::with_client(client, name)
        .unwrap()
        .expire(Duration::from_secs(30));
    // Scripts loaded and the connection made while the replica still answers.
    lock.acquire(None).await.unwrap().release().await.unwrap();
    let replica = cluster.replicas_of(lock.key())[0];
    replica.pause();
    let acquisition = {
        let lock = lock.clone();
        tokio::spawn(async move { lock.acquire(None).await })
    };
    let id = tokio::task::block_in_place(|| blocked_wait(cluster.master_of(lock.key())));
    (lock, acquisition, replica, id)
}

/// With `min_replicas`, the connection that carried the acquisition is killed while its
/// `WAIT` blocks (the replica is frozen, so it cannot acknowledge): the `WAIT` must not be
/// answered by a fresh connection that wrote nothing (which returns at once with the
/// number of connected replicas). The acquisition reports `NotReplicated`, and the lock it
/// took is released in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_check_resent_on_a_fresh_connection_still_counts_the_lock() {
    let cluster = RedisCluster::start(3, 1);
    let (lock, acquisition, replica, id) = acquisition_blocked_in_wait(
        &cluster,
        "cl-resent-wait",
        "resent",
        Duration::from_millis(1500),
    )
    .await;
    let master = cluster.master_of(lock.key());
    let _: () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query(&mut master.connection())
        .unwrap();
    let outcome = acquisition.await.unwrap();
    replica.resume();
    assert!(
        matches!(
            outcome,
            Err(LockError::NotReplicated {
                wanted: 1,
                acknowledged: 0,
                ..
            })
        ),
        "{outcome:?}"
    );
    assert!(
        freed_within(&lock, Duration::from_secs(10)).await,
        "the unreplicated lock was left for its lease"
    );
}

/// With `min_replicas`, an acquisition cancelled while its `WAIT` blocks has taken the lock
/// in Redis: it is released in the background instead of staying for its lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acquisition_cancelled_during_its_replica_check_frees_the_lock() {
    let cluster = RedisCluster::start(3, 1);
    let (lock, acquisition, replica, _) = acquisition_blocked_in_wait(
        &cluster,
        "cl-cancel-wait",
        "cancelled",
        Duration::from_millis(3000),
    )
    .await;
    // The lock is taken in Redis (WAIT blocks after the script that took it); the caller
    // gives up meanwhile.
    acquisition.abort();
    assert!(acquisition.await.unwrap_err().is_cancelled());
    let freed = freed_within(&lock, Duration::from_secs(10)).await;
    replica.resume();
    assert!(
        freed,
        "the cancelled acquisition left the lock for its lease"
    );
}

/// Async callers use a cluster connection of their own runtime (their requests do not hop
/// to the background runtime's driver task): three runtimes one after another each lock,
/// wait and release on a connection of their own. A connection left from a runtime that
/// ended would never answer (checked: reusing one, the second runtime's call is
/// `NoAnswer`). The waiters' pub/sub stays on the background runtime.
#[test]
fn runtimes_one_after_another_each_lock_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0);
    ClientBuilder::cluster(cluster.seed_urls())
        .register("cluster-runtimes")
        .unwrap();
    for round in 0..3 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let lock = Lock::with_client("cluster-runtimes", format!("round-{round}")).unwrap();
            let held = lock.acquire(Some(Duration::from_secs(5))).await.unwrap();
            let waiter = lock.clone();
            let waiting =
                tokio::spawn(
                    async move { waiter.acquire(Some(Duration::from_secs(5))).await.unwrap() },
                );
            let key = format!("lock:{{round-{round}}}");
            let deadline = Instant::now() + Duration::from_secs(5);
            while cluster.shard_subscribers(&key) < 1 {
                assert!(Instant::now() < deadline, "the waiter never subscribed");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            held.release().await.unwrap();
            waiting.await.unwrap().release().await.unwrap();
        });
        drop(runtime);
    }
}

/// Waiters asleep behind a holder while the master of their lock dies and a replica takes
/// over only seconds later: their client's subscriptions went with the dead node, and its
/// own attempts to reconnect find nobody serving the slot. Once a node does, the client
/// subscribes again by itself, so the release on the new master wakes the waiters at once
/// rather than at the holder's lease end (60 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_wake_on_the_new_master_after_a_late_takeover() {
    let mut cluster = RedisCluster::start(3, 1);
    let seeds = cluster.seed_urls();
    ClientBuilder::cluster(&seeds)
        .min_replicas(1, Duration::from_millis(1000))
        .register("late-holder")
        .unwrap();
    ClientBuilder::cluster(&seeds)
        .register("late-waiters")
        .unwrap();
    let key = "lock:{late}";
    let holder = Lock::with_client("late-holder", "late")
        .unwrap()
        .expire(Duration::from_secs(60));
    let guard = holder.acquire(None).await.unwrap();
    let acquired = Arc::new(AtomicU64::new(0));
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let acquired = acquired.clone();
            tokio::spawn(async move {
                let lock = Lock::with_client("late-waiters", "late").unwrap();
                let guard = lock.acquire(Some(Duration::from_secs(50))).await.unwrap();
                acquired.fetch_add(1, Ordering::SeqCst);
                guard.release().await.unwrap();
            })
        })
        .collect();
    cluster.wait_for_shard_subscribers(key, 1).await;

    tokio::task::block_in_place(|| {
        cluster.kill_master_of_and_promote_later(key, Duration::from_secs(3));
    });
    // The holder's client learns the new master (the lock survived there: min_replicas).
    let locked = once_the_new_master_answers(|| holder.is_locked()).await;
    assert!(locked, "the lock was lost in the failover");
    assert_eq!(acquired.load(Ordering::SeqCst), 0);

    let released = Instant::now();
    guard.release().await.unwrap();
    for waiter in waiters {
        waiter.await.unwrap();
    }
    eprintln!("waiters done {:?} after the release", released.elapsed());
    assert_eq!(acquired.load(Ordering::SeqCst), 2);
    assert!(
        released.elapsed() < Duration::from_secs(5),
        "the waiters slept on a free lock for {:?}",
        released.elapsed()
    );
}

/// What `ask` answers once it works, asked again every 100 ms for up to 20 s: after a
/// failover a client may need a moment to learn the slot's new master.
async fn once_the_new_master_answers<T, F, Fut>(mut ask: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, LockError>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match ask().await {
            Ok(answer) => return answer,
            Err(e) if Instant::now() < deadline => {
                eprintln!("retrying after: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}
