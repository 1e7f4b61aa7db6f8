//! `permits = N` and `shared`: locks several callers hold at once. Critical sections run in
//! two `contender` processes and in tasks of two clients (each a process of its own to
//! Redis), each recording when it entered and left; the test checks from those intervals
//! how many overlapped: never more than the permits, never a writer with anyone.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis_locked::{ClientBuilder, Lock, LockError, redis_lock};
use redis_locked_tests::{KilledOnDrop, RedisServer, RedlockServers};

fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

/// One critical section of a task here: entered, a few ms of work, left; recorded.
async fn section(url: &str, log: &str, kind: &str) -> Result<(), LockError> {
    let enter = unix_micros();
    tokio::time::sleep(Duration::from_millis(3)).await;
    let exit = unix_micros();
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let _: () = redis::cmd("RPUSH")
        .arg(log)
        .arg(format!("{kind} {enter} {exit}"))
        .query_async(&mut conn)
        .await?;
    Ok(())
}

#[redis_lock(name = "{lock}", client = "sem-a", permits = 3, expire = 5)]
async fn in_semaphore_a(lock: &str, url: &str, log: &str) -> Result<(), LockError> {
    section(url, log, "sem").await
}

#[redis_lock(name = "{lock}", client = "sem-b", permits = 3, expire = 5)]
async fn in_semaphore_b(lock: &str, url: &str, log: &str) -> Result<(), LockError> {
    section(url, log, "sem").await
}

#[redis_lock(name = "{lock}", client = "rw-a", shared, expire = 5)]
async fn reading(lock: &str, url: &str, log: &str) -> Result<(), LockError> {
    section(url, log, "read").await
}

#[redis_lock(name = "{lock}", client = "rw-b", expire = 5)]
async fn writing(lock: &str, url: &str, log: &str) -> Result<(), LockError> {
    section(url, log, "write").await
}

/// The recorded sections: kind, enter and exit.
fn sections(server: &RedisServer, log: &str) -> Vec<(String, u128, u128)> {
    let lines: Vec<String> = redis::cmd("LRANGE")
        .arg(log)
        .arg(0)
        .arg(-1)
        .query(&mut server.connection())
        .unwrap();
    lines
        .iter()
        .map(|line| {
            let mut parts = line.split(' ');
            let kind = parts.next().unwrap().to_string();
            let enter = parts.next().unwrap().parse().unwrap();
            let exit = parts.next().unwrap().parse().unwrap();
            (kind, enter, exit)
        })
        .collect()
}

/// The most sections of `kinds` inside at one moment.
fn most_at_once(sections: &[(String, u128, u128)], kinds: &[&str]) -> usize {
    let mut events: Vec<(u128, i32)> = sections
        .iter()
        .filter(|(kind, _, _)| kinds.contains(&kind.as_str()))
        .flat_map(|(_, enter, exit)| [(*enter, 1), (*exit, -1)])
        .collect();
    // At one instant, leaving counts before entering: touching sections do not overlap.
    events.sort();
    let (mut inside, mut most) = (0, 0);
    for (_, step) in events {
        inside += step;
        most = most.max(inside);
    }
    most as usize
}

fn contender(args: &[&str]) -> KilledOnDrop {
    KilledOnDrop::contender(env!("CARGO_BIN_EXE_contender"), args)
}

fn finished(mut child: KilledOnDrop) {
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let output = std::process::Output {
        status,
        stdout: stdout.into_bytes(),
        stderr: Vec::new(),
    };
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "DONE");
}

/// 2 processes and 4 tasks of two clients take a semaphore of 3 permits 30 times each:
/// every section ran (an exact count), never more than 3 at once, and more than one at
/// once (a semaphore, not a mutex).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_most_n_hold_a_semaphore_at_once_across_processes() {
    let server = RedisServer::start();
    let url = server.url();
    for client in ["sem-a", "sem-b"] {
        redis_locked::register(client, &url).unwrap();
    }
    const EACH: usize = 30;
    let processes: Vec<_> = (0..2)
        .map(|_| contender(&["intervals", &url, "pool", "sem-log", "sem", "30"]))
        .collect();
    let tasks: Vec<_> = (0..4)
        .map(|task| {
            let url = url.clone();
            tokio::spawn(async move {
                for _ in 0..EACH {
                    match task % 2 {
                        0 => in_semaphore_a("pool", &url, "sem-log").await,
                        _ => in_semaphore_b("pool", &url, "sem-log").await,
                    }
                    .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    processes.into_iter().for_each(finished);
    let sections = sections(&server, "sem-log");
    assert_eq!(sections.len(), 6 * EACH);
    let most = most_at_once(&sections, &["sem"]);
    assert!(most <= 3, "{most} held the semaphore at once");
    assert!(most >= 2, "never more than {most} at once: not shared");
}

/// A caller that asks for another number of permits, a plain lock or a shared lock of a
/// semaphore's name gets `KindMismatch`, and takes nothing: the semaphore still admits
/// exactly its 3.
#[tokio::test(flavor = "multi_thread")]
async fn other_uses_of_a_semaphores_name_are_refused_and_count_nothing() {
    let server = RedisServer::start();
    redis_locked::register("sem-kinds", &server.url()).unwrap();
    let lock = |permits: u32| {
        Lock::with_client("sem-kinds", "pool")
            .unwrap()
            .permits(permits)
    };
    assert!(!lock(3).is_locked().await.unwrap());
    let first = lock(3).acquire(None).await.unwrap();
    assert!(
        lock(3).is_locked().await.unwrap(),
        "a semaphore with a holder is locked"
    );
    assert!(matches!(
        lock(3).owner().await,
        Err(LockError::InvalidConfig { .. })
    ));
    for other in [lock(5), lock(1), lock(3).shared()] {
        let error = other.try_acquire().await.unwrap_err();
        assert!(matches!(error, LockError::KindMismatch { .. }), "{error:?}");
        assert!(
            error.to_string().contains("a semaphore of 3 permits"),
            "{error}"
        );
    }
    let second = lock(3).acquire(None).await.unwrap();
    let third = lock(3).acquire(None).await.unwrap();
    assert!(lock(3).try_acquire().await.unwrap().is_none(), "a fourth");
    for guard in [first, second, third] {
        guard.release().await.unwrap();
    }
    // Free again, the name may be used as any kind.
    lock(1)
        .acquire(None)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
}

/// Registers `clients` on `server`; the semaphore `name` of 2 permits (30 s leases) as seen
/// by a client.
fn two_permits(
    server: &RedisServer,
    clients: [&str; 2],
    name: &'static str,
) -> impl Fn(&str) -> Lock {
    for client in clients {
        redis_locked::register(client, &server.url()).unwrap();
    }
    move |client| {
        Lock::with_client(client, name)
            .unwrap()
            .permits(2)
            .expire(Duration::from_secs(30))
    }
}

/// A task that waits up to 10 s for a permit of `lock`: when it got one, and its guard.
fn waiting_for(lock: Lock) -> tokio::task::JoinHandle<(Instant, redis_locked::LockGuard)> {
    tokio::spawn(async move {
        let guard = lock.acquire(Some(Duration::from_secs(10))).await.unwrap();
        (Instant::now(), guard)
    })
}

/// Two permits held, a waiter of another process: a release wakes it at once, not at
/// the end of the 30 s leases.
#[tokio::test(flavor = "multi_thread")]
async fn a_released_permit_wakes_a_waiter_of_another_process() {
    let server = RedisServer::start();
    let lock = two_permits(&server, ["sem-wake-a", "sem-wake-b"], "pair");
    let one = lock("sem-wake-a").acquire(None).await.unwrap();
    let two = lock("sem-wake-a").acquire(None).await.unwrap();
    let waiting = waiting_for(lock("sem-wake-b"));
    redis_locked_tests::wait_for_subscribers(&server, "lock:{pair}", 1).await;
    let released = Instant::now();
    one.release().await.unwrap();
    let (got, guard) = waiting.await.unwrap();
    assert!(got.duration_since(released) < Duration::from_secs(1));
    guard.release().await.unwrap();
    two.release().await.unwrap();
}

/// A process holding a permit is killed: its permit comes back when its lease ends.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_holders_permit_comes_back_at_its_lease_end() {
    let server = RedisServer::start();
    redis_locked::register("sem-crash", &server.url()).unwrap();
    let mut holder = contender(&["hold-kind", &server.url(), "crashing", "1", "sem"]);
    let mut line = String::new();
    BufReader::new(holder.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "HOLDING");
    let lock = Lock::with_client("sem-crash", "crashing")
        .unwrap()
        .permits(3);
    let mine: Vec<_> = [
        lock.acquire(None).await.unwrap(),
        lock.acquire(None).await.unwrap(),
    ]
    .into();
    assert!(lock.try_acquire().await.unwrap().is_none(), "all 3 taken");
    holder.kill().unwrap();
    holder.wait().unwrap();
    let killed = Instant::now();
    let third = lock.acquire(Some(Duration::from_secs(10))).await.unwrap();
    assert!(killed.elapsed() < Duration::from_millis(1500));
    third.release().await.unwrap();
    for guard in mine {
        guard.release().await.unwrap();
    }
}

/// Readers (shared) and writers (plain) of one name in 2 processes and tasks of two
/// clients: no writer's section overlaps any other section, and readers overlap each
/// other. Every section ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_holders_coexist_and_a_plain_holder_excludes_them() {
    let server = RedisServer::start();
    let url = server.url();
    for client in ["rw-a", "rw-b"] {
        redis_locked::register(client, &url).unwrap();
    }
    const EACH: usize = 30;
    let processes = [
        contender(&["intervals", &url, "catalog", "rw-log", "read", "30"]),
        contender(&["intervals", &url, "catalog", "rw-log", "write", "30"]),
    ];
    let tasks: Vec<_> = (0..4)
        .map(|task| {
            let url = url.clone();
            tokio::spawn(async move {
                for _ in 0..EACH {
                    match task {
                        3 => writing("catalog", &url, "rw-log").await,
                        _ => reading("catalog", &url, "rw-log").await,
                    }
                    .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    processes.into_iter().for_each(finished);
    let sections = sections(&server, "rw-log");
    assert_eq!(sections.len(), 6 * EACH);
    for (kind, enter, exit) in sections.iter().filter(|(kind, _, _)| kind == "write") {
        let overlapping = sections
            .iter()
            .filter(|(_, e, x)| e < exit && enter < x)
            .count();
        assert_eq!(overlapping, 1, "a {kind} section overlapped another");
    }
    assert!(
        most_at_once(&sections, &["read"]) >= 2,
        "readers never held the lock together"
    );
}

/// Four readers keep the lock held between them without a gap; a writer of another
/// process waits. It gets the lock within a second: new readers wait behind it once it
/// is queued. Without that, it would wait until the readers stop, after 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_waiting_writer_is_not_starved_by_a_stream_of_readers() {
    let server = RedisServer::start();
    for client in ["stream-readers", "stream-writer"] {
        redis_locked::register(client, &server.url()).unwrap();
    }
    let stop = Instant::now() + Duration::from_secs(5);
    let readers: Vec<_> = (0..4)
        .map(|reader| {
            tokio::spawn(async move {
                let lock = Lock::with_client("stream-readers", "feed")
                    .unwrap()
                    .shared();
                // Staggered, so that one of them always holds it.
                tokio::time::sleep(Duration::from_millis(reader * 10)).await;
                while Instant::now() < stop {
                    let guard = lock.acquire(Some(Duration::from_secs(10))).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    guard.release().await.unwrap();
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let writer = Lock::with_client("stream-writer", "feed").unwrap();
    let asked = Instant::now();
    let guard = writer.acquire(Some(Duration::from_secs(10))).await.unwrap();
    let waited = asked.elapsed();
    guard.release().await.unwrap();
    assert!(
        waited < Duration::from_secs(1),
        "the writer waited {waited:?} behind a stream of readers"
    );
    for reader in readers {
        reader.await.unwrap();
    }
}

/// Every holder draws its own fencing token from the name's one counter: readers' tokens
/// differ and grow, and a writer's is greater than every reader's before it.
#[tokio::test(flavor = "multi_thread")]
async fn shared_holders_and_writers_draw_growing_tokens() {
    let server = RedisServer::start();
    redis_locked::register("rw-tokens", &server.url()).unwrap();
    let lock = Lock::with_client("rw-tokens", "doc").unwrap();
    let first = lock.clone().shared().acquire(None).await.unwrap();
    let second = lock.clone().shared().acquire(None).await.unwrap();
    assert!(second.fencing_token() > first.fencing_token());
    let tokens = [first.fencing_token(), second.fencing_token()];
    first.release().await.unwrap();
    second.release().await.unwrap();
    let writer = lock.acquire(None).await.unwrap();
    assert!(tokens.iter().all(|token| writer.fencing_token() > *token));
    writer.release().await.unwrap();
}

/// A reader process is killed while a writer waits: the writer gets the lock when the
/// reader's lease ends.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_readers_place_ends_with_its_lease() {
    let server = RedisServer::start();
    redis_locked::register("rw-crash", &server.url()).unwrap();
    let mut reader = contender(&["hold-kind", &server.url(), "shelf", "1", "read"]);
    let mut line = String::new();
    BufReader::new(reader.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "HOLDING");
    reader.kill().unwrap();
    reader.wait().unwrap();
    let killed = Instant::now();
    let writer = Lock::with_client("rw-crash", "shelf").unwrap();
    let guard = writer.acquire(Some(Duration::from_secs(10))).await.unwrap();
    assert!(killed.elapsed() < Duration::from_millis(1500));
    guard.release().await.unwrap();
}

/// A Redlock quorum cannot count holders safely: asking there is a configuration error,
/// before anything is sent.
#[tokio::test(flavor = "multi_thread")]
async fn semaphores_and_shared_locks_are_refused_where_they_cannot_be_counted() {
    let quorum = RedlockServers::start(3);
    ClientBuilder::redlock(quorum.urls())
        .register("sem-redlock")
        .unwrap();
    let lock = Lock::with_client("sem-redlock", "x").unwrap();
    for lock in [lock.clone().permits(2), lock.shared()] {
        let error = lock.try_acquire().await.unwrap_err();
        assert!(
            matches!(error, LockError::InvalidConfig { .. }),
            "{error:?}"
        );
    }
}

/// A permit released before its minimum hold is over stays taken until then: a fourth
/// caller of a semaphore of 2 permits, one of them kept, gets a permit only when the
/// hold ends, and is woken for it.
#[tokio::test(flavor = "multi_thread")]
async fn a_minimum_hold_keeps_a_permit_taken() {
    let server = RedisServer::start();
    let lock = two_permits(&server, ["sem-keep-a", "sem-keep-b"], "nightly");
    let kept = lock("sem-keep-a")
        .min_hold(Duration::from_secs(1))
        .acquire(None)
        .await
        .unwrap();
    let taken = Instant::now();
    let other = lock("sem-keep-a").acquire(None).await.unwrap();
    let waiting = waiting_for(lock("sem-keep-b"));
    redis_locked_tests::wait_for_subscribers(&server, "lock:{nightly}", 1).await;
    kept.release().await.unwrap();
    assert!(
        lock("sem-keep-a").try_acquire().await.unwrap().is_none(),
        "the kept permit is still taken"
    );
    let (got, guard) = waiting.await.unwrap();
    let after = got.duration_since(taken);
    assert!(
        after > Duration::from_millis(900) && after < Duration::from_secs(3),
        "the waiter got a permit {after:?} after the kept one was taken"
    );
    guard.release().await.unwrap();
    other.release().await.unwrap();
}

/// The same on a Redis Cluster: a semaphore counts its holders on the lock's shard, and a
/// released permit or the last reader's release wakes a waiter of another process there
/// (sharded pub/sub), the writer handed the lock by the last reader.
#[tokio::test(flavor = "multi_thread")]
async fn semaphores_and_shared_locks_on_a_cluster() {
    let cluster = redis_locked_tests::RedisCluster::start(3, 0);
    for client in ["sem-cluster-a", "sem-cluster-b"] {
        ClientBuilder::cluster(cluster.seed_urls())
            .register(client)
            .unwrap();
    }
    let lock = |client: &str, name: &str| {
        Lock::with_client(client, name)
            .unwrap()
            .expire(Duration::from_secs(30))
    };
    let one = lock("sem-cluster-a", "pool")
        .permits(2)
        .acquire(None)
        .await
        .unwrap();
    let two = lock("sem-cluster-a", "pool")
        .permits(2)
        .acquire(None)
        .await
        .unwrap();
    assert!(
        lock("sem-cluster-a", "pool")
            .permits(2)
            .try_acquire()
            .await
            .unwrap()
            .is_none()
    );
    let waiter = lock("sem-cluster-b", "pool").permits(2);
    let waiting = tokio::spawn(async move {
        let guard = waiter.acquire(Some(Duration::from_secs(10))).await.unwrap();
        (Instant::now(), guard)
    });
    let key = "lock:{pool}";
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.shard_subscribers(key) < 1 {
        assert!(Instant::now() < deadline, "the waiter never subscribed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let released = Instant::now();
    one.release().await.unwrap();
    let (got, guard) = waiting.await.unwrap();
    assert!(got.duration_since(released) < Duration::from_secs(1));
    guard.release().await.unwrap();
    two.release().await.unwrap();

    let reader = lock("sem-cluster-a", "shelf")
        .shared()
        .acquire(None)
        .await
        .unwrap();
    let writer = lock("sem-cluster-b", "shelf");
    let writing = tokio::spawn(async move {
        let guard = writer.acquire(Some(Duration::from_secs(10))).await.unwrap();
        (Instant::now(), guard)
    });
    let queue = "lock:{shelf}:queue";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let queued: usize = redis::cmd("LLEN")
            .arg(queue)
            .query(&mut cluster.connection_to_master_of(queue))
            .unwrap();
        if queued == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the writer never queued");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(
        lock("sem-cluster-a", "shelf")
            .shared()
            .try_acquire()
            .await
            .unwrap()
            .is_none(),
        "a new reader waits behind the queued writer"
    );
    let released = Instant::now();
    reader.release().await.unwrap();
    let (got, guard) = writing.await.unwrap();
    assert!(got.duration_since(released) < Duration::from_secs(1));
    guard.release().await.unwrap();
}
