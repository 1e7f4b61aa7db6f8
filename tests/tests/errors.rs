//! `LockError` as applications report it: through `anyhow` (whose `{:#}` prints the message
//! and then every cause), `?` into `Box<dyn Error + Send + Sync>`, or a match on its
//! variants and `is_*` predicates. Each piece of a report appears once: the message says
//! what happened and names the lock, the cause is only the source.

use std::error::Error;
use std::time::Duration;

use redis_locked::{ClientBuilder, Lock, LockError};
use redis_locked_tests::RedisServer;

/// How often `needle` occurs in `haystack`, ignoring case.
fn occurrences(haystack: &str, needle: &str) -> usize {
    haystack
        .to_lowercase()
        .matches(&needle.to_lowercase())
        .count()
}

/// The error's causes, outermost first.
fn causes<'e>(e: &'e (dyn Error + 'static)) -> Vec<&'e (dyn Error + 'static)> {
    std::iter::successors(e.source(), |&cause| cause.source()).collect()
}

/// A client of a server that is gone: its port refuses connections.
fn refusing_client(client: &str) {
    let mut server = RedisServer::start();
    let url = server.url();
    server.kill();
    ClientBuilder::new(url).register(client).unwrap();
}

#[tokio::test]
async fn a_refused_connection_says_so_once_and_keeps_the_io_error_as_its_cause() {
    refusing_client("errors-refused");
    let lock = Lock::with_client("errors-refused", "invoice:7").unwrap();
    let e = lock.acquire(Some(Duration::ZERO)).await.unwrap_err();

    let LockError::Connect {
        address,
        lock: name,
        source,
    } = &e
    else {
        panic!("expected Connect, got {e:?}");
    };
    assert_eq!(name.as_deref(), Some("invoice:7"));
    assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
    let address = address.clone();
    // The message is ours: which lock, and where; the cause is not repeated in it.
    let shown = e.to_string();
    assert_eq!(
        shown,
        format!("lock `invoice:7`: could not connect to Redis at {address}")
    );
    // The chain leads to the operating system's error, typed as such.
    let io = causes(&e)
        .into_iter()
        .find_map(|cause| cause.downcast_ref::<std::io::Error>())
        .expect("an io::Error among the causes");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);

    assert!(
        e.is_unavailable() && e.is_retryable() && !e.is_timeout(),
        "{e:?}"
    );

    let report = format!("{:#}", anyhow::Error::from(e));
    assert_eq!(occurrences(&report, "refused"), 1, "{report}");
    assert_eq!(occurrences(&report, &address), 1, "{report}");
    assert!(
        report.starts_with("lock `invoice:7`: could not connect"),
        "{report}"
    );
}

#[tokio::test]
async fn an_error_reply_says_so_once_and_names_the_lock() {
    let server = RedisServer::start();
    ClientBuilder::new(server.url())
        .register("errors-reply")
        .unwrap();
    // A fencing counter that is not a number: the acquire script's arithmetic on it fails.
    let _: () = redis::cmd("SET")
        .arg("lock:{invoice:8}:fence")
        .arg("not-a-number")
        .query(&mut server.connection())
        .unwrap();
    let lock = Lock::with_client("errors-reply", "invoice:8")
        .unwrap()
        .expire(Duration::from_secs(1));
    let e = lock
        .acquire(Some(Duration::from_secs(5)))
        .await
        .unwrap_err();

    let LockError::Redis { lock: name, source } = &e else {
        panic!("expected Redis, got {e:?}");
    };
    assert_eq!(name.as_deref(), Some("invoice:8"));
    // The redis crate's error type, named through the re-export.
    let source: &redis_locked::redis::RedisError = source;
    assert_eq!(source.kind(), redis_locked::redis::ErrorKind::Extension);
    assert_eq!(
        e.to_string(),
        "lock `invoice:8`: Redis answered with an error"
    );
    assert!(
        !e.is_unavailable() && !e.is_retryable() && !e.is_timeout(),
        "{e:?}"
    );
    let report = format!("{:#}", anyhow::Error::from(e));
    assert_eq!(
        occurrences(&report, "arithmetic on a nil value"),
        1,
        "{report}"
    );
    assert_eq!(occurrences(&report, "invoice:8"), 1, "{report}");
}

#[tokio::test]
async fn a_response_timeout_says_so_once_and_is_retryable() {
    let server = RedisServer::start();
    ClientBuilder::new(server.url())
        .response_timeout(Duration::from_millis(200))
        .register("errors-stalled")
        .unwrap();
    let lock = Lock::with_client("errors-stalled", "invoice:9").unwrap();
    assert!(!lock.is_locked().await.unwrap(), "answers while running");
    server.pause();
    let e = lock.is_locked().await.unwrap_err();
    server.resume();

    assert!(
        matches!(&e, LockError::Io { lock, .. } if lock.as_deref() == Some("invoice:9")),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "lock `invoice:9`: Redis did not answer in time"
    );
    assert!(
        e.is_timeout() && e.is_unavailable() && e.is_retryable(),
        "{e:?}"
    );
    let io = causes(&e)
        .into_iter()
        .find_map(|cause| cause.downcast_ref::<std::io::Error>())
        .expect("an io::Error among the causes");
    assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
    let report = format!("{:#}", anyhow::Error::from(e));
    assert_eq!(occurrences(&report, "200ms"), 1, "{report}");
}

#[test]
fn a_url_without_a_scheme_gets_a_hint_without_its_password() {
    for (url, meant) in [
        ("localhost:6379", "redis://localhost:6379"),
        ("127.0.0.1:6379", "redis://127.0.0.1:6379"),
        ("localhost", "redis://localhost"),
        (
            "locker:s3cret@10.0.0.1:6379/2",
            "redis://locker:***@10.0.0.1:6379/2",
        ),
    ] {
        let e = ClientBuilder::new(url)
            .register("errors-no-scheme")
            .unwrap_err();
        let shown = e.to_string();
        assert!(
            matches!(e, LockError::InvalidConfig { .. })
                && shown.ends_with(&format!("did you mean `{meant}`?")),
            "{url}: {shown}"
        );
        assert!(!format!("{shown} {e:?}").contains("s3cret"), "{shown}");
    }
    // A URL with a scheme gets no such hint.
    let e = ClientBuilder::new("ftp://localhost:6379")
        .register("errors-no-scheme")
        .unwrap_err();
    assert!(!e.to_string().contains("did you mean"), "{e}");
}

#[tokio::test]
async fn only_what_may_pass_by_itself_is_retryable() {
    let server = RedisServer::start();
    ClientBuilder::new(server.url())
        .register("errors-kinds")
        .unwrap();
    let lock = Lock::with_client("errors-kinds", "busy").unwrap();
    let _held = lock.acquire(None).await.unwrap();
    let busy = lock.acquire(Some(Duration::ZERO)).await.unwrap_err();
    assert!(matches!(busy, LockError::Timeout { .. }), "{busy:?}");
    assert!(
        busy.is_timeout() && busy.is_retryable() && !busy.is_unavailable(),
        "the lock is busy: Redis itself is fine"
    );

    let unknown = Lock::with_client("errors-never-registered", "x").unwrap_err();
    let invalid = Lock::with_client("errors-kinds", "").unwrap_err();
    let zero_lease = Lock::with_client("errors-kinds", "z")
        .unwrap()
        .expire(Duration::ZERO)
        .acquire(None)
        .await
        .unwrap_err();
    for e in [unknown, invalid, zero_lease] {
        assert!(
            !e.is_timeout() && !e.is_unavailable() && !e.is_retryable(),
            "{e:?}"
        );
        assert!(e.source().is_none(), "{e:?}");
    }
}

/// What `thiserror`'s `#[from]`, `anyhow` and `Box<dyn Error>` ask of an error type.
#[test]
fn lock_errors_are_sendable_static_errors() {
    fn sendable_static_error<E: Error + Send + Sync + 'static>(_: &E) {}
    let e = LockError::NotConfigured;
    sendable_static_error(&e);
    let boxed: Box<dyn Error + Send + Sync> = e.into();
    let e = boxed.downcast::<LockError>().unwrap();
    assert!(matches!(*e, LockError::NotConfigured));
}
