//! Odd input at run time, against a real redis-server: lock names with whitespace, control
//! characters, Unicode, braces, a NUL byte or 64 KiB of text, names built by the attribute
//! from arguments that format to braces or to nothing, and leases and timeouts at the edges
//! of what a `Duration` holds.
//!
//! Each odd name must live in the key `lock:{<name>}` exactly, exclude a second acquirer,
//! release, and wake a waiter of another client through pub/sub on a channel of that name.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis_locked::{Lock, LockError, redis_lock};
use redis_locked_tests::{RedisServer, owner_token, token_in};

/// A server with `clients` registered on it, each with its own waiter queue: a waiter of
/// one is woken by the other's release only through Redis, as another process would be.
fn server(clients: &[&str]) -> RedisServer {
    let server = RedisServer::start();
    for client in clients {
        redis_locked::register(client, &server.url()).unwrap();
    }
    server
}

fn odd_names() -> Vec<String> {
    [
        "with spaces",
        " ",
        "line\nbreak\r\n",
        "tab\there",
        "emoji 🔒😀👨‍👩‍👧",
        "\u{202E}rtl \u{05D0}\u{05D1}\u{05D2} \u{0627}\u{0644}",
        "combining e\u{301}\u{302}\u{303}",
        "{",
        "}",
        "}{",
        "{{}}",
        "{x}",
        "{}",
        "nul\0byte",
        "\0",
        "glob*?[a]",
        "quote\"back\\slash'",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        "x".repeat(64 * 1024),
        "{}".repeat(32 * 1024),
        "é".repeat(32 * 1024),
    ])
    .collect()
}

/// What an odd name is called in assertion messages: long names would drown them.
fn shown(name: &str) -> String {
    if name.len() > 40 {
        format!("{:?}... ({} bytes)", &name[..20], name.len())
    } else {
        format!("{name:?}")
    }
}

fn exists(conn: &mut redis::Connection, key: &str) -> bool {
    redis::cmd("EXISTS").arg(key).query(conn).unwrap()
}

fn get(conn: &mut redis::Connection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(conn).unwrap()
}

fn pttl(conn: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(conn).unwrap()
}

/// Every key in the server, as raw bytes.
/// The lock keys in Redis (each lock also keeps a fencing counter, `<key>:fence`, which
/// outlives it by design and is left out here).
fn keys(conn: &mut redis::Connection) -> Vec<Vec<u8>> {
    let all: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(conn).unwrap();
    all.into_iter()
        .filter(|k| !k.ends_with(b"}:fence"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_names_async() {
    let server = server(&["bad-async-a", "bad-async-b"]);
    let mut conn = server.connection();
    for name in odd_names() {
        let lock = Lock::with_client("bad-async-a", name.clone())
            .unwrap()
            .expire(Duration::from_secs(60));
        let key = expected_key(&name, lock.key());
        assert_eq!(lock.key(), key, "{}", shown(&name));
        assert_eq!(lock.name(), name);

        let guard = lock.acquire(Some(Duration::from_secs(2))).await.unwrap();
        assert_eq!(
            keys(&mut conn),
            vec![key.clone().into_bytes()],
            "{}",
            shown(&name)
        );
        assert_eq!(owner_token(&mut conn, &key).as_deref(), Some(guard.token()));
        assert_eq!(
            get(&mut conn, &format!("{key}:fence")),
            Some(guard.fencing_token().to_string()),
            "{}",
            shown(&name)
        );
        assert!(lock.is_locked().await.unwrap());
        assert_eq!(lock.owner().await.unwrap().as_deref(), Some(guard.token()));
        assert!(
            lock.try_acquire().await.unwrap().is_none(),
            "{}",
            shown(&name)
        );
        // Diagnostics carry the name; formatting them must not trip over it.
        match lock.acquire(Some(Duration::ZERO)).await {
            Err(error @ LockError::Timeout { .. }) => {
                assert!(!error.to_string().is_empty());
                assert!(!format!("{error:?} {lock:?} {guard:?}").is_empty());
            }
            other => panic!("{}: {other:?}", shown(&name)),
        }

        // A waiter of the other client: it learns of the release only by pub/sub on the
        // channel named after the key.
        let other = Lock::with_client("bad-async-b", name.clone())
            .unwrap()
            .expire(Duration::from_secs(60));
        assert!(
            other.try_acquire().await.unwrap().is_none(),
            "{}",
            shown(&name)
        );
        let waiter = tokio::spawn(async move {
            let guard = other.acquire(Some(Duration::from_secs(10))).await;
            (Instant::now(), guard)
        });
        redis_locked_tests::wait_for_subscribers(&server, &key, 1).await;
        guard.release().await.unwrap();
        let released = Instant::now();
        let (acquired, second) = waiter.await.unwrap();
        let second = second.unwrap_or_else(|e| panic!("{}: {e}", shown(&name)));
        assert!(
            acquired.saturating_duration_since(released) < Duration::from_secs(2),
            "{}: woken by the release, not the 60 s lease",
            shown(&name)
        );
        assert_eq!(
            owner_token(&mut conn, &key).as_deref(),
            Some(second.token())
        );
        second.release().await.unwrap();
        assert!(!exists(&mut conn, &key), "{}", shown(&name));
    }
}

#[test]
fn odd_names_blocking() {
    let server = server(&["bad-sync-a", "bad-sync-b"]);
    let mut conn = server.connection();
    for name in odd_names() {
        let lock = Lock::with_client("bad-sync-a", name.clone())
            .unwrap()
            .expire(Duration::from_secs(60));
        let key = expected_key(&name, lock.key());
        assert_eq!(lock.key(), key, "{}", shown(&name));
        let guard = lock.acquire_blocking(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(owner_token(&mut conn, &key).as_deref(), Some(guard.token()));
        assert!(lock.try_acquire_blocking().unwrap().is_none());

        let other = Lock::with_client("bad-sync-b", name.clone())
            .unwrap()
            .expire(Duration::from_secs(60));
        let waiter = std::thread::spawn(move || {
            let guard = other.acquire_blocking(Some(Duration::from_secs(10)));
            (Instant::now(), guard)
        });
        wait_for_subscribers_blocking(&mut conn, &key);
        guard.release().unwrap();
        let released = Instant::now();
        let (acquired, second) = waiter.join().unwrap();
        let second = second.unwrap_or_else(|e| panic!("{}: {e}", shown(&name)));
        assert!(
            acquired.saturating_duration_since(released) < Duration::from_secs(2),
            "{}: woken by the release, not the 60 s lease",
            shown(&name)
        );
        drop(second);
        assert!(!exists(&mut conn, &key), "{}", shown(&name));
    }
}

fn wait_for_subscribers_blocking(conn: &mut redis::Connection, channel: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, n): (Vec<u8>, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query(conn)
            .unwrap();
        if n >= 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nobody subscribed to {channel:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Counts the bodies that ran, to show that a refused lock keeps the body from running.
static BODIES: AtomicUsize = AtomicUsize::new(0);

#[redis_lock(name = "job:{id}", client = "bad-attr", expire = 30)]
fn job(id: &str, conn: &mut redis::Connection) -> Result<Option<String>, LockError> {
    BODIES.fetch_add(1, Ordering::SeqCst);
    Ok(get(conn, &format!("lock:{{job:{id}}}")))
}

#[redis_lock(name = "job:{id}", client = "bad-attr", expire = 30)]
async fn job_async(
    id: String,
    conn: &mut redis::aio::MultiplexedConnection,
) -> Result<Option<String>, LockError> {
    Ok(redis::cmd("GET")
        .arg(format!("lock:{{job:{id}}}"))
        .query_async(conn)
        .await?)
}

#[redis_lock(name = "{id}", client = "bad-attr-empty")]
fn only_id(id: &str) -> Result<(), LockError> {
    let _ = id;
    BODIES.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[redis_lock(name = "{id}", client = "bad-attr-empty")]
async fn only_id_async(id: &str) -> Result<(), LockError> {
    let _ = id;
    BODIES.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Formats to whatever it holds: a `Display` that writes braces or nothing.
struct Shown(&'static str);

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

#[redis_lock(name = "{value}:{value}", client = "bad-attr")]
fn twice(value: Shown, conn: &mut redis::Connection) -> Result<Vec<Vec<u8>>, LockError> {
    let _ = value;
    Ok(keys(conn))
}

#[tokio::test]
async fn interpolated_arguments_with_braces_are_taken_verbatim() {
    let server = server(&["bad-attr"]);
    let mut conn = server.connection();
    let mut aconn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for id in [
        "{x}", "{", "}", "}{", "{}", "{{}}", "{0}", "{id}", "", " ", "\0", "😀",
    ] {
        let owner = job(id, &mut conn).unwrap();
        // The key holds a token and the holder's description, which names the template.
        let held = |owner: Option<String>| {
            owner.is_some_and(|v| token_in(&v).len() == 32 && v.ends_with(" fn:job:{id}"))
        };
        assert!(
            held(owner),
            "{id:?}: key lock:{{job:{id}}} held in the body"
        );
        let owner = job_async(id.to_owned(), &mut aconn).await.unwrap();
        assert!(held(owner), "{id:?} (async)");
        assert!(keys(&mut conn).is_empty(), "{id:?}: released after");
    }
    for (value, key) in [("{}", "lock:{{}:{}}"), ("", "lock:{:}")] {
        let keys = twice(Shown(value), &mut conn).unwrap();
        assert_eq!(keys, vec![key.as_bytes().to_vec()], "{value:?}");
    }
    // A name starting with `}` would make an empty hash tag: its key gets one of its own.
    let keys = twice(Shown("}"), &mut conn).unwrap();
    let key = String::from_utf8(keys[0].clone()).unwrap();
    assert_eq!(keys.len(), 1);
    assert!(
        key.starts_with("lock:}{") && key.ends_with("}}:}}"),
        "{key}"
    );
}

#[tokio::test]
async fn a_name_that_formats_to_nothing_is_invalid_config_and_the_body_does_not_run() {
    let _server = server(&["bad-attr-empty"]);
    let before = BODIES.load(Ordering::SeqCst);
    assert!(
        matches!(only_id(""), Err(LockError::InvalidConfig { .. })),
        "sync"
    );
    assert!(
        matches!(
            only_id_async("").await,
            Err(LockError::InvalidConfig { .. })
        ),
        "async"
    );
    assert_eq!(BODIES.load(Ordering::SeqCst), before, "no body ran");
    only_id("x").unwrap();
    only_id_async("x").await.unwrap();
}

/// The leases written for the attribute's edge values.
#[redis_lock(name = "year", client = "bad-lease-attr", expire = 31536000)]
fn year_lease(conn: &mut redis::Connection) -> Result<i64, LockError> {
    Ok(pttl(conn, "lock:{year}"))
}

#[redis_lock(name = "hex", client = "bad-lease-attr", expire = 0x10)]
fn hex_lease(conn: &mut redis::Connection) -> Result<i64, LockError> {
    Ok(pttl(conn, "lock:{hex}"))
}

#[redis_lock(name = "longest", client = "bad-lease-attr", expire = 18446744073)]
async fn longest_lease(conn: &mut redis::aio::MultiplexedConnection) -> Result<i64, LockError> {
    Ok(redis::cmd("PTTL")
        .arg("lock:{longest}")
        .query_async(conn)
        .await?)
}

#[redis_lock(name = "ms", client = "bad-lease-attr", expire = 0.001, timeout = 0.0)]
fn millisecond_lease() -> Result<(), LockError> {
    Ok(())
}

#[tokio::test]
async fn attribute_leases_at_the_edges() {
    let server = server(&["bad-lease-attr"]);
    let mut conn = server.connection();
    let year = 31_536_000_000;
    let ttl = year_lease(&mut conn).unwrap();
    assert!(ttl > year - 10_000 && ttl <= year, "one year: {ttl} ms");
    let ttl = hex_lease(&mut conn).unwrap();
    assert!(ttl > 6_000 && ttl <= 16_000, "0x10 is 16 s: {ttl} ms");
    let mut aconn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let longest = 18_446_744_073_000;
    let ttl = longest_lease(&mut aconn).await.unwrap();
    assert!(
        ttl > longest - 10_000 && ttl <= longest,
        "584 years: {ttl} ms"
    );
    millisecond_lease().unwrap();
    assert!(keys(&mut conn).is_empty());
}

#[tokio::test]
async fn one_millisecond_lease() {
    let server = server(&["bad-ms"]);
    let mut conn = server.connection();
    let lock = Lock::with_client("bad-ms", "ms")
        .unwrap()
        .expire(Duration::from_millis(1));
    let first = lock.acquire(Some(Duration::ZERO)).await.unwrap();
    assert!(pttl(&mut conn, "lock:{ms}") <= 1);
    // The key expires on its own, and a second acquirer gets the lock.
    let second = lock.acquire(Some(Duration::from_secs(2))).await.unwrap();
    assert_ne!(first.token(), second.token());
    assert!(matches!(
        first.release().await,
        Err(LockError::Expired { .. })
    ));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!exists(&mut conn, "lock:{ms}"), "expired after 1 ms");
    assert!(matches!(
        second.release().await,
        Err(LockError::Expired { .. })
    ));

    let blocking = lock.acquire_blocking(Some(Duration::ZERO)).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(!exists(&mut conn, "lock:{ms}"));
    let again = lock.acquire_blocking(Some(Duration::ZERO)).unwrap();
    drop(blocking);
    drop(again);
}

#[tokio::test]
async fn one_year_and_longest_leases() {
    let server = server(&["bad-year"]);
    let mut conn = server.connection();
    let year = Duration::from_secs(365 * 24 * 3600);
    let lock = Lock::with_client("bad-year", "year").unwrap().expire(year);
    let guard = lock.acquire(None).await.unwrap();
    let ttl = pttl(&mut conn, "lock:{year}");
    let year_ms = year.as_millis() as i64;
    assert!(ttl > year_ms - 10_000 && ttl <= year_ms, "{ttl} ms");
    guard.release().await.unwrap();

    // The longest lease there is, renewed in the background: renewal must not overflow.
    let longest = Lock::with_client("bad-year", "longest")
        .unwrap()
        .expire(Duration::from_nanos(u64::MAX))
        .auto_renew(true);
    let guard = longest.acquire(None).await.unwrap();
    let ttl = pttl(&mut conn, "lock:{longest}");
    assert!(ttl > 18_446_744_073_709 - 10_000, "{ttl} ms");
    guard.extend(None).await.unwrap();
    guard.release().await.unwrap();
    let guard = longest.acquire_blocking(None).unwrap();
    guard.extend(Some(year)).unwrap();
    assert!(pttl(&mut conn, "lock:{longest}") <= year_ms);
    guard.release().unwrap();
}

#[tokio::test]
async fn impossible_leases_are_invalid_config_not_panics() {
    let server = server(&["bad-lease"]);
    let lock = Lock::with_client("bad-lease", "lease").unwrap();
    for lease in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(999),
        Duration::from_nanos(u64::MAX) + Duration::from_secs(1),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
    ] {
        let lock = lock.clone().expire(lease);
        assert!(
            matches!(
                lock.acquire(None).await,
                Err(LockError::InvalidConfig { .. })
            ),
            "{lease:?} (async)"
        );
        assert!(
            matches!(
                lock.acquire_blocking(Some(Duration::ZERO)),
                Err(LockError::InvalidConfig { .. })
            ),
            "{lease:?} (sync)"
        );
        assert!(
            matches!(
                lock.try_acquire().await,
                Err(LockError::InvalidConfig { .. })
            ),
            "{lease:?} (try)"
        );
    }
    assert!(keys(&mut server.connection()).is_empty());

    // And extending a held lock by one.
    let guard = lock.acquire(None).await.unwrap();
    for lease in [Duration::ZERO, Duration::MAX] {
        assert!(
            matches!(
                guard.extend(Some(lease)).await,
                Err(LockError::InvalidConfig { .. })
            ),
            "extend by {lease:?}"
        );
    }
    guard.release().await.unwrap();
}

/// Timeouts too long to add to `Instant::now()`, or nearly so.
fn huge_timeouts() -> [Duration; 4] {
    [
        Duration::MAX,
        Duration::from_secs(u64::MAX),
        Duration::from_nanos(u64::MAX),
        Duration::from_secs(10_000_000_000),
    ]
}

#[tokio::test]
async fn huge_timeouts_acquire_and_wait() {
    let _server = server(&["bad-timeout-a", "bad-timeout-b"]);
    let lock = Lock::with_client("bad-timeout-a", "t")
        .unwrap()
        .expire(Duration::from_secs(30));
    for timeout in huge_timeouts() {
        // Free: acquired at once.
        let guard = lock.acquire(Some(timeout)).await.unwrap();
        // Held: a waiter of the other client waits, and gets it on release.
        let other = Lock::with_client("bad-timeout-b", "t")
            .unwrap()
            .expire(Duration::from_secs(30));
        let waiter = tokio::spawn(async move { other.acquire(Some(timeout)).await });
        let sync_other = Lock::with_client("bad-timeout-b", "t")
            .unwrap()
            .expire(Duration::from_secs(30));
        let sync_waiter = std::thread::spawn(move || {
            sync_other
                .acquire_blocking(Some(timeout))
                .map(|guard| guard.release())
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        guard.release().await.unwrap();
        let second = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap_or_else(|_| panic!("{timeout:?}: the async waiter was not woken"))
            .unwrap()
            .unwrap_or_else(|e| panic!("{timeout:?}: {e}"));
        second.release().await.unwrap();
        sync_waiter.join().unwrap().unwrap().unwrap();
        let blocking = lock.acquire_blocking(Some(timeout)).unwrap();
        blocking.release().unwrap();
    }
}

#[tokio::test]
async fn zero_timeout_on_a_held_lock_times_out_at_once() {
    let _server = server(&["bad-zero"]);
    let lock = Lock::with_client("bad-zero", "z")
        .unwrap()
        .expire(Duration::from_secs(30));
    let guard = lock.acquire(None).await.unwrap();
    let start = Instant::now();
    assert!(matches!(
        lock.acquire(Some(Duration::ZERO)).await,
        Err(LockError::Timeout { .. })
    ));
    let other = lock.clone();
    let blocking = std::thread::spawn(move || {
        let start = Instant::now();
        let result = other.acquire_blocking(Some(Duration::ZERO));
        (
            start.elapsed(),
            matches!(result, Err(LockError::Timeout { .. })),
        )
    });
    let (waited, timed_out) = blocking.join().unwrap();
    assert!(timed_out, "sync");
    assert!(waited < Duration::from_millis(500), "sync: {waited:?}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    guard.release().await.unwrap();
}

/// A lock key written by someone else with the longest expiry Redis takes, or none: a
/// waiter's wake-up time, computed from the key's PTTL, must not overflow.
#[tokio::test]
async fn foreign_keys_with_extreme_expiries_time_out() {
    let server = server(&["bad-foreign"]);
    let mut conn = server.connection();
    // Redis refuses an expiry that overflows when added to its clock; halve until it takes one.
    let mut px = i64::MAX;
    loop {
        let set: redis::RedisResult<()> = redis::cmd("SET")
            .arg("lock:{foreign}")
            .arg("someone")
            .arg("PX")
            .arg(px)
            .query(&mut conn);
        if set.is_ok() {
            break;
        }
        px /= 2;
    }
    assert!(pttl(&mut conn, "lock:{foreign}") > i64::MAX / 4);
    let _: () = redis::cmd("SET")
        .arg("lock:{no-expiry}")
        .arg("someone")
        .query(&mut conn)
        .unwrap();
    for name in ["foreign", "no-expiry"] {
        let lock = Lock::with_client("bad-foreign", name).unwrap();
        let start = Instant::now();
        assert!(matches!(
            lock.acquire(Some(Duration::from_millis(100))).await,
            Err(LockError::Timeout { .. })
        ));
        assert!(matches!(
            lock.acquire_blocking(Some(Duration::from_millis(100))),
            Err(LockError::Timeout { .. })
        ));
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{name}: {:?}",
            start.elapsed()
        );
        assert_eq!(
            get(&mut conn, &format!("lock:{{{name}}}")).as_deref(),
            Some("someone")
        );
    }
}

/// The key of lock `name` with the prefix `lock:`: `lock:{<name>}`, except for a name that
/// starts with `}` (an empty hash tag), whose key carries a tag of its own and the name
/// (see `keys.rs`); that one is checked for its shape and taken as `actual`.
fn expected_key(name: &str, actual: &str) -> String {
    if name.starts_with('}') {
        assert!(
            actual.starts_with("lock:}{") && actual.ends_with(&format!("}}{name}}}")),
            "{actual}"
        );
        return actual.to_string();
    }
    format!("lock:{{{name}}}")
}
