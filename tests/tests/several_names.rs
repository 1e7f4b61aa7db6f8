//! `name = [...]` and `LockSet`: several locks taken all or none, in one canonical order, so
//! that callers naming the same locks in opposite orders never deadlock; a name listed
//! twice is one lock; the guard gives each lock's fencing token.
//!
//! The transfers run in tasks of two clients (each a process of its own to Redis) and in two
//! `contender` processes at once, half of them naming the accounts the other way round.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis_locked::{ClientBuilder, Lock, LockError, LockSet, LockSetGuard, redis_lock};
use redis_locked_tests::{KilledOnDrop, RedisCluster, RedisServer, read_counter};

/// One unit from `from` to `to`, reading both counters before writing either: two calls
/// that overlapped on an account would lose a unit.
#[redis_lock(name = ["{from}", "{to}"], client = "pair-a", expire = 5, timeout = 20)]
async fn transfer_a(url: &str, from: &str, to: &str) -> Result<(), LockError> {
    move_one(url, from, to).await
}

#[redis_lock(name = ["{from}", "{to}"], client = "pair-b", expire = 5, timeout = 20)]
async fn transfer_b(url: &str, from: &str, to: &str) -> Result<(), LockError> {
    move_one(url, from, to).await
}

async fn move_one(url: &str, from: &str, to: &str) -> Result<(), LockError> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let a: Option<i64> = redis::cmd("GET").arg(from).query_async(&mut conn).await?;
    let b: Option<i64> = redis::cmd("GET").arg(to).query_async(&mut conn).await?;
    tokio::task::yield_now().await;
    let _: () = redis::cmd("SET")
        .arg(from)
        .arg(a.unwrap_or(0) - 1)
        .query_async(&mut conn)
        .await?;
    let _: () = redis::cmd("SET")
        .arg(to)
        .arg(b.unwrap_or(0) + 1)
        .query_async(&mut conn)
        .await?;
    Ok(())
}

/// 8 tasks on two clients and 2 processes transfer between two accounts, half of them
/// naming them the other way round: nobody deadlocks (each call has a 20 s timeout), and
/// the balances are exact: every transfer each way happened once and whole. Taken in the
/// order written instead, the two directions would each hold one account and wait for the
/// other until their timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_naming_a_pair_in_opposite_orders_never_deadlock_and_lose_nothing() {
    let server = RedisServer::start();
    let url = server.url();
    for client in ["pair-a", "pair-b"] {
        redis_locked::register(client, &url).unwrap();
    }
    const PER_TASK: u32 = 40;
    const PER_PROCESS: u32 = 40;
    let processes: Vec<_> = [("savings", "checking"), ("checking", "savings")]
        .into_iter()
        .map(|(from, to)| {
            Command::new(env!("CARGO_BIN_EXE_contender"))
                .args(["transfer", &url, from, to, &PER_PROCESS.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .expect("start the contender")
        })
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..8 {
        let url = url.clone();
        // Tasks 0-2 and 4-6 move savings to checking, 3 and 7 the other way.
        let (from, to) = match task % 4 {
            3 => ("checking", "savings"),
            _ => ("savings", "checking"),
        };
        tasks.push(tokio::spawn(async move {
            for _ in 0..PER_TASK {
                match task % 2 {
                    0 => transfer_a(&url, from, to).await,
                    _ => transfer_b(&url, from, to).await,
                }
                .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for process in processes {
        let output = process.wait_with_output().unwrap();
        assert!(output.status.success());
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "DONE");
    }
    let mut conn = server.connection();
    // Savings to checking: 6 tasks and a process; back: 2 tasks and a process.
    let net = i64::from(6 * PER_TASK + PER_PROCESS) - i64::from(2 * PER_TASK + PER_PROCESS);
    assert_eq!(read_counter(&mut conn, "savings"), -net);
    assert_eq!(read_counter(&mut conn, "checking"), net);
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// A set one of whose locks is held elsewhere is not taken at all: the call times out, and
/// the lock it could take is free again when the error returns.
#[tokio::test(flavor = "multi_thread")]
async fn a_set_is_taken_all_or_none() {
    let server = RedisServer::start();
    for client in ["none-holder", "none-set"] {
        redis_locked::register(client, &server.url()).unwrap();
    }
    let held = Lock::with_client("none-holder", "b")
        .unwrap()
        .acquire(None)
        .await
        .unwrap();
    let set = LockSet::with_client("none-set", ["b", "a"]).unwrap();
    let error = set
        .acquire(Some(Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert!(matches!(error, LockError::Timeout { .. }), "{error:?}");
    let a = Lock::with_client("none-holder", "a").unwrap();
    assert!(
        !a.is_locked().await.unwrap(),
        "the lock taken before the one that timed out is free again"
    );
    held.release().await.unwrap();
    let guard = set.acquire(Some(Duration::from_secs(1))).await.unwrap();
    assert_eq!(guard.names().collect::<Vec<_>>(), ["a", "b"]);
    guard.release().await.unwrap();
}

#[redis_lock(name = ["order:{id}", "order:{again}", "stock:{id}"], client = "twice", guard = held)]
async fn listed_twice(id: u64, again: u64) -> Result<Vec<(String, u64)>, LockError> {
    let held: &LockSetGuard = held;
    let _ = again;
    Ok(held
        .fencing_tokens()
        .map(|(name, token)| (name.to_string(), token))
        .collect())
}

/// A name listed twice is one lock, taken once (not a wait for itself), and the guard gives
/// each lock's own fencing token, by name.
#[tokio::test(flavor = "multi_thread")]
async fn a_name_listed_twice_is_one_lock_and_each_lock_has_its_token() {
    let server = RedisServer::start();
    redis_locked::register("twice", &server.url()).unwrap();
    let tokens = tokio::time::timeout(Duration::from_secs(5), listed_twice(7, 7))
        .await
        .expect("a name listed twice does not wait for itself")
        .unwrap();
    let names: Vec<&str> = tokens.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["order:7", "stock:7"]);
    let mut conn = server.connection();
    for (name, token) in &tokens {
        let counter: u64 = redis::cmd("GET")
            .arg(format!("lock:{{{name}}}:fence"))
            .query(&mut conn)
            .unwrap();
        assert_eq!(*token, counter, "{name}'s token is its own counter's");
    }
}

#[redis_lock(name = ["p", "q"], client = "set-abort", expire = 0.3, auto_renew, on_lost = "abort")]
async fn holds_p_and_q() -> Result<(), LockError> {
    std::future::pending::<()>().await;
    Ok(())
}

/// Losing any lock of the set stops an aborting body, and the call frees the others.
#[tokio::test(flavor = "multi_thread")]
async fn losing_one_lock_of_a_set_stops_an_aborting_body() {
    let server = RedisServer::start();
    redis_locked::register("set-abort", &server.url()).unwrap();
    let call = tokio::spawn(holds_p_and_q());
    let q = Lock::with_client("set-abort", "q").unwrap();
    let p = Lock::with_client("set-abort", "p").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(p.is_locked().await.unwrap() && q.is_locked().await.unwrap()) {
        assert!(Instant::now() < deadline, "the call never held both");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(q.reset().await.unwrap());
    let error = tokio::time::timeout(Duration::from_secs(3), call)
        .await
        .expect("the body is stopped once renewal finds q gone")
        .unwrap()
        .unwrap_err();
    assert!(matches!(error, LockError::Lost { .. }), "{error:?}");
    assert!(!p.is_locked().await.unwrap(), "p was released");
}

/// A process holding a set is killed: both locks are free when their lease ends.
#[tokio::test(flavor = "multi_thread")]
async fn a_set_whose_holder_is_killed_is_free_at_its_lease_end() {
    let server = RedisServer::start();
    redis_locked::register("set-crash", &server.url()).unwrap();
    let mut holder = KilledOnDrop(
        Command::new(env!("CARGO_BIN_EXE_contender"))
            .args(["hold-set", &server.url(), "1", "left", "right"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(holder.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "HOLDING");
    holder.kill().unwrap();
    holder.wait().unwrap();
    let killed = Instant::now();
    let set = LockSet::with_client("set-crash", ["right", "left"]).unwrap();
    let guard = set.acquire(Some(Duration::from_secs(10))).await.unwrap();
    assert!(killed.elapsed() < Duration::from_millis(1500));
    guard.release().await.unwrap();
}

/// On a Redis Cluster the names of a set may live on different shards: it is taken all or
/// none all the same, lock by lock in the same order.
#[tokio::test(flavor = "multi_thread")]
async fn a_set_across_the_shards_of_a_cluster() {
    let cluster = RedisCluster::start(3, 0);
    for client in ["set-cluster-a", "set-cluster-b"] {
        ClientBuilder::cluster(cluster.seed_urls())
            .register(client)
            .unwrap();
    }
    // Names whose keys hash to different shards.
    let names = ["alpha", "bravo", "charlie", "delta", "echo"];
    let shards: std::collections::HashSet<u16> = names
        .iter()
        .map(|name| cluster.master_of(&format!("lock:{{{name}}}")).port())
        .collect();
    assert!(shards.len() > 1, "the names span several shards");
    let held = Lock::with_client("set-cluster-a", "echo")
        .unwrap()
        .acquire(None)
        .await
        .unwrap();
    let set = LockSet::with_client("set-cluster-b", names).unwrap();
    assert!(matches!(
        set.acquire(Some(Duration::from_millis(200))).await,
        Err(LockError::Timeout { .. })
    ));
    for name in &names[..4] {
        let lock = Lock::with_client("set-cluster-a", *name).unwrap();
        assert!(!lock.is_locked().await.unwrap(), "{name} was let go");
    }
    held.release().await.unwrap();
    let guard = set.acquire(Some(Duration::from_secs(2))).await.unwrap();
    assert_eq!(guard.guards().len(), 5);
    guard.release().await.unwrap();
}
