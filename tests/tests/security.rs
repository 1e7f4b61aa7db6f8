//! Nobody but the holder can release, extend or take over a lock: not another client with
//! its own owner token, not a raw `EVALSHA` of the crate's own scripts with a guessed
//! token, not a `SET NX`. Owner tokens are 128 random bits, fresh for every acquisition.

use std::collections::HashSet;
use std::time::Duration;

use redis_locked::{ClientBuilder, Lock, LockError};
use redis_locked_tests::{RedisServer, owner_token, until_waiter_settled};

/// The arguments of every command the server ran so far (the slow log, with a threshold of
/// 0 µs, keeps them all).
fn commands_run(server: &RedisServer) -> Vec<Vec<String>> {
    let log: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query(&mut server.connection())
        .unwrap();
    log.into_iter()
        .filter_map(|entry| match entry {
            redis::Value::Array(fields) => match fields.into_iter().nth(3) {
                Some(redis::Value::Array(args)) => Some(
                    args.into_iter()
                        .map(|a| match a {
                            redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
                            other => format!("{other:?}"),
                        })
                        .collect(),
                ),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn owner(conn: &mut redis::Connection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(conn).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_releases_extends_and_handoffs_are_refused() {
    let server = RedisServer::start_with(&[
        "--slowlog-log-slower-than",
        "0",
        "--slowlog-max-len",
        "10000",
    ]);
    redis_locked::register("sec-owner", &server.url()).unwrap();
    let lock = Lock::with_client("sec-owner", "vault")
        .unwrap()
        .expire(Duration::from_secs(10));
    let key = "lock:{vault}";

    // Run each script once, to learn their hashes as anyone watching the server could:
    // extend and release, and a handover to a waiter of this process.
    let guard = lock.acquire(None).await.unwrap();
    guard.extend(None).await.unwrap();
    let waiter = {
        let lock = lock.clone();
        tokio::spawn(async move { lock.acquire(None).await })
    };
    until_waiter_settled(&server, key).await;
    guard.release().await.unwrap();
    waiter.await.unwrap().unwrap().release().await.unwrap();
    let evalshas: Vec<Vec<String>> = commands_run(&server)
        .into_iter()
        .filter(|args| args[0].eq_ignore_ascii_case("evalsha"))
        .collect();
    let sha_where = |script: &str, matches: &dyn Fn(&[String]) -> bool| {
        evalshas
            .iter()
            .find(|args| matches(args))
            .map(|args| args[1].clone())
            .unwrap_or_else(|| panic!("{script} did not run: {evalshas:?}"))
    };
    // EVALSHA sha numkeys KEYS... ARGV...: extend names the lock's key only, with a token
    // and a lease in ms; release, acquiring and the handover also name the fencing counter
    // and the queue. Release has two arguments; acquiring four, the second a lease in ms;
    // the handover five, the second the next owner as a queue entry (`<lease> <id> <value>`).
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let extend = sha_where("EXTEND", &|a| a.len() == 6 && digits(&a[5]));
    let release = sha_where("RELEASE", &|a| a.len() == 8 && a[2] == "3");
    let handoff = sha_where("HANDOFF", &|a| a.len() == 11 && !digits(&a[7]));
    let acquire = sha_where("ACQUIRE", &|a| a.len() == 10 && digits(&a[7]));
    let fence = format!("{key}:fence");
    let queue = format!("{key}:queue");

    // The lock is held; a forger on a raw connection guesses tokens. The key holds the
    // token and a description of the holder; the scripts compare all of it, so even the
    // right token alone is refused.
    let guard = lock.acquire(None).await.unwrap();
    let token = guard.token().to_string();
    let mut forger = server.connection();
    let value = owner(&mut forger, key).unwrap();
    assert!(value.starts_with(&format!("{token} ")), "{value}");
    for guess in [
        "0".repeat(32),
        "f".repeat(32),
        token[..31].to_string() + "x",
        String::new(),
        token.clone(),
        format!("{token} "),
    ] {
        let released: i64 = redis::cmd("EVALSHA")
            .arg(&release)
            .arg(3)
            .arg(key)
            .arg(&fence)
            .arg(&queue)
            .arg(&guess)
            .arg("forger")
            .query(&mut forger)
            .unwrap();
        let extended: i64 = redis::cmd("EVALSHA")
            .arg(&extend)
            .arg(1)
            .arg(key)
            .arg(&guess)
            .arg(3_600_000)
            .query(&mut forger)
            .unwrap();
        let handed: i64 = redis::cmd("EVALSHA")
            .arg(&handoff)
            .arg(3)
            .arg(key)
            .arg(&fence)
            .arg(&queue)
            .arg(&guess)
            .arg("3600000 forger forged-token")
            .arg(0)
            .arg("forger")
            .query(&mut forger)
            .unwrap();
        assert_eq!((released, extended, handed), (0, 0, 0), "guess {guess:?}");
    }
    // Nor can it take the lock the way the crate does.
    let (taken, _pttl): (i64, i64) = redis::cmd("EVALSHA")
        .arg(&acquire)
        .arg(3)
        .arg(key)
        .arg(&fence)
        .arg(&queue)
        .arg("forged-token")
        .arg(3_600_000)
        .arg("f")
        .arg("forger")
        .query(&mut forger)
        .unwrap();
    assert_eq!(taken, 0);
    let taken: Option<String> = redis::cmd("SET")
        .arg(key)
        .arg("forged-token")
        .arg("NX")
        .arg("PX")
        .arg(3_600_000)
        .query(&mut forger)
        .unwrap();
    assert_eq!(taken, None);
    assert_eq!(owner(&mut forger, key), Some(value.clone()));
    let ttl: i64 = redis::cmd("PTTL").arg(key).query(&mut forger).unwrap();
    assert!(ttl <= 10_000, "the lease was not extended: {ttl} ms");

    // Another client of the same server, with its own tokens, cannot have it either.
    ClientBuilder::new(server.url())
        .register("sec-other")
        .unwrap();
    let other = Lock::with_client("sec-other", "vault").unwrap();
    assert!(other.try_acquire().await.unwrap().is_none());
    assert!(matches!(
        other.acquire(Some(Duration::from_millis(50))).await,
        Err(LockError::Timeout { .. })
    ));
    assert_eq!(owner(&mut forger, key), Some(value));

    // The holder still can.
    guard.extend(None).await.unwrap();
    guard.release().await.unwrap();
    assert_eq!(owner(&mut forger, key), None);
}

#[tokio::test]
async fn a_holder_whose_lease_ran_out_cannot_release_or_extend_the_next_holders_lock() {
    let server = RedisServer::start();
    redis_locked::register("sec-first", &server.url()).unwrap();
    redis_locked::register("sec-second", &server.url()).unwrap();
    let first = Lock::with_client("sec-first", "door")
        .unwrap()
        .expire(Duration::from_millis(100))
        .acquire(None)
        .await
        .unwrap();
    // The other client waits for the first lease to run out, then holds it.
    let second = Lock::with_client("sec-second", "door")
        .unwrap()
        .expire(Duration::from_secs(10))
        .acquire(Some(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_ne!(first.token(), second.token());
    assert!(matches!(
        first.extend(Some(Duration::from_secs(60))).await,
        Err(LockError::Expired { .. })
    ));
    assert!(matches!(
        first.release().await,
        Err(LockError::Expired { .. })
    ));
    let mut conn = server.connection();
    assert_eq!(
        owner_token(&mut conn, "lock:{door}").as_deref(),
        Some(second.token())
    );
    let ttl: i64 = redis::cmd("PTTL")
        .arg("lock:{door}")
        .query(&mut conn)
        .unwrap();
    assert!(ttl <= 10_000, "not extended by the old holder: {ttl} ms");
    second.release().await.unwrap();
}

#[tokio::test]
async fn owner_tokens_are_128_random_bits_fresh_for_each_acquisition() {
    let server = RedisServer::start();
    redis_locked::register("sec-tokens", &server.url()).unwrap();
    let lock = Lock::with_client("sec-tokens", "t").unwrap();
    let mut tokens = HashSet::new();
    let mut ones = 0u32;
    for _ in 0..200 {
        let guard = lock.acquire(None).await.unwrap();
        let token = guard.token().to_string();
        assert_eq!(token.len(), 32, "{token}");
        let bits = u128::from_str_radix(&token, 16).expect("lowercase hex");
        assert_eq!(format!("{bits:032x}"), token);
        ones += bits.count_ones();
        assert!(tokens.insert(token), "a token repeated");
        guard.release().await.unwrap();
    }
    // 25,600 random bits: about half are set (a counter or a timestamp would not be).
    assert!(
        (11_800..13_800).contains(&ones),
        "{ones} bits set of 25,600"
    );
}
