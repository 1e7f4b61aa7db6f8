//! The master a sentinel names is checked with `ROLE` before it is used: a sentinel that
//! names a replica (it has not seen a failover yet) does not send the locks there. The
//! sentinel here is a stand-in that names whatever server the test tells it to; the servers
//! are real.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use redis_locked::{ClientBuilder, Lock, LockError};
use redis_locked_tests::RedisServer;

/// A sentinel that answers `SENTINEL GET-MASTER-ADDR-BY-NAME` with 127.0.0.1 and the port in
/// `names`, and `+OK` to anything else (the connection's name). Its URL.
fn stand_in_sentinel(names: Arc<AtomicU16>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let names = names.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    let text = String::from_utf8_lossy(&buf[..n]);
                    let mut replies = String::new();
                    // Every command is a RESP array: a line that starts with `*`.
                    for command in text.split('*').skip(1) {
                        if command.to_ascii_uppercase().contains("SENTINEL") {
                            let port = names.load(Ordering::SeqCst).to_string();
                            replies.push_str(&format!(
                                "*2\r\n$9\r\n127.0.0.1\r\n${}\r\n{port}\r\n",
                                port.len()
                            ));
                        } else {
                            replies.push_str("+OK\r\n");
                        }
                    }
                    if stream.write_all(replies.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("redis://127.0.0.1:{port}")
}

fn causes(e: &dyn std::error::Error) -> String {
    std::iter::successors(Some(e), |cause| cause.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

#[tokio::test]
async fn a_replica_named_by_a_sentinel_is_not_taken_for_the_master() {
    let master = RedisServer::start();
    let replica =
        RedisServer::start_with(&["--replicaof", "127.0.0.1", &master.port().to_string()]);
    let names = Arc::new(AtomicU16::new(replica.port()));
    let sentinel = stand_in_sentinel(names.clone());
    ClientBuilder::sentinel("mymaster", [sentinel])
        .register("sentinel-role")
        .unwrap();
    let lock = Lock::with_client("sentinel-role", "job").unwrap();

    let e = lock
        .acquire(Some(Duration::from_millis(500)))
        .await
        .unwrap_err();
    assert!(
        matches!(e, LockError::Connect { .. }) && causes(&e).contains("not a master"),
        "{}",
        causes(&e)
    );
    // Nothing was written to the replica (it would refuse), nor to the master.
    assert!(!lock.is_locked().await.is_ok_and(|held| held));

    // The sentinel names the master now: the next resolution finds it, and locks work.
    names.store(master.port(), Ordering::SeqCst);
    let guard = lock.acquire(Some(Duration::from_secs(10))).await.unwrap();
    let owner: Option<String> = redis::cmd("GET")
        .arg("lock:{job}")
        .query(&mut master.connection())
        .unwrap();
    assert!(owner.is_some_and(|value| value.starts_with(guard.token())));
    guard.release().await.unwrap();
}
