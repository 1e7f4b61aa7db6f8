//! Tests that run in parallel in one binary, each against a redis-server of its own,
//! through the code that names only the default client: each test builds a `Client` and
//! runs in its scope (README, "Testing your code").
//!
//! The binary's registered default points at a port nobody listens on, as an application's
//! `init` with its production URL would in a test: a lock that reached it would fail.
//!
//! The four `pair_*` tests meet in pairs, one async and one sync test each, while holding
//! the same lock name: each checks, while its partner holds it too, that its lock is on its
//! own server and the partner's on the partner's. They are named so that partners sort
//! next to each other, and libtest (which runs tests in name order, two at a time on two
//! cores) starts them together. Under nextest, which runs every test in a process of its
//! own, each of them runs its partner itself, on a thread of its own.

use std::sync::{Condvar, Mutex, Once};
use std::time::Duration;

use redis_locked::{Client, ClientBuilder, Lock, LockError, redis_lock};
use redis_locked_tests::{RedisServer, lock_keys, owner_token};

/// The registered default: nothing listens on port 1 of the loopback, so a lock that uses
/// it fails at once with `Connect`.
const UNREACHABLE: &str = "redis://127.0.0.1:1";

fn register_unreachable_default() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| {
        ClientBuilder::new(UNREACHABLE)
            .outage_timeout(Duration::ZERO)
            .init()
            .unwrap();
    });
}

fn own_client(server: &RedisServer) -> Client {
    register_unreachable_default();
    ClientBuilder::new(server.url()).build().unwrap()
}

/// The owner token in `key` on the server at `url`.
fn owner(url: &str, key: &str) -> Option<String> {
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    owner_token(&mut conn, key)
}

/// Two tests handing each other a value, each waiting for the other.
struct Exchange {
    values: Mutex<Vec<String>>,
    both_here: Condvar,
}

impl Exchange {
    const fn new() -> Exchange {
        Exchange {
            values: Mutex::new(Vec::new()),
            both_here: Condvar::new(),
        }
    }

    /// Leaves `mine` and returns the partner's, once it has left one.
    fn swap(&self, mine: String) -> String {
        let mut values = self.values.lock().unwrap();
        values.push(mine.clone());
        self.both_here.notify_all();
        let (values, timeout) = self
            .both_here
            .wait_timeout_while(values, Duration::from_secs(60), |values| values.len() < 2)
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "the partner test never held its lock while this one did \
             (these tests prove that they run in parallel: run them with --test-threads=2 or more)"
        );
        values.iter().find(|v| **v != mine).unwrap().clone()
    }
}

/// The meeting points of one pair: while both hold their locks, and once both checked.
struct Pair {
    holding: Exchange,
    checked: Exchange,
}

static PAIR_ONE: Pair = Pair {
    holding: Exchange::new(),
    checked: Exchange::new(),
};
static PAIR_TWO: Pair = Pair {
    holding: Exchange::new(),
    checked: Exchange::new(),
};

/// Run while holding lock `report` on the server at `url` under `token`: waits until the
/// partner holds `report` too, then checks that each holds it on its own server, and waits
/// for the partner's checks before returning (and releasing).
fn meet_while_holding(pair: &Pair, url: &str, token: &str) {
    let key = "lock:{report}";
    let partner = pair.holding.swap(format!("{url} {token}"));
    let (partner_url, partner_token) = partner.split_once(' ').unwrap();
    assert_ne!(partner_url, url, "each test has a server of its own");
    assert_eq!(owner(url, key).as_deref(), Some(token), "mine on my server");
    assert_eq!(
        owner(partner_url, key).as_deref(),
        Some(partner_token),
        "the partner's on its server, not mine"
    );
    pair.checked.swap(url.to_string());
}

#[redis_lock(name = "report", expire = 30, guard = lock)]
async fn report_async(pair: &'static Pair, url: String) -> Result<(), LockError> {
    let token = lock.token().to_string();
    assert!(
        Lock::new("report")?.is_locked().await?,
        "Lock::new: this client"
    );
    tokio::task::spawn_blocking(move || meet_while_holding(pair, &url, &token))
        .await
        .unwrap();
    Ok(())
}

#[redis_lock(name = "report", expire = 30, guard = lock)]
fn report_sync(pair: &Pair, url: &str) -> Result<(), LockError> {
    assert!(
        Lock::new("report")?.is_locked_blocking()?,
        "Lock::new: this client"
    );
    meet_while_holding(pair, url, lock.token());
    Ok(())
}

async fn async_test_of(pair: &'static Pair) {
    let server = RedisServer::start();
    let client = own_client(&server);
    client
        .scope(report_async(pair, server.url()))
        .await
        .unwrap();
    let report = client.scope(async { Lock::new("report")?.is_locked().await });
    assert!(!report.await.unwrap(), "released");
    assert!(lock_keys(&mut server.connection()).is_empty());
}

fn sync_test_of(pair: &Pair) {
    let server = RedisServer::start();
    let client = own_client(&server);
    let _scope = client.enter();
    report_sync(pair, &server.url()).unwrap();
    assert!(!Lock::new("report").unwrap().is_locked_blocking().unwrap());
    assert!(lock_keys(&mut server.connection()).is_empty());
}

/// Starts `partner` on a thread of its own where this test's partner test will not run in
/// this process: under nextest, one process per test.
fn partner_if_alone(partner: fn()) -> Option<std::thread::JoinHandle<()>> {
    let alone =
        std::env::var_os("NEXTEST_EXECUTION_MODE").is_some_and(|mode| mode == "process-per-test");
    alone.then(|| std::thread::spawn(partner))
}

/// The async test of `pair`, on a runtime of its own (`worker_threads` workers; 0: current
/// thread), as a partner started by [`partner_if_alone`].
fn async_partner(pair: &'static Pair, worker_threads: usize) {
    let runtime = match worker_threads {
        0 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    };
    runtime.unwrap().block_on(async_test_of(pair));
}

fn joined(partner: Option<std::thread::JoinHandle<()>>) {
    if let Some(partner) = partner {
        partner.join().expect("the partner test passed");
    }
}

#[tokio::test]
async fn pair_one_async() {
    let partner = partner_if_alone(|| sync_test_of(&PAIR_ONE));
    async_test_of(&PAIR_ONE).await;
    joined(partner);
}

#[test]
fn pair_one_sync() {
    let partner = partner_if_alone(|| async_partner(&PAIR_ONE, 0));
    sync_test_of(&PAIR_ONE);
    joined(partner);
}

// Multi-threaded: the scope follows the future onto whichever worker polls it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_two_async() {
    let partner = partner_if_alone(|| sync_test_of(&PAIR_TWO));
    async_test_of(&PAIR_TWO).await;
    joined(partner);
}

#[test]
fn pair_two_sync() {
    let partner = partner_if_alone(|| async_partner(&PAIR_TWO, 2));
    sync_test_of(&PAIR_TWO);
    joined(partner);
}

// Binds its guard, so each call takes a fencing token: the counter in `<key>:fence`
// tells which server the call locked on.
#[redis_lock(name = "job", expire = 30, guard = held)]
async fn job() -> Result<(), LockError> {
    assert!(held.fencing_token() > 0);
    Ok(())
}

// Binds its guard, so each call takes a fencing token: the counter in `<key>:fence`
// tells which server the call locked on.
#[redis_lock(name = "job", expire = 30, guard = held)]
fn job_sync() -> Result<(), LockError> {
    assert!(held.fencing_token() > 0);
    Ok(())
}

fn is_unreachable_default(result: &Result<(), LockError>) -> bool {
    matches!(result, Err(LockError::Connect { address, .. }) if address == "127.0.0.1:1")
}

#[tokio::test]
async fn spawned_tasks_and_threads_see_the_registry_not_the_scope() {
    let server = RedisServer::start();
    let client = own_client(&server);
    let handle = client.clone();
    client
        .scope(async move {
            job().await.unwrap();
            let spawned = tokio::spawn(job()).await.unwrap();
            assert!(is_unreachable_default(&spawned), "{spawned:?}");
            // Given a scope of its own, a spawned task uses the client.
            tokio::spawn(handle.scope(job())).await.unwrap().unwrap();
        })
        .await;

    let _scope = client.enter();
    job_sync().unwrap();
    let on_other_thread = std::thread::spawn(job_sync).join().unwrap();
    assert!(
        is_unreachable_default(&on_other_thread),
        "{on_other_thread:?}"
    );
}

// Binds its guard, so each call takes a fencing token: the counter in `<key>:fence`
// tells which server the call locked on.
#[redis_lock(name = "invoice", client = "billing", expire = 30, guard = held)]
async fn bill() -> Result<(), LockError> {
    assert!(held.fencing_token() > 0);
    Ok(())
}

// Binds its guard, so each call takes a fencing token: the counter in `<key>:fence`
// tells which server the call locked on.
#[redis_lock(name = "invoice", client = "billing", expire = 30, guard = held)]
fn bill_sync() -> Result<(), LockError> {
    assert!(held.fencing_token() > 0);
    Ok(())
}

#[tokio::test]
async fn scope_as_stands_in_for_a_named_client() {
    let server = RedisServer::start();
    let client = own_client(&server);
    client.scope_as("billing", bill()).await.unwrap();
    let counter = |server: &RedisServer| -> u64 {
        redis::cmd("GET")
            .arg("lock:{invoice}:fence")
            .query(&mut server.connection())
            .unwrap()
    };
    let first = counter(&server);
    let fenced = client.scope_as("billing", async {
        let lock = Lock::with_client("billing", "invoice")?;
        let guard = lock.acquire(None).await?;
        let fence = guard.fencing_token();
        guard.release().await?;
        Ok::<_, LockError>(fence)
    });
    let second = fenced.await.unwrap();
    assert!(second > first, "the second acquisition on this server");
    // `scope` is the default client's: it does not stand in for "billing".
    assert!(matches!(
        client.scope(bill()).await,
        Err(LockError::UnknownClient { client }) if client == "billing"
    ));
    let _scope = client.enter_as("billing");
    bill_sync().unwrap();
    assert!(
        counter(&server) > second,
        "every acquisition on this test's server"
    );
}

#[test]
fn entered_scopes_nest_and_restore_the_previous_one() {
    let outer_server = RedisServer::start();
    let inner_server = RedisServer::start();
    let outer = own_client(&outer_server);
    let inner = own_client(&inner_server);
    let fence = |server: &RedisServer| -> Option<u64> {
        redis::cmd("GET")
            .arg("lock:{job}:fence")
            .query(&mut server.connection())
            .unwrap()
    };
    let outer_scope = outer.enter();
    job_sync().unwrap();
    let first = fence(&outer_server).expect("the outer scope's server");
    {
        let _inner_scope = inner.enter();
        job_sync().unwrap();
    }
    assert!(fence(&inner_server).is_some(), "the inner scope's server");
    assert_eq!(fence(&outer_server), Some(first), "not the outer's");
    job_sync().unwrap();
    assert!(
        fence(&outer_server).is_some_and(|f| f > first),
        "the outer scope's server again"
    );
    drop(outer_scope);
    assert!(is_unreachable_default(&job_sync()), "the registry again");
}

#[tokio::test]
async fn an_async_scope_wins_over_the_threads_scope() {
    let thread_server = RedisServer::start();
    let task_server = RedisServer::start();
    let on_thread = own_client(&thread_server);
    let in_task = own_client(&task_server);
    let _scope = on_thread.enter();
    in_task.scope(job()).await.unwrap();
    job().await.unwrap();
    let fence = |server: &RedisServer| -> Option<u64> {
        redis::cmd("GET")
            .arg("lock:{job}:fence")
            .query(&mut server.connection())
            .unwrap()
    };
    assert!(fence(&task_server).is_some(), "the task's scope");
    assert!(fence(&thread_server).is_some(), "the thread's scope");
}

#[redis_lock(name = "nested", expire = 30)]
async fn holds_nested_then_calls(other: Client) -> Result<Result<(), LockError>, LockError> {
    Ok(other.scope(inner_nested()).await)
}

#[redis_lock(name = "nested", expire = 30, timeout = 5)]
async fn inner_nested() -> Result<(), LockError> {
    Ok(())
}

/// The check for a call that would wait for a lock its caller holds compares clients, not
/// names: the same lock name on another client is another lock.
#[tokio::test]
async fn the_same_name_on_another_client_is_another_lock() {
    let first_server = RedisServer::start();
    let second_server = RedisServer::start();
    let first = own_client(&first_server);
    let second = own_client(&second_server);
    let nested = first.scope(holds_nested_then_calls(second)).await.unwrap();
    assert!(nested.is_ok(), "{nested:?}");
    let same = first.scope(holds_nested_then_calls(first.clone())).await;
    assert!(
        matches!(same, Ok(Err(LockError::WouldDeadlock { .. }))),
        "{same:?}"
    );
}

/// Connections to the server other than the one asking.
fn other_connections(conn: &mut redis::Connection) -> usize {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(conn).unwrap();
    list.lines().count() - 1
}

#[tokio::test]
async fn dropping_a_client_closes_its_connections() {
    let server = RedisServer::start();
    let mut conn = server.connection();
    let client = own_client(&server);
    // A held lock and a waiter for it: pooled connections and the pub/sub connection.
    let guard = client.lock("busy").unwrap().acquire(None).await.unwrap();
    let waiter = tokio::spawn(
        client.scope(async { Lock::new("busy")?.acquire(None).await?.release().await }),
    );
    redis_locked_tests::wait_for_subscribers(&server, "lock:{busy}", 1).await;
    guard.release().await.unwrap();
    waiter.await.unwrap().unwrap();
    std::thread::spawn({
        let client = client.clone();
        move || job_sync_on(&client)
    })
    .join()
    .unwrap();
    assert!(other_connections(&mut conn) >= 2, "pooled and pub/sub");

    drop(client);
    // The server tells of closed connections by no event: ask until they are gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while other_connections(&mut conn) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "connections left open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn job_sync_on(client: &Client) {
    let _scope = client.enter();
    job_sync().unwrap();
}

/// The README's example ("Testing your code"), as written there.
mod readme_example {
    use redis_locked::{ClientBuilder, LockError, redis_lock};
    use redis_locked_tests::RedisServer;

    #[redis_lock(name = "invoice:{order_id}", expire = 10)]
    async fn bill(order_id: u64) -> Result<u64, LockError> {
        Ok(order_id)
    }

    #[redis_lock(name = "report", expire = 10)]
    fn report() -> Result<(), LockError> {
        Ok(())
    }

    #[tokio::test]
    async fn bills_an_order() -> Result<(), LockError> {
        let redis = RedisServer::start(); // your throwaway redis-server on a free port
        let client = ClientBuilder::new(redis.url()).build()?;
        assert_eq!(client.scope(bill(42)).await?, 42); // locked on this test's server
        Ok(())
    }

    #[test]
    fn reports() -> Result<(), LockError> {
        let redis = RedisServer::start();
        let client = ClientBuilder::new(redis.url()).build()?;
        let _scope = client.enter(); // this thread, until dropped
        report()
    }
}
