//! Connection failures are told apart (a bad URL, an unreachable server, refused
//! credentials, a refused command) and never show the password, in Display or Debug.

use std::fmt::Debug;
use std::time::Duration;

use redis_locked::{ClientBuilder, Lock, LockError};
use redis_locked_tests::RedisServer;

const PASSWORD: &str = "s3cret-pass";

/// Asserts that neither the Display nor the Debug of `value` shows `secret`.
fn assert_hides<T: Debug + ?Sized>(value: &T, shown: &str, secret: &str) {
    let debug = format!("{value:?}");
    assert!(
        !shown.contains(secret),
        "Display shows the password: {shown}"
    );
    assert!(!debug.contains(secret), "Debug shows the password: {debug}");
}

fn assert_error_hides(e: &LockError, secret: &str) {
    assert_hides(e, &e.to_string(), secret);
}

/// The error of one blocking and one async acquisition on a freshly registered client.
async fn acquire_errors(client: &str) -> [LockError; 2] {
    let lock = Lock::with_client(client, "conn-errors")
        .unwrap()
        .expire(Duration::from_secs(5));
    let blocking = {
        let lock = lock.clone();
        tokio::task::spawn_blocking(move || lock.acquire_blocking(Some(Duration::ZERO)))
            .await
            .unwrap()
    };
    let asynchronous = lock.acquire(Some(Duration::ZERO)).await;
    [blocking.unwrap_err(), asynchronous.unwrap_err()]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_bad_url_is_invalid_config_without_its_password() {
    for url in [
        format!("redis://locker:{PASSWORD}@127.0.0.1:notaport"),
        format!("redis://:{PASSWORD}@127.0.0.1:6379/notadb"),
        format!("ftp://locker:{PASSWORD}@127.0.0.1:6379"),
    ] {
        let builder = ClientBuilder::new(url.clone());
        assert_hides(&builder, "", PASSWORD);
        let e = builder.register("conn-errors-bad-url").unwrap_err();
        assert!(
            matches!(&e, LockError::InvalidConfig { reason } if reason.contains("locker:***@") || reason.contains(":***@")),
            "{url}: {e:?}"
        );
        assert_error_hides(&e, PASSWORD);
    }
    // The builder's Debug shows the URL, redacted.
    let builder = ClientBuilder::new(format!("redis://locker:{PASSWORD}@10.1.2.3:6379"));
    assert!(format!("{builder:?}").contains("redis://locker:***@10.1.2.3:6379"));
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error_naming_the_address() {
    let port = free_port(); // nobody listens there any more
    ClientBuilder::new(format!("redis://locker:{PASSWORD}@127.0.0.1:{port}"))
        .register("conn-errors-refused")
        .unwrap();
    for e in acquire_errors("conn-errors-refused").await {
        match &e {
            LockError::Connect {
                address,
                lock,
                source,
            } => {
                assert_eq!(address, &format!("127.0.0.1:{port}"));
                assert_eq!(lock.as_deref(), Some("conn-errors"));
                assert_eq!(
                    source.kind(),
                    std::io::ErrorKind::ConnectionRefused,
                    "{source}"
                );
            }
            other => panic!("expected Connect, got {other:?}"),
        }
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
        assert_error_hides(&e, PASSWORD);
    }
}

#[tokio::test]
async fn refused_credentials_are_auth_errors_naming_the_user() {
    let server = RedisServer::start_with(&["--requirepass", PASSWORD]);
    let port = server.port();
    let wrong = "wrong-s3cret";
    let cases = [
        // A wrong password for the default user.
        (
            "conn-errors-wrongpass",
            format!("redis://:{wrong}@127.0.0.1:{port}"),
            "default",
            "WRONGPASS",
        ),
        // A user the server does not know, with the default user's password.
        (
            "conn-errors-nouser",
            format!("redis://nobody:{PASSWORD}@127.0.0.1:{port}"),
            "nobody",
            "WRONGPASS",
        ),
        // No password at all.
        (
            "conn-errors-noauth",
            format!("redis://127.0.0.1:{port}"),
            "default",
            "NOAUTH",
        ),
    ];
    for (client, url, user, code) in cases {
        ClientBuilder::new(url).register(client).unwrap();
        for e in acquire_errors(client).await {
            match &e {
                LockError::Auth {
                    user: u, reason, ..
                } => {
                    assert_eq!(u, user, "{client}");
                    assert!(reason.starts_with(code), "{client}: {reason}");
                }
                other => panic!("{client}: expected Auth, got {other:?}"),
            }
            assert_error_hides(&e, PASSWORD);
            assert_error_hides(&e, wrong);
        }
    }

    // The right password works, so the cases above failed for their credentials alone.
    ClientBuilder::new(format!("redis://:{PASSWORD}@127.0.0.1:{port}"))
        .register("conn-errors-right")
        .unwrap();
    let lock = Lock::with_client("conn-errors-right", "conn-errors").unwrap();
    lock.acquire(None).await.unwrap().release().await.unwrap();
}

#[tokio::test]
async fn a_password_for_a_server_without_one_is_an_auth_error() {
    let server = RedisServer::start();
    ClientBuilder::new(format!("redis://:{PASSWORD}@127.0.0.1:{}", server.port()))
        .register("conn-errors-unexpected-pass")
        .unwrap();
    for e in acquire_errors("conn-errors-unexpected-pass").await {
        assert!(
            matches!(&e, LockError::Auth { user, reason, .. } if user == "default" && reason.contains("without any password configured")),
            "{e:?}"
        );
        assert_error_hides(&e, PASSWORD);
    }
}

#[tokio::test]
async fn a_refused_command_is_no_permission_naming_it() {
    let server = RedisServer::start();
    let _: () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "getonly",
            "on",
            &format!(">{PASSWORD}"),
            "resetkeys",
            "~lock:*",
            "-@all",
            "+get",
        ])
        .query(&mut server.connection())
        .unwrap();
    ClientBuilder::new(format!(
        "redis://getonly:{PASSWORD}@127.0.0.1:{}",
        server.port()
    ))
    .register("conn-errors-noperm")
    .unwrap();
    for e in acquire_errors("conn-errors-noperm").await {
        assert!(
            matches!(&e, LockError::NoPermission { reason, .. } if reason.contains("'evalsha'")),
            "{e:?}"
        );
        assert!(e.to_string().contains("'evalsha'"), "{e}");
        assert_error_hides(&e, PASSWORD);
    }
    // GET is allowed: the user itself is fine.
    let lock = Lock::with_client("conn-errors-noperm", "conn-errors").unwrap();
    assert!(!lock.is_locked().await.unwrap());
}
